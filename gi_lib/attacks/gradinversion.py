"""GradInversion (Yin, Mallya, Vahdat, Alvarez, Kautz and Molchanov, "See
through Gradients: Image Batch Recovery via GradInversion", CVPR 2021).

What is new over Inverting Gradients and the BatchNorm prior:

- **Batch labels** read off the last layer's weight gradient by the row-min
  rule (:func:`gi_lib.labels.row_min_labels`) when the threat model does not
  grant them.
- **Gradient loss** (Eqn 3): ``alpha_G * sum_l ||grad_l(x) - observed_l||_2``,
  a sum over parameter tensors of *unsquared* L2 norms, ``alpha_G = 1e-3``.
- **Fidelity priors** (Eqn 9) as named prior terms on the normalised images:
  ``"tv"`` (1e-4; this library's anisotropic mean-absolute TV, see
  :func:`gi_lib.attacks.priors.total_variation`), ``"l2_norm"`` (1e-6, the
  L2 norm of the batch) and ``"bn_statistics"`` (0.1; per BatchNorm layer the
  unsquared distances of the dummy batch's mean and biased variance to a
  target). The first BatchNorm layer's term is multiplied by 10, as
  DeepInversion's code (``first_bn_multiplier``) and breaching's
  re-implementation do; the paper's text gives no such factor.
- **BatchNorm target** (Table 4): ``"running"`` (BN_approx, the model's
  running statistics) or ``"observed"`` (BN_exact, the batch's own
  statistics). A client that updates BatchNorm in train mode sends its
  running buffers for the global update; :func:`bn_exact_from_buffers`
  recovers the batch statistics from them (undoing the momentum, converting
  PyTorch's unbiased running variance to the biased one the prior compares).
- **Optimiser** (Sec. 3.5 as third parties read it): Adam, lr 0.1, 50 warm-up
  steps then cosine decay, not signed; after every step a Langevin-style
  noise step ``x <- x + lr(t) * alpha_n * eta``, ``eta ~ N(0, I)``,
  ``alpha_n = 0.2`` (through the loop's ``after_step`` hook).
- **Group consistency** (Eqns 11-12): ``G`` reconstructions of the whole
  batch from different seeds, optimised side by side; from iteration
  ``start`` on, every ``every`` steps a consensus per batch slot is formed
  and each seed's loss gets ``alpha_group * ||x_g - E||_2`` (``E`` held fixed
  between refreshes). The consensus is either the plain pixel mean
  (``"mean"``, the paper's "lazy" variant) or the mean after registering
  every seed's image to that mean by the best integer translation (within
  ``max_shift`` pixels, circular) and horizontal flip by normalised
  cross-correlation (``"translation"``): a stand-in for the paper's
  RANSAC-Flow registration, which needs pretrained flow weights and 224 px
  images. The attack reports every seed, the consensus and the best seed by
  gradient loss (:class:`GradInversionReconstruction`).

Threat model: the server sees one FedSGD gradient computed with BatchNorm in
train mode (the batch's own statistics), and the model; with BN_exact also
the batch's BatchNorm statistics (in the observation's ``bn_statistics``,
e.g. recovered from the client's sent buffers).

There is no official code. The coefficients follow a secondary summary of
the paper, matched by breaching's ``seethroughgradients.yaml`` and NVIDIA's
later FL gradient-inversion code (design notes:
``shared/refs/gradinversion-gias.md``, section A1).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from gi_lib import fl
from gi_lib.attacks.base import (
    OptimConfig,
    Problem,
    Reconstruction,
    fixed_labels,
    last_linear_weight_index,
    normal_start,
    normalised_space,
    optimize,
)
from gi_lib.attacks.bn_prior import simulated_client
from gi_lib.attacks.priors import (
    PRIORS,
    Prior,
    PriorContext,
    add_priors,
    register_prior,
)
from gi_lib.attacks.registry import AttackRun, register_attack
from gi_lib.batchnorm import BNStatistics, bn_layers, running_statistics
from gi_lib.labels import restore_labels

BNTarget = Literal["observed", "running"]
Registration = Literal["mean", "translation"]
Output = Literal["best_seed", "consensus"]
LabelRuleName = Literal["row_min", "row_sum", "count_aware"]
FIRST_BN_MULTIPLIER = 10.0
"""DeepInversion's ``first_bn_multiplier`` (NVlabs/DeepInversion's default,
hard-coded in breaching); not stated in the GradInversion paper."""


# ---------------------------------------------------------------------------
# Priors of the paper not yet in the library
# ---------------------------------------------------------------------------


@dataclass
class GroupContext(PriorContext):
    """:class:`PriorContext` plus the group consensus, ``(N, C, H, W)`` in the
    optimised space, or None before the first refresh."""

    consensus: torch.Tensor | None = None


if "l2_norm" not in PRIORS:

    @register_prior("l2_norm")
    def l2_norm(images: torch.Tensor, _context: object = None) -> torch.Tensor:
        """The L2 norm of the whole (normalised) batch, DeepInversion's
        ``R_l2`` (pulls towards the data mean in the normalised space)."""
        return torch.linalg.vector_norm(images)


if "group_consistency" not in PRIORS:

    @register_prior("group_consistency")
    def group_consistency(images: torch.Tensor, context: object) -> torch.Tensor:
        """``||x_g - E||_2``: the distance of one seed's batch to the group
        consensus ``E`` (zero before the first consensus)."""
        consensus = getattr(context, "consensus", None)
        if consensus is None:
            return images.new_zeros(())
        return torch.linalg.vector_norm(images - consensus)


def fidelity_priors(
    *,
    tv_weight: float = 1e-4,
    l2_weight: float = 1e-6,
    bn_weight: float = 0.1,
    first_bn_multiplier: float = FIRST_BN_MULTIPLIER,
) -> tuple[Prior, ...]:
    """GradInversion's fidelity regulariser (Eqn 9) as named prior terms."""
    return (
        Prior("tv", tv_weight),
        Prior("l2_norm", l2_weight),
        Prior("bn_statistics", bn_weight, {"first_multiplier": first_bn_multiplier}),
    )


