"""The pruning notebook: the attacks' quality against the gradient pruning ratio.

Every attack of the page (DLG, the paper's, and Inverting Gradients, the
family Huang et al. 2021 evaluate defenses with) runs through each ratio
with the defense pages' engine (:mod:`gi_lib.experiments.defense_page`), on
the same images, models and pruned updates; nothing is trained (DLG attacks
a freshly initialised model).
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
from gi_lib.results import Claim, ResultRow, untested_claim

NOTEBOOK = "pruning"

THRESHOLD_RATIO = 0.2
"""The pruning ratio above which DLG is said to be stopped (a third party's
summary of the paper's defense section)."""


@dataclass(frozen=True, kw_only=True)
class PruningParams(defense_page.MultiAttackParams):
    """The pruning notebook's parameters."""

    ratios: tuple[float, ...] = ratio_param("pruning ratios (0: no defense)")
    success_psnr: float = param("PSNR (dB) counted as a recovery", minimum=0)


NO_PAPER_NUMBER = (
    "DLG's defense figure plots the gradient-matching loss per pruning ratio and "
    "judges recovery by eye; it prints no PSNR."
)

MOST_EFFECTIVE_SOURCE = "Zhu et al. 2019, abstract"
THRESHOLD_SOURCE = (
    "Zhu et al. 2019, Sec. 5 (defense strategies), as a third party summarises "
    "it (shinhyeok.vercel.app/deep-leakage-from-gradients; label S in "
    "PAPER_VALUES.md §1): not checked against the paper"
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
    """Attack the same images at every pruning ratio with every attack."""
    device = resolve_device(params.device)
    settings = {label(r): pruning(r) for r in params.ratios}
    by_attack = defense_page.attack_through_defenses(
        params, settings, model=params.model, device=device, progress=progress
    )
    return defense_page.DefensePageRun(
        params,
        device,
        {},
        by_attack,
        unrelated=defense_page.unrelated_levels(params),
    )


def psnr_figure(result: defense_page.DefensePageRun[PruningParams]) -> Figure:
    """Mean PSNR of every attack against the pruning ratio, and each image's
    under the page's first attack."""
    p = result.params
    ratios = p.ratios
    series = {}
    for attack in result.attacks:
        trials = result.by_attack[attack]
        series[f"{defense_page.ATTACK_TITLES[attack]}, mean"] = [
            (100 * r, mean_of(trials[label(r)], "psnr")) for r in ratios
        ]
    first = result.attacks[0]
    for i in range(p.num_trials):
        series[f"{defense_page.ATTACK_TITLES[first]}, image {i}"] = [
            (100 * r, result.by_attack[first][label(r)][i].psnr) for r in ratios
        ]
    return plots.curves(
        series,
        xlabel="pruning ratio (%)",
        reference=(p.success_psnr, "recovery threshold"),
    )


def rows(result: defense_page.DefensePageRun[PruningParams]) -> list[ResultRow]:
    """PSNR, SSIM and success rate of every attack at each ratio."""
    out = []
    p = result.params
    for attack in result.attacks:
        title = defense_page.ATTACK_TITLES[attack]
        for r in p.ratios:
            trials = result.by_attack[attack][label(r)]
            experiment = f"{p.dataset}/{p.model}/prune{r:g}/{attack}"
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


def _threshold_claims(
    result: defense_page.DefensePageRun[PruningParams], attack: str
) -> list[Claim]:
    """DLG's 20% threshold for one attack: stopped at and above it, not below."""
    p = result.params
    title = defense_page.ATTACK_TITLES[attack]
    owner = defense_page.possessive(title)
    level = p.success_psnr
    scope = (
        ""
        if attack == "dlg"
        else " (DLG's threshold, checked with an attack the paper does not run)"
    )

    def bound(r: float, **side: float) -> tuple[str, Claim]:
        return label(r), defense_page.trials_bound(
            f"{owner} PSNR at {label(r)} against {level:g} dB",
            THRESHOLD_SOURCE,
            result.psnr(attack, label(r)),
            unit="dB",
            what=f"{owner} PSNR at {label(r)}",
            **side,
        )

    high = [bound(r, below=level) for r in p.ratios if r >= THRESHOLD_RATIO]
    low = [bound(r, above=level) for r in p.ratios if r < THRESHOLD_RATIO]
    return [
        defense_page.all_of(
            f"Pruning {label(THRESHOLD_RATIO)} or more of the gradient stops "
            f"{title}: its PSNR stays below the recovery threshold "
            f"({level:g} dB) at every such ratio{scope}.",
            THRESHOLD_SOURCE,
            high,
        ),
        defense_page.all_of(
            f"Below {label(THRESHOLD_RATIO)} pruning (and without it) {title} "
            f"still recovers the image: its PSNR is above the recovery threshold "
            f"({level:g} dB){scope}.",
            THRESHOLD_SOURCE,
            low,
        ),
    ]


def claims(result: defense_page.DefensePageRun[PruningParams]) -> list[Claim]:
    """The paper's claims about pruning, with this run's verdicts.

    Each ratio's verdict is a bound on the mean PSNR of its trials (the
    t-interval of the mean must clear the recovery threshold); a claim over
    several ratios holds only if it holds at each (:func:`defense_page.all_of`).
    """
    out = [
        untested_claim(
            "Gradient pruning is the most effective of the defenses DLG tries "
            "(Gaussian and Laplacian noise, half precision, pruning).",
            MOST_EFFECTIVE_SOURCE,
            "this page runs pruning only; the noise and precision defenses it "
            "is compared with are not run here (the DP-SGD page adds noise after "
            "per-example clipping, a different defense)",
        )
    ]
    for attack in result.attacks:
        out += _threshold_claims(result, attack)
    return out


def _ratio_text(psnrs: list[float], setting: str) -> str:
    each = ", ".join(f"{v:.1f}" for v in psnrs)
    return f"{setting}: {sum(psnrs) / len(psnrs):.1f} dB ({each})"


def summary_text(result: defense_page.DefensePageRun[PruningParams]) -> str:
    """Every attack's mean PSNR at each ratio, with each image's, for the
    page's prose."""
    p = result.params
    parts = []
    for attack in result.attacks:
        values = "; ".join(
            _ratio_text(result.psnr(attack, label(r)), label(r)) for r in p.ratios
        )
        parts.append(f"{defense_page.ATTACK_TITLES[attack]}: {values}")
    return (
        f"In this run ({p.profile} profile, {p.num_trials} images), the mean PSNR "
        "by pruning ratio (each image's in brackets). "
        + ". ".join(parts)
        + ". "
        + defense_page.unrelated_text(result)
    )
