"""Figures in one theme. Every helper returns a matplotlib Figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

PALETTE = ("#1b6ca8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d96a3")


def _show(image: torch.Tensor) -> np.ndarray:
    array = image.detach().clamp(0, 1).cpu().float()
    if array.shape[0] == 1:
        return array[0].numpy()
    return array.permute(1, 2, 0).numpy()


def _imshow(axis: plt.Axes, image: torch.Tensor) -> None:
    axis.imshow(
        _show(image), cmap="gray" if image.shape[0] == 1 else None, vmin=0, vmax=1
    )
    axis.set_xticks([])
    axis.set_yticks([])


def image_rows(
    rows: Sequence[Sequence[torch.Tensor]],
    column_titles: Sequence[str],
    row_titles: Sequence[str] | None = None,
    *,
    cell_size: float = 1.1,
) -> Figure:
    """A grid of images: ``rows[r][c]`` is one ``(C, H, W)`` image in [0, 1]."""
    num_rows = len(rows)
    num_cols = len(column_titles)
    if num_rows == 0 or any(len(row) != num_cols for row in rows):
        raise ValueError("every row needs one image per column title")
    figure, axes = plt.subplots(
        num_rows,
        num_cols,
        figsize=(cell_size * num_cols + 0.8, cell_size * num_rows + 0.3),
        squeeze=False,
    )
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            _imshow(axes[r][c], image)
            if r == 0:
                axes[r][c].set_title(column_titles[c], fontsize=8)
        if row_titles is not None:
            axes[r][0].set_ylabel(row_titles[r], fontsize=8)
    figure.tight_layout(pad=0.3)
    return figure


def curves(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    xlabel: str,
    ylabel: str = "PSNR (dB)",
    title: str = "",
    reference: tuple[float, str] | None = None,
    log_y: bool = False,
) -> Figure:
    """Line plot of named ``(x, y)`` series; ``reference=(y, label)`` draws a
    dashed horizontal line at ``y`` (an empty label leaves it out of the
    legend)."""
    figure, axis = plt.subplots(figsize=(5.5, 3.3))
    for i, (name, points) in enumerate(series.items()):
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        axis.plot(xs, ys, color=PALETTE[i % len(PALETTE)], label=name, linewidth=1.4)
    if reference is not None:
        level, label = reference
        axis.axhline(
            level, color="black", linestyle="--", linewidth=0.8, label=label or None
        )
    if log_y:
        axis.set_yscale("log")
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title)
    axis.grid(alpha=0.3)
    if len(series) > 6:  # many curves: keep the legend off the data
        figure.set_figwidth(7.0)
        axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def paper_vs_ours_bars(
    groups: Sequence[str],
    ours: Mapping[str, Sequence[float]],
    paper: Mapping[str, Sequence[float | None]],
    *,
    ylabel: str,
    title: str = "",
) -> Figure:
    """Grouped bars: for each method, our value (solid) beside the paper's (hatched)."""
    figure, axis = plt.subplots(figsize=(6.0, 3.3))
    methods = list(ours)
    width = 0.8 / (2 * len(methods))
    x = np.arange(len(groups))
    for m, method in enumerate(methods):
        color = PALETTE[m % len(PALETTE)]
        offset = (2 * m - len(methods) + 0.5) * width
        axis.bar(x + offset, ours[method], width, color=color, label=f"{method} (ours)")
        paper_values = [
            np.nan if v is None else v for v in paper.get(method, [None] * len(groups))
        ]
        axis.bar(
            x + offset + width,
            paper_values,
            width,
            color="white",
            edgecolor=color,
            hatch="///",
            label=f"{method} (paper)",
        )
    axis.set_xticks(x, groups)
    axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title)
    axis.legend(fontsize=7, ncol=2)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def scatter_labelled(
    points: Mapping[str, tuple[float, float]],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    reference: tuple[float, str] | None = None,
) -> Figure:
    """One point per named ``(x, y)``, e.g. a privacy-utility trade-off.

    Points are told apart by colour and marker in a legend beside the axes, so
    labels of nearby points never overlap. ``reference=(y, label)`` draws a
    dashed reference level.
    """
    markers = "osD^vP*Xh<>"
    figure, axis = plt.subplots(figsize=(7.2, 3.8))
    for i, (name, (x, y)) in enumerate(points.items()):
        axis.scatter(
            [x],
            [y],
            color=PALETTE[i % len(PALETTE)],
            marker=markers[i % len(markers)],
            s=36,
            zorder=3,
            label=name,
        )
    if reference is not None:
        level, label = reference
        axis.axhline(level, color="0.4", linestyle="--", linewidth=1, label=label)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    return figure
