"""The R-GAP page's figures and tables."""

from __future__ import annotations

from matplotlib.figure import Figure

from gi_lib import plots
from gi_lib.experiments.rgap.experiment import RGAPRun


def examples_figure(result: RGAPRun) -> Figure:
    """Rows: attacked images; columns: truth, then R-GAP and DLG per network."""
    names = list(result.counts)
    columns = ["truth"]
    for name in names:
        columns += [f"R-GAP {name}", f"DLG {name}"]
    rows, titles = [], []
    for i in range(result.params.num_trials):
        row = [result.of(names[0])[i].rgap.true_images[0]]
        for name in names:
            attack = result.of(name)[i]
            row += [attack.rgap.images[0], attack.dlg.images[0]]  # type: ignore[union-attr]
        rows.append(row)
        titles.append(f"#{i}")
    return plots.image_rows(rows, columns, titles)


def sweep_figure(result: RGAPRun) -> Figure:
    """PSNR of R-GAP against the measured rank deficiency of the swept networks."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 3.3))
    for i, varied in enumerate(("width", "stride")):
        points = [p for p in result.sweep if p.varied == varied]
        axis.scatter(
            [p.numerical_deficiency for p in points],
            [p.psnr for p in points],
            color=plots.PALETTE[i],
            label=f"{varied} of conv {1 if varied == 'stride' else 2}",
        )
        for p in points:
            axis.annotate(str(p.value), (p.numerical_deficiency, p.psnr), fontsize=7)
    axis.axhline(
        result.params.success_psnr, color="black", linestyle="--", linewidth=0.8
    )
    axis.set_xscale("symlog", linthresh=10)
    axis.set_xlabel("unknowns minus rank, summed over layers")
    axis.set_ylabel("R-GAP PSNR (dB)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def rank_frame(result: RGAPRun):  # noqa: ANN201 - pandas imported lazily
    """Per-layer counts of both networks, with the measured rank of trial 0."""
    import pandas as pd

    records = []
    for name, counts in result.counts.items():
        layers = result.of(name)[0].layers
        for count, solve in zip(counts, layers, strict=True):
            records.append(
                {
                    "network": name,
                    "layer": count.index,
                    "kind": count.kind,
                    "input": "x".join(map(str, count.input_shape)),
                    "unknowns": count.unknowns,
                    "weight eq.": count.weight_constraints,
                    "gradient eq.": count.gradient_constraints,
                    "shared": count.shared,
                    "counted deficiency": count.deficiency,
                    "residual": f"{solve.residual:.1e}",
                }
            )
    return pd.DataFrame(records)


def sweep_frame(result: RGAPRun):  # noqa: ANN201
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "network": p.label,
                "counted deficiency": p.counted_deficiency,
                "unknowns minus rank": p.numerical_deficiency,
                "R-GAP PSNR (dB)": round(p.psnr, 1),
            }
            for p in result.sweep
        ]
    )
