"""The pruning notebook: an attack's quality against the gradient pruning ratio.

The attack runs through each ratio with the defense pages' engine
(:mod:`gi_lib.experiments.defense_page`); nothing is trained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from gi_lib import plots
from gi_lib.defenses import GradientPruning, NoDefense
from gi_lib.experiments import defense_page
from gi_lib.experiments.common import (
    mean_of,
    ratio_param,
    score_rows,
    uses_num_threads,
)
from gi_lib.params import check_parameters, param, resolve_device
from gi_lib.results import (
    Claim,
    ResultRow,
    bound_claim,
    paired_claim,
    untested_claim,
)

NOTEBOOK = "pruning"


@dataclass(frozen=True, kw_only=True)
class PruningParams(defense_page.DefendedAttackParams):
    """The pruning notebook's parameters."""

    ratios: tuple[float, ...] = ratio_param("pruning ratios (0: no defense)")
    success_psnr: float = param("PSNR (dB) counted as a recovery", minimum=0)


NO_PAPER_NUMBER = (
    "DLG's defense figure plots the gradient-matching loss per pruning ratio and "
    "judges recovery by eye; it prints no PSNR."
)

# The examples figure is the defense pages' (the notebook calls it through
# this module).
examples_figure = defense_page.examples_figure


def check(values: Mapping[str, Any]) -> PruningParams:
    """Check the parameters (see :class:`PruningParams`)."""
    return check_parameters(values, PruningParams, notebook=NOTEBOOK)


def label(ratio: float) -> str:
    """The setting's label: the ratio in percent."""
    return f"{100 * ratio:g}%"


def pruning(ratio: float) -> defense_page.DefenseMaker:
    """Pruning at ``ratio`` for one trial (ratio 0: no defense at all)."""
    if ratio == 0:
        return lambda pool, seed: NoDefense(seed=seed)
    return lambda pool, seed: GradientPruning(ratio, seed=seed)


@uses_num_threads
def run(
    params: PruningParams, *, progress: bool = True
) -> defense_page.DefensePageRun[PruningParams]:
    """Attack the same images at every pruning ratio."""
    device = resolve_device(params.device)
    settings = {label(r): pruning(r) for r in params.ratios}
    trials = defense_page.attack_through_defenses(
        params, settings, model=params.model, device=device, progress=progress
    )
    return defense_page.DefensePageRun(params, device, {}, trials)


def psnr_figure(result: defense_page.DefensePageRun[PruningParams]) -> Figure:
    """Mean PSNR (and each image's) against the pruning ratio."""
    ratios = result.params.ratios
    series = {
        "mean": [(100 * r, mean_of(result.trials[label(r)], "psnr")) for r in ratios]
    }
    for i in range(result.params.num_trials):
        series[f"image {i}"] = [
            (100 * r, result.trials[label(r)][i].psnr) for r in ratios
        ]
    return plots.curves(
        series,
        xlabel="pruning ratio (%)",
        reference=(result.params.success_psnr, "recovery threshold"),
    )


def rows(result: defense_page.DefensePageRun[PruningParams]) -> list[ResultRow]:
    """PSNR, SSIM and success rate of the attack at each ratio."""
    out = []
    p = result.params
    title = defense_page.ATTACK_TITLES[p.attack]
    for r in p.ratios:
        trials = result.trials[label(r)]
        experiment = f"{p.dataset}/{p.model}/prune{r:g}"
        success = sum(t.psnr >= p.success_psnr for t in trials) / len(trials)
        out += score_rows(
            experiment,
            trials,
            f"{title}, mean over {len(trials)} images; {NO_PAPER_NUMBER}",
        )
        out.append(
            ResultRow.against(
                experiment,
                "success_rate",
                success,
                None,
                f"share of images above {p.success_psnr:g} dB",
            )
        )
    return out


def summary_text(result: defense_page.DefensePageRun[PruningParams]) -> str:
    """The attack's mean PSNR at each ratio, for the page's prose."""
    p = result.params
    parts = [
        f"{label(r)}: {mean_of(result.trials[label(r)], 'psnr'):.1f} dB"
        for r in p.ratios
    ]
    return (
        f"In this run ({p.profile} profile, {p.num_trials} images), "
        f"{defense_page.ATTACK_TITLES[p.attack]}'s mean PSNR by pruning ratio: "
        + "; ".join(parts)
        + "."
    )


PRUNING_SOURCE = (
    "Zhu et al., NeurIPS 2019, Sec. 5 (defense strategies); the 20% threshold as "
    "a third-party summary quotes it (PAPER_VALUES.md: S)"
)


def claims(result: defense_page.DefensePageRun[PruningParams]) -> list[Claim]:
    """DLG's defense claims, on the same images at every ratio."""
    p = result.params
    out = [
        untested_claim(
            "Gradient pruning is the most effective defense DLG's authors tried",
            "Zhu et al., NeurIPS 2019, abstract",
            "this page runs pruning only; the evaluation page compares defenses",
        )
    ]
    high = [r for r in p.ratios if r >= 0.2]
    low = [r for r in p.ratios if r < 0.2]
    if high:
        r = min(high)
        out.append(
            bound_claim(
                f"Pruning more than about 20% of the gradient stops DLG (at {r:g})",
                PRUNING_SOURCE,
                [t.psnr for t in result.trials[label(r)]],
                below=p.success_psnr,
                unit="dB",
                what=f"PSNR at pruning ratio {r:g}",
            )
        )
    else:
        out.append(
            untested_claim(
                "Pruning more than about 20% of the gradient stops DLG",
                PRUNING_SOURCE,
                "this run has no ratio of 0.2 or more",
            )
        )
    if low:
        r = min(low)
        out.append(
            bound_claim(
                f"Below about 20% (at {r:g}), DLG still recovers the image",
                PRUNING_SOURCE,
                [t.psnr for t in result.trials[label(r)]],
                above=p.success_psnr,
                unit="dB",
                what=f"PSNR at pruning ratio {r:g}",
            )
        )
    if len(p.ratios) > 1:
        lo, hi = min(p.ratios), max(p.ratios)
        out.append(
            paired_claim(
                f"Pruning ({hi:g}) lowers the attack's PSNR (against {lo:g})",
                PRUNING_SOURCE,
                [t.psnr for t in result.trials[label(lo)]],
                [t.psnr for t in result.trials[label(hi)]],
                names=(f"ratio {lo:g}", f"ratio {hi:g}"),
            )
        )
    return out
