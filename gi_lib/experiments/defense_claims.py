"""The claims of the plaintext-defense pages (pruning, MixUp, InstaHide),
checked on a :class:`~gi_lib.experiments.defense_page.DefensePageRun`.

A claim that a defense lowers the attack's PSNR is judged on the same images
attacked with and without it (:func:`gi_lib.results.paired_claim`); a claim
about accuracy rests on one training run per setting, so a comparison of two
runs has too few trials for a verdict and says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from gi_lib.experiments.common import AttackedSample
from gi_lib.experiments.defense_page import DefensePageRun
from gi_lib.results import (
    Claim,
    bound_claim,
    paired_claim,
    untested_claim,
)

HUANG = "Huang et al., NeurIPS 2021, Sec. 5 (defenses against the attack)"


def _psnrs(trials: Sequence[AttackedSample]) -> list[float]:
    return [t.psnr for t in trials]


def lowers_psnr(result: DefensePageRun, setting: str, claim: str, source: str) -> Claim:
    """``setting`` lowers the attack's PSNR against no defense, per image."""
    if "none" not in result.trials or setting not in result.trials:
        return untested_claim(claim, source, f"this run has no '{setting}' setting")
    return paired_claim(
        claim,
        source,
        _psnrs(result.trials["none"]),
        _psnrs(result.trials[setting]),
        names=("no defense", setting),
    )


def accuracy_comparison(
    result: DefensePageRun, better: str, worse: str, claim: str, source: str
) -> Claim:
    """One training run per setting: a difference of two runs, no spread."""
    if better not in result.utility or worse not in result.utility:
        return untested_claim(claim, source, "this run trains no such models")
    return paired_claim(
        claim,
        source,
        [result.utility[better].test_accuracy],
        [result.utility[worse].test_accuracy],
        names=(better, worse),
        unit="",
    )


def small_accuracy_cost(
    result: DefensePageRun,
    plain: str,
    defended: str,
    claim: str,
    source: str,
    *,
    at_most: float,
) -> Claim:
    """The defended model's test accuracy is at most ``at_most`` below the
    plain one's (one run each, judged by its value)."""
    if plain not in result.utility or defended not in result.utility:
        return untested_claim(claim, source, "this run trains no such models")
    drop = result.utility[plain].test_accuracy - result.utility[defended].test_accuracy
    return bound_claim(
        claim,
        source,
        [drop],
        below=at_most,
        what=f"accuracy of {plain} minus {defended}",
    )
