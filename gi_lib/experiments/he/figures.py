"""The HE page's figures: operation costs, bytes on the wire, attack PSNRs."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from gi_lib import plots
from gi_lib.defenses import _lwe
from gi_lib.experiments.he.experiment import HERun
from gi_lib.experiments.he.params import BACKEND_TITLES, MNIST_NGD, PAPER_TABLE3
from gi_lib.experiments.he.report import papers_parameters


def cost_figure(result: HERun) -> Figure:
    """Seconds per update against its size: Enc/Dec (left), Add (right)."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    papers = papers_parameters(result.params)
    sizes = sorted(PAPER_TABLE3)
    for axis, operations in (
        (left, (("Enc", "encrypt", 0), ("Dec", "decrypt", 1))),
        (right, (("Add", "add", 2),)),
    ):
        for b, backend in enumerate(("lwe", "paillier", "ckks", "bfv")):
            costs = sorted(
                (c for c in result.costs if c.backend == backend), key=lambda c: c.size
            )
            if not costs:
                continue
            color = plots.PALETTE[b]
            for o, (label, attribute, _) in enumerate(operations):
                axis.plot(
                    [c.size for c in costs],
                    [getattr(c, attribute) for c in costs],
                    color=color,
                    linestyle=("-", "--")[o],
                    marker="o",
                    markersize=3,
                    label=f"{BACKEND_TITLES[backend]} {label}",
                )
        for o, (label, _, index) in enumerate(operations):
            unit = 1e-6 if label == "Add" else 1e-3
            axis.plot(
                sizes,
                [PAPER_TABLE3[s][1][index] * unit for s in sizes],
                color="black",
                linestyle=("-", "--")[o],
                marker="s",
                markerfacecolor="white",
                markersize=4,
                linewidth=0.8,
                label=f"paper, Table 3 {label} (1 thread)",
            )
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("values per update (n_gd)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=6)
    left.set_ylabel("CPU seconds")
    left.set_title("encrypt and decrypt one update", fontsize=9)
    right.set_title("add two ciphertexts", fontsize=9)
    if not papers:
        figure.suptitle(
            f"(LWE with n_lwe = {result.params.lwe_n}, not the paper's 3000)",
            fontsize=8,
        )
    figure.tight_layout()
    return figure


def bytes_figure(result: HERun) -> Figure:
    """Ciphertext bytes over float32 bytes, per backend and size."""
    figure, axis = plt.subplots(figsize=(5.5, 3.3))
    for b, backend in enumerate(("lwe", "paillier", "ckks", "bfv")):
        costs = sorted(
            (c for c in result.costs if c.backend == backend), key=lambda c: c.size
        )
        if costs:
            axis.plot(
                [c.size for c in costs],
                [c.expansion for c in costs],
                color=plots.PALETTE[b],
                marker="o",
                markersize=3,
                label=BACKEND_TITLES[backend],
            )
    sizes = sorted({c.size for c in result.costs if c.backend == "lwe"}) or [MNIST_NGD]
    width = _lwe.LWEParams().bytes_per_element
    axis.plot(
        sizes,
        [(result.params.lwe_n + s) * width / (4 * s) for s in sizes],
        color=plots.PALETTE[0],
        linestyle=":",
        label="LWE in the paper's one-block layout (formula)",
    )
    axis.axhline(
        1.0, color="black", linewidth=0.8, linestyle="--", label="float32 plaintext"
    )
    axis.set_xscale("log")
    axis.set_ylim(bottom=0)
    axis.set_xlabel("values per update (n_gd)")
    axis.set_ylabel("bytes on the wire / plaintext bytes")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def attack_figure(result: HERun) -> Figure:
    """Per victim: the image, and IG's reconstruction from each view."""
    rows_ = [
        [
            t.plaintext.true_images[0],
            t.plaintext.images[0],
            t.leaked.images[0],
            t.ciphertext.images[0],
        ]
        for t in result.trials
    ]
    return plots.image_rows(
        rows_,
        ["private image", "server, no HE", "participant, HE", "server, HE"],
        [
            f"{t.plaintext.psnr:.0f} / {t.leaked.psnr:.0f} / {t.ciphertext.psnr:.0f} dB"
            for t in result.trials
        ],
    )
