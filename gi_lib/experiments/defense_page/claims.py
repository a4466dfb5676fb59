"""The defense pages' claims: a defense lowers an attack's PSNR, keeps the
model's accuracy, and the verdicts several parts of a claim combine into."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gi_lib.experiments.defense_page.engine import DefensePageRun, classify_test_images
from gi_lib.experiments.defense_page.params import (
    ATTACK_TITLES,
    MIN_TRIALS,
    TEST_IMAGES,
)
from gi_lib.experiments.defense_page.report import possessive
from gi_lib.results import (
    DOES_NOT_HOLD,
    HOLDS,
    NOT_ENOUGH_TRIALS,
    NOT_TESTED,
    Claim,
    bound_claim,
    paired_claim,
)


def lowers_psnr(
    result: DefensePageRun,
    *,
    claim: str,
    source: str,
    attack: str,
    setting: str,
    baseline: str = "none",
) -> Claim:
    """ "``setting`` lowers ``attack``'s PSNR below ``baseline``'s", judged on
    the paired trials (same images and attack seeds) of the two settings.

    A defense can only lower an attack that recovers something: where the run
    records the level of an unrelated image (``result.unrelated``), the
    baseline must beat it on the paired trials. If the baseline is clearly no
    better, the claim is **not tested**; if that is undecided, a claim that
    would hold has **not enough trials**.
    """
    out = paired_claim(
        claim,
        source,
        result.psnr(attack, baseline),
        result.psnr(attack, setting),
        names=(baseline, setting),
        unit="dB",
        min_trials=MIN_TRIALS,
    )
    if not result.unrelated or out.verdict == NOT_TESTED:
        return out
    recovers = paired_claim(
        "recovers something",
        source,
        result.psnr(attack, baseline),
        result.unrelated,
        names=(baseline, "an unrelated image"),
        unit="dB",
        min_trials=MIN_TRIALS,
    )
    if recovers.verdict == HOLDS:
        return out
    title = ATTACK_TITLES[attack]
    if recovers.verdict == DOES_NOT_HOLD:
        return Claim(
            claim,
            source,
            NOT_TESTED,
            f"under {baseline}, {title} is no closer to the private image than an "
            f"unrelated image of the data set ({recovers.evidence}), so there is "
            f"nothing for a defense to lower; {setting} vs {baseline}: "
            f"{out.evidence}",
        )
    why = (
        f"{out.evidence}; but under {baseline}, {title} is not shown to beat an "
        f"unrelated image of the data set ({recovers.evidence})"
    )
    return Claim(claim, source, NOT_ENOUGH_TRIALS, why)


@dataclass(frozen=True)
class PSNRDrop:
    """A claim that ``setting`` lowers an attack's PSNR below ``baseline``'s
    (see :func:`lowers_psnr`), made for every attack of a run.

    Attributes:
        claim: the claim's words for one attack, given its possessive title
            (``"DLG's"``).
        source: where the paper says it.
        setting: the defended setting.
        baseline: the setting it is compared with.
    """

    claim: Callable[[str], str]
    source: str
    setting: str
    baseline: str = "none"


def lowers_psnr_per_attack(
    result: DefensePageRun, drops: Sequence[PSNRDrop]
) -> list[Claim]:
    """:func:`lowers_psnr` of each of ``drops`` for each attack of the run,
    attack by attack; a drop whose setting that attack did not run under is
    left out."""
    out = []
    for attack in result.attacks:
        owner = possessive(ATTACK_TITLES[attack])
        for drop in drops:
            if drop.setting not in result.by_attack[attack]:
                continue
            out.append(
                lowers_psnr(
                    result,
                    claim=drop.claim(owner),
                    source=drop.source,
                    attack=attack,
                    setting=drop.setting,
                    baseline=drop.baseline,
                )
            )
    return out


def correct_per_test_image(result: DefensePageRun, name: str) -> list[float]:
    """1.0 / 0.0 per clean test image: whether utility run ``name`` classifies
    it correctly (the images its ``test_accuracy`` was measured on); recorded
    by the run where it asked for them, else computed now.

    Raises:
        ValueError: the share of correct images is not the run's recorded
            test accuracy (a cached run scored on other images).
    """
    trained = result.utility[name]
    flags = result.test_correct.get(name)
    if flags is None:
        flags = classify_test_images(result.params, trained.model, result.device)
    share = sum(flags) / max(len(flags), 1)
    if abs(share - trained.test_accuracy) > 1e-9:
        raise ValueError(
            f"{name}: {share:.4f} of the test images are classified correctly, "
            f"but the run recorded a test accuracy of {trained.test_accuracy:.4f}."
        )
    return flags


def accuracy_claim(
    result: DefensePageRun,
    *,
    claim: str,
    source: str,
    better: str,
    worse: str,
    margin: float = 0.0,
) -> Claim:
    """ "Utility run ``better`` is more accurate than ``worse`` (by more than
    ``margin``)", judged on the test images classified by both (paired)."""
    out = paired_claim(
        claim,
        source,
        correct_per_test_image(result, better),
        correct_per_test_image(result, worse),
        names=(better, worse),
        unit="",
        margin=margin,
    )
    return dataclasses.replace(
        out,
        evidence=out.evidence
        + f"; the trials are the {TEST_IMAGES} clean test images, each classified "
        "by both models (one training run each, so the interval covers the test "
        "sample, not the training seed)",
    )


def trials_bound(
    claim: str,
    source: str,
    values: Sequence[float],
    *,
    min_trials: int = MIN_TRIALS,
    **bounds: float | str,
) -> Claim:
    """:func:`gi_lib.results.bound_claim` on the trials of one setting, with no
    verdict below ``min_trials`` trials (one image is not a measurement of
    a setting, unlike one run of a closed-form result)."""
    out = bound_claim(claim, source, values, **bounds)  # type: ignore[arg-type]
    if len(values) < min_trials and out.verdict != NOT_TESTED:
        return dataclasses.replace(
            out,
            verdict=NOT_ENOUGH_TRIALS,
            evidence=f"{out.evidence}; {min_trials} trials are needed to judge",
        )
    return out


def all_of(claim: str, source: str, parts: Sequence[tuple[str, Claim]]) -> Claim:
    """One claim judged on several settings: it **holds** when it holds in
    every one, **does not hold** when it fails in any, and otherwise there
    are not enough trials; the evidence lists each part as ``label: ...``."""
    if not parts:
        return Claim(claim, source, NOT_TESTED, "no setting of this run tests it")
    verdicts = {c.verdict for _, c in parts}
    if DOES_NOT_HOLD in verdicts:
        verdict = DOES_NOT_HOLD
    elif NOT_ENOUGH_TRIALS in verdicts:
        verdict = NOT_ENOUGH_TRIALS
    elif verdicts == {HOLDS}:
        verdict = HOLDS
    else:  # some part not tested: the claim is not tested as a whole
        verdict = NOT_TESTED
    evidence = "; ".join(f"{label} ({c.verdict}): {c.evidence}" for label, c in parts)
    return Claim(claim, source, verdict, evidence)
