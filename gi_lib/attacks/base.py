"""The shared optimisation loop and the pieces every optimisation attack uses.

An optimisation attack makes dummy data (and maybe dummy labels), computes the
update the model would produce on them, and moves the dummies so that this
update matches the observed one. :func:`optimize` is the one loop that every
optimisation attack runs: L-BFGS or Adam, steps on the sign of the gradient,
the step-size cuts of Inverting Gradients, optimisation in the model's
normalised image space with a box constraint, restarts batched with
``torch.func.vmap`` where the objective allows, one divergence policy, one
PSNR monitor, snapshots and a progress bar. An attack describes itself as a
:class:`Problem` (its variables, how to start them, its objective); the
matching distances (:data:`DISTANCES`) and image priors
(:mod:`gi_lib.attacks.priors`) are named terms its config lists. Each paper's
module holds only what is new in that paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Literal, TypeVar

import torch
from torch import nn
from torch.func import vmap
from tqdm import tqdm

from gi_lib import fl
from gi_lib._registry import Registry
from gi_lib.metrics import best_matching, psnr
from gi_lib.models import Normalize


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
            matching loss at its final iterate is returned.
        box_constraint: clamp the images, after every step, to the values that
            map to pixels in [0, 1].
        signed: step on the sign of the gradient (Inverting Gradients; Adam only).
        lr_decay: divide the step size by 10 at 3/8, 5/8 and 7/8 of
            ``max_iterations`` (Inverting Gradients' schedule).
        warmup_iterations: raise the step size linearly from ``lr /
            warmup_iterations`` to ``lr`` over the first this many steps
            (Adam only; 0: no warm-up).
        cosine_decay: after the warm-up, decay the step size from ``lr`` to 0
            along a half cosine over the remaining iterations (Adam only;
            not with ``lr_decay``).
        batched_restarts: run the restarts as one vectorised computation
            (``torch.func.vmap``; Adam only, and only for attacks whose
            objective is vmappable); the numbers agree with sequential
            restarts up to float rounding.
        stop_loss: stop early once the matching loss falls below this.
        on_divergence: ``"raise"`` stops with :class:`AttackDiverged`;
            ``"stop"`` freezes a restart whose loss became non-finite at its
            last finite iterate and counts it as failed.
        snapshot_iterations: iterations at which to keep a copy of the images.
        monitor_every: record PSNR (when the truth is given) every this many
            iterations and at the last; 0 picks about 50 points.
        compile: compile the matching step (objective and its gradient, as
            one ``torch.func`` function) with ``torch.compile``. Adam and
            vmappable objectives only. Compiling costs a minute or more up
            front and pays on long runs of large models (``make bench``
            prints the break-even step count); numbers agree with the eager
            step up to float rounding.
        progress: show a tqdm progress bar.
    """

    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    lr: float = 1.0
    max_iterations: int = 300
    lbfgs_inner_steps: int = 20
    lbfgs_history: int = 100
    restarts: int = 1
    box_constraint: bool = False
    signed: bool = False
    lr_decay: bool = False
    warmup_iterations: int = 0
    cosine_decay: bool = False
    batched_restarts: bool = False
    stop_loss: float | None = None
    on_divergence: Literal["raise", "stop"] = "raise"
    snapshot_iterations: tuple[int, ...] = ()
    monitor_every: int = 1
    compile: bool = False
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
        if not isinstance(self.monitor_every, int) or self.monitor_every < 0:
            raise ValueError(
                f"monitor_every must be an integer >= 0, got {self.monitor_every!r}."
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}.")
        if not isinstance(self.warmup_iterations, int) or self.warmup_iterations < 0:
            raise ValueError(
                "warmup_iterations must be an integer >= 0, got "
                f"{self.warmup_iterations!r}."
            )
        if self.lr_decay and self.cosine_decay:
            raise ValueError("choose one schedule: lr_decay or cosine_decay.")
        if self.optimizer == "lbfgs" and (self.warmup_iterations or self.cosine_decay):
            raise ValueError(
                "warm-up and cosine decay are schedules of optimizer='adam'."
            )
        if self.optimizer == "lbfgs" and (
            self.signed or self.batched_restarts or self.compile
        ):
            raise ValueError(
                "signed steps, batched restarts and the compiled step need "
                "optimizer='adam'; L-BFGS runs one restart at a time on the true "
                "gradient."
            )