# ---------------------------------------------------------------------------
# BN_exact: the batch's statistics from the buffers a client sends
# ---------------------------------------------------------------------------


def sent_bn_buffers(model: nn.Module, images: torch.Tensor) -> BNStatistics:
    """The running buffers a client sends after one train-mode forward of
    ``images`` (for a global BatchNorm update), computed on a copy.

    ``variances`` hold PyTorch's ``running_var``, which mixes in the batch's
    *unbiased* variance.
    """
    client = copy.deepcopy(model).train()
    with torch.no_grad():
        client(images)
    return running_statistics(client)


def _bn_input_sizes(model: nn.Module, image_shape: tuple[int, ...]) -> list[int]:
    """Spatial elements per channel (``H * W``) at each BatchNorm input."""
    sizes: list[int] = []
    probe = copy.deepcopy(model).eval()
    hooks = [
        layer.register_forward_hook(
            lambda _m, inputs, _o: sizes.append(int(inputs[0][0, 0].numel()))
        )
        for layer in bn_layers(probe)
    ]
    try:
        device = next(probe.parameters()).device
        with torch.no_grad():
            probe(torch.zeros(1, *image_shape, device=device))
    finally:
        for hook in hooks:
            hook.remove()
    return sizes


def bn_exact_from_buffers(
    model: nn.Module,
    sent: BNStatistics,
    num_images: int,
    image_shape: tuple[int, ...],
) -> BNStatistics:
    """The batch's own BatchNorm statistics, recovered from the sent buffers.

    A train-mode forward updates ``r_new = (1 - m) r_old + m s`` per layer
    (``m`` the layer's momentum; with ``momentum=None`` the cumulative
    average, ``m = 1 / num_batches_tracked`` after the step), with ``s`` the
    batch mean and the batch's *unbiased* variance. So
    ``s = (r_new - (1 - m) r_old) / m``, and the biased variance the prior
    compares is ``s_var * (n - 1) / n`` with ``n = N * H * W`` values per
    channel at that layer. Exact for one local forward; after several local
    steps the buffers mix batches.

    Args:
        model: the global model the server sent (its buffers are ``r_old``).
        sent: the buffers the client sent back (:func:`sent_bn_buffers`).
        num_images: the client's batch size ``N``.
        image_shape: ``(C, H, W)`` of one image.
    """
    layers = bn_layers(model)
    if len(layers) != len(sent.means):
        raise ValueError(
            f"the model has {len(layers)} BatchNorm layers but {len(sent.means)} "
            "buffers were sent."
        )
    sizes = _bn_input_sizes(model, image_shape)
    means, variances = [], []
    for layer, new_mean, new_var, size in zip(
        layers, sent.means, sent.variances, sizes, strict=True
    ):
        if layer.momentum is None:
            tracked = int(layer.num_batches_tracked) + 1  # type: ignore[arg-type]
            m = 1.0 / tracked
        else:
            m = float(layer.momentum)
        if not m > 0:
            raise ValueError("a BatchNorm momentum of 0 sends no batch statistics.")
        old_mean = layer.running_mean.to(new_mean)  # type: ignore[union-attr]
        old_var = layer.running_var.to(new_var)  # type: ignore[union-attr]
        n = num_images * size
        if n < 2:
            raise ValueError("one value per channel has no unbiased variance.")
        means.append((new_mean - (1 - m) * old_mean) / m)
        variances.append((new_var - (1 - m) * old_var) / m * (n - 1) / n)
    return BNStatistics(tuple(means), tuple(variances))


