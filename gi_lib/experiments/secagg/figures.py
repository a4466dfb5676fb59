"""The SecAgg page's figures and cost table."""

from __future__ import annotations

from matplotlib.figure import Figure

from gi_lib import plots
from gi_lib.experiments.secagg.experiment import SecAggRun
from gi_lib.experiments.secagg.report import series

# --- figures and prose ------------------------------------------------------


def cost_figure(result: SecAggRun) -> Figure:
    """Client and server CPU seconds against n, per protocol and dropout (log-log)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(8.5, 3.4))
    keys = sorted({(p.protocol, p.dropout) for p in result.costs})
    for i, (protocol, dropout) in enumerate(keys):
        points = [p for p in series(result, protocol, dropout) if not p.aborted]
        if not points:
            continue
        style = "-" if protocol == "secagg" else "--"
        color = plots.PALETTE[i % len(plots.PALETTE)]
        for axis, attr in zip(axes, ("client_seconds", "server_seconds"), strict=True):
            axis.plot(
                [p.num_clients for p in points],
                [getattr(p, attr) for p in points],
                style,
                marker="o",
                color=color,
                label=f"{protocol}, {dropout:.0%}",
            )
    for axis, title in zip(axes, ("a surviving client", "the server"), strict=True):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("clients n")
        axis.set_ylabel("CPU seconds")
        axis.set_title(f"CPU time of {title}", fontsize=9)
        axis.grid(alpha=0.3, which="both")
    axes[1].legend(fontsize=7)
    figure.tight_layout()
    return figure


def attack_figure(result: SecAggRun) -> Figure:
    """Private image, inversions of the plaintext update and of the masked
    upload, and an unrelated image."""
    shown = result.trials[: result.params.num_shown]
    return plots.image_rows(
        [list(t.images) for t in shown],
        ["private image", "from plaintext", "from masked upload", "unrelated image"],
        [f"trial {i + 1}" for i in range(len(shown))],
    )


def cost_table(result: SecAggRun):  # noqa: ANN201 - pandas imported lazily
    """The cost sweep as a table."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "protocol": p.protocol,
                "n": p.num_clients,
                "dropout": f"{p.dropout:.0%}",
                "k": p.degree if p.degree is not None else p.num_clients - 1,
                "t": p.threshold,
                "dropped": p.dropped,
                "client CPU s": "aborted" if p.aborted else f"{p.client_seconds:.4f}",
                "server CPU s": "aborted" if p.aborted else f"{p.server_seconds:.4f}",
                "client kB": "" if p.aborted else f"{p.client_bytes / 1e3:.1f}",
                "modelled s": "" if p.aborted else f"{p.modelled_seconds:.2f}",
            }
            for p in sorted(
                result.costs, key=lambda p: (p.protocol, p.dropout, p.num_clients)
            )
        ]
    )
