"""The pruning notebook: DLG's attack quality against the gradient pruning ratio."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from matplotlib.figure import Figure

from gi_lib import plots
from gi_lib.defenses import GradientPruning, NoDefense
from gi_lib.defenses.evaluate import (
    DefendedTrial,
    attack_through_defenses,
    examples_rows,
    mean_psnr,
    mean_ssim,
)
from gi_lib.experiments.common import ratio_param, uses_num_threads
from gi_lib.params import ExperimentParams, check_parameters, param, resolve_device
from gi_lib.results import ResultRow

NOTEBOOK = "pruning"


@dataclass(frozen=True, kw_only=True)
class PruningParams(ExperimentParams):
    """The pruning notebook's parameters."""

    ratios: tuple[float, ...] = ratio_param("pruning ratios (0: no defense)")
    max_iterations: int = param("DLG's L-BFGS iterations", minimum=1)
    success_psnr: float = param("PSNR (dB) counted as a recovery", minimum=0)
    num_shown: int = param("images shown in the figure", minimum=1)


NO_PAPER_NUMBER = (
    "DLG's defense figure plots the gradient-matching loss per pruning ratio and "
    "judges recovery by eye; it prints no PSNR."
)


def check(values: Mapping[str, Any]) -> PruningParams:
    """Check the parameters (see :class:`PruningParams`)."""
    return check_parameters(values, PruningParams, notebook=NOTEBOOK)


def label(ratio: float) -> str:
    return f"{100 * ratio:g}%"


@dataclass
class PruningRun:
    params: PruningParams
    device: torch.device
    ratios: tuple[float, ...]
    trials: dict[str, list[DefendedTrial]]


@uses_num_threads
def run(params: PruningParams, *, progress: bool = True) -> PruningRun:
    """Attack the same images at every pruning ratio."""
    device = resolve_device(params.device)
    values = params.ratios
    settings = {
        label(r): (
            (lambda pool, seed: NoDefense(seed=seed))
            if r == 0
            else (lambda pool, seed, _r=r: GradientPruning(_r, seed=seed))
        )
        for r in values
    }
    trials = attack_through_defenses(
        settings,
        dataset=params.dataset,
        model=params.model,
        num_trials=params.num_trials,
        seed=params.seed,
        device=device,
        max_iterations=params.max_iterations,
        progress=progress,
    )
    return PruningRun(params=params, device=device, ratios=values, trials=trials)


def psnr_figure(result: PruningRun) -> Figure:
    """Mean PSNR (and each image's) against the pruning ratio."""
    series = {
        f"image {i}": [
            (100 * r, result.trials[label(r)][i].psnr) for r in result.ratios
        ]
        for i in range(result.params.num_trials)
    }
    series = {
        "mean": [(100 * r, mean_psnr(result.trials[label(r)])) for r in result.ratios],
        **series,
    }
    return plots.curves(
        series,
        xlabel="pruning ratio (%)",
        ylabel="PSNR (dB)",
        hline=result.params.success_psnr,
        hline_label="recovery threshold",
    )


def examples_figure(result: PruningRun) -> Figure:
    rows, columns, titles = examples_rows(result.trials, result.params.num_shown)
    return plots.image_rows(rows, columns, titles)


def rows(result: PruningRun) -> list[ResultRow]:
    out = []
    p = result.params
    for r in result.ratios:
        trials = result.trials[label(r)]
        experiment = f"{p.dataset}/{p.model}/prune{r:g}"
        success = sum(t.psnr >= p.success_psnr for t in trials) / len(trials)
        out += [
            ResultRow.against(
                experiment,
                "psnr",
                mean_psnr(trials),
                None,
                f"DLG, mean over {len(trials)} images; {NO_PAPER_NUMBER}",
            ),
            ResultRow.against(experiment, "ssim", mean_ssim(trials), None, ""),
            ResultRow.against(
                experiment,
                "success_rate",
                success,
                None,
                f"share of images above {p.success_psnr:g} dB",
            ),
        ]
    return out


def summary_text(result: PruningRun) -> str:
    parts = [
        f"{label(r)}: {mean_psnr(result.trials[label(r)]):.1f} dB"
        for r in result.ratios
    ]
    return (
        f"In this run ({result.params.profile} profile, "
        f"{result.params.num_trials} images), DLG's mean PSNR by pruning ratio: "
        + "; ".join(parts)
        + "."
    )
