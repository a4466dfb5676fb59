"""The GIAS page's figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from gi_lib import plots
from gi_lib.experiments.common import mean
from gi_lib.experiments.gias.experiment import GIASResult
from gi_lib.experiments.gias.params import GIAS, GIX, GIZ, GIZ_PHASE, HARD, MAIN, STRESS


def samples_figure(result: GIASResult, count: int = 10) -> Figure:
    """Samples of both generators (top: every class; bottom: the stress test's)."""
    count = min(count, len(result.samples))
    seen = ",".join(str(c) for c in result.params.generator_classes)
    return plots.image_rows(
        [list(result.samples[:count]), list(result.stress_samples[:count])],
        [""] * count,
        ["all classes", f"classes {seen}"],
        cell_size=0.8,
    )


def examples_figure(result: GIASResult, trial: int = 0) -> Figure:
    """One batch: the truth, its projection, and each arm's reconstruction."""
    main, hard, stress = (result.settings[k] for k in (MAIN, HARD, STRESS))
    truth = main.arms[GIX][trial].true_images
    rows = [
        ("truth", truth),
        ("projection", result.projections if trial == 0 else truth),
        (GIX, main.arms[GIX][trial].images),
        (GIZ, main.arms[GIZ][trial].images),
        (GIAS, main.arms[GIAS][trial].images),
        (f"{GIX} pruned", hard.arms[GIX][trial].images),
        (f"{GIAS} pruned", hard.arms[GIAS][trial].images),
        (
            "GI-z, G saw 0-4"
            if result.params.generator_classes == (0, 1, 2, 3, 4)
            else "GI-z stress",
            stress.arms[GIZ_PHASE][trial].images,
        ),
        (
            "GIAS, G saw 0-4"
            if result.params.generator_classes == (0, 1, 2, 3, 4)
            else "GIAS stress",
            stress.arms[GIAS][trial].images,
        ),
    ]
    count = truth.shape[0]
    figure = plots.image_rows(
        [list(images) for _, images in rows],
        [""] * count,
        [title for title, _ in rows],
        cell_size=0.9,
    )
    return figure


def psnr_figure(result: GIASResult) -> Figure:
    """Mean PSNR of each arm in each setting, trials as dots, ceilings as lines."""
    figure, axes = plt.subplots(1, 3, figsize=(10, 3.2), sharey=True)
    for axis, (key, title) in zip(
        axes,
        (
            (MAIN, "generator fits"),
            (HARD, f"{result.params.pruning:.0%} pruned"),
            (STRESS, "generator never saw the classes"),
        ),
        strict=True,
    ):
        setting = result.settings[key]
        arms = list(setting.arms)
        for x, arm in enumerate(arms):
            values = setting.psnr(arm)
            axis.bar(
                x,
                mean(values),
                color="C0" if arm.startswith("GIAS") else "C7",
                alpha=0.6,
            )
            axis.plot([x] * len(values), values, "k.", markersize=4)
        axis.axhline(
            mean(setting.ceiling), color="C3", ls="--", label="projection ceiling"
        )
        axis.set_xticks(
            range(len(arms)),
            [a.replace(" (GIAS's first phase)", "\n(phase 1)") for a in arms],
            fontsize=7,
        )
        axis.set_title(title, fontsize=9)
    axes[0].set_ylabel("PSNR (dB)")
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    return figure
