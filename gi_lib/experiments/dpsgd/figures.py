"""The DP-SGD page's figures: the accuracy-epsilon trade-off and the attack's
examples."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from gi_lib import plots
from gi_lib.experiments import defense_page
from gi_lib.experiments.dpsgd.experiment import DPSGDRun, spent
from gi_lib.experiments.dpsgd.params import PAPER_ACCURACY, PAPER_NON_PRIVATE


def setting_text(result: DPSGDRun) -> str:
    """The utility runs' setting, for notes and prose."""
    p, run0 = result.params, result.non_private
    return (
        f"{run0.num_images} training images, lots of {p.lot_size} (q = "
        f"{run0.sample_rate:.3g}), {p.train_epochs} epochs ({run0.steps} steps), "
        f"clip {p.clip_norm:g} on the whole gradient, {p.pca_dims}-dim PCA, "
        f"{p.hidden_units} hidden units; tested on {result.test_count} test images"
    )


def tradeoff_figure(result: DPSGDRun) -> Figure:
    """Test accuracy against epsilon: each private run's curve over its
    epochs, the paper's three points, and both non-private accuracies."""
    series = {}
    for name, trained in result.private.items():
        points = [
            (spent(result, name, e), a)
            for e, a in zip(trained.curve_epochs, trained.curve_accuracy, strict=True)
        ]
        series[f"ours, {name} (sigma {result.noise[name]:.3g})"] = points
    figure = plots.curves(
        series,
        xlabel=f"epsilon (delta = {result.params.delta:g}; opacus RDP, DP-PCA "
        "included)",
        ylabel="test accuracy",
        reference=(result.non_private.test_accuracy, "ours, non-private"),
    )
    axis = figure.axes[0]
    axis.axhline(
        PAPER_NON_PRIVATE.value,
        color="grey",
        linestyle=":",
        linewidth=0.9,
        label="paper, non-private",
    )
    paper = sorted((eps, value.value) for eps, value in PAPER_ACCURACY.items())
    axis.scatter(
        *zip(*paper, strict=True),
        marker="x",
        color="black",
        zorder=3,
        label="paper (Abadi et al.)",
    )
    axis.set_xscale("log")
    # plain numbers at the usual budgets, no crowded minor labels
    low, high = axis.get_xlim()
    ticks = [t for t in (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32) if low <= t <= high]
    axis.set_xticks(ticks, [f"{t:g}" for t in ticks])
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.legend(fontsize=7)
    return figure


def examples_figure(result: DPSGDRun) -> Figure:
    """The private image and the attack's reconstruction in each setting."""
    return defense_page.examples_figure(result)  # type: ignore[arg-type]
