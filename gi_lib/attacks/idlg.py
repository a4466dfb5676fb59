"""iDLG: Improved Deep Leakage from Gradients (Zhao, Mopuri and Bilen, 2020).

For one image trained with cross-entropy, the gradient of the last linear
layer's weight has a negative row sum exactly at the true class (its inputs
are non-negative after a sigmoid). iDLG reads the label off that sign
(:func:`gi_lib.attacks.base.infer_labels`), then optimises only the dummy
image against the gradient with the label fixed, which is easier and more
stable than DLG's joint search.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gi_lib.attacks.base import (
    Problem,
    Reconstruction,
    fixed_labels,
    infer_labels,
    l2_gradient_distance,
    normal_start,
    optimize,
    pixel_space,
    simulated_gradients,
)
from gi_lib.attacks.dlg import DLGConfig
from gi_lib.attacks.registry import AttackRun, register_attack
from gi_lib.fl import cross_entropy


@dataclass(frozen=True)
class IDLGConfig(DLGConfig):
    """iDLG's settings are DLG's (the official code: L-BFGS, lr 1, 300 steps)."""


@register_attack("idlg", config=IDLGConfig)
def reconstruct(run: AttackRun[IDLGConfig]) -> Reconstruction:
    """iDLG: label from the last layer's sign, then DLG on the image."""
    observation, config = run.observation, run.config
    device = observation.device
    model = observation.model
    labels = infer_labels(observation).to(device)
    shape = (observation.num_images, *observation.image_shape)

    def objective(variables: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        dummy = simulated_gradients(model, variables[0], labels, cross_entropy)
        matching = l2_gradient_distance(dummy, observation.gradients)
        return matching, matching

    problem = Problem(
        objective=objective,
        init=normal_start(run.seed, shape, device),
        labels=fixed_labels(labels),
        space=pixel_space(device),
        description="iDLG",
    )
    return optimize(problem, config.optim, truth=run.truth)
