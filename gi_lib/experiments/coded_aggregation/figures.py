"""The coded-aggregation pages' figures: the inversion check, time against
clients, time per phase."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from gi_lib import plots
from gi_lib.experiments.coded_aggregation.costs import CostRecord, records_of
from gi_lib.experiments.coded_aggregation.inversion import InversionDemo


def inversion_figure(demo: InversionDemo) -> Figure:
    """Per attacked client: its image, IG on its plaintext update, IG on its
    upload as the server received it."""
    rows = [
        [m.true_images[0], p.images[0], m.images[0]]
        for m, p in zip(demo.masked, demo.plain, strict=True)
    ]
    titles = [f"client {m.index}" for m in demo.masked]
    return plots.image_rows(
        rows, ["private image", "IG: plaintext update", f"IG: {demo.protocol} upload"],
        titles,
    )  # fmt: skip


def time_figure(
    records: Sequence[CostRecord],
    protocols: Sequence[str],
    dropouts: Sequence[float],
    *,
    value: Callable[[CostRecord], float] = lambda r: r.total,
    ylabel: str = "modelled total time (s)",
    log: bool = False,
) -> Figure:
    """One panel per dropout rate: ``value`` against the number of clients."""
    figure, axes = plt.subplots(
        1, len(dropouts), figsize=(3.2 * len(dropouts) + 0.6, 3.0), squeeze=False
    )
    for k, rate in enumerate(dropouts):
        axis = axes[0][k]
        for m, name in enumerate(protocols):
            chosen = [r for r in records_of(records, name, rate) if r.failed is None]
            if chosen:
                axis.plot(
                    [r.num_clients for r in chosen],
                    [value(r) for r in chosen],
                    marker="o",
                    color=plots.PALETTE[m % len(plots.PALETTE)],
                    label=name,
                    linewidth=1.4,
                )
        if log:
            axis.set_xscale("log")
            axis.set_yscale("log")
        axis.set_title(f"{100 * rate:.0f}% dropout", fontsize=9)
        axis.set_xlabel("clients N")
        if k == 0:
            axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    return figure


def phase_figure(
    records: Sequence[CostRecord], protocols: Sequence[str], dropouts: Sequence[float]
) -> Figure:
    """Stacked modelled time per phase at the largest N, per protocol and rate."""
    largest = max(r.num_clients for r in records)
    chosen = [r for r in records if r.num_clients == largest and r.failed is None]
    names = [
        (p, d)
        for d in dropouts
        for p in protocols
        if any(r.protocol == p and r.dropout == d for r in chosen)
    ]
    phases: list[str] = []
    for r in chosen:
        phases += [p for p in r.phases if p not in phases]
    figure, axis = plt.subplots(figsize=(max(5.0, 0.65 * len(names) + 1.5), 3.3))
    bottom = np.zeros(len(names))
    for k, phase in enumerate(phases):
        heights = np.array(
            [
                next(
                    r for r in chosen if r.protocol == p and r.dropout == d
                ).phases.get(phase, 0.0)
                for p, d in names
            ]
        )
        axis.bar(
            range(len(names)), heights, bottom=bottom, label=phase,
            color=plots.PALETTE[k % len(plots.PALETTE)],
        )  # fmt: skip
        bottom += heights
    axis.set_xticks(
        range(len(names)), [f"{p}\n{100 * d:.0f}%" for p, d in names], fontsize=7
    )
    axis.set_ylabel(f"modelled time (s), N = {largest}")
    axis.legend(fontsize=7)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure
