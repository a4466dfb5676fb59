"""DLG: Deep Leakage from Gradients (Zhu, Liu and Han, NeurIPS 2019).

The attacker starts from random dummy images and dummy label logits, and runs
L-BFGS on both so that the gradient the model produces on them matches the
observed gradient in squared L2 distance. The soft label is the softmax of the
dummy logits; the recovered label is its argmax. No side information beyond
the model and the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from gi_lib.attacks.base import (
    OptimConfig,
    Problem,
    Reconstruction,
    attack_generator,
    l2_gradient_distance,
    optimize,
    pixel_space,
    simulated_gradients,
)
from gi_lib.attacks.registry import AttackRun, register_attack
from gi_lib.fl import cross_entropy


@dataclass(frozen=True)
class DLGConfig:
    """DLG's settings; defaults follow the official code (L-BFGS, lr 1, 300 steps)."""

    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(optimizer="lbfgs", lr=1.0)
    )


@register_attack("dlg", config=DLGConfig)
def reconstruct(run: AttackRun[DLGConfig]) -> Reconstruction:
    """DLG: L2 matching, L-BFGS on image and label.

    Reconstructs the client's images and labels from one FedSGD gradient; each
    restart draws its dummy images and label logits anew from the seed.
    """
    observation, config = run.observation, run.config
    device = observation.device
    model = observation.model
    shape = (observation.num_images, *observation.image_shape)

    def objective(variables: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        images, label_logits = variables
        soft_labels = torch.softmax(label_logits, dim=-1)
        dummy = simulated_gradients(model, images, soft_labels, cross_entropy)
        matching = l2_gradient_distance(dummy, observation.gradients)
        return matching, matching

    def init(restart: int) -> list[torch.Tensor]:
        generator = attack_generator(run.seed, restart, device)
        images = torch.randn(shape, generator=generator, device=device)
        label_logits = torch.randn(
            (observation.num_images, observation.num_classes),
            generator=generator,
            device=device,
        )
        return [images, label_logits]

    problem = Problem(
        objective=objective,
        init=init,
        labels=lambda variables: variables[1].argmax(dim=-1),
        space=pixel_space(device),
        description="DLG",
    )
    return optimize(problem, config.optim, truth=run.truth)
