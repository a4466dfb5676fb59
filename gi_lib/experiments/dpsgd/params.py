"""The DP-SGD page's parameters, setting labels and the paper's numbers it is
checked against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gi_lib.experiments import defense_page
from gi_lib.models import model_names
from gi_lib.params import ParameterError, check_parameters, param
from gi_lib.results import PaperValue

NOTEBOOK = "dpsgd"
MODEL = "pca_mlp"

SOURCE = "Abadi et al., CCS 2016, MNIST results"
ACCOUNTANT_SOURCE = "Abadi et al., CCS 2016, moments accountant vs strong composition"
CIFAR_SOURCE = "Abadi et al., CCS 2016, CIFAR-10 results"
DLG_SOURCE = (
    "this book's defense view (DLG, Zhu et al., NeurIPS 2019, tries noisy "
    "gradients in its defense section; the threshold it reports is not verified "
    "here); not a claim of Abadi et al."
)

PAPER_ACCURACY: dict[float, PaperValue] = {
    0.5: PaperValue(0.90, f"{SOURCE} (large noise: sigma 8, sigma_p 16)", "T"),
    2.0: PaperValue(0.95, f"{SOURCE} (medium noise: sigma 4, sigma_p 7)", "T"),
    8.0: PaperValue(0.97, f"{SOURCE} (small noise: sigma 2, sigma_p 4)", "T"),
}
"""Test accuracy the paper reports at each epsilon (delta = 1e-5)."""
PAPER_NON_PRIVATE = PaperValue(0.983, f"{SOURCE} (non-private, same net)", "T")
PAPER_GAP = 0.013
"""The paper's accuracy gap to non-private training on MNIST (98.3% - 97%)."""

ACCOUNTANT_Q, ACCOUNTANT_SIGMA, ACCOUNTANT_DELTA = 0.01, 4.0, 1e-5
PAPER_MOMENTS: dict[int, PaperValue] = {
    100: PaperValue(1.26, f"{ACCOUNTANT_SOURCE} (q 0.01, sigma 4, 100 epochs)", "T"),
    400: PaperValue(2.55, f"{ACCOUNTANT_SOURCE} (q 0.01, sigma 4, 400 epochs)", "T"),
}
PAPER_STRONG = {100: 9.34, 400: 24.22}
"""Strong composition's epsilon in the paper for the same setting."""
FAR_SMALLER = 3.0
"""The factor by which the moments accountant's epsilon must undercut strong
composition's for "far smaller" to hold (the paper's factors are 7.4 and 9.5)."""


@dataclass(frozen=True, kw_only=True)
class DPSGDParams(defense_page.DefendedAttackParams):
    """The DP-SGD notebook's parameters."""

    dataset: str = param(
        "data set (the paper's network is built for MNIST)", choices=("mnist",)
    )
    model: str = param(
        "the utility network: Abadi et al.'s MNIST net (DP-PCA, 1 hidden ReLU layer)",
        choices=(MODEL,),
    )
    target_epsilons: tuple[float, ...] = param(
        "epsilon of each private run, the DP-PCA included (the paper's 0.5, 2, 8)",
        above=0,
        unique=True,
    )
    pca_noise: tuple[float, ...] = param(
        "the DP-PCA's noise sigma_p of each private run, one per target epsilon "
        "(the paper's 16, 7, 4)",
        above=0,
    )
    train_images: int = param(
        "training images N (at most the split's size; the paper's 60,000)", minimum=100
    )
    test_images: int = param(
        "test images the accuracies are measured on (MNIST's whole test split: 10,000)",
        minimum=100,
    )
    train_epochs: int = param("epochs of every utility run", minimum=1)
    lot_size: int = param("expected lot size L (Poisson sampling, rate L/N)", minimum=2)
    clip_norm: float = param("per-example L2 bound C on the whole gradient", above=0)
    lr: float = param("initial SGD step size", above=0)
    end_lr: float = param("step size after lr_saturate_epochs", above=0)
    lr_saturate_epochs: float = param(
        "epochs of the linear decay of the step size", minimum=0
    )
    pca_dims: int = param("PCA dimensions (the paper's 60)", minimum=1, maximum=784)
    hidden_units: int = param("hidden ReLU units (the paper's 1,000)", minimum=1)
    delta: float = param("delta of (epsilon, delta)", above=0, maximum=0.1)
    attack_model: str = param("the model attacked", choices=model_names)
    noise_multipliers: tuple[float, ...] = param(
        "noise multipliers sigma of the attacked client (noise sigma * clip_norm)",
        above=0,
        unique=True,
    )


def check(values: Mapping[str, Any]) -> DPSGDParams:
    """Check the parameters (see :class:`DPSGDParams`)."""
    params = check_parameters(values, DPSGDParams, notebook=NOTEBOOK)
    if len(params.pca_noise) != len(params.target_epsilons):
        raise ParameterError(
            f"pca_noise has {len(params.pca_noise)} values and target_epsilons "
            f"{len(params.target_epsilons)}; give one sigma_p per target epsilon."
        )
    if params.lot_size > params.train_images:
        raise ParameterError(
            f"lot_size {params.lot_size} exceeds train_images {params.train_images}."
        )
    return params


def label(target: float) -> str:
    """A private run's label: its target epsilon."""
    return f"eps={target:g}"


def attack_label(sigma: float) -> str:
    """An attacked setting's label: its noise multiplier."""
    return f"sigma={sigma:g}"