def signed_adam(**overrides: object) -> OptimConfig:
    """Inverting Gradients' loop: Adam on the sign of the gradient, lr 0.1 cut
    tenfold at 3/8, 5/8 and 7/8 of the iterations (4,800 in rec_mult.py's
    "ours"), the box on, restarts batched; ``overrides`` change any setting."""
    settings: dict[str, object] = {
        "optimizer": "adam",
        "lr": 0.1,
        "max_iterations": 4800,
        "box_constraint": True,
        "signed": True,
        "lr_decay": True,
        "batched_restarts": True,
        "monitor_every": 0,
    }
    return OptimConfig(**{**settings, **overrides})  # type: ignore[arg-type]


@dataclass
class Reconstruction:
    """What an attack returns.

    Attributes:
        images: reconstructed images ``(N, C, H, W)``, clamped to [0, 1].
        labels: reconstructed or inferred labels ``(N,)``.
        loss: matching loss (without priors) of the returned restart at its
            final images.
        history: per-iteration records ``{"iteration", "loss"}``, plus
            ``"psnr"`` at the monitored iterations when the truth was passed
            (iteration 0, before any step, has loss NaN).
        snapshots: iteration -> images at that iteration (clamped to [0, 1]).
        diverged: the returned restart stopped on a NaN or infinite loss.
        restart: index of the returned restart.
        evaluations: number of loss evaluations (gradient computations) spent.
        variables: the returned restart's final variables (detached): the
            images for most attacks, the code or weights an attack with a
            ``render`` step optimised (empty when no loop ran).
    """

    images: torch.Tensor
    labels: torch.Tensor
    loss: float
    history: list[dict[str, float]] = field(default_factory=list)
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    diverged: bool = False
    restart: int = 0
    evaluations: int = 0
    variables: list[torch.Tensor] = field(default_factory=list)

    def extend(self, kind: type[R], **changes: object) -> R:
        """This reconstruction as the record ``kind`` (a subclass), with
        ``changes`` to its fields and values for ``kind``'s own fields."""
        copied = {f.name: getattr(self, f.name) for f in fields(Reconstruction)}
        return kind(**{**copied, **changes})


R = TypeVar("R", bound=Reconstruction)


# ---------------------------------------------------------------------------
# Matching distances
# ---------------------------------------------------------------------------


def l2_gradient_distance(
    dummy: Sequence[torch.Tensor], observed: Sequence[torch.Tensor]
) -> torch.Tensor:
    """DLG's distance: the sum over layers of squared gradient differences."""
    return sum(((d - o) ** 2).sum() for d, o in zip(dummy, observed, strict=True))  # type: ignore[return-value]


def cosine_distance(
    simulated: Sequence[torch.Tensor], observed: Sequence[torch.Tensor]
) -> torch.Tensor:
    """One minus the cosine similarity of both updates, each taken as one vector."""
    dot = sum((s * o).sum() for s, o in zip(simulated, observed, strict=True))
    norm_s = sum((s * s).sum() for s in simulated)
    norm_o = sum((o * o).sum() for o in observed)
    return 1 - dot / (torch.sqrt(norm_s) * torch.sqrt(norm_o)).clamp_min(1e-12)  # type: ignore[arg-type]


Distance = Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor]], torch.Tensor]
DISTANCES: Registry[Distance] = Registry(
    "matching distance", {"l2": l2_gradient_distance, "cosine": cosine_distance}
)


def distance(name: str) -> Distance:
    """The matching distance called ``name`` (see :data:`DISTANCES`)."""
    return DISTANCES.lookup(name)


# ---------------------------------------------------------------------------
# Side information every attack reads the same way
# ---------------------------------------------------------------------------


def last_linear_weight_index(model: nn.Module) -> int:
    """Position, among trainable parameters, of the last linear layer's weight."""
    linear_weights = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    indices = [
        i
        for i, p in enumerate(fl.trainable_parameters(model))
        if id(p) in linear_weights
    ]
    if not indices:
        raise ValueError(
            "Label inference needs a model whose output layer is nn.Linear."
        )
    return indices[-1]


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


