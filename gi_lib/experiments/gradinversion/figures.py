"""The GradInversion page's tables and figures."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from gi_lib import data, plots
from gi_lib.experiments.gradinversion.experiment import GradInversionRun
from gi_lib.experiments.gradinversion.params import (
    ARMS,
    GROUP_ARMS,
    PAPER_ABLATION,
)
from gi_lib.labels import RULES, distinct_ceiling
from gi_lib.results import spread


def label_frame(result: GradInversionRun):  # noqa: ANN201 - pandas lazily
    """Mean multiset accuracy per network, protocol, batch size and rule."""
    import pandas as pd

    rows = []
    for p in result.label_points:
        row: dict[str, Any] = {
            "network": p.network,
            "batches": p.protocol,
            "K": p.batch_size,
        }
        for rule, title in RULES.items():
            value = p.mean(rule)
            row[title] = None if value is None else round(100 * value, 1)
        row["distinct-label ceiling"] = round(100 * p.ceiling, 1)
        rows.append(row)
    return pd.DataFrame(rows)


def label_figure(result: GradInversionRun) -> Figure:
    """Accuracy against batch size: one panel per protocol, rules per network."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    networks = list(dict.fromkeys(p.network for p in result.label_points))
    styles = {"row_min": "-", "row_sum": "--", "count_aware": ":"}
    classes = data.dataset_info(result.params.dataset).num_classes
    for axis, protocol in zip(axes, ("unique", "random"), strict=True):
        for i, network in enumerate(networks):
            points = [
                p
                for p in result.label_points
                if p.network == network and p.protocol == protocol
            ]
            for rule, style in styles.items():
                xy = [
                    (p.batch_size, p.mean(rule))
                    for p in points
                    if p.mean(rule) is not None
                ]
                if xy:
                    xs, ys = zip(*xy, strict=True)
                    axis.plot(
                        xs,
                        [100 * y for y in ys],
                        style,
                        marker="osD^v"[i % 5],
                        markersize=3,
                        color=plots.PALETTE[i % len(plots.PALETTE)],
                        label=f"{network}, {RULES[rule]}",
                    )
        if protocol == "random":
            sizes = sorted(
                {p.batch_size for p in result.label_points if p.protocol == protocol}
            )
            axis.plot(
                sizes,
                [100 * distinct_ceiling(k, classes) for k in sizes],
                color="black",
                linewidth=0.8,
                label="ceiling of a distinct-label rule",
            )
            axis.set_xscale("log", base=2)
        axis.set_title(f"{protocol}-label batches")
        axis.set_xlabel("batch size K")
        axis.set_ylabel("label accuracy (%)")
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=6, loc="lower left")
    figure.tight_layout()
    return figure


def ablation_frame(result: GradInversionRun):  # noqa: ANN201 - pandas lazily
    """Mean PSNR per arm (per image over all batches), with its interval."""
    import pandas as pd

    rows = []
    for arm in (*ARMS, *GROUP_ARMS):
        records = result.arm(arm)
        s = spread([p for r in records for p in r.psnr])
        row: dict[str, Any] = {
            "arm": arm,
            "mean PSNR (dB)": round(s.mean, 2),
            "95% interval": f"{s.low:.2f} to {s.high:.2f}" if s.n > 1 else "",
            "label accuracy": round(
                sum(r.label_accuracy for r in records) / len(records), 3
            ),
            "seconds per batch": round(
                sum(r.seconds for r in records) / len(records), 1
            ),
        }
        if arm in GROUP_ARMS:
            row["best seed PSNR"] = round(
                sum(r.best_seed_psnr or 0.0 for r in records) / len(records), 2
            )
            moved = [r.registration_moved for r in records]
            row["registration moved (%)"] = (
                round(100 * sum(moved) / len(moved), 1)  # type: ignore[arg-type]
                if all(m is not None for m in moved)
                else None
            )
            row["every seed PSNR"] = ", ".join(
                f"{v:.1f}" for r in records for v in r.seeds_psnr
            )
        paper = PAPER_ABLATION.get(arm)
        row["paper (S, ImageNet)"] = None if paper is None else paper.value
        rows.append(row)
    return pd.DataFrame(rows)


def examples_figure(result: GradInversionRun) -> Figure:
    """Truth and every arm on the shown batches (one row per image)."""
    arms = (*ARMS, *GROUP_ARMS)
    rows, titles = [], []
    for trial in range(result.params.num_shown):
        truth = result.truths[trial]
        records = {a.arm: a for a in result.attacked if a.trial == trial}
        for i in range(truth.shape[0]):
            rows.append([truth[i], *(records[arm].images[i] for arm in arms)])
            titles.append(f"batch {trial}, #{i}")
    short = [
        "truth",
        "grad only",
        "+fid approx",
        "+fid exact",
        "BN only",
        "IG",
        "lazy",
        "registered",
        "no group",
    ]
    return plots.image_rows(rows, short, titles, cell_size=1.0)


def group_figure(result: GradInversionRun) -> Figure:
    """Best seed and consensus of both group arms on the first batch."""
    truth = result.truths[0]
    records = {a.arm: a for a in result.attacked if a.trial == 0}
    lazy, registered = records["+ group (lazy)"], records["+ group (registered)"]
    single = records["+ fidelity (BN_exact)"]
    rows = [
        [
            truth[i],
            single.images[i],
            lazy.best_seed_images[i],  # type: ignore[index]
            lazy.consensus_images[i],  # type: ignore[index]
            registered.best_seed_images[i],  # type: ignore[index]
            registered.consensus_images[i],  # type: ignore[index]
        ]
        for i in range(truth.shape[0])
    ]
    return plots.image_rows(
        rows,
        [
            "truth",
            "one seed",
            "lazy: best",
            "lazy: mean",
            "reg.: best",
            "reg.: consensus",
        ],
        cell_size=1.1,
    )


def history_figure(result: GradInversionRun) -> Figure:
    """PSNR during the attack (first batch), per arm (group arms dashed)."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7.0, 3.4))
    records = [a for a in result.attacked if a.trial == 0 and a.history]
    for i, record in enumerate(records):
        xs, ys = zip(*record.history, strict=True)
        axis.plot(
            xs,
            ys,
            linestyle="--" if record.arm in GROUP_ARMS else "-",
            color=plots.PALETTE[i % len(plots.PALETTE)],
            linewidth=1.4,
            label=record.arm,
        )
    axis.set_xlabel("iteration")
    axis.set_ylabel("PSNR (dB), mean over seeds")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    return figure