def with_sent_buffers(
    observation: fl.Observation, sent: BNStatistics
) -> fl.Observation:
    """The observation plus the batch statistics the server recovers from the
    client's sent buffers (:func:`bn_exact_from_buffers`): BN_exact."""
    stats = bn_exact_from_buffers(
        observation.model, sent, observation.num_images, observation.image_shape
    )
    return dataclasses.replace(observation, bn_statistics=stats.to(observation.device))


# ---------------------------------------------------------------------------
# Group consistency
# ---------------------------------------------------------------------------


def _candidates(image: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Every circular integer shift within ``max_shift`` of ``image`` and of
    its horizontal flip, ``(2 (2s + 1)^2, C, H, W)``."""
    out = []
    for flipped in (image, image.flip(-1)):
        for dy in range(-max_shift, max_shift + 1):
            for dx in range(-max_shift, max_shift + 1):
                out.append(torch.roll(flipped, shifts=(dy, dx), dims=(-2, -1)))
    return torch.stack(out)


def _ncc(candidates: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    a = candidates.flatten(1)
    a = a - a.mean(1, keepdim=True)
    b = reference.flatten() - reference.mean()
    return (a @ b) / (a.norm(dim=1) * b.norm()).clamp_min(1e-12)


def register_to(
    image: torch.Tensor, reference: torch.Tensor, max_shift: int
) -> torch.Tensor:
    """``image`` moved by the circular shift (within ``max_shift`` pixels) and
    flip that maximise its normalised cross-correlation with ``reference``."""
    candidates = _candidates(image, max_shift)
    return candidates[int(torch.argmax(_ncc(candidates, reference)))]


def registration_moves(seeds: torch.Tensor, max_shift: int = 3) -> float:
    """Fraction of the seeds' images ``(G, N, C, H, W)`` that
    :func:`register_to` moves (a shift or a flip) when registering them to
    the seeds' mean: 0 means the registered consensus is the lazy one."""
    mean = seeds.mean(0)
    identity = max_shift * (2 * max_shift + 1) + max_shift  # no flip, no shift
    moved = [
        int(torch.argmax(_ncc(_candidates(seeds[g, n], max_shift), mean[n])))
        != identity
        for g in range(seeds.shape[0])
        for n in range(seeds.shape[1])
    ]
    return sum(moved) / len(moved)


def consensus(
    seeds: torch.Tensor, registration: Registration = "mean", max_shift: int = 3
) -> torch.Tensor:
    """The group consensus of ``seeds`` ``(G, N, C, H, W)``, per batch slot.

    ``"mean"``: the pixel-wise mean over seeds (the paper's lazy consensus).
    ``"translation"``: each seed's image registered to that mean by
    :func:`register_to`, then averaged (the stand-in for RANSAC-Flow).
    """
    if seeds.ndim != 5:
        raise ValueError(f"seeds must be (G, N, C, H, W), got {tuple(seeds.shape)}.")
    mean = seeds.mean(0)
    if registration == "mean" or seeds.shape[0] == 1:
        return mean
    if registration != "translation":
        raise ValueError(
            f"registration must be 'mean' or 'translation', got {registration!r}."
        )
    registered = torch.stack(
        [
            torch.stack(
                [
                    register_to(seeds[g, n], mean[n], max_shift)
                    for n in range(seeds.shape[1])
                ]
            )
            for g in range(seeds.shape[0])
        ]
    )
    return registered.mean(0)


@dataclass(frozen=True)
class GroupConfig:
    """Group consistency (Eqns 11-12).

    Attributes:
        seeds: reconstructions of the whole batch run side by side (8 in the
            paper; 1 switches the group off).
        weight: ``alpha_group`` (0.01); 0 runs the seeds independently.
        start: first iteration of a consensus refresh, as a fraction of the
            iterations (the paper: 5,000 of an unknown total).
        every: iterations between refreshes (100).
        registration: ``"mean"`` (lazy) or ``"translation"`` (the stand-in
            for RANSAC-Flow: integer shifts and a flip).
        max_shift: the largest shift tried, in pixels.
        output: what :func:`reconstruct` returns as ``images``: the seed with
            the lowest gradient loss (``"best_seed"``) or the consensus.
    """

    seeds: int = 1
    weight: float = 0.01
    start: float = 0.25
    every: int = 100
    registration: Registration = "mean"
    max_shift: int = 3
    output: Output = "best_seed"

    def __post_init__(self) -> None:
        if not isinstance(self.seeds, int) or self.seeds < 1:
            raise ValueError(f"seeds must be a positive integer, got {self.seeds!r}.")
        if not self.weight >= 0:
            raise ValueError(f"weight must be >= 0, got {self.weight!r}.")
        if not 0 <= self.start <= 1:
            raise ValueError(f"start must be a fraction in [0, 1], got {self.start!r}.")
        if not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"every must be a positive integer, got {self.every!r}.")
        if self.registration not in ("mean", "translation"):
            raise ValueError(
                "registration must be 'mean' or 'translation', got "
                f"{self.registration!r}."
            )
        if self.max_shift < 0:
            raise ValueError(f"max_shift must be >= 0, got {self.max_shift!r}.")
        if self.output not in ("best_seed", "consensus"):
            raise ValueError(
                f"output must be 'best_seed' or 'consensus', got {self.output!r}."
            )


