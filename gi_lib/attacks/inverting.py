"""Inverting Gradients (Geiping, Bauermeister, Dröge and Moeller, NeurIPS 2020).

What is new over DLG: the attacker matches the *direction* of the observed
update, one minus the cosine similarity of the simulated and the observed
update taken as one vector over the chosen parameter tensors, adds a
total-variation prior, and runs Adam on the *sign* of the image gradient with
the learning rate cut tenfold at 3/8, 5/8 and 7/8 of the iterations. Images
are optimised in the model's normalised space (as the official code does, so
its learning rates carry over), start from a standard normal draw there, and
are clamped after every step to the range that maps to pixels in [0, 1].
Several restarts run side by side; the one with the lowest matching loss
(without the prior) is returned.

Threat model: the server sees one client's update and the model; BatchNorm
layers are in eval mode (running statistics, as in all of the paper's
experiments). The labels are known when the observation carries them (the
paper's setting) and otherwise read off the last layer's update (iDLG's rule;
for a batch it assumes distinct labels). For a FedAvg update the attack
differentiates through the client's local SGD steps
(:func:`gi_lib.fl.unrolled_local_update`) and matches the weight difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch.func import functional_call, grad

from gi_lib import fl
from gi_lib.attacks.base import (
    OptimConfig,
    Problem,
    Reconstruction,
    attack_labels,
    distance,
    fixed_labels,
    l2_matching_problem,
    normal_start,
    normalised_space,
    optimize,
    signed_adam,
)
from gi_lib.attacks.priors import Prior, add_priors
from gi_lib.attacks.registry import AttackRun, register_attack

Cost = Literal["cosine", "l2"]


@dataclass(frozen=True)
class InvertingConfig:
    """Inverting Gradients' settings; defaults follow the official code.

    Attributes:
        optim: loop settings (Adam; signed steps, step-size cuts, box and
            batched restarts on). ``lr`` is in the normalised image space (0.1
            in the code; 1 for its FedAvg batch notebook).
        cost: ``"cosine"`` (the paper) or ``"l2"`` (DLG's distance, for the
            ablation on the same optimiser).
        priors: image priors on the normalised images; the code's default is
            total variation at 1e-4 (its notebooks use 1e-6 on an untrained
            ConvNet, 1e-2 to 1e-1 on trained ResNets).
        layers: indices (among the trainable parameters) of the tensors whose
            update is matched; ``None`` matches all of them.
    """

    optim: OptimConfig = field(default_factory=signed_adam)
    cost: Cost = "cosine"
    priors: tuple[Prior, ...] = (Prior("tv", 1e-4),)
    layers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.optim.optimizer != "adam":
            raise ValueError("Inverting Gradients uses Adam; set optimizer='adam'.")
        distance(self.cost)


def tv_config(
    *, tv_weight: float, cost: Cost = "cosine", **optim: object
) -> InvertingConfig:
    """The paper's config with total variation at ``tv_weight`` and loop overrides."""
    return InvertingConfig(
        optim=signed_adam(**optim),
        cost=cost,
        priors=(Prior("tv", tv_weight),),
    )


