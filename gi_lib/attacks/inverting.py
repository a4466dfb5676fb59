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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from tqdm import tqdm

from gi_lib import fl
from gi_lib.attacks.base import (
    AttackDiverged,
    OptimConfig,
    Reconstruction,
    attack_generator,
    best_of_restarts,
    infer_labels_from_last_layer,
    l2_gradient_distance,
    optimize,
)
from gi_lib.attacks.idlg import last_linear_weight_index
from gi_lib.metrics import best_matching, psnr
from gi_lib.models import Normalize

Cost = Literal["cosine", "l2"]


def _paper_optim() -> OptimConfig:
    # rec_mult.py's "ours": Adam, lr 0.1, 4,800 iterations, boxed.
    return OptimConfig(
        optimizer="adam", lr=0.1, max_iterations=4800, box_constraint=True
    )


@dataclass(frozen=True)
class InvertingConfig:
    """Inverting Gradients' settings; defaults follow the official code.

    Attributes:
        optim: loop settings; ``optimizer`` must be ``"adam"``. ``lr`` is in
            the normalised image space (0.1 in the code; 1 for its FedAvg
            batch notebook); ``box_constraint`` clamps to pixels in [0, 1].
        cost: ``"cosine"`` (the paper) or ``"l2"`` (DLG's distance, for the
            ablation on the same optimiser).
        tv_weight: weight of the total variation prior (code's default 1e-4;
            its notebooks use 1e-6 on an untrained ConvNet, 1e-2 to 1e-1 on
            trained ResNets).
        signed: step on the sign of the image gradient.
        lr_decay: divide the learning rate by 10 at 3/8, 5/8 and 7/8 of
            ``max_iterations``.
        layers: indices (among the trainable parameters) of the tensors whose
            update is matched; ``None`` matches all of them.
        batched_restarts: run the restarts as one vectorised computation
            (``torch.func.vmap``) rather than one after another; the numbers
            agree up to float rounding.
        monitor_every: record PSNR (when the truth is given) every this many
            iterations; 0 picks about 50 points.
    """

    optim: OptimConfig = field(default_factory=_paper_optim)
    cost: Cost = "cosine"
    tv_weight: float = 1e-4
    signed: bool = True
    lr_decay: bool = True
    layers: tuple[int, ...] | None = None
    batched_restarts: bool = True
    monitor_every: int = 0

    def __post_init__(self) -> None:
        if self.optim.optimizer != "adam":
            raise ValueError("Inverting Gradients uses Adam; set optimizer='adam'.")
        if self.cost not in ("cosine", "l2"):
            raise ValueError(f"cost must be 'cosine' or 'l2', got {self.cost!r}.")
        if self.tv_weight < 0:
            raise ValueError(f"tv_weight must be >= 0, got {self.tv_weight}.")