def simulated_gradients(
    model: torch.nn.Module,
    images: torch.Tensor,
    target: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, ...]:
    """The gradient the model would send for ``(images, target)``, differentiable."""
    loss = loss_fn(model(images), target)
    return torch.autograd.grad(loss, fl.trainable_parameters(model), create_graph=True)


def attack_generator(seed: int, restart: int, device: torch.device) -> torch.Generator:
    """A generator for one restart's dummy initialisation."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed * 1000 + restart)
    return generator


# ---------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------

Variables = list[torch.Tensor]
Objective = Callable[[Variables], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class ImageSpace:
    """Where the dummy images live: ``pixels = z * std + mean``.

    Pixel space is ``mean=0, std=1``; Inverting Gradients optimises in the
    model's normalised space (:func:`normalised_space`), where the box that
    maps to pixels in [0, 1] is ``[-mean / std, (1 - mean) / std]``.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def to_pixels(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean

    @property
    def low(self) -> torch.Tensor:
        return -self.mean / self.std

    @property
    def high(self) -> torch.Tensor:
        return (1 - self.mean) / self.std


def pixel_space(device: torch.device) -> ImageSpace:
    """Images optimised as pixels."""
    return ImageSpace(torch.zeros((), device=device), torch.ones((), device=device))


def normalised_space(observation: fl.Observation) -> ImageSpace:
    """The model's normalised input space (pixel space if it has no Normalize)."""
    mean, std = image_normalisation(observation.model, observation.image_shape[0])
    return ImageSpace(mean.to(observation.device), std.to(observation.device))


@dataclass
class Problem:
    """One attack's optimisation problem, as the loop sees it.

    Attributes:
        objective: the variables of one restart (images first, in ``space``)
            -> ``(matching, total)``, both scalars: the matching loss alone
            (used to report, select restarts and detect divergence) and the
            matching loss plus the priors (what is minimised). Must build a
            graph through the variables.
        init: restart index -> its initial variables (images first).
        labels: the variables of one restart -> the labels it settled on.
        space: where the images live.
        vmappable: the objective works under ``torch.func.vmap``, so
            restarts can be batched.
        description: progress-bar label.
        after_step: called (without autograd) after every Adam step and
            before the box constraint, as ``after_step(iteration, variables,
            lr)`` with the variables of the restarts run together (each
            ``(G, ...)``) and the step size that step used; it may change
            the variables in place (a noise step, a consensus refresh).
        render: the variables of one restart -> its images in ``space``,
            for attacks whose variables are not the images (a generator's
            latent code or weights, GIAS); None when the images are the
            first variable. The loop calls it without gradients, to monitor,
            snapshot and return images; the box constraint needs it None.
    """

    objective: Objective
    init: Callable[[int], Variables]
    labels: Callable[[Variables], torch.Tensor]
    space: ImageSpace
    vmappable: bool = False
    description: str = "attack"
    after_step: Callable[[int, Variables, float], None] | None = None
    render: Callable[[Variables], torch.Tensor] | None = None

    def images(self, variables: Variables) -> torch.Tensor:
        """One restart's images in ``space`` (detached)."""
        if self.render is None:
            return variables[0].detach()
        with torch.no_grad():
            return self.render([v.detach() for v in variables])


def normal_start(
    seed: int, shape: tuple[int, ...], device: torch.device
) -> Callable[[int], Variables]:
    """``restart -> [images]`` drawn from a standard normal, one generator per
    restart (:func:`attack_generator`), so batched and sequential restarts
    start alike."""

    def init(restart: int) -> Variables:
        generator = attack_generator(seed, restart, device)
        return [torch.randn(shape, generator=generator, device=device)]

    return init


def fixed_labels(labels: torch.Tensor) -> Callable[[Variables], torch.Tensor]:
    """For attacks whose labels are given or inferred before the loop."""
    return lambda _variables: labels


def l2_matching_problem(
    simulate: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    observed: Sequence[torch.Tensor],
    labels: torch.Tensor,
    init: Callable[[int], Variables],
    device: torch.device,
    description: str,
) -> Problem:
    """DLG's problem with the labels fixed: images (in pixels, no prior) that
    minimise ``||simulate(images) - observed||^2``, the squared L2 distance
    between the simulated and the observed updates."""

    def objective(variables: Variables) -> tuple[torch.Tensor, torch.Tensor]:
        matching = l2_gradient_distance(simulate(variables[0]), observed)
        return matching, matching

    return Problem(
        objective=objective,
        init=init,
        labels=fixed_labels(labels),
        space=pixel_space(device),
        description=description,
    )


def warmup_cosine_factor(
    step: int, max_iterations: int, warmup: int, cosine: bool
) -> float:
    """The step size of step ``step`` (from 0) as a fraction of ``lr``: a
    linear warm-up over ``warmup`` steps, then a half cosine to 0 if
    ``cosine``, else constant."""
    if step < warmup:
        return (step + 1) / warmup
    if not cosine:
        return 1.0
    span = max(1, max_iterations - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(step - warmup, span) / span))


