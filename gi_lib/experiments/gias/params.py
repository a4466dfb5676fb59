"""The GIAS page's parameters and the names of its arms and settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gi_lib import data
from gi_lib.params import (
    ExperimentParams,
    ParameterError,
    check_parameters,
    param,
)

NOTEBOOK = "gias"
PAPER = "Jeon et al., NeurIPS 2021"
GIX, GIZ, GIZ_PHASE, GIAS = "GI-x", "GI-z", "GI-z (GIAS's first phase)", "GIAS"
MAIN, HARD, STRESS = "main", "pruned", "stress"


@dataclass(frozen=True, kw_only=True)
class GIASParams(ExperimentParams):
    """The GIAS notebook's parameters."""

    dataset: str = param(
        "data set (its train split trains the GAN)", choices=("mnist", "cifar10")
    )
    batch_size: int = param("images per attacked batch (distinct labels)", minimum=1)
    ngf: int = param("generator width (the GIAS code's ngf: 64)", minimum=1)
    gan_epochs: int = param("GAN training epochs over the train split", minimum=1)
    gan_images: int = param(
        "training images drawn for the GAN (at most the train split)", minimum=1
    )
    classifier_epochs: int = param(
        "epochs of the classifier that checks the samples", minimum=1
    )
    classifier_lr: float = param("initial SGD step of that classifier", above=0.0)
    classifier_images: int = param("training images of that classifier", minimum=1)
    restarts: int = param("latent-search restarts (GI-z and GIAS)", minimum=1)
    latent_steps: int = param("steps of each latent-search restart in GIAS", minimum=1)
    gias_steps: int = param("steps of GIAS's parameter search", minimum=1)
    latent_lr: float = param("latent search's Adam step", above=0.0)
    gias_lr: float = param("parameter search's Adam step", above=0.0)
    gix_lr: float = param("GI-x's signed-Adam step (normalised space)", above=0.0)
    tv_weight: float = param("total variation weight (GIAS: 1e-6)", minimum=0.0)
    gix_tv_weight: float = param("GI-x's total variation weight", minimum=0.0)
    pruning: float = param(
        "share of the gradient zeroed in the harder setting", minimum=0.0, maximum=0.999
    )
    attacked_classes: tuple[int, ...] = param(
        "classes of the attacked images", minimum=0, unique=True
    )
    generator_classes: tuple[int, ...] = param(
        "classes the stress test's generator saw", minimum=0, unique=True
    )
    projection_steps: int = param(
        "steps of the direct fit (the projection ceiling)", minimum=1
    )
    num_samples: int = param("generated samples scored by the classifier", minimum=1)


def check(values: Mapping[str, Any]) -> GIASParams:
    """Check the parameters: unique-label batches from the attacked classes."""
    params = check_parameters(values, GIASParams, notebook=NOTEBOOK)
    classes = data.dataset_info(params.dataset).num_classes
    for name in ("attacked_classes", "generator_classes"):
        if max(getattr(params, name)) >= classes:
            raise ParameterError(f"{name} must be classes 0..{classes - 1}.")
    if params.batch_size > len(params.attacked_classes):
        raise ParameterError(
            f"batch_size {params.batch_size} exceeds the "
            f"{len(params.attacked_classes)} attacked classes: batches hold "
            "distinct labels (as the paper's)."
        )
    return params