def lr_milestones(max_iterations: int) -> list[int]:
    """The code's decay points: ``max_iterations // 2.667, // 1.6, // 1.142``."""
    return [int(max_iterations // f) for f in (2.667, 1.6, 1.142)]


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Anisotropic TV: mean absolute difference of neighbours, both directions."""
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().mean()
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().mean()
    return dx + dy


def cosine_distance(
    simulated: Sequence[torch.Tensor], observed: Sequence[torch.Tensor]
) -> torch.Tensor:
    """One minus the cosine similarity of both updates, each taken as one vector."""
    dot = sum((s * o).sum() for s, o in zip(simulated, observed, strict=True))
    norm_s = sum((s * s).sum() for s in simulated)
    norm_o = sum((o * o).sum() for o in observed)
    return 1 - dot / (torch.sqrt(norm_s) * torch.sqrt(norm_o)).clamp_min(1e-12)  # type: ignore[arg-type]


def image_normalisation(
    model: nn.Module, channels: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std ``(C, 1, 1)`` of the model's :class:`Normalize` layer.

    A model without one (DLG's LeNet) sees raw [0, 1] pixels: mean 0, std 1.
    """
    for module in model.modules():
        if isinstance(module, Normalize):
            return module.mean.reshape(-1, 1, 1), module.std.reshape(-1, 1, 1)
    device = next(model.parameters()).device
    return torch.zeros(channels, 1, 1, device=device), torch.ones(
        channels, 1, 1, device=device
    )


def infer_labels(observation: fl.Observation) -> torch.Tensor:
    """Labels from the last linear layer's update (iDLG's sign rule).

    A FedAvg weight difference points against the gradient (``-lr`` times a
    sum of gradients), so its sign is flipped first. For a batch this assumes
    distinct labels (see :func:`infer_labels_from_last_layer`).
    """
    update = observation.gradients[last_linear_weight_index(observation.model)]
    if observation.update_kind == "weight_difference":
        update = -update
    return infer_labels_from_last_layer(update, observation.num_images)


def attack_labels(observation: fl.Observation) -> tuple[torch.Tensor, bool]:
    """The labels the attack uses, and whether they were given (not inferred)."""
    if observation.labels is not None:
        return observation.labels.to(observation.device), True
    return infer_labels(observation).to(observation.device), False


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


@dataclass
class _Search:
    """The optimisation state of all restarts, ``(R, N, C, H, W)``."""

    images: torch.Tensor  # pixels in [0, 1]
    losses: list[list[float]]  # per restart, per iteration
    psnr_points: list[tuple[int, list[float]]]
    snapshots: dict[int, torch.Tensor]
    diverged: list[bool]
    final_losses: list[float]
    evaluations: int


def _monitor(images: torch.Tensor, truth: torch.Tensor) -> list[float]:
    values = []
    for restart in images:
        clamped = restart.detach().clamp(0, 1)
        if clamped.shape[0] > 1:
            clamped = clamped[best_matching(clamped, truth)]
        values.append(float(psnr(clamped, truth).mean()))
    return values


def _search(
    observation: fl.Observation,
    labels: torch.Tensor,
    config: InvertingConfig,
    *,
    seed: int,
    truth: torch.Tensor | None,
    description: str,
) -> _Search:
    optim = config.optim
    device = observation.device
    shape = (observation.num_images, *observation.image_shape)
    mean, std = image_normalisation(observation.model, observation.image_shape[0])
    mean, std = mean.to(device), std.to(device)
    low, high = -mean / std, (1 - mean) / std
    update_of = simulated_update(observation, labels)
    indices = (
        list(config.layers)
        if config.layers is not None
        else list(range(len(observation.gradients)))
    )
    if not indices or max(indices) >= len(observation.gradients) or min(indices) < 0:
        raise ValueError(
            f"layers must index the {len(observation.gradients)} parameter tensors, "
            f"got {config.layers}."
        )
    observed = [observation.gradients[i] for i in indices]
    distance = cosine_distance if config.cost == "cosine" else l2_gradient_distance

    def one_restart(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        update = update_of(z * std + mean)
        matching = distance([update[i] for i in indices], observed)
        return matching, config.tv_weight * total_variation(z)

    def all_restarts(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if config.batched_restarts:
            return vmap(one_restart)(z)
        pairs = [one_restart(z[r]) for r in range(z.shape[0])]
        return torch.stack([m for m, _ in pairs]), torch.stack([t for _, t in pairs])

    # Each restart draws from its own generator, so batched and sequential
    # runs start from the same images.
    z = torch.stack(
        [
            torch.randn(
                shape, generator=attack_generator(seed, r, device), device=device
            )
            for r in range(optim.restarts)
        ]
    ).requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=optim.lr)
    scheduler = (
        torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=lr_milestones(optim.max_iterations), gamma=0.1
        )
        if config.lr_decay
        else None
    )
    every = config.monitor_every or max(1, optim.max_iterations // 50)
    wanted = set(optim.snapshot_iterations)
    losses: list[list[float]] = [[] for _ in range(optim.restarts)]
    psnr_points: list[tuple[int, list[float]]] = []
    snapshots: dict[int, torch.Tensor] = {}
    diverged = [False] * optim.restarts

    def pixels() -> torch.Tensor:
        return (z.detach() * std + mean).clamp(0, 1)

    if truth is not None:
        psnr_points.append((0, _monitor(pixels(), truth)))
    if 0 in wanted:
        snapshots[0] = pixels().cpu()
    bar = tqdm(
        range(1, optim.max_iterations + 1),
        desc=description,
        disable=not optim.progress,
        mininterval=2.0,
        leave=False,
    )
    for iteration in bar:
        matching, prior = all_restarts(z)
        (image_grad,) = torch.autograd.grad((matching + prior).sum(), z)
        values = matching.detach().cpu().tolist()
        bad = [not math.isfinite(v) for v in values]
        if any(bad) or not torch.isfinite(image_grad).all():
            if optim.on_divergence == "raise":
                raise AttackDiverged(
                    f"{description}: the matching loss became non-finite at iteration "
                    f"{iteration}. Lower the learning rate (lr={optim.lr}), or set "
                    "on_divergence='stop' to freeze the failed restart."
                )
            diverged = [d or b for d, b in zip(diverged, bad, strict=True)]
            # A failed restart keeps its last finite images and stops moving.
            image_grad = torch.nan_to_num(image_grad, nan=0.0, posinf=0.0, neginf=0.0)
            for r, failed in enumerate(diverged):
                if failed:
                    image_grad[r] = 0
        z.grad = image_grad.sign() if config.signed else image_grad
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if optim.box_constraint:
            with torch.no_grad():
                z.copy_(torch.maximum(torch.minimum(z, high), low))
        for r, value in enumerate(values):
            losses[r].append(value)
        if truth is not None and (
            iteration % every == 0 or iteration == optim.max_iterations
        ):
            psnr_points.append((iteration, _monitor(pixels(), truth)))
        if iteration in wanted:
            snapshots[iteration] = pixels().cpu()
    bar.close()
    # Score every restart by its matching loss (no prior) at its final images.
    with torch.no_grad():
        final, _ = all_restarts(z.detach())
    final_losses = [
        math.inf if (d or not math.isfinite(v)) else v
        for d, v in zip(diverged, final.cpu().tolist(), strict=True)
    ]
    return _Search(
        images=pixels(),
        losses=losses,
        psnr_points=psnr_points,
        snapshots=snapshots,
        diverged=diverged,
        final_losses=final_losses,
        evaluations=optim.max_iterations * optim.restarts,
    )


def reconstruct(
    observation: fl.Observation,
    config: InvertingConfig | None = None,
    *,
    seed: int = 0,
    truth: torch.Tensor | None = None,
) -> Reconstruction:
    """Reconstruct the client's images from a FedSGD gradient or FedAvg update.

    Args:
        observation: what the attacker sees; with ``update_kind ==
            "weight_difference"`` the local steps are unrolled.
        config: attack settings.
        seed: seeds the initialisation (restart ``r`` draws from
            ``attack_generator(seed, r)``).
        truth: true images, used only to record PSNR in the history.

    Returns:
        The best restart by matching loss; ``history`` holds the loss at every
        iteration and the PSNR at the monitored ones.
    """
    config = config or InvertingConfig()
    labels, _ = attack_labels(observation)
    search = _search(
        observation,
        labels,
        config,
        seed=seed,
        truth=truth,
        description="Inverting Gradients",
    )
    best = min(range(len(search.final_losses)), key=lambda r: search.final_losses[r])
    psnr_at = {it: values[best] for it, values in search.psnr_points}
    history: list[dict[str, float]] = []
    for iteration, loss in enumerate(search.losses[best], start=1):
        record = {"iteration": float(iteration), "loss": loss}
        if iteration in psnr_at:
            record["psnr"] = psnr_at[iteration]
        history.append(record)
    if 0 in psnr_at:
        history.insert(0, {"iteration": 0.0, "loss": math.nan, "psnr": psnr_at[0]})
    return Reconstruction(
        images=search.images[best],
        labels=labels,
        loss=search.final_losses[best],
        history=history,
        snapshots={k: v[best] for k, v in sorted(search.snapshots.items())},
        diverged=search.diverged[best],
        restart=best,
        evaluations=search.evaluations,
    )


def reconstruct_l2_lbfgs(
    observation: fl.Observation,
    optim: OptimConfig | None = None,
    *,
    seed: int = 0,
    truth: torch.Tensor | None = None,
) -> Reconstruction:
    """The paper's baseline ("Eucl. Loss + L-BFGS"): DLG's attack, labels known.

    Squared L2 distance between updates, L-BFGS on the images (pixel space,
    no box constraint, no prior), the same labels and initial images as
    :func:`reconstruct`. FedAvg updates are matched through the unrolled steps.
    """
    optim = optim or OptimConfig(optimizer="lbfgs", lr=1.0, max_iterations=300)
    labels, _ = attack_labels(observation)
    device = observation.device
    shape = (observation.num_images, *observation.image_shape)
    mean, std = image_normalisation(observation.model, observation.image_shape[0])
    update_of = simulated_update(observation, labels)

    def objective(images: torch.Tensor, extra: list[torch.Tensor]) -> torch.Tensor:
        return l2_gradient_distance(update_of(images), observation.gradients)

    def attempt(restart: int):  # noqa: ANN202 - internal
        generator = attack_generator(seed, restart, device)
        start = torch.randn(shape, generator=generator, device=device)
        images = (start * std.to(device) + mean.to(device)).detach()
        run = optimize(
            objective, images, [], optim, truth=truth, description="L2 + L-BFGS"
        )
        return run, labels

    return best_of_restarts(attempt, optim.restarts)
