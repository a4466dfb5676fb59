"""The shared optimisation loop and the pieces every optimisation attack uses.

An optimisation attack makes dummy data (and maybe dummy labels), computes the
gradient the model would produce on them, and moves the dummies so that this
gradient matches the observed one. The loop here handles the optimiser,
restarts, the box constraint, a progress bar, the history and snapshots that
notebooks plot, and a clear stop when the loss becomes NaN or infinite. Each
paper's module only says what is new in that paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from tqdm import tqdm

from gi_lib.metrics import best_matching, psnr


class AttackDiverged(RuntimeError):
    """The matching loss became NaN or infinite."""


@dataclass(frozen=True)
class OptimConfig:
    """Settings of the optimisation loop.

    Attributes:
        optimizer: ``"lbfgs"`` (DLG, iDLG) or ``"adam"`` (Inverting Gradients).
        lr: step size.
        max_iterations: outer optimiser steps. For L-BFGS each step runs up to
            ``lbfgs_inner_steps`` loss evaluations (torch's ``max_iter``).
        lbfgs_inner_steps: torch's L-BFGS ``max_iter`` (DLG uses the default 20).
        lbfgs_history: torch's L-BFGS ``history_size`` (default 100).
        restarts: independent random initialisations; the one with the lowest
            final matching loss is returned.
        box_constraint: clamp images into [0, 1] after each step.
        stop_loss: stop early once the matching loss falls below this.
        on_divergence: ``"raise"`` stops with :class:`AttackDiverged`;
            ``"stop"`` ends that restart and keeps its last finite iterate.
        snapshot_iterations: iterations at which to keep a copy of the images.
        progress: show a tqdm progress bar.
    """

    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    lr: float = 1.0
    max_iterations: int = 300
    lbfgs_inner_steps: int = 20
    lbfgs_history: int = 100
    restarts: int = 1
    box_constraint: bool = False
    stop_loss: float | None = None
    on_divergence: Literal["raise", "stop"] = "raise"
    snapshot_iterations: tuple[int, ...] = ()
    progress: bool = False

    def __post_init__(self) -> None:
        if self.optimizer not in ("lbfgs", "adam"):
            raise ValueError(
                f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}."
            )
        if self.on_divergence not in ("raise", "stop"):
            raise ValueError(
                f"on_divergence must be 'raise' or 'stop', got {self.on_divergence!r}."
            )
        for name in (
            "max_iterations",
            "lbfgs_inner_steps",
            "lbfgs_history",
            "restarts",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}.")


@dataclass
class Reconstruction:
    """What an attack returns.

    Attributes:
        images: reconstructed images ``(N, C, H, W)``, clamped to [0, 1].
        labels: reconstructed or inferred labels ``(N,)``.
        loss: final gradient-matching loss of the returned restart.
        history: per-iteration records ``{"iteration", "loss"}`` plus ``"psnr"``
            when the notebook passed the truth for monitoring.
        snapshots: iteration -> images at that iteration (clamped to [0, 1]).
        diverged: the returned restart stopped on a NaN or infinite loss.
        restart: index of the returned restart.
        evaluations: number of loss evaluations (gradient computations) spent.
    """

    images: torch.Tensor
    labels: torch.Tensor
    loss: float
    history: list[dict[str, float]] = field(default_factory=list)
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    diverged: bool = False
    restart: int = 0
    evaluations: int = 0


def l2_gradient_distance(
    dummy: Sequence[torch.Tensor], observed: Sequence[torch.Tensor]
) -> torch.Tensor:
    """DLG's distance: the sum over layers of squared gradient differences."""
    return sum(((d - o) ** 2).sum() for d, o in zip(dummy, observed, strict=True))  # type: ignore[return-value]


def cosine_gradient_distance(
    dummy: Sequence[torch.Tensor], observed: Sequence[torch.Tensor]
) -> torch.Tensor:
    """One minus the cosine similarity of the two gradients taken as one vector."""
    dot = sum((d * o).sum() for d, o in zip(dummy, observed, strict=True))
    dummy_norm = torch.sqrt(sum((d * d).sum() for d in dummy))  # type: ignore[arg-type]
    observed_norm = torch.sqrt(sum((o * o).sum() for o in observed))  # type: ignore[arg-type]
    return 1 - dot / (dummy_norm * observed_norm).clamp_min(1e-12)


def infer_labels_from_last_layer(
    last_weight_gradient: torch.Tensor, num_images: int
) -> torch.Tensor:
    """Labels read off the gradient of the last linear layer's weight (iDLG).

    With cross-entropy and non-negative inputs to the last layer (sigmoid or
    ReLU features), row ``c`` of the weight gradient is ``(p_c - y_c) * a``:
    only the true class's row has a negative sum. For one image this recovers
    the label exactly (iDLG). For ``num_images > 1`` the ``num_images`` most
    negative rows are returned, which assumes distinct labels in the batch;
    repeated labels are not recovered and ``num_images`` may not exceed the
    number of classes.
    """
    if last_weight_gradient.ndim != 2:
        raise ValueError("expected the 2-D weight gradient of the last linear layer.")
    row_sums = last_weight_gradient.sum(dim=1)
    num_classes = row_sums.shape[0]
    if num_images > num_classes:
        raise ValueError(
            f"Cannot infer {num_images} distinct labels from {num_classes} classes; "
            "last-layer label inference needs num_images <= num_classes."
        )
    if num_images == 1:
        return row_sums.argmin().reshape(1)
    return torch.argsort(row_sums)[:num_images]


def _finite(value: float) -> bool:
    return math.isfinite(value)


def _monitor_psnr(images: torch.Tensor, truth: torch.Tensor) -> float:
    clamped = images.detach().clamp(0, 1)
    if clamped.shape[0] > 1:
        clamped = clamped[best_matching(clamped, truth)]
    return float(psnr(clamped, truth).mean())


@dataclass
class _Run:
    images: torch.Tensor
    extra: list[torch.Tensor]
    loss: float
    history: list[dict[str, float]]
    snapshots: dict[int, torch.Tensor]
    diverged: bool
    evaluations: int


def optimize(
    objective: Callable[[torch.Tensor, list[torch.Tensor]], torch.Tensor],
    images: torch.Tensor,
    extra: list[torch.Tensor],
    config: OptimConfig,
    *,
    truth: torch.Tensor | None = None,
    description: str = "attack",
) -> _Run:
    """Minimise ``objective(images, extra)`` over ``images`` and ``extra``.

    Args:
        objective: the matching loss; must build a graph through the variables.
        images: leaf tensor of dummy images, optimised in place.
        extra: further leaf tensors optimised alongside (e.g. DLG's dummy label).
        config: loop settings.
        truth: true images, only to record PSNR in the history for plots; the
            optimisation never reads it.
        description: progress-bar label.
    """
    variables = [images, *extra]
    for variable in variables:
        variable.requires_grad_(True)
    if config.optimizer == "lbfgs":
        optimizer: torch.optim.Optimizer = torch.optim.LBFGS(
            variables,
            lr=config.lr,
            max_iter=config.lbfgs_inner_steps,
            history_size=config.lbfgs_history,
        )
    else:
        optimizer = torch.optim.Adam(variables, lr=config.lr)

    evaluations = 0

    def closure() -> torch.Tensor:
        nonlocal evaluations
        optimizer.zero_grad()
        loss = objective(images, extra)
        loss.backward()
        evaluations += 1
        return loss

    history: list[dict[str, float]] = []
    snapshots: dict[int, torch.Tensor] = {}
    wanted = set(config.snapshot_iterations)
    if 0 in wanted:
        snapshots[0] = images.detach().clamp(0, 1).cpu().clone()
    last_good = [v.detach().clone() for v in variables]
    last_loss = math.inf
    diverged = False
    bar = tqdm(
        range(1, config.max_iterations + 1),
        desc=description,
        disable=not config.progress,
        mininterval=2.0,
        leave=False,
    )
    for iteration in bar:
        loss_tensor = optimizer.step(closure)
        loss = float(loss_tensor.detach()) if loss_tensor is not None else math.nan
        finite = _finite(loss) and all(bool(torch.isfinite(v).all()) for v in variables)
        if not finite:
            if config.on_divergence == "raise":
                raise AttackDiverged(
                    f"{description}: the gradient-matching loss became {loss} at "
                    f"iteration {iteration}. Lower the learning rate (lr={config.lr}), "
                    "switch the optimizer to 'adam', add restarts, or set "
                    "on_divergence='stop' to keep the last finite iterate and count "
                    "the trial as a failure."
                )
            diverged = True
            with torch.no_grad():
                for variable, good in zip(variables, last_good, strict=True):
                    variable.copy_(good)
            break
        if config.box_constraint:
            with torch.no_grad():
                images.clamp_(0, 1)
        last_good = [v.detach().clone() for v in variables]
        last_loss = loss
        record = {"iteration": float(iteration), "loss": loss}
        if truth is not None:
            record["psnr"] = _monitor_psnr(images, truth)
        history.append(record)
        if iteration in wanted:
            snapshots[iteration] = images.detach().clamp(0, 1).cpu().clone()
        if config.stop_loss is not None and loss < config.stop_loss:
            break
    bar.close()
    # Fill snapshots past an early stop with the final image, so figures stay aligned.
    final = images.detach().clamp(0, 1).cpu().clone()
    for iteration in wanted:
        snapshots.setdefault(iteration, final)
    return _Run(
        images=images.detach(),
        extra=[e.detach() for e in extra],
        loss=last_loss,
        history=history,
        snapshots=dict(sorted(snapshots.items())),
        diverged=diverged,
        evaluations=evaluations,
    )


def best_of_restarts(
    attempt: Callable[[int], tuple[_Run, torch.Tensor]], restarts: int
) -> Reconstruction:
    """Run ``attempt(restart)`` ``restarts`` times; keep the lowest final loss.

    ``attempt`` returns the run and the labels it settled on. A diverged run
    counts only if every run diverged.
    """
    best: tuple[_Run, torch.Tensor, int] | None = None
    evaluations = 0
    for restart in range(restarts):
        run, labels = attempt(restart)
        evaluations += run.evaluations
        key = (run.diverged, run.loss)
        if best is None or key < (best[0].diverged, best[0].loss):
            best = (run, labels, restart)
    assert best is not None
    run, labels, restart = best
    return Reconstruction(
        images=run.images.clamp(0, 1),
        labels=labels,
        loss=run.loss,
        history=run.history,
        snapshots=run.snapshots,
        diverged=run.diverged,
        restart=restart,
        evaluations=evaluations,
    )


def simulated_gradients(
    model: torch.nn.Module,
    images: torch.Tensor,
    target: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, ...]:
    """The gradient the model would send for ``(images, target)``, differentiable."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    loss = loss_fn(model(images), target)
    return torch.autograd.grad(loss, parameters, create_graph=True)


def attack_generator(seed: int, restart: int, device: torch.device) -> torch.Generator:
    """A generator for one restart's dummy initialisation."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed * 1000 + restart)
    return generator