def lr_milestones(max_iterations: int) -> list[int]:
    """Inverting Gradients' decay points: ``n // 2.667, // 1.6, // 1.142``."""
    return [int(max_iterations // f) for f in (2.667, 1.6, 1.142)]


def _monitor(pixels: torch.Tensor, truth: torch.Tensor) -> list[float]:
    """PSNR of each restart ``(G, N, C, H, W)``, best-matched within a batch."""
    values = []
    for images in pixels:
        if images.shape[0] > 1:
            images = images[best_matching(images, truth)]
        values.append(float(psnr(images, truth).mean()))
    return values


@dataclass
class _Group:
    """The state and records of restarts optimised together."""

    variables: Variables  # each (G, ...)
    losses: list[list[float]]
    psnr_points: list[tuple[int, list[float]]]
    snapshots: dict[int, torch.Tensor]  # iteration -> (G, N, C, H, W)
    diverged: list[bool]
    evaluations: int = 0


class _Loop:
    """Runs :class:`Problem` under :class:`OptimConfig` for a group of restarts."""

    def __init__(
        self, problem: Problem, config: OptimConfig, truth: torch.Tensor | None
    ) -> None:
        self.problem = problem
        self.config = config
        self.truth = truth
        self.every = config.monitor_every or max(1, config.max_iterations // 50)
        self.wanted = set(config.snapshot_iterations)

    def evaluate(self, variables: Variables) -> tuple[torch.Tensor, torch.Tensor]:
        """``(matching, total)`` of every restart in the group, shapes ``(G,)``."""
        if self.config.batched_restarts:
            return vmap(lambda *v: self.problem.objective(list(v)))(*variables)
        pairs = [
            self.problem.objective([v[r] for v in variables])
            for r in range(variables[0].shape[0])
        ]
        return torch.stack([m for m, _ in pairs]), torch.stack([t for _, t in pairs])

    def step_function(
        self,
    ) -> Callable[[Variables], tuple[torch.Tensor, list[torch.Tensor]]]:
        """``variables -> (matching per restart, gradient of the summed total)``.

        Eager by default (autograd, as every attack has always run); with
        ``compile`` one ``torch.func`` function compiled by ``torch.compile``
        (a module refuses double backward under compile, a function does not).
        """
        if not self.config.compile:

            def eager(variables: Variables) -> tuple[torch.Tensor, list[torch.Tensor]]:
                matching, total = self.evaluate(variables)
                return matching, list(torch.autograd.grad(total.sum(), variables))

            return eager

        def summed(variables: Variables) -> tuple[torch.Tensor, torch.Tensor]:
            matching, total = self.evaluate(variables)
            return total.sum(), matching

        gradient = torch.func.grad(summed, has_aux=True)
        compiled = torch.compile(gradient, dynamic=False)

        def step(variables: Variables) -> tuple[torch.Tensor, list[torch.Tensor]]:
            grads, matching = compiled([v.detach() for v in variables])
            return matching, list(grads)

        return step

    def pixels(self, group: _Group) -> torch.Tensor:
        if self.problem.render is None:
            images = group.variables[0].detach()
        else:
            count = group.variables[0].shape[0]
            images = torch.stack(
                [
                    self.problem.images([v[r] for v in group.variables])
                    for r in range(count)
                ]
            )
        return self.problem.space.to_pixels(images).clamp(0, 1)

    def record(self, group: _Group, iteration: int) -> None:
        config = self.config
        if self.truth is not None and (
            iteration == 0
            or iteration % self.every == 0
            or iteration == config.max_iterations
        ):
            group.psnr_points.append(
                (iteration, _monitor(self.pixels(group), self.truth))
            )
        if iteration in self.wanted:
            group.snapshots[iteration] = self.pixels(group).cpu()

    def diverged_error(self, iteration: int, loss: float) -> AttackDiverged:
        return AttackDiverged(
            f"{self.problem.description}: the matching loss became {loss} at "
            f"iteration {iteration}. Lower the learning rate "
            f"(lr={self.config.lr}), switch the optimizer, add restarts, or set "
            "on_divergence='stop' to keep the last finite iterate and count the "
            "trial as a failure."
        )

    def box(self, variables: Variables) -> None:
        if self.config.box_constraint:
            space = self.problem.space
            with torch.no_grad():
                images = variables[0]
                images.copy_(
                    torch.maximum(torch.minimum(images, space.high), space.low)
                )

    def run(self, restarts: Sequence[int], bar: tqdm) -> _Group:
        starts = [self.problem.init(r) for r in restarts]
        variables = [
            torch.stack([s[i] for s in starts]).requires_grad_(True)
            for i in range(len(starts[0]))
        ]
        group = _Group(
            variables=variables,
            losses=[[] for _ in restarts],
            psnr_points=[],
            snapshots={},
            diverged=[False] * len(restarts),
        )
        self.record(group, 0)
        if self.config.optimizer == "lbfgs":
            self._lbfgs(group, bar)
        else:
            self._adam(group, bar)
        final = self.pixels(group).cpu()
        for iteration in self.wanted:
            group.snapshots.setdefault(iteration, final)
        return group

    def _adam(self, group: _Group, bar: tqdm) -> None:
        config = self.config
        variables = group.variables
        optimizer = torch.optim.Adam(variables, lr=config.lr)
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        if config.lr_decay:
            scheduler = torch.optim.lr_scheduler.MultiStepLR(
                optimizer, milestones=lr_milestones(config.max_iterations), gamma=0.1
            )
        elif config.warmup_iterations or config.cosine_decay:
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer,
                lambda step: warmup_cosine_factor(
                    step,
                    config.max_iterations,
                    config.warmup_iterations,
                    config.cosine_decay,
                ),
            )
        step = self.step_function()
        for iteration in range(1, config.max_iterations + 1):
            matching, gradients = step(variables)
            group.evaluations += len(group.diverged)
            values = matching.detach().cpu().tolist()
            bad = [
                not math.isfinite(v)
                or not all(bool(torch.isfinite(g[r]).all()) for g in gradients)
                for r, v in enumerate(values)
            ]
            if any(bad):
                if config.on_divergence == "raise":
                    first = values[bad.index(True)]
                    raise self.diverged_error(iteration, first)
                group.diverged = [
                    d or b for d, b in zip(group.diverged, bad, strict=True)
                ]
                if all(group.diverged):
                    break  # nothing left to move; keep the last finite iterate
                # A failed restart keeps its last finite images.
                for g in gradients:
                    g.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
                    for r, failed in enumerate(group.diverged):
                        if failed:
                            g[r] = 0
            for variable, g in zip(variables, gradients, strict=True):
                variable.grad = g.sign() if config.signed else g
            used_lr = float(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if self.problem.after_step is not None:
                with torch.no_grad():
                    self.problem.after_step(iteration, variables, used_lr)
            self.box(variables)
            for r, value in enumerate(values):
                group.losses[r].append(value)
            self.record(group, iteration)
            bar.update(1)
            if config.stop_loss is not None and max(values) < config.stop_loss:
                break

    def _lbfgs(self, group: _Group, bar: tqdm) -> None:
        config = self.config
        variables = group.variables
        optimizer = torch.optim.LBFGS(
            variables,
            lr=config.lr,
            max_iter=config.lbfgs_inner_steps,
            history_size=config.lbfgs_history,
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            _, total = self.evaluate(variables)
            loss = total.sum()
            loss.backward()
            group.evaluations += 1
            return loss

        last_good = [v.detach().clone() for v in variables]
        for iteration in range(1, config.max_iterations + 1):
            returned = optimizer.step(closure)
            loss = float(returned.detach()) if returned is not None else math.nan
            finite = math.isfinite(loss) and all(
                bool(torch.isfinite(v).all()) for v in variables
            )
            if not finite:
                if config.on_divergence == "raise":
                    raise self.diverged_error(iteration, loss)
                group.diverged = [True]
                with torch.no_grad():
                    for variable, good in zip(variables, last_good, strict=True):
                        variable.copy_(good)
                break
            self.box(variables)
            last_good = [v.detach().clone() for v in variables]
            group.losses[0].append(loss)
            self.record(group, iteration)
            bar.update(1)
            if config.stop_loss is not None and loss < config.stop_loss:
                break


def optimize(
    problem: Problem,
    config: OptimConfig,
    *,
    truth: torch.Tensor | None = None,
) -> Reconstruction:
    """Minimise ``problem``'s objective; return the best restart.

    Restarts run together when ``config.batched_restarts`` is set and the
    problem is vmappable, else one after another (always for L-BFGS, whose
    line search and history must not couple restarts). Each restart is then
    scored by its matching loss (no priors) at its final images; a diverged
    restart is returned only if every restart diverged.

    Args:
        problem: the attack's variables and objective.
        config: loop settings.
        truth: true images, only to record PSNR in the history for plots; the
            optimisation never reads it.
    """
    if (config.batched_restarts or config.compile) and not problem.vmappable:
        raise ValueError(
            f"{problem.description} cannot batch its restarts or compile its step "
            "(its objective is not a torch.func function); set "
            "batched_restarts=False and compile=False."
        )
    if config.box_constraint and problem.render is not None:
        raise ValueError(
            f"{problem.description} renders its images from its variables; the "
            "box constraint clamps image variables, so set box_constraint=False."
        )
    loop = _Loop(problem, config, truth)
    groups_of = (
        [list(range(config.restarts))]
        if config.batched_restarts
        else [[r] for r in range(config.restarts)]
    )
    bar = tqdm(
        total=config.max_iterations * len(groups_of),
        desc=problem.description,
        disable=not config.progress,
        mininterval=2.0,
        leave=False,
    )
    candidates: list[tuple[_Group, int]] = []
    try:
        for restarts in groups_of:
            group = loop.run(restarts, bar)
            candidates += [(group, i) for i in range(len(restarts))]
    finally:
        bar.close()
    # Score every restart by its matching loss (no prior) at its final images,
    # evaluated as the loop evaluates (batched restarts together).
    finals: list[float] = []
    for group in {id(g): g for g, _ in candidates}.values():
        with torch.enable_grad():
            matching, _ = loop.evaluate([v.detach() for v in group.variables])
        finals += [
            math.inf if failed or not math.isfinite(value) else value
            for failed, value in zip(
                group.diverged, matching.detach().cpu().tolist(), strict=True
            )
        ]
    best = min(
        range(len(candidates)),
        key=lambda k: (candidates[k][0].diverged[candidates[k][1]], finals[k]),
    )
    group, i = candidates[best]
    psnr_at = {iteration: values[i] for iteration, values in group.psnr_points}
    history: list[dict[str, float]] = []
    if 0 in psnr_at:
        history.append({"iteration": 0.0, "loss": math.nan, "psnr": psnr_at[0]})
    for iteration, loss in enumerate(group.losses[i], start=1):
        record = {"iteration": float(iteration), "loss": loss}
        if iteration in psnr_at:
            record["psnr"] = psnr_at[iteration]
        history.append(record)
    variables = [v[i].detach() for v in group.variables]
    return Reconstruction(
        images=problem.space.to_pixels(problem.images(variables)).clamp(0, 1),
        labels=problem.labels(variables),
        loss=finals[best],
        history=history,
        snapshots={k: v[i] for k, v in sorted(group.snapshots.items())},
        diverged=group.diverged[i],
        restart=best,
        evaluations=sum(
            g.evaluations for g in {id(g): g for g, _ in candidates}.values()
        ),
        variables=variables,
    )