# ---------------------------------------------------------------------------
# The attack
# ---------------------------------------------------------------------------


def _gradinversion_optim() -> OptimConfig:
    # Adam lr 0.1 with 50 warm-up steps and cosine decay; 20,000 iterations
    # as breaching runs it (the paper's count is not known). Unsigned steps.
    return OptimConfig(
        optimizer="adam",
        lr=0.1,
        max_iterations=20_000,
        warmup_iterations=50,
        cosine_decay=True,
        box_constraint=True,
        on_divergence="stop",
        monitor_every=0,
    )


@dataclass(frozen=True)
class GradInversionConfig:
    """GradInversion's settings (defaults: the paper as summarised in the
    design notes; see the module docstring).

    Attributes:
        optim: loop settings (one loop restart holds all seeds of the group).
        gradient_weight: ``alpha_G`` of the unsquared L2 gradient loss (1e-3);
            0 leaves only the priors (the BN-only control).
        priors: the fidelity terms (TV, l2, BatchNorm with its first-layer
            multiplier); set a weight to 0 to drop a term.
        bn_target: ``"observed"`` (BN_exact) or ``"running"`` (BN_approx).
        noise: ``alpha_n`` of the Langevin step (0.2; 0 switches it off).
        label_rule: the rule for labels the observation does not carry.
        group: group consistency settings.
    """

    optim: OptimConfig = field(default_factory=_gradinversion_optim)
    gradient_weight: float = 1e-3
    priors: tuple[Prior, ...] = fidelity_priors()
    bn_target: BNTarget = "observed"
    noise: float = 0.2
    label_rule: LabelRuleName = "row_min"
    group: GroupConfig = field(default_factory=GroupConfig)

    def __post_init__(self) -> None:
        if self.optim.optimizer != "adam":
            raise ValueError("GradInversion uses Adam; set optimizer='adam'.")
        if self.optim.restarts != 1 or self.optim.batched_restarts:
            raise ValueError(
                "GradInversion runs its seeds as one group (group.seeds); set "
                "restarts=1 and batched_restarts=False."
            )
        if self.optim.compile:
            raise ValueError(
                "GradInversion's objective records BatchNorm "
                "statistics and cannot be compiled; set compile=False."
            )
        if self.bn_target not in ("observed", "running"):
            raise ValueError(
                f"bn_target must be 'observed' or 'running', got {self.bn_target!r}."
            )
        if not self.gradient_weight >= 0:
            raise ValueError(
                f"gradient_weight must be >= 0, got {self.gradient_weight!r}."
            )
        if not self.noise >= 0:
            raise ValueError(f"noise must be >= 0, got {self.noise!r}.")
        if self.label_rule not in ("row_min", "row_sum", "count_aware"):
            raise ValueError(
                "label_rule must be 'row_min', 'row_sum' or 'count_aware', got "
                f"{self.label_rule!r}."
            )


