"""iDLG: Improved Deep Leakage from Gradients (Zhao, Mopuri and Bilen, 2020).

For one image trained with cross-entropy, the gradient of the last linear
layer's weight has a negative row sum exactly at the true class (its inputs
are non-negative after a sigmoid). iDLG reads the label off that sign, then
optimises only the dummy image against the gradient with the label fixed,
which is easier and more stable than DLG's joint search.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from gi_lib.attacks.base import (
    OptimConfig,
    Reconstruction,
    attack_generator,
    best_of_restarts,
    infer_labels_from_last_layer,
    l2_gradient_distance,
    optimize,
    simulated_gradients,
)
from gi_lib.fl import Observation, cross_entropy


@dataclass(frozen=True)
class IDLGConfig:
    """iDLG's settings; defaults follow the official code (L-BFGS, lr 1, 300 steps)."""

    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(optimizer="lbfgs", lr=1.0)
    )


def last_linear_weight_index(model: nn.Module) -> int:
    """Position, among trainable parameters, of the last linear layer's weight."""
    linear_weights = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    indices = [
        i
        for i, p in enumerate(p for p in model.parameters() if p.requires_grad)
        if id(p) in linear_weights
    ]
    if not indices:
        raise ValueError("iDLG needs a model whose output layer is nn.Linear.")
    return indices[-1]


def infer_labels(observation: Observation) -> torch.Tensor:
    """iDLG's analytic label (batch size 1; see the base function for batches)."""
    index = last_linear_weight_index(observation.model)
    return infer_labels_from_last_layer(
        observation.gradients[index], observation.num_images
    )


def reconstruct(
    observation: Observation,
    config: IDLGConfig | None = None,
    *,
    seed: int = 0,
    truth: torch.Tensor | None = None,
) -> Reconstruction:
    """Infer the label from the gradient, then reconstruct the image."""
    config = config or IDLGConfig()
    device = observation.device
    model = observation.model
    labels = infer_labels(observation).to(device)
    shape = (observation.num_images, *observation.image_shape)

    def objective(images: torch.Tensor, extra: list[torch.Tensor]) -> torch.Tensor:
        dummy = simulated_gradients(model, images, labels, cross_entropy)
        return l2_gradient_distance(dummy, observation.gradients)

    def attempt(restart: int):  # noqa: ANN202 - internal
        generator = attack_generator(seed, restart, device)
        images = torch.randn(shape, generator=generator, device=device)
        run = optimize(
            objective, images, [], config.optim, truth=truth, description="iDLG"
        )
        return run, labels

    return best_of_restarts(attempt, config.optim.restarts)
