"""The FastSecAgg page's figures: scaling, recovery, the inversion check."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from gi_lib import plots
from gi_lib.experiments import coded_aggregation as coded
from gi_lib.experiments.fastsecagg.experiment import FastSecAggRun
from gi_lib.experiments.fastsecagg.params import PROTOCOLS


def scaling_figure(result: FastSecAggRun) -> Figure:
    """Client CPU, server CPU and bytes per client against N (log-log)."""
    figure, axes = plt.subplots(1, 3, figsize=(10.5, 3.1))
    panels = (
        ("client CPU (s)", lambda r: r.client_seconds),
        ("server CPU (s)", lambda r: r.server_seconds),
        ("MB per client", lambda r: r.client_bytes / 1e6),
    )
    for axis, (label, value) in zip(axes, panels, strict=True):
        for m, name in enumerate(PROTOCOLS):
            chosen = [
                r for r in coded.records_of(result.costs, name) if r.failed is None
            ]
            axis.plot(
                [r.num_clients for r in chosen],
                [value(r) for r in chosen],
                marker="o",
                color=plots.PALETTE[m],
                label=name,
            )
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("clients N")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    return figure


def recovery_figure(result: FastSecAggRun) -> Figure:
    """Probability that FastRecon recovers against the share of random
    dropouts, per N, with each N's adversarial pattern marked."""
    figure, axis = plt.subplots(figsize=(5.6, 3.3))
    for m, (n, c) in enumerate(result.schemes.items()):
        color = plots.PALETTE[m % len(plots.PALETTE)]
        rates = sorted(c.recovery)
        axis.plot(
            [100 * r for r in rates],
            [c.recovery[r] for r in rates],
            marker="o",
            color=color,
            label=f"N = {n} ({c.scheme.n1}x{c.scheme.n2}, z2 = {c.scheme.z2})",
        )
        axis.scatter(
            [100 * c.adversarial / n], [0.0], marker="x", color=color, s=50, zorder=3
        )
    axis.axvline(10, color="black", linestyle=":", linewidth=0.8)
    axis.text(10.5, 0.5, "paper's e.g. 10%", fontsize=7, rotation=90)
    axis.set_xlabel("clients missing (%)")
    axis.set_ylabel("P(FastRecon recovers)")
    axis.set_title("random dropouts (lines) vs. adversarial pattern (x)", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def inversion_figure(result: FastSecAggRun) -> Figure:
    """The private images and what Inverting Gradients makes of each upload."""
    return coded.inversion_figure(result.demo)