@dataclass
class GradInversionReconstruction(Reconstruction):
    """A :class:`Reconstruction` (``images``: the config's ``group.output``)
    with every seed of the group.

    Attributes:
        seeds: every seed's final images ``(G, N, C, H, W)`` in [0, 1].
        seed_losses: every seed's unsquared-L2 gradient loss at its final
            images (without ``alpha_G`` and priors).
        best_seed: the seed with the lowest gradient loss.
        consensus: the final consensus of the seeds, in [0, 1].
    """

    seeds: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    seed_losses: list[float] = field(default_factory=list)
    best_seed: int = 0
    consensus: torch.Tensor = field(default_factory=lambda: torch.empty(0))


def unsquared_l2_distance(
    simulated: tuple[torch.Tensor, ...] | list[torch.Tensor],
    observed: tuple[torch.Tensor, ...] | list[torch.Tensor],
) -> torch.Tensor:
    """GradInversion's Eqn 3 without ``alpha_G``: ``sum_l ||a_l - b_l||_2``."""
    return sum(  # type: ignore[return-value]
        torch.linalg.vector_norm(s - o)
        for s, o in zip(simulated, observed, strict=True)
    )


def batch_labels(observation: fl.Observation, rule: LabelRuleName) -> torch.Tensor:
    """The labels the attack uses: the observation's if granted, else ``rule``
    applied to the last linear layer's gradient."""
    if observation.labels is not None:
        return observation.labels.to(observation.device)
    if observation.update_kind != "gradient":
        raise ValueError("label restoration here reads a FedSGD gradient.")
    index = last_linear_weight_index(observation.model)
    weight = observation.gradients[index]
    linear = [m for m in observation.model.modules() if isinstance(m, nn.Linear)][-1]
    bias = observation.gradients[index + 1] if linear.bias is not None else None
    labels = restore_labels(rule, weight, observation.num_images, bias)
    return labels.to(observation.device)


