"""What a defense page shows: its figures, rows and prose."""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.figure import Figure

from gi_lib import data, plots
from gi_lib.experiments.common import mean_of, score_rows
from gi_lib.experiments.defense_page.engine import DefensePageRun
from gi_lib.experiments.defense_page.params import (
    ATTACK_SHORT,
    ATTACK_TITLES,
    DefendedCheckpointParams,
    MultiAttackParams,
)
from gi_lib.results import PaperValue, ResultRow


def examples_figure(result: DefensePageRun) -> Figure:
    """One row per shown victim and attack: the truth, what each encoding
    defense sent, then the attack's reconstruction under each setting."""
    first = result.trials
    names = list(first)
    sent = [n for n in names if first[n][0].sent_images is not None]
    rows, titles = [], []
    for i in range(min(result.params.num_shown, len(first[names[0]]))):
        for attack in result.attacks:
            trials = result.by_attack[attack]
            row = [first[names[0]][i].true_images[0]]
            row += [first[n][i].sent_images[0].clamp(0, 1) for n in sent]  # type: ignore[index]
            row += [trials[n][i].images[0] for n in names]
            rows.append(row)
            titles.append(f"{ATTACK_SHORT[attack]}\nimage {i}")
    columns = ["truth", *(f"{n} (sent)" for n in sent), *names]
    return plots.image_rows(rows, columns, titles)


def accuracy_figure(
    result: DefensePageRun, paper: Mapping[str, PaperValue | None] | None = None
) -> Figure:
    """Test accuracy of each training run beside the paper's (if cited)."""
    names = list(result.utility)
    paper = paper or {}
    return plots.paper_vs_ours_bars(
        names,
        {"test accuracy": [result.utility[n].test_accuracy for n in names]},
        {
            "test accuracy": [
                None if paper.get(n) is None else paper[n].value  # type: ignore[union-attr]
                for n in names
            ]
        },
        ylabel="test accuracy",
    )


def checkpoint_text(result: DefensePageRun, setting: str) -> str:
    """Which network was attacked under ``setting``."""
    p = result.params
    model = getattr(p, "attack_model", p.model)
    trained = result.checkpoints.get(setting)
    if trained is None:
        return f"a freshly initialised {model} per image (seed + image index)"
    epochs = p.attack_epochs if isinstance(p, DefendedCheckpointParams) else "some"
    plural = "" if epochs == 1 else "s"
    defense = "no defense" if trained.defense == "none" else trained.defense
    return (
        f"the {model} checkpoint trained {epochs} epoch{plural} with {defense} "
        f"(test accuracy {100 * trained.test_accuracy:.1f}%)"
    )


def page_rows(
    result: DefensePageRun,
    *,
    paper: Mapping[str, PaperValue | None] | None = None,
    note: str = "",
    notes: Mapping[str, str] | None = None,
) -> list[ResultRow]:
    """Accuracy per training run (``notes`` adds a note per run), accuracy
    of each attacked checkpoint, and every attack's PSNR/SSIM per setting."""
    p = result.params
    paper = paper or {}
    notes = notes or {}
    info = data.dataset_info(p.dataset)
    out = []
    for name, trained in result.utility.items():
        text = "; ".join(
            t
            for t in (
                f"{p.train_epochs} epochs on {p.train_images} images "
                f"({p.profile} profile)",
                notes.get(name, ""),
                note,
            )
            if t
        )
        out.append(
            ResultRow.against(
                f"{info.name}/{p.model}/{name}",
                "test_accuracy",
                trained.test_accuracy,
                paper.get(name),
                text,
            )
        )
    model = getattr(p, "attack_model", p.model)
    for name, trained in result.checkpoints.items():
        out.append(
            ResultRow.against(
                f"{info.name}/{model}/{name}/attacked checkpoint",
                "test_accuracy",
                trained.test_accuracy,
                None,
                f"the checkpoint attacked under {name}: "
                f"{checkpoint_text(result, name)}",
            )
        )
    # A page of one attack keeps the experiment names it had before pages
    # ran several.
    several = isinstance(p, MultiAttackParams)
    for attack in result.attacks:
        title = ATTACK_TITLES[attack]
        for name, trials in result.by_attack[attack].items():
            out += score_rows(
                f"{info.name}/{model}/bs1/{name}" + (f"/{attack}" if several else ""),
                trials,
                f"{title} against the private image, mean over {len(trials)} "
                f"images; attacked: {checkpoint_text(result, name)}",
            )
    return out


def summary_text(result: DefensePageRun) -> str:
    """The run's test accuracies and every attack's PSNRs, for the page's prose."""
    parts = [f"In this run ({result.params.profile} profile)"]
    if result.utility:
        accuracy = "; ".join(
            f"{n} {100 * m.test_accuracy:.1f}%" for n, m in result.utility.items()
        )
        parts.append(f": test accuracy {accuracy}. ")
    else:
        parts.append(": ")
    for attack in result.attacks:
        psnr = "; ".join(
            f"{n} {mean_of(t, 'psnr'):.1f} dB ("
            + ", ".join(f"{s.psnr:.1f}" for s in t)
            + ")"
            for n, t in result.by_attack[attack].items()
        )
        parts.append(
            f"{possessive(ATTACK_TITLES[attack])} mean PSNR against the private "
            f"image (each image's in brackets): {psnr}. "
        )
    if result.unrelated:
        parts.append(unrelated_text(result))
    return "".join(parts).rstrip()


def unrelated_text(result: DefensePageRun) -> str:
    """The PSNR that recovering nothing scores, for the page's prose (empty
    where the run did not record it)."""
    levels = result.unrelated
    if not levels:
        return ""
    each = ", ".join(f"{v:.1f}" for v in levels)
    return (
        f"An unrelated image of the data set scores {sum(levels) / len(levels):.1f} "
        f"dB against the private image ({each}): an attack at that level has "
        "recovered nothing."
    )


def possessive(title: str) -> str:
    """``DLG's``, ``Inverting Gradients'``."""
    return f"{title}'" if title.endswith("s") else f"{title}'s"
