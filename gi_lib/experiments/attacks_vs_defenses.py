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
from gi_lib.results import HOLDS, Claim, ResultRow, paired_claim

NOTEBOOK = "attacks_vs_defenses"

PAPER_NOTE = (
    "paper: ResNet-18, CIFAR-10, batch 16; its Table 2 is not entered "
    "(PAPER_VALUES.md, section 8: NF, no source available here had its numbers)"
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


ABSTRACT = "Huang et al., abstract"
"""Where the paper states its main findings in words this build could read."""

UNREAD_TABLE = (
    "its numbers could not be read (PAPER_VALUES.md, section 8: NF), so the "
    "finding is tested, not the values"
)


def psnrs(trials: list[AttackedSample]) -> list[float]:
    """Mean PSNR of each attacked batch, in trial order (batch ``i`` is the
    same private batch, attacked with the same seed, in every setting)."""
    return [t.psnr for t in trials]


PRUNING_MARGIN = 2.0
"""dB: how far below the undefended attack a moderate pruning ratio may leave
it and still count as "leaving the attack nearly intact" (the book's PSNR band
around a paper's value, :data:`gi_lib.results.DEFAULT_BANDS`)."""


def claims(result: EvaluationRun) -> list[Claim]:
    """The paper's findings, each judged on the run's paired batches.

    Every setting attacks the same ``num_trials`` private batches with the
    same seeds, so each finding is a paired comparison: the verdict comes
    from the interval of the mean per-batch difference
    (:func:`gi_lib.results.paired_claim`), and fewer than three batches are
    not enough to judge.
    """
    p = result.params
    defended = {n: psnrs(t) for n, t in result.defenses.items()}
    assumed = {n: psnrs(t) for n, t in result.assumptions.items()}
    strong = assumed["BN known, labels known"]
    relaxed = (
        f'{ABSTRACT} ("Relaxing such assumptions can substantially weaken these '
        f"attacks\"); the assumption ablation's table: {UNREAD_TABLE}"
    )
    out = [
        paired_claim(
            "Not knowing the private batch's BatchNorm statistics weakens the "
            "attack (labels known)",
            relaxed,
            strong,
            assumed["BN unknown, labels known"],
            names=("batch statistics known", "running statistics only"),
        ),
        paired_claim(
            "Not knowing the private labels weakens the attack (BatchNorm "
            "statistics known)",
            relaxed,
            strong,
            assumed["BN known, labels unknown"],
            names=("labels known", "labels inferred"),
        ),
    ]
    course = sorted(result.course)
    if len(course) > 1:
        first, last = course[0], course[-1]
        out.append(
            paired_claim(
                f"The attack is weaker on a model trained longer: after {last} "
                f"epoch(s) than after {first}",
                "Y. Huang (first author), GradAttack issue #1, 2022-08-08: a late "
                'checkpoint "almost converges and yields close-to-zero '
                'gradients"; the paper\'s evaluation attacked models "after 1 or '
                '2 epochs" (PAPER_VALUES.md, section 8, P)',
                psnrs(result.course[first]),
                psnrs(result.course[last]),
                names=(f"after {first} epoch(s)", f"after {last} epoch(s)"),
            )
        )
    ratios = sorted(p.ratios)
    if ratios:
        low, high = ratios[0], ratios[-1]
        pruning = (
            "Huang et al., Table 2 (GradPrune at several ratios); its numbers "
            "could not be read (PAPER_VALUES.md, section 8: NF), and this "
            "wording of the finding was not checked against the paper's text"
        )
        out.append(
            paired_claim(
                f"Gradient pruning at a high ratio ({high:g}) weakens the attack",
                pruning,
                defended["none"],
                defended[f"prune {high:g}"],
                names=("no defense", f"pruning {high:g}"),
            )
        )
        if low < high:
            out.append(
                paired_claim(
                    f"Gradient pruning needs a high ratio: at a moderate ratio "
                    f"({low:g}) the attack stays within {PRUNING_MARGIN:g} dB of "
                    "the undefended one",
                    pruning,
                    defended[f"prune {low:g}"],
                    defended["none"],
                    names=(f"pruning {low:g}", "no defense"),
                    margin=-PRUNING_MARGIN,
                )
            )
    combined_source = (
        f'{ABSTRACT} ("combining them in an appropriate manner makes the attack '
        'less effective, even under the original strong assumptions"); the '
        "combinations of GradAttack's scripts: pruning 0.9 with k = 6 "
        "(PAPER_VALUES.md, section 8, P)"
    )
    cr = f"prune {p.combined_ratio:g}"
    for encoding in ("MixUp", "Intra-InstaHide"):
        alone = f"{encoding} k={p.k}"
        combined = f"{cr} + {encoding} k={p.combined_k}"
        out.append(
            paired_claim(
                f"Pruning combined with {encoding} protects more than {encoding} "
                "alone (the attack is weaker against the combination)",
                combined_source,
                defended[alone],
                defended[combined],
                names=(alone, combined),
            )
        )
    return out


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
    checked = claims(result)
    held = sum(c.verdict == HOLDS for c in checked)
    return (
        f"In this run ({result.params.profile} profile, {result.params.model}, "
        f"batch {result.params.batch_size}): with no defense the attack reaches "
        f"{psnr['none']:.1f} dB at test accuracy {acc['none']:.2f}; the lowest attack "
        f"PSNR, {psnr[strongest]:.1f} dB, is under {strongest} (test accuracy "
        f"{acc[strongest]:.2f}). Relaxing the attacker's assumptions: {assumptions}. "
        f"Over training: {course}. For reference, an unrelated image scores "
        f"{mean(result.unrelated_psnr):.1f} dB against the private ones: an "
        f"attack near that level recovers nothing. {held} of the {len(checked)} "
        f"findings checked below hold in this run ({result.params.num_trials} "
        "paired batch(es); three are needed for any verdict)."
    )