@register_attack("gradinversion", config=GradInversionConfig)
def reconstruct(run: AttackRun[GradInversionConfig]) -> GradInversionReconstruction:
    """GradInversion: row-min labels, L2 + TV/l2/BN priors, Langevin, groups.

    Reconstructs a client's batch from a train-mode FedSGD gradient
    (``model_mode == "train"``; with ``bn_target="observed"`` the observation
    must carry ``bn_statistics``). Seed ``g`` of the group draws its initial
    images from ``attack_generator(seed, g)``; ``seed`` also seeds the Langevin
    noise. ``truth`` only records PSNR (mean over seeds).
    """
    observation, config = run.observation, run.config
    if observation.update_kind != "gradient" or observation.model_mode != "train":
        raise ValueError("GradInversion needs a FedSGD gradient taken in train mode.")
    device = observation.device
    if config.bn_target == "running":
        target = running_statistics(observation.model)
    elif observation.bn_statistics is None:
        raise ValueError(
            "bn_target='observed' (BN_exact) needs the batch's BatchNorm statistics "
            "in the observation (with_sent_buffers, or fl.observe_fedsgd(..., "
            "reveal_bn_statistics=True)); use bn_target='running' for BN_approx."
        )
    else:
        target = observation.bn_statistics.to(device)
    context = GroupContext(bn_target=target)
    attacker = simulated_client(observation.model, context.bn_records)
    parameters = fl.trainable_parameters(attacker)
    labels = batch_labels(observation, config.label_rule)
    space = normalised_space(observation)
    group = config.group
    seeds, n = group.seeds, observation.num_images
    shape = (n, *observation.image_shape)
    priors = tuple(p for p in config.priors if p.weight > 0)
    if group.weight > 0 and seeds > 1:
        priors = (*priors, Prior("group_consistency", group.weight))
    start = normal_start(run.seed, shape, device)

    def init(_restart: int) -> list[torch.Tensor]:
        return [torch.cat([start(g)[0] for g in range(seeds)])]

    def seed_terms(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        context.bn_records.clear()
        logits = attacker(space.to_pixels(x))
        simulated = torch.autograd.grad(
            fl.cross_entropy(logits, labels), parameters, create_graph=True
        )
        matching = unsquared_l2_distance(simulated, observation.gradients)
        total = add_priors(config.gradient_weight * matching, priors, x, context)
        return matching, total

    def objective(variables: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        (z,) = variables
        pairs = [seed_terms(x) for x in z.split(n)]
        matching = torch.stack([m for m, _ in pairs]).mean()
        total = torch.stack([t for _, t in pairs]).sum()
        return matching, total

    noise = torch.Generator(device=device)
    noise.manual_seed(run.seed * 1000 + 999)
    first = int(group.start * config.optim.max_iterations)

    def after_step(iteration: int, variables: list[torch.Tensor], lr: float) -> None:
        z = variables[0]
        if config.noise > 0:
            eta = torch.randn(z.shape, generator=noise, device=device)
            z.add_(lr * config.noise * eta)
        if (
            group.weight > 0
            and seeds > 1
            and iteration >= first
            and (iteration - first) % group.every == 0
        ):
            context.consensus = consensus(
                z[0].reshape(seeds, *shape), group.registration, group.max_shift
            )

    problem = Problem(
        objective=objective,
        init=init,
        labels=fixed_labels(labels),
        space=space,
        description="GradInversion",
        after_step=after_step,
    )
    monitor = None if run.truth is None else run.truth.repeat(seeds, 1, 1, 1)
    result = optimize(problem, config.optim, truth=monitor)
    all_seeds = result.images.reshape(seeds, *shape)
    losses = []
    for g in range(seeds):
        x = ((all_seeds[g] - space.mean) / space.std).detach()
        with torch.enable_grad():
            matching, _ = seed_terms(x)
        losses.append(float(matching.detach()))
    best = min(range(seeds), key=lambda g: losses[g])
    agreed = consensus(
        ((all_seeds - space.mean) / space.std), group.registration, group.max_shift
    )
    agreed_pixels = space.to_pixels(agreed).clamp(0, 1)
    images = all_seeds[best] if group.output == "best_seed" else agreed_pixels
    return result.extend(
        GradInversionReconstruction,
        images=images,
        labels=labels,
        loss=losses[best],
        snapshots={
            k: v.reshape(seeds, *shape)[best] for k, v in result.snapshots.items()
        },
        restart=best,
        variables=[],
        seeds=all_seeds,
        seed_losses=losses,
        best_seed=best,
        consensus=agreed_pixels,
    )
