"""DLG as a baseline where the registered DLG does not fit: on R-GAP's
logistic loss and in vertical FL (CAFE), both with the labels given.

Both are DLG's attack otherwise: L-BFGS (step 1, as DLG's code) on the
squared L2 distance between the observed gradients and those of the dummy
images, on :func:`gi_lib.attacks.base.optimize`.
"""

from __future__ import annotations

import torch

from gi_lib import vertical
from gi_lib.attacks import rgap
from gi_lib.attacks.base import (
    OptimConfig,
    Reconstruction,
    Variables,
    attack_generator,
    l2_matching_problem,
    normal_start,
    optimize,
    simulated_gradients,
)
from gi_lib.fl import Observation


def _lbfgs(iterations: int, *, box_constraint: bool) -> OptimConfig:
    """DLG's loop: L-BFGS, step 1; a diverged run stops where it is."""
    return OptimConfig(
        optimizer="lbfgs",
        lr=1.0,
        max_iterations=iterations,
        box_constraint=box_constraint,
        on_divergence="stop",
    )


def dlg_logistic(
    observation: Observation, *, iterations: int, seed: int
) -> Reconstruction:
    """DLG on the same gradient and loss as R-GAP, with the label given to it too.

    Random normal dummy image, no box constraint.
    """
    labels = observation.labels
    if labels is None:
        raise ValueError(
            "DLG beside R-GAP is given the label; the observation has none."
        )
    problem = l2_matching_problem(
        lambda images: simulated_gradients(
            observation.model, images, labels, rgap.logistic_loss
        ),
        observation.gradients,
        labels,
        normal_start(seed, (1, *observation.image_shape), observation.device),
        observation.device,
        description="DLG",
    )
    return optimize(problem, _lbfgs(iterations, box_constraint=False))


def dlg_vertical(
    observation: vertical.VerticalObservation, *, iterations: int, seed: int
) -> Reconstruction:
    """DLG on one observed batch in the vertical setting, labels known.

    Dummy features for every party at once (uniform in [0, 1], kept there),
    matched on all observed gradients: the top model's and every party's.
    """
    model = observation.model
    shapes = model.slice_shapes
    observed = list(observation.top_gradients) + [
        g for p in observation.party_gradients for g in p
    ]
    shape = (
        observation.indices.numel(),
        shapes[0][0],
        shapes[0][1],
        sum(s[2] for s in shapes),
    )
    cpu = torch.device("cpu")

    def simulate(images: torch.Tensor) -> list[torch.Tensor]:
        top, parties = vertical.vertical_gradients(
            model, vertical.split_features(images, len(shapes)), observation.labels
        )
        return list(top) + [g for p in parties for g in p]

    def init(restart: int) -> Variables:
        return [torch.rand(shape, generator=attack_generator(seed, restart, cpu))]

    problem = l2_matching_problem(
        simulate, observed, observation.labels, init, cpu, description="DLG"
    )
    return optimize(problem, _lbfgs(iterations, box_constraint=True))
