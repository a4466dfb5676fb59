"""The evaluation notebook (Huang et al., NeurIPS 2021): gradient inversion
against defenses, re-evaluated.

The experiments (defense settings, the attack, the four experiments) are in
:mod:`gi_lib.experiments.evaluation`; this module checks the notebook's
parameters, runs them, and holds the figures, tables, results rows and the
paper's findings tested on the run.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from gi_lib import plots
from gi_lib.experiments.common import (
    AttackedSample,
    check_upper,
    mean,
    mean_lpips,
    mean_of,
    score_rows,
    uses_num_threads,
)
from gi_lib.experiments.evaluation import EvaluationParams, EvaluationRun, evaluate
from gi_lib.params import check_parameters
from gi_lib.results import ResultRow

NOTEBOOK = "attacks_vs_defenses"

PAPER_NOTE = (
    "paper: ResNet-18, CIFAR-10, batch 16, full training; its table's numbers "
    "are not entered (not verified from a source available to this build)"
)


def check(values: Mapping[str, Any]) -> EvaluationParams:
    """Check the parameters (see :class:`EvaluationParams`): ``upper`` at least
    ``1/k`` and ``1/combined_k``; the checkpoints sorted, without repeats."""
    params = check_parameters(values, EvaluationParams, notebook=NOTEBOOK)
    check_upper(params.upper, k=params.k, combined_k=params.combined_k)
    return dataclasses.replace(
        params, checkpoints=tuple(sorted(set(params.checkpoints)))
    )


@uses_num_threads
def run(params: EvaluationParams, *, progress: bool = True) -> EvaluationRun:
    """Train the utility and checkpoint models, then run every attack
    (:func:`gi_lib.experiments.evaluation.evaluate`)."""
    return evaluate(params, progress=progress)


def mean_psnr(trials: list[AttackedSample]) -> float:
    """Mean PSNR over the attacked batches."""
    return mean_of(trials, "psnr")


def table_frame(result: EvaluationRun):  # noqa: ANN201 - pandas imported lazily
    """The main table: one row per defense setting."""
    import pandas as pd

    records = []
    for name, trials in result.defenses.items():
        record = {
            "defense": name,
            "attack PSNR (dB)": round(mean_psnr(trials), 2),
            "attack SSIM": round(mean_of(trials, "ssim"), 3),
        }
        lpips = mean_lpips(trials)
        if lpips is not None:
            record["attack LPIPS"] = round(lpips, 3)
        record["test accuracy"] = round(result.utility[name].test_accuracy, 3)
        records.append(record)
    return pd.DataFrame(records)


def examples_figure(result: EvaluationRun) -> Figure:
    """The first batch: one row per private image, the truth then each setting."""
    shown = min(result.params.num_shown, result.params.batch_size)
    first = result.defenses["none"][0]
    names = list(result.defenses)
    rows = [
        [first.true_images[j]] + [result.defenses[n][0].images[j] for n in names]
        for j in range(shown)
    ]
    columns = ["truth"] + [textwrap.fill(n, 14) for n in names]
    titles = [f"image {j + 1}" for j in range(shown)]
    return plots.image_rows(rows, columns, titles, cell_size=1.1)


def assumptions_figure(result: EvaluationRun) -> Figure:
    """Mean PSNR for each combination of BatchNorm and label knowledge."""
    names = list(result.assumptions)
    return plots.paper_vs_ours_bars(
        [n.replace(", ", "\n") for n in names],
        {"PSNR": [mean_psnr(result.assumptions[n]) for n in names]},
        {"PSNR": [None] * len(names)},
        ylabel="attack PSNR (dB)",
    )


def _unrelated_level(result: EvaluationRun) -> tuple[float, str] | None:
    """The dashed line of the figures: the PSNR of an unrelated image."""
    if not result.unrelated_psnr:
        return None
    return mean(result.unrelated_psnr), "unrelated image"


def course_figure(result: EvaluationRun) -> Figure:
    """Mean PSNR against the epochs the attacked checkpoint was trained."""
    points = [(float(e), mean_psnr(t)) for e, t in result.course.items()]
    return plots.curves(
        {"IG + BN prior, no defense": points},
        xlabel="training epochs of the attacked model",
        ylabel="attack PSNR (dB)",
        reference=_unrelated_level(result),
    )


def tradeoff_figure(result: EvaluationRun) -> Figure:
    """Attack PSNR against test accuracy, one point per defense setting."""
    points = {
        name: (result.utility[name].test_accuracy, mean_psnr(trials))
        for name, trials in result.defenses.items()
    }
    return plots.scatter_labelled(
        points,
        xlabel="test accuracy (trained with the defense)",
        ylabel="attack PSNR (dB)",
        reference=_unrelated_level(result),
    )


def rows(result: EvaluationRun) -> list[ResultRow]:
    """Scorecard rows for the four experiments."""
    p = result.params
    base = f"{p.dataset}/{p.model}/bs{p.batch_size}"
    trials = p.num_trials
    checkpoint = f"checkpoint after {p.attack_epoch} epoch(s)"
    training = (
        f"{p.train_epochs} epochs on {p.train_images} images ({p.profile} profile)"
    )
    out: list[ResultRow] = []
    for name, attacked in result.defenses.items():
        experiment = f"{base}/{name.replace(' ', '')}"
        note = f"mean over {trials} batch(es); {checkpoint}; {PAPER_NOTE}"
        out += score_rows(experiment, attacked, note)
        out.append(
            ResultRow.against(
                experiment,
                "test_accuracy",
                result.utility[name].test_accuracy,
                None,
                f"trained with the defense, {training}",
            )
        )
    out.append(
        ResultRow.against(
            f"{base}/unrelated-image",
            "psnr",
            mean(result.unrelated_psnr),
            None,
            "other images of the data set against the private ones, matched "
            "one-to-one: the level of an attack that recovers nothing",
        )
    )
    for name, attacked in result.assumptions.items():
        key = name.replace(", ", "/").replace(" ", "-")
        out.append(
            ResultRow.against(
                f"{base}/assumptions/{key}",
                "psnr",
                mean_psnr(attacked),
                None,
                f"no defense; {checkpoint}",
            )
        )
    for epochs, attacked in result.course.items():
        out.append(
            ResultRow.against(
                f"{base}/epoch{epochs}",
                "psnr",
                mean_psnr(attacked),
                None,
                f"no defense; checkpoint after {epochs} epoch(s), strong assumptions",
            )
        )
    return out


@dataclass(frozen=True)
class Claim:
    """One of the paper's qualitative findings, checked on this run."""

    claim: str
    evidence: str
    holds: bool


