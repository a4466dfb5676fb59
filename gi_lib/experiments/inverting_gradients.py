"""The Inverting Gradients notebook: its parameters, run, figures, tables
and results rows.

The four experiments themselves are in
:mod:`gi_lib.experiments.inverting_experiments`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from matplotlib.figure import Figure

from gi_lib import data, plots
from gi_lib.experiments.common import mean_of, score_rows, uses_num_threads
from gi_lib.experiments.inverting_experiments import IGParams, IGRun, run_all
from gi_lib.params import ParameterError, check_parameters, resolve_device
from gi_lib.results import ResultRow

NOTEBOOK = "inverting_gradients"

UNVERIFIED = (
    "the paper's value could not be verified from its text here, so none is shown"
)
PAPER_SETTING = (
    "paper: ResNet and LeNet on the first 100 CIFAR-10 validation images, "
    "4,800-24,000 steps"
)


def check(values: Mapping[str, Any]) -> IGParams:
    """Check the notebook's parameters (see :class:`IGParams`): batches hold
    at most one image per class; figures show at most ``num_trials`` images."""
    params = check_parameters(values, IGParams, notebook=NOTEBOOK)
    info = data.dataset_info(params.dataset)
    if max(params.batch_sizes) > info.num_classes:
        raise ParameterError(
            f"batch_sizes go up to {max(params.batch_sizes)}, but victims are drawn "
            f"with distinct labels and {params.dataset} has {info.num_classes} "
            "classes."
        )
    return dataclasses.replace(
        params, num_shown=min(params.num_shown, params.num_trials)
    )


@uses_num_threads
def run(params: IGParams, *, progress: bool = True) -> IGRun:
    """Run all four experiments (on ``params.num_threads`` CPU threads)."""
    device = resolve_device(params.device)
    return run_all(params, device, progress=progress)


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
        for s, a in result.fedavg
    ]
    return pd.DataFrame(records)


def fedavg_figure(result: IGRun) -> Figure:
    """Truth and reconstruction for each FedAvg setting (first image of each)."""
    rows = [[a.true_images[0], a.images[0]] for _, a in result.fedavg]
    rows.append(
        [
            result.fedavg_ignoring_steps.true_images[0],
            result.fedavg_ignoring_steps.images[0],
        ]
    )
    titles = [a.setting for _, a in result.fedavg] + ["base, steps ignored"]
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


def fedavg_experiment(base: str, setting: dict[str, float]) -> str:
    """The results key of a FedAvg client setting: ``<base>/fedavg/ep1-n4-lr0.1``."""
    return (
        f"{base}/fedavg/ep{int(setting['epochs'])}-n{int(setting['images'])}"
        f"-lr{setting['lr']:g}"
    )


def rows(result: IGRun) -> list[ResultRow]:
    """Scorecard rows for all experiments."""
    p = result.params
    base = f"{p.dataset}/{p.model}"
    checkpoint = (
        f"trained {result.trained.epochs} epochs, "
        f"test accuracy {result.trained.test_accuracy:.2f}"
    )
    out: list[ResultRow] = []
    for key, trials in result.table.items():
        state, loss = key.split("/")
        network = checkpoint if state == "trained" else "untrained"
        note = (
            f"mean over {len(trials)} images; {network}; {UNVERIFIED} ({PAPER_SETTING})"
        )
        out += score_rows(f"{base}/{state}/{loss}/bs1", trials, note)
    for setting, attacked in result.fedavg:
        out.append(
            ResultRow.against(
                fedavg_experiment(base, setting),
                "psnr",
                attacked.psnr,
                None,
                f"{int(setting['steps'])} local steps, untrained; {UNVERIFIED}",
            )
        )
    out.append(
        ResultRow.against(
            f"{fedavg_experiment(base, result.fedavg[0][0])}/ignoring-steps",
            "psnr",
            result.fedavg_ignoring_steps.psnr,
            None,
            "the base update attacked as one gradient (local steps ignored)",
        )
    )
    for size, attacked in result.batches.items():
        experiment = f"{base}/untrained/cosine/batch{size}"
        out.append(
            ResultRow.against(
                experiment,
                "psnr",
                attacked.psnr,
                None,
                f"one batch, distinct labels, matched one-to-one; {UNVERIFIED}",
            )
        )
        out.append(
            ResultRow.against(
                experiment,
                "label_accuracy",
                result.batch_label_accuracy[size],
                None,
                "labels read off the last layer (the attack used the true ones)",
            )
        )
    if result.imagenet is not None:
        out.append(
            ResultRow.against(
                "imagenet/resnet18/untrained/cosine/bs1",
                "psnr",
                result.imagenet.psnr,
                None,
                result.imagenet_note,
            )
        )
    out.append(
        ResultRow.against(
            f"{base}/trained",
            "test_accuracy",
            result.trained.test_accuracy,
            None,
            f"{result.trained.epochs} epochs; the paper trains 120 epochs",
        )
    )
    return out


def summary_text(result: IGRun) -> str:
    """The run's headline numbers, for the page's prose."""
    t = {k: mean_of(v, "psnr") for k, v in result.table.items()}
    ignoring = result.fedavg_ignoring_steps.psnr
    unrolled = result.fedavg[0][1].psnr
    sizes = ", ".join(f"{s}: {a.psnr:.1f} dB" for s, a in result.batches.items())
    return (
        f"In this run ({result.params.profile} profile, {result.params.model}): "
        "on the untrained network the cosine attack reaches "
        f"{t['untrained/cosine']:.1f} dB "
        f"against {t['untrained/l2']:.1f} dB for L2 + L-BFGS; on the trained network "
        f"(test accuracy {result.trained.test_accuracy:.2f}) "
        f"{t['trained/cosine']:.1f} dB "
        f"against {t['trained/l2']:.1f} dB. Unrolling the FedAvg steps gives "
        f"{unrolled:.1f} dB on the base setting, ignoring them {ignoring:.1f} dB. "
        f"By batch size: {sizes}."
    )
