"""The DP-SGD notebook: Abadi et al.'s MNIST accuracy against epsilon, their
accountant, and DLG through DP-SGD's noise.

Utility (Abadi et al., CCS 2016, MNIST): the paper's network (60-dimensional
DP-PCA, one hidden layer of 1,000 ReLU units, softmax) trained with DP-SGD
through opacus (:mod:`gi_lib.defenses.dp_mnist`), once per target epsilon,
and once without privacy. Each private run's noise multiplier is the
smallest that keeps opacus's RDP accountant, with the DP-PCA's release
composed in, at the target epsilon after the run's steps
(:func:`gi_lib.defenses.dpsgd.noise_for_epsilon`): every epsilon reported
here includes the PCA's cost, as the paper's does. Each run's test accuracy
after selected epochs, at the epsilon spent by then, is the accuracy-epsilon
curve.

Accountant: the paper's moments accountant and opacus's RDP accountant for
the paper's example (q = 0.01, sigma = 4, delta = 1e-5, 100 and 400 epochs),
with a strong-composition bound for the same setting.

Attack: the page's attack (DLG by default) on single images whose gradient
the client clipped and noised (:class:`gi_lib.defenses.DPSGD`), through the
defense pages' engine (:func:`gi_lib.experiments.defense_page.attack_through_defenses`).

The page's modules: :mod:`~gi_lib.experiments.dpsgd.params`,
:mod:`~gi_lib.experiments.dpsgd.accountant`,
:mod:`~gi_lib.experiments.dpsgd.experiment` (the run),
:mod:`~gi_lib.experiments.dpsgd.figures` and
:mod:`~gi_lib.experiments.dpsgd.report` (rows, claims, prose).
"""

from __future__ import annotations

from gi_lib.experiments.dpsgd.accountant import (
    accountant_check,
    strong_composition_epsilon,
)
from gi_lib.experiments.dpsgd.experiment import DPSGDRun, run, spent
from gi_lib.experiments.dpsgd.figures import examples_figure, tradeoff_figure
from gi_lib.experiments.dpsgd.params import NOTEBOOK, DPSGDParams, check
from gi_lib.experiments.dpsgd.report import (
    accountant_text,
    blank_psnr,
    claims,
    rows,
    summary_text,
)

__all__ = [
    "NOTEBOOK",
    "DPSGDParams",
    "DPSGDRun",
    "accountant_check",
    "accountant_text",
    "blank_psnr",
    "check",
    "claims",
    "examples_figure",
    "rows",
    "run",
    "spent",
    "strong_composition_epsilon",
    "summary_text",
    "tradeoff_figure",
]
