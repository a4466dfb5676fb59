"""DLG as a baseline where the registered DLG does not fit: on R-GAP's
logistic loss and in vertical FL (CAFE), both with the labels given.

Both are DLG's attack otherwise: L-BFGS (step 1, as DLG's code) on the
squared L2 distance between the observed gradients and those of the dummy
images, on :func:`gi_lib.attacks.base.optimize`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from gi_lib import vertical
from gi_lib.attacks import rgap
from gi_lib.attacks.base import (
    OptimConfig,
    Problem,
    Reconstruction,
    Variables,
    attack_generator,
    fixed_labels,
    l2_gradient_distance,
    normal_start,
    optimize,
    pixel_space,
    simulated_gradients,
)
from gi_lib.fl import Observation


def _dlg_with_labels(
    simulate: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    observed: Sequence[torch.Tensor],
    labels: torch.Tensor,
    init: Callable[[int], Variables],
    device: torch.device,
    *,
    iterations: int,
    box_constraint: bool,
) -> Reconstruction:
    """L-BFGS on ``||simulate(images) - observed||^2`` from ``init``, labels fixed."""

    def objective(variables: Variables) -> tuple[torch.Tensor, torch.Tensor]:
        matching = l2_gradient_distance(simulate(variables[0]), observed)
        return matching, matching

    problem = Problem(
        objective=objective,
        init=init,
        labels=fixed_labels(labels),
        space=pixel_space(device),
        description="DLG",
    )
    config = OptimConfig(
        optimizer="lbfgs",
        lr=1.0,
        max_iterations=iterations,
        box_constraint=box_constraint,
        on_divergence="stop",
    )
    return optimize(problem, config)


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
    return _dlg_with_labels(
        lambda images: simulated_gradients(
            observation.model, images, labels, rgap.logistic_loss
        ),
        observation.gradients,
        labels,
        normal_start(seed, (1, *observation.image_shape), observation.device),
        observation.device,
        iterations=iterations,
        box_constraint=False,
    )


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

    return _dlg_with_labels(
        simulate,
        observed,
        observation.labels,
        init,
        cpu,
        iterations=iterations,
        box_constraint=True,
    )
