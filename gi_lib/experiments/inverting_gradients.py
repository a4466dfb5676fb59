"""The Inverting Gradients notebook: its parameters, run, figures, tables
and results rows.

The four experiments themselves are in
:mod:`gi_lib.experiments.inverting_experiments`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import mean
from typing import Any

import torch
from matplotlib.figure import Figure

from gi_lib import data, plots
from gi_lib.attacks.base import OptimConfig
from gi_lib.experiments.common import (
    AttackedSample,
    mean_of,
    score_rows,
    uses_num_threads,
)
from gi_lib.experiments.inverting_experiments import (
    IGParams,
    IGRun,
    convnet_name,
    convnet_width,
    mean_colour_psnr,
    run_all,
)
from gi_lib.params import ParameterError, check_parameters, resolve_device
from gi_lib.results import (
    DOES_NOT_HOLD,
    HOLDS,
    NOT_ENOUGH_TRIALS,
    NOT_TESTED,
    VERDICTS,
    Claim,
    ResultRow,
    paired_claim,
    untested_claim,
)

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
    for width in params.widths:
        convnet_name(width)  # raises ParameterError for an unknown width
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


def network_text(result: IGRun) -> str:
    """What the trained network is, for the page's prose."""
    p = result.params
    trained = result.trained
    lbfgs_inner = OptimConfig().lbfgs_inner_steps  # evaluations per L-BFGS step
    images = f"{p.train_images:,}" if p.train_images else "all"
    passes = "one pass" if trained.epochs == 1 else f"{trained.epochs} passes"
    return (
        f"The trained network is the same {p.model} after {passes} over "
        f"{images} CIFAR training images (mini-batches of {p.train_batch_size}, "
        f"learning rate {p.train_lr:g}): its test accuracy is "
        f"{trained.test_accuracy:.2f}, against 0.10 for the untrained one "
        "(chance); the paper's networks are trained for 120 epochs on all of "
        "the training images. The cosine attack's TV weight is "
        f"{p.tv_weight:g} on the untrained network and {p.trained_tv_weight:g} "
        "on the trained one (the official notebooks use 1e-2 to 1e-1 on "
        f"trained networks). It takes {p.max_iterations} steps; L2 + L-BFGS may "
        f"spend up to {lbfgs_inner * p.lbfgs_iterations} loss evaluations."
    )


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


def fedavg_experiment(base: str, setting: Mapping[str, float]) -> str:
    """The results key of a FedAvg client setting: ``<base>/fedavg/ep1-n4-lr0.1``."""
    return (
        f"{base}/fedavg/ep{int(setting['epochs'])}-n{int(setting['images'])}"
        f"-lr{setting['lr']:g}"
    )


def _mean_colour(
    table: Mapping[str, Sequence[AttackedSample]], info: data.DatasetInfo
) -> list[float]:
    """The mean colour's PSNR on each of the table's images."""
    first = next(iter(table.values()))
    return [float(mean_colour_psnr(s.true_images, info).mean()) for s in first]


def rows(result: IGRun) -> list[ResultRow]:
    """Scorecard rows for all experiments."""
    p = result.params
    info = data.dataset_info(p.dataset)
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
    out.append(
        ResultRow.against(
            f"{p.dataset}/mean-colour/bs1",
            "psnr",
            mean(_mean_colour(result.table, info)),
            None,
            f"the data set's mean colour as the guess, on the same "
            f"{p.num_trials} images: the level without the update",
        )
    )
    for width, trials in result.widths.items():
        if width == convnet_width(p.model):
            continue  # the table's untrained cosine row
        out.append(
            ResultRow.against(
                f"{p.dataset}/{convnet_name(width)}/untrained/cosine/bs1",
                "psnr",
                mean_of(trials, "psnr"),
                None,
                f"mean over the table's {len(trials)} images; {UNVERIFIED}",
            )
        )
    fedavg = result.fedavg
    for setting, attacked in fedavg.settings:
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
            f"{fedavg_experiment(base, fedavg.settings[0][0])}/ignoring-steps",
            "psnr",
            fedavg.ignoring_steps.psnr,
            None,
            "the base update attacked as one gradient (local steps ignored)",
        )
    )
    out.append(
        ResultRow.against(
            f"{fedavg_experiment(base, fedavg.trial_setting)}/trials",
            "psnr",
            mean_of(fedavg.trials, "psnr"),
            None,
            f"mean over {len(fedavg.trials)} image sets, "
            f"{int(fedavg.trial_setting['steps'])} local steps; {UNVERIFIED}",
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
            f"{result.trained.epochs} epochs on "
            f"{p.train_images or 'all'} training images; the paper trains "
            "120 epochs on all of them",
        )
    )
    return out


