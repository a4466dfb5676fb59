"""The Inverting Gradients page's figures and tables."""

from __future__ import annotations

from statistics import mean

import torch
from matplotlib.figure import Figure

from gi_lib import data, plots
from gi_lib.experiments.common import mean_of
from gi_lib.experiments.inverting_experiments import IGRun
from gi_lib.experiments.inverting_gradients.report import _mean_colour

TABLE_LABELS = {
    "untrained/l2": "untrained, L2 + L-BFGS",
    "untrained/cosine": "untrained, cosine (ours)",
    "trained/l2": "trained, L2 + L-BFGS",
    "trained/cosine": "trained, cosine (ours)",
}


def examples_figure(result: IGRun) -> Figure:
    """Rows: victim images; columns: the truth and each network/loss pair."""
    keys = [k for k in TABLE_LABELS if k in result.table]
    rows = []
    for i in range(result.params.num_shown):
        first = result.table[keys[0]][i]
        rows.append(
            [first.true_images[0]] + [result.table[k][i].images[0] for k in keys]
        )
    columns = ["truth"] + [TABLE_LABELS[k] for k in keys]
    titles = [f"#{i}" for i in range(len(rows))]
    return plots.image_rows(rows, columns, titles, cell_size=1.4)


def table_frame(result: IGRun):  # noqa: ANN201 - pandas imported lazily
    """Experiment 1 as a table: mean PSNR (and SSIM) per network and loss."""
    import pandas as pd

    records = []
    for key in TABLE_LABELS:
        trials = result.table[key]
        state, loss = key.split("/")
        records.append(
            {
                "network": state,
                "attack": "L2 + L-BFGS"
                if loss == "l2"
                else "cosine + signed Adam + TV",
                "mean PSNR (dB)": round(mean_of(trials, "psnr"), 2),
                "mean SSIM": round(mean_of(trials, "ssim"), 3),
                "images": len(trials),
            }
        )
    info = data.dataset_info(result.params.dataset)
    records.append(
        {
            "network": "—",
            "attack": "none: the data set's mean colour",
            "mean PSNR (dB)": round(mean(_mean_colour(result.table, info)), 2),
            "mean SSIM": None,
            "images": result.params.num_trials,
        }
    )
    return pd.DataFrame(records)


def width_frame(result: IGRun):  # noqa: ANN201 - pandas imported lazily
    """The untrained cosine attack per ConvNet width: mean PSNR and SSIM."""
    import pandas as pd

    info = data.dataset_info(result.params.dataset)
    records = [
        {
            "ConvNet width": width,
            "mean PSNR (dB)": round(mean_of(trials, "psnr"), 2),
            "mean SSIM": round(mean_of(trials, "ssim"), 3),
            "images": len(trials),
        }
        for width, trials in result.widths.items()
    ]
    records.append(
        {
            "ConvNet width": "mean colour (no update)",
            "mean PSNR (dB)": round(mean(_mean_colour(result.table, info)), 2),
            "mean SSIM": None,
            "images": result.params.num_trials,
        }
    )
    return pd.DataFrame(records)


def fedavg_frame(result: IGRun):  # noqa: ANN201
    """Experiment 2 as a table, one row per client setting."""
    import pandas as pd

    records = [
        {
            "local epochs": int(s["epochs"]),
            "local images": int(s["images"]),
            "local lr": s["lr"],
            "local steps": int(s["steps"]),
            "PSNR (dB)": round(a.psnr, 2),
        }
        for s, a in result.fedavg.settings
    ]
    return pd.DataFrame(records)


def fedavg_figure(result: IGRun) -> Figure:
    """Truth and reconstruction for each FedAvg setting (first image of each)."""
    rows = [[a.true_images[0], a.images[0]] for _, a in result.fedavg.settings]
    ignoring = result.fedavg.ignoring_steps
    rows.append([ignoring.true_images[0], ignoring.images[0]])
    titles = [a.setting for _, a in result.fedavg.settings]
    titles.append("base, steps ignored")
    return plots.image_rows(rows, ["truth", "reconstruction"], titles, cell_size=1.3)


def batch_figure(result: IGRun) -> Figure:
    """Each batch size's reconstructions (matched to the truth) over the truth."""
    largest = max(result.batches)
    rows = []
    titles = []
    for size, attacked in result.batches.items():
        blank = torch.ones_like(attacked.true_images[0])
        rows.append(list(attacked.images) + [blank] * (largest - size))
        titles.append(f"{size}: ours")
    truth = result.batches[largest].true_images
    rows.append(list(truth))
    titles.append(f"{largest}: truth")
    return plots.image_rows(rows, [f"{j + 1}" for j in range(largest)], titles)


def batch_curve(result: IGRun) -> Figure:
    """Mean PSNR against batch size."""
    points = [(float(s), a.psnr) for s, a in result.batches.items()]
    return plots.curves(
        {"cosine + signed Adam + TV": points},
        xlabel="images per update",
        ylabel="mean PSNR (dB), matched",
    )
