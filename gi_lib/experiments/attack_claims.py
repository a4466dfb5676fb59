"""What the single-image attack pages (DLG, iDLG, R-GAP) judge their claims on:
per-trial PSNRs and labels, the PSNR above which a reconstruction counts as
exact, and claims about every trial rather than the mean of the trials."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

from gi_lib.experiments.common import AttackedSample
from gi_lib.results import (
    DOES_NOT_HOLD,
    HOLDS,
    NOT_ENOUGH_TRIALS,
    NOT_TESTED,
    Claim,
    bound_claim,
)

NEAR_EXACT_PSNR = 40.0
"""dB: an MSE of 1e-4 on [0, 1] images, the strictest "good fidelity"
threshold of iDLG's Fig. 1. Above it a reconstruction is exact for the
papers' purposes, and what PSNR it reaches depends on numerical precision
(and on where the optimiser stopped), not on the attack."""

PSNR_CEILING = 150.0
"""dB: where float32 images are identical (their PSNR is infinite), which no
mean or spread can take."""


def psnrs(
    samples: Iterable[AttackedSample], *, ceiling: float = PSNR_CEILING
) -> list[float]:
    """Per-trial PSNR (dB) of attacked samples, each at most ``ceiling``.

    Comparing two attacks' PSNRs capped at :data:`NEAR_EXACT_PSNR` counts two
    exact reconstructions as a tie, as iDLG's fidelity thresholds do.
    """
    values = [s.psnr for s in samples]
    if any(math.isnan(v) for v in values):
        raise ValueError("a trial's PSNR is NaN; it cannot be judged.")
    return [min(v, ceiling) for v in values]


def labels_right(samples: Iterable[AttackedSample]) -> list[float]:
    """Per trial, 1.0 where the attack returned every true label, else 0.0."""
    return [1.0 if s.label_accuracy == 1.0 else 0.0 for s in samples]


def every_trial_claim(
    claim: str,
    source: str,
    values: Sequence[float],
    *,
    above: float | None = None,
    below: float | None = None,
    unit: str = "",
    what: str = "",
) -> Claim:
    """A claim that holds for every trial, not only on average: the worst
    trial (the lowest value against ``above``, the highest against ``below``)
    is judged by its side of the bound, as
    :func:`gi_lib.results.bound_claim` judges one value.

    The paper states such a claim as a property of the setting (a full-rank
    network is inverted exactly; a rank-deficient one is not), so one trial on
    the wrong side is a counterexample, whatever the mean.
    """
    if (above is None) == (below is None):
        raise ValueError(f"{claim!r}: give one bound, above= or below=.")
    if not values:
        return bound_claim(claim, source, [], above=above, below=below)
    worst = min(values) if above is not None else max(values)
    judged = bound_claim(claim, source, [worst], above=above, below=below)
    u = f" {unit}" if unit else ""
    side, bound = ("lowest", above) if above is not None else ("highest", below)
    listed = ", ".join(f"{v:.3g}" for v in values)
    trials = f"{len(values)} trial{'s' if len(values) != 1 else ''}"
    evidence = (
        f"{what + ': ' if what else ''}{listed}{u} ({trials}); "
        f"{side} {worst:.3g}{u}; claimed "
        f"{'above' if above is not None else 'below'} {bound:g}{u} on every trial"
    )
    return dataclasses.replace(judged, evidence=evidence)


def verdict_phrase(verdict: str) -> str:
    """A verdict as the prose says it: ``holds``, ``does not hold``, ``cannot
    be told from these trials``, ``is not tested``."""
    return {
        HOLDS: "holds",
        DOES_NOT_HOLD: "does not hold",
        NOT_ENOUGH_TRIALS: "cannot be told from these trials",
        NOT_TESTED: "is not tested",
    }[verdict]