def claims(result: EvaluationRun) -> list[Claim]:
    """The paper's findings, each tested against this run's mean PSNRs.

    A finding "holds" when the inequality it states is true of this run's
    means; with few trials a difference of a decibel or so is within noise,
    which the evidence column lets the reader judge.
    """
    psnr = {n: mean_psnr(t) for n, t in result.defenses.items()}
    assumed = {n: mean_psnr(t) for n, t in result.assumptions.items()}
    strong = assumed["BN known, labels known"]
    out = [
        Claim(
            "Not knowing the batch's BatchNorm statistics weakens the attack",
            f"running statistics {assumed['BN unknown, labels known']:.1f} dB "
            f"vs the batch's {strong:.1f} dB (labels known)",
            assumed["BN unknown, labels known"] < strong,
        ),
        Claim(
            "Not knowing the labels weakens the attack",
            f"inferred labels {assumed['BN known, labels unknown']:.1f} dB vs given "
            f"{strong:.1f} dB (BatchNorm statistics known)",
            assumed["BN known, labels unknown"] < strong,
        ),
    ]
    course = sorted((e, mean_psnr(t)) for e, t in result.course.items())
    if len(course) > 1:
        (first, early), (last, late) = course[0], course[-1]
        out.append(
            Claim(
                "The attack weakens as the model trains",
                f"{late:.1f} dB after {last} epoch(s) vs {early:.1f} dB after {first}",
                late < early,
            )
        )
    pruned = sorted((r, psnr[f"prune {r:g}"]) for r in result.params.ratios)
    if pruned:
        (low, at_low), (high, at_high) = pruned[0], pruned[-1]
        out.append(
            Claim(
                "Gradient pruning needs a high ratio: a moderate one leaves the "
                "attack within 3 dB, a high one takes off more",
                f"none {psnr['none']:.1f} dB; pruning {low:g}: {at_low:.1f} dB; "
                f"pruning {high:g}: {at_high:.1f} dB",
                at_low > psnr["none"] - 3.0 and at_high <= psnr["none"] - 3.0,
            )
        )
    p = result.params
    cr = f"prune {p.combined_ratio:g}"
    for encoding, alone in (
        ("MixUp", f"MixUp k={p.k}"),
        ("Intra-InstaHide", f"Intra-InstaHide k={p.k}"),
    ):
        combined = f"{cr} + {encoding} k={p.combined_k}"
        out.append(
            Claim(
                f"Pruning combined with {encoding} protects more than {encoding} alone",
                f"{combined}: {psnr[combined]:.1f} dB vs {alone}: {psnr[alone]:.1f} dB",
                psnr[combined] < psnr[alone],
            )
        )
    return out


def claims_frame(result: EvaluationRun):  # noqa: ANN201 - pandas imported lazily
    """The claims as a table: the finding, this run's numbers, the verdict."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "the paper's finding": c.claim,
                "this run": c.evidence,
                "holds here": "yes" if c.holds else "no",
            }
            for c in claims(result)
        ]
    )


def claims_html(result: EvaluationRun) -> str:
    """:func:`claims_frame` as HTML with every cell whole (pandas would cut
    long cells short; the book renders notebook Markdown as CommonMark, which
    has no tables)."""
    import pandas as pd

    with pd.option_context("display.max_colwidth", None):
        return claims_frame(result).to_html(index=False)


def summary_text(result: EvaluationRun) -> str:
    """The run's headline numbers, for the page's prose."""
    psnr = {n: mean_psnr(t) for n, t in result.defenses.items()}
    acc = {n: m.test_accuracy for n, m in result.utility.items()}
    strongest = min(psnr, key=psnr.__getitem__)
    assumptions = "; ".join(
        f"{n}: {mean_psnr(t):.1f} dB" for n, t in result.assumptions.items()
    )
    course = "; ".join(
        f"{e} epochs: {mean_psnr(t):.1f} dB" for e, t in result.course.items()
    )
    held = [c for c in claims(result) if c.holds]
    return (
        f"In this run ({result.params.profile} profile, {result.params.model}, "
        f"batch {result.params.batch_size}): with no defense the attack reaches "
        f"{psnr['none']:.1f} dB at test accuracy {acc['none']:.2f}; the lowest attack "
        f"PSNR, {psnr[strongest]:.1f} dB, is under {strongest} (test accuracy "
        f"{acc[strongest]:.2f}). Relaxing the attacker's assumptions: {assumptions}. "
        f"Over training: {course}. For reference, an unrelated image scores "
        f"{mean(result.unrelated_psnr):.1f} dB against the private ones: an "
        f"attack near that level recovers nothing. {len(held)} of the "
        f"{len(claims(result))} findings checked below hold in this run."
    )