# ---------------------------------------------------------------------------
# The paper's claims
# ---------------------------------------------------------------------------

ABSTRACT = "Geiping et al., abstract"
TABLE_1 = (
    "Geiping et al., Sec. 4, Table 1 (Euclidean loss + L-BFGS against the "
    "proposed attack, trained and untrained networks; its cells could not be "
    "read here)"
)
WIDTH_SOURCE = (
    'Geiping et al., abstract ("we analyze the effects of architecture"); '
    "the paper's width study itself could not be read here"
)


@dataclass(frozen=True)
class ClaimTrials:
    """The PSNRs (dB) the claims are judged on.

    Within each group, entry ``i`` of every list is the same trial (image,
    seed), so the lists compare as paired trials.

    Attributes:
        table: ``"<network>/<loss>"`` -> PSNR per table image.
        mean_colour: the mean colour's PSNR on each table image.
        widths: ConvNet width -> untrained cosine PSNR per table image.
        fedavg: the multi-step FedAvg setting's PSNR per image set.
        fedavg_mean_colour: the mean colour's PSNR per FedAvg image set.
        fedavg_steps: that setting's local steps.
        batch: ``(size, PSNR, mean colour PSNR)`` of the largest batch, or
            None without a batch of several images.
    """

    table: Mapping[str, Sequence[float]]
    mean_colour: Sequence[float]
    widths: Mapping[int, Sequence[float]]
    fedavg: Sequence[float]
    fedavg_mean_colour: Sequence[float]
    fedavg_steps: int
    batch: tuple[int, float, float] | None


def claim_trials(result: IGRun) -> ClaimTrials:
    """The run's PSNRs, grouped as the claims compare them."""
    info = data.dataset_info(result.params.dataset)

    def psnrs(samples: Sequence[AttackedSample]) -> list[float]:
        return [s.psnr for s in samples]

    fedavg = result.fedavg
    largest = max(result.batches)
    batch = result.batches[largest]
    return ClaimTrials(
        table={key: psnrs(trials) for key, trials in result.table.items()},
        mean_colour=_mean_colour(result.table, info),
        widths={w: psnrs(trials) for w, trials in result.widths.items()},
        fedavg=psnrs(fedavg.trials),
        fedavg_mean_colour=[
            float(mean_colour_psnr(s.true_images, info).mean()) for s in fedavg.trials
        ],
        fedavg_steps=int(fedavg.trial_setting["steps"]),
        batch=(
            (
                largest,
                batch.psnr,
                float(mean_colour_psnr(batch.true_images, info).mean()),
            )
            if largest > 1
            else None
        ),
    )


def judge(trials: ClaimTrials) -> list[Claim]:
    """The paper's claims, each judged on paired trials (at least 3 per verdict)."""
    t = trials.table
    pair = ("cosine + TV", "L2 + L-BFGS")
    out = [
        paired_claim(
            "On a trained network the paper's attack (cosine similarity, TV "
            "prior, signed Adam) reconstructs the image better than DLG's "
            "Euclidean loss with L-BFGS.",
            TABLE_1,
            t["trained/cosine"],
            t["trained/l2"],
            names=pair,
        ),
        paired_claim(
            "On the untrained network, too, the paper's attack beats the "
            "Euclidean loss with L-BFGS.",
            TABLE_1,
            t["untrained/cosine"],
            t["untrained/l2"],
            names=pair,
        ),
        paired_claim(
            "A trained network still leaks its input: the attack on its "
            "gradient recovers more of the image than a guess made without "
            "the update (the data set's mean colour).",
            f'{ABSTRACT} ("possible even for trained deep networks"); {TABLE_1}',
            t["trained/cosine"],
            trials.mean_colour,
            names=("cosine + TV, trained", "mean colour"),
        ),
        paired_claim(
            "The Euclidean loss with L-BFGS succeeds only in contrived settings: "
            "it does worse on a trained network than on an untrained one.",
            f'{ABSTRACT} (earlier attacks succeed "only in contrived '
            f'settings"); {TABLE_1}',
            t["untrained/l2"],
            t["trained/l2"],
            names=("L2 + L-BFGS, untrained", "trained"),
        ),
    ]
    widths = sorted(trials.widths)
    width_claim = "Wider networks leak more: the same attack on the same images "
    if len(widths) < 2:
        out.append(
            untested_claim(
                width_claim + "recovers more from a wider ConvNet.",
                WIDTH_SOURCE,
                f"this run attacks one width ({widths[0]})",
            )
        )
    for narrow, wide in zip(widths, widths[1:], strict=False):
        out.append(
            paired_claim(
                width_claim + f"recovers more from a ConvNet of width {wide} than "
                f"of width {narrow} (untrained).",
                WIDTH_SOURCE,
                trials.widths[wide],
                trials.widths[narrow],
                names=(f"width {wide}", f"width {narrow}"),
            )
        )
    fedavg_claim = (
        "Averaging over several local steps does not protect the client: the "
        "attack on a FedAvg update recovers more than the mean colour"
    )
    fedavg_source = (
        f'{ABSTRACT} ("even averaging gradients over several iterations or '
        "several images does not protect the user's privacy\")"
    )
    if trials.fedavg_steps < 2:
        out.append(
            untested_claim(
                fedavg_claim + ".",
                fedavg_source,
                "no FedAvg setting of this run takes more than one local step",
            )
        )
    else:
        out.append(
            paired_claim(
                fedavg_claim + f" ({trials.fedavg_steps} local steps).",
                fedavg_source,
                trials.fedavg,
                trials.fedavg_mean_colour,
                names=("FedAvg attack", "mean colour"),
            )
        )
    batch_claim = (
        "Averaging over several images does not protect the client: the "
        "attack on one update of a batch recovers more than the mean colour"
    )
    if trials.batch is None:
        out.append(
            untested_claim(
                batch_claim + ".", fedavg_source, "this run attacks no batch of images"
            )
        )
    else:
        size, psnr, colour = trials.batch
        out.append(
            paired_claim(
                batch_claim + f" ({size} images).",
                fedavg_source,
                [psnr],
                [colour],
                names=(f"batch of {size}", "mean colour"),
            )
        )
    return out


