"""The aggregation-leakage page's figures: PSNR and recovered fractions against
the size of the sum, and the victim's reconstructions.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from gi_lib import plots
from gi_lib.experiments.aggregation_leakage.params import LeakageRun, _mean


def curves_figure(result: LeakageRun) -> Figure:
    """PSNR of Inverting Gradients against N; recovered fractions against the
    samples in the sum (Cocktail Party, FastICA, Robbing the Fed)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    ns = sorted(result.ig)
    axes[0].errorbar(
        ns,
        [_mean(result.ig[n]) for n in ns],
        yerr=[np.std(result.ig[n]) for n in ns],
        fmt="o-",
        capsize=3,
        label=f"aggregate of N (mean, sd over {len(result.ig[ns[0]])} trials)",
    )
    axes[0].axhline(
        _mean(result.masked["psnr_unrelated"]),
        color="grey",
        ls=":",
        label="unrelated image",
    )
    axes[0].set(xscale="log", xlabel="clients N (one image each)", ylabel="PSNR (dB)")
    axes[0].set_title("Inverting Gradients on the sum")
    axes[0].legend()
    ms = sorted(result.cpa)
    for key, label in (
        ("cpa_fraction", "Cocktail Party"),
        ("fastica_fraction", "FastICA"),
    ):
        axes[1].plot(ms, [result.cpa[m][key] for m in ms], "o-", label=label)
    axes[1].set(xscale="log", xlabel="samples in the sum", ylabel="fraction recovered")
    axes[1].set_ylim(-0.05, 1.05)
    axes[1].set_title("First FC layer (blind source separation)")
    axes[1].legend()
    ks = sorted(result.rtf)
    axes[2].plot(
        ks, [result.rtf[m]["fraction"] for m in ks], "o-", label="recovered exactly"
    )
    axes[2].plot(
        ks,
        [result.rtf[m]["expected_singletons"] / m for m in ks],
        "s--",
        label="expected singleton bins",
    )
    axes[2].set(xscale="log", xlabel="samples in the sum", ylabel="fraction")
    axes[2].set_ylim(-0.05, 1.05)
    axes[2].set_title(f"Robbing the Fed ({result.params.num_bins} bins)")
    axes[2].legend()
    fig.tight_layout()
    return fig


def examples_figure(result: LeakageRun) -> Figure:
    """The victim, its reconstructions from what each attack isolated."""
    shown = [
        ("victim", "private image"),
        ("plain", "plaintext update"),
        ("masked", "masked upload"),
        ("isolated", "inconsistency, IG"),
        ("analytic", "inconsistency, FC-2 exact"),
        ("unrelated", "unrelated image"),
    ]
    present = [(k, t) for k, t in shown if k in result.images]
    return plots.image_rows(
        [[result.images[k] for k, _ in present]], [t for _, t in present]
    )