def simulated_update(
    observation: fl.Observation, labels: torch.Tensor
) -> Callable[[torch.Tensor], tuple[torch.Tensor, ...]]:
    """``images -> the update the client would send``, differentiable and vmappable.

    For a FedSGD observation this is the gradient of the mean cross-entropy;
    for FedAvg it unrolls the client's local steps with the observed
    ``local_lr``, ``local_steps`` and ``local_batch_size``.
    """
    model = observation.model
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if observation.update_kind == "weight_difference":
        if observation.local_lr is None or observation.local_steps is None:
            raise ValueError("A FedAvg observation needs local_lr and local_steps.")
        local_lr, local_steps = observation.local_lr, observation.local_steps

        def fedavg(images: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return fl.unrolled_local_update(
                model,
                images,
                labels,
                local_lr=local_lr,
                local_steps=local_steps,
                local_batch_size=observation.local_batch_size,
                parameter_names=names,
            )

        return fedavg

    state = {
        **{n: p.detach() for n, p in model.named_parameters()},
        **dict(model.named_buffers()),
    }

    def batch_loss(
        weights: dict[str, torch.Tensor], images: torch.Tensor
    ) -> torch.Tensor:
        return fl.cross_entropy(
            functional_call(model, {**state, **weights}, (images,)), labels
        )

    weights = {n: state[n] for n in names}

    def fedsgd(images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        gradients = grad(batch_loss)(weights, images)
        return tuple(gradients[n] for n in names)

    return fedsgd


def _matched_layers(
    observation: fl.Observation, layers: tuple[int, ...] | None
) -> list[int]:
    count = len(observation.gradients)
    indices = list(layers) if layers is not None else list(range(count))
    if not indices or max(indices) >= count or min(indices) < 0:
        raise ValueError(
            f"layers must index the {count} parameter tensors, got {layers}."
        )
    return indices


@register_attack("inverting", config=InvertingConfig)
def reconstruct(run: AttackRun[InvertingConfig]) -> Reconstruction:
    """Inverting Gradients: cosine matching, TV, signed Adam (FedSGD or FedAvg).

    With ``update_kind == "weight_difference"`` the local steps are unrolled.
    Restart ``r`` starts from ``attack_generator(seed, r)``, a standard normal
    in the model's normalised space.

    Returns:
        The best restart by matching loss; ``history`` holds the loss at every
        iteration and the PSNR at the monitored ones.
    """
    observation, config = run.observation, run.config
    labels, _ = attack_labels(observation)
    device = observation.device
    shape = (observation.num_images, *observation.image_shape)
    space = normalised_space(observation)
    update_of = simulated_update(observation, labels)
    indices = _matched_layers(observation, config.layers)
    observed = [observation.gradients[i] for i in indices]
    match = distance(config.cost)

    def objective(variables: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        (z,) = variables
        update = update_of(space.to_pixels(z))
        matching = match([update[i] for i in indices], observed)
        return matching, add_priors(matching, config.priors, z)

    problem = Problem(
        objective=objective,
        init=normal_start(run.seed, shape, device),
        labels=fixed_labels(labels),
        space=space,
        vmappable=True,
        description="Inverting Gradients",
    )
    return optimize(problem, config.optim, truth=run.truth)


def l2_lbfgs_config(max_iterations: int = 300) -> OptimConfig:
    """The L-BFGS settings of the paper's Euclidean baseline."""
    return OptimConfig(optimizer="lbfgs", lr=1.0, max_iterations=max_iterations)


@register_attack("l2_lbfgs", config=OptimConfig)
def reconstruct_l2_lbfgs(run: AttackRun[OptimConfig]) -> Reconstruction:
    """Inverting Gradients' baseline: DLG's L2 + L-BFGS with labels known.

    The paper's "Eucl. Loss + L-BFGS": squared L2 distance between updates,
    L-BFGS on the images (pixel space, no box constraint, no prior), the same
    labels and initial images as :func:`reconstruct`. FedAvg updates are
    matched through the unrolled steps.
    """
    observation, optim = run.observation, run.config
    labels, _ = attack_labels(observation)
    device = observation.device
    shape = (observation.num_images, *observation.image_shape)
    start_space = normalised_space(observation)
    normal = normal_start(run.seed, shape, device)

    def init(restart: int) -> list[torch.Tensor]:
        # IG's starting images, mapped to pixels.
        return [start_space.to_pixels(normal(restart)[0])]

    problem = l2_matching_problem(
        simulated_update(observation, labels),
        observation.gradients,
        labels,
        init,
        device,
        description="L2 + L-BFGS",
    )
    return optimize(problem, optim, truth=run.truth)