def verdicts_text(result: IGRun, checked: Sequence[Claim]) -> str:
    """How many of the claims hold in this run, for the page's prose."""
    p = result.params
    counts = {v: sum(c.verdict == v for c in checked) for v in VERDICTS}
    parts = [f"{counts[HOLDS]} hold", f"{counts[DOES_NOT_HOLD]} do not hold"]
    parts.append(f"{counts[NOT_ENOUGH_TRIALS]} have no verdict")
    if counts[NOT_TESTED]:
        parts.append(f"{counts[NOT_TESTED]} are not tested")
    text = f"Of the {len(checked)} claims checked in this run, " + ", ".join(parts)
    text += "."
    if counts[HOLDS] < len(checked):
        text += (
            f" This run attacks {p.num_trials} images with {p.max_iterations} "
            f"steps on a network at test accuracy {result.trained.test_accuracy:.2f}; "
            "the paper attacks 100 images with 4,800 steps or more on networks "
            "trained to convergence, so a claim without a verdict here is "
            "untested at the paper's scale, not refuted."
        )
    return text


def claims(result: IGRun) -> list[Claim]:
    """The paper's claims with this run's verdicts (:func:`judge`)."""
    return judge(claim_trials(result))


def summary_text(result: IGRun) -> str:
    """The run's headline numbers, for the page's prose."""
    t = {k: mean_of(v, "psnr") for k, v in result.table.items()}
    info = data.dataset_info(result.params.dataset)
    colour = mean(_mean_colour(result.table, info))
    fedavg = result.fedavg
    ignoring = fedavg.ignoring_steps.psnr
    unrolled = fedavg.settings[0][1].psnr
    sizes = ", ".join(f"{s}: {a.psnr:.1f} dB" for s, a in result.batches.items())
    widths = ", ".join(
        f"{w}: {mean_of(v, 'psnr'):.1f} dB" for w, v in result.widths.items()
    )
    return (
        f"In this run ({result.params.profile} profile, {result.params.model}, "
        f"{result.params.num_trials} images): "
        "on the untrained network the cosine attack reaches "
        f"{t['untrained/cosine']:.1f} dB on average "
        f"against {t['untrained/l2']:.1f} dB for L2 + L-BFGS; on the trained network "
        f"(test accuracy {result.trained.test_accuracy:.2f}) "
        f"{t['trained/cosine']:.1f} dB "
        f"against {t['trained/l2']:.1f} dB. The data set's mean colour, guessed "
        f"without the update, scores {colour:.1f} dB on the same images. "
        f"By ConvNet width (untrained): {widths}. "
        f"Unrolling the FedAvg steps gives {unrolled:.1f} dB on the base setting, "
        f"ignoring them {ignoring:.1f} dB; the setting with "
        f"{int(fedavg.trial_setting['steps'])} local steps averages "
        f"{mean_of(fedavg.trials, 'psnr'):.1f} dB over {len(fedavg.trials)} image "
        f"sets. By batch size: {sizes}."
    )
