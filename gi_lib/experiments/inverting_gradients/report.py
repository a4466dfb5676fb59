"""The Inverting Gradients page's rows and prose."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import mean

from gi_lib import data
from gi_lib.attacks.base import OptimConfig
from gi_lib.experiments.common import AttackedSample, mean_of, score_rows
from gi_lib.experiments.inverting_experiments import (
    IGRun,
    convnet_name,
    convnet_width,
    mean_colour_psnr,
)
from gi_lib.experiments.inverting_gradients.experiment import PAPER_SETTING, UNVERIFIED
from gi_lib.results import ResultRow


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
