"""What the single-image attack pages (DLG, iDLG, R-GAP) judge their claims on:
per-trial PSNRs and labels, the PSNR above which a reconstruction counts as
exact, and claims about every trial rather than the mean of the trials."""

from __future__ import annotations

import math
from collections.abc import Iterable

from gi_lib.experiments.common import AttackedSample
from gi_lib.results import (
    DOES_NOT_HOLD,
    HOLDS,
    NOT_ENOUGH_TRIALS,
    NOT_TESTED,
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


def verdict_phrase(verdict: str) -> str:
    """A verdict as the prose says it: ``holds``, ``does not hold``, ``cannot
    be told from these trials``, ``is not tested``."""
    return {
        HOLDS: "holds",
        DOES_NOT_HOLD: "does not hold",
        NOT_ENOUGH_TRIALS: "cannot be told from these trials",
        NOT_TESTED: "is not tested",
    }[verdict]
