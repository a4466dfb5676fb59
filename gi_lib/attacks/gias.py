"""GIAS: Gradient Inversion with Generative Image Prior (Jeon, Kim, Lee, Oh and
Ok, NeurIPS 2021).

What is new over Inverting Gradients (GI-x, a search over pixels): the
attacker holds a generator trained on data like the client's, and searches
its input and then its weights instead of pixels.

1. **GI-z**, latent search: the images are ``G(z)``; ``z`` starts from a
   standard normal and moves by Adam (3e-2, cut tenfold at 3/8, 5/8 and 7/8
   of the steps) on the cosine distance between the simulated and the
   observed update, plus total variation (1e-6) on the normalised images.
   Several restarts; the one with the lowest gradient distance is kept (never
   one chosen by its PSNR). The generator is frozen.
2. **GIAS**, parameter search: from the best code ``z*``, each image of the
   batch gets its own copy of the generator, all starting at the pretrained
   weights, with its code frozen; the copies' weights are trained jointly by
   Adam (1e-3, same cuts) on the batch's gradient distance. No term keeps
   the copies near the pretrained weights (as in the official code). The
   copies are run batched with ``torch.func.stack_module_state`` and
   ``vmap`` (a loop over the copies when ``batched_copies`` is off).

The generator stays in eval mode throughout (its BatchNorm layers use their
running statistics; a copy sees one code, so train mode would normalise over
a batch of one). Both phases run on the shared loop
(:func:`gi_lib.attacks.base.optimize`) through its ``render`` hook: the
variables are codes or weights, the loop monitors and returns the images
they render.

Defaults follow the official code's 32-pixel ImageNet script
(``scripts/ours_v2_bs4.sh``: 500 latent steps with 3 restarts, then 5,000
parameter steps); pages set shorter budgets. Threat model: as the paper's
experiments, the server sees one client's FedSGD gradient, knows the model
(BatchNorm in eval mode) and the batch's labels (ground truth, unique within
the batch); without revealed labels they are read off the last layer
(iDLG's rule, distinct labels assumed). The attacker's extra knowledge is the
generator: trained on data from the client's distribution, never on the
attacked images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from gi_lib import fl
from gi_lib.attacks.base import (
    OptimConfig,
    Problem,
    Reconstruction,
    attack_generator,
    attack_labels,
    distance,
    fixed_labels,
    image_normalisation,
    optimize,
    pixel_space,
)
from gi_lib.attacks.inverting import Cost, simulated_update
from gi_lib.attacks.priors import Prior, add_priors
from gi_lib.attacks.registry import AttackRun, register_attack
from gi_lib.generators import TrainedGenerator, to_images


def latent_adam(**overrides: object) -> OptimConfig:
    """GIAS's latent search: Adam 3e-2 with the tenfold cuts, 500 steps,
    3 restarts run batched, no box (the generator bounds the images)."""
    settings: dict[str, object] = {
        "optimizer": "adam",
        "lr": 3e-2,
        "max_iterations": 500,
        "restarts": 3,
        "lr_decay": True,
        "batched_restarts": True,
        "monitor_every": 0,
    }
    return OptimConfig(**{**settings, **overrides})  # type: ignore[arg-type]


def parameter_adam(**overrides: object) -> OptimConfig:
    """GIAS's parameter search: Adam 1e-3 with the tenfold cuts, 5,000 steps,
    one run (restarts would all start from the same best code)."""
    settings: dict[str, object] = {
        "optimizer": "adam",
        "lr": 1e-3,
        "max_iterations": 5000,
        "lr_decay": True,
        "monitor_every": 0,
    }
    return OptimConfig(**{**settings, **overrides})  # type: ignore[arg-type]


def _check_common(cost: str, optim: OptimConfig) -> None:
    distance(cost)
    if optim.optimizer != "adam" or optim.signed or optim.box_constraint:
        raise ValueError(
            "GIAS's searches run plain Adam (optimizer='adam', signed=False, "
            "box_constraint=False: the generator bounds the images)."
        )


@dataclass(frozen=True)
class LatentConfig:
    """GI-z's settings (the first phase of GIAS).

    Attributes:
        optim: loop settings of the latent search (:func:`latent_adam`).
        cost: gradient distance (the paper's code: ``"cosine"``).
        priors: image priors on the normalised generated images (TV 1e-6).
        generator: the attacker's trained generator
            (:func:`gi_lib.generators.trained_generator`); required to attack.
    """

    optim: OptimConfig = field(default_factory=latent_adam)
    cost: Cost = "cosine"
    priors: tuple[Prior, ...] = (Prior("tv", 1e-6),)
    generator: TrainedGenerator | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_common(self.cost, self.optim)


@dataclass(frozen=True)
class GIASConfig:
    """GIAS's settings: a latent search, then per-image generator copies.

    Attributes:
        optim: loop settings of the parameter search (:func:`parameter_adam`);
            ``restarts`` must be 1.
        latent_optim: loop settings of the latent search (:func:`latent_adam`).
        cost: gradient distance of both phases (``"cosine"``).
        priors: image priors on the normalised generated images (TV 1e-6).
        batched_copies: run the generator copies with ``vmap`` over stacked
            weights; False loops over them (same numbers up to rounding).
        generator: the attacker's trained generator; required to attack.
    """

    optim: OptimConfig = field(default_factory=parameter_adam)
    latent_optim: OptimConfig = field(default_factory=latent_adam)
    cost: Cost = "cosine"
    priors: tuple[Prior, ...] = (Prior("tv", 1e-6),)
    batched_copies: bool = True
    generator: TrainedGenerator | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_common(self.cost, self.optim)
        _check_common(self.cost, self.latent_optim)
        if self.optim.restarts != 1:
            raise ValueError(
                "GIAS's parameter search starts every copy from the one best "
                f"code, so restarts would repeat it; set restarts=1, got "
                f"{self.optim.restarts}."
            )


@dataclass
class GIASReconstruction(Reconstruction):
    """GIAS's result, with its first phase kept.

    Attributes:
        latent: GI-z's reconstruction (the best restart of the latent search),
            from which the parameter search started.
        code: the best code ``z*`` ``(N, nz, 1, 1)``.
    """

    latent: Reconstruction | None = None
    code: torch.Tensor | None = None


def _require(generator: TrainedGenerator | None, observation: fl.Observation) -> None:
    if generator is None:
        raise ValueError(
            "GI-z and GIAS need the attacker's generator: pass generator= (a "
            "gi_lib.generators.TrainedGenerator) to build_attack."
        )
    shape = observation.image_shape
    if generator.generator.channels != shape[0] or generator.image_size != shape[1]:
        raise ValueError(
            f"the generator makes {generator.generator.channels}-channel "
            f"{generator.image_size}-pixel images; the observation has {shape}."
        )


@dataclass
class _Matching:
    """The gradient distance of pixel images, and the priors' objective."""

    observation: fl.Observation
    cost: str
    priors: tuple[Prior, ...]

    def __post_init__(self) -> None:
        labels, _ = attack_labels(self.observation)
        self.labels = labels
        self.update_of = simulated_update(self.observation, labels)
        self.match = distance(self.cost)
        self.mean, self.std = image_normalisation(
            self.observation.model, self.observation.image_shape[0]
        )

    def __call__(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        matching = self.match(self.update_of(pixels), self.observation.gradients)
        normalised = (pixels - self.mean) / self.std
        return matching, add_priors(matching, self.priors, normalised)


def latent_search(
    observation: fl.Observation,
    config: LatentConfig,
    *,
    seed: int = 0,
    truth: torch.Tensor | None = None,
) -> tuple[Reconstruction, torch.Tensor]:
    """GI-z: the best code by gradient distance, and its reconstruction."""
    _require(config.generator, observation)
    trained = config.generator
    assert trained is not None
    generator = trained.generator.eval().requires_grad_(False)
    device = observation.device
    matching = _Matching(observation, config.cost, config.priors)
    size = observation.image_shape[1]
    shape = (observation.num_images, generator.nz, 1, 1)

    def render(variables: list[torch.Tensor]) -> torch.Tensor:
        return to_images(generator(variables[0]), size)

    def objective(variables: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return matching(render(variables))

    def init(restart: int) -> list[torch.Tensor]:
        source = attack_generator(seed, restart, device)
        return [torch.randn(shape, generator=source, device=device)]

    problem = Problem(
        objective=objective,
        init=init,
        labels=fixed_labels(matching.labels),
        space=pixel_space(device),
        vmappable=True,
        description="GI-z",
        render=render,
    )
    result = optimize(problem, config.optim, truth=truth)
    return result, result.variables[0]


def generator_copies(
    generator: nn.Module, count: int, *, batched: bool = True
) -> tuple[list[str], list[torch.Tensor], Callable[..., torch.Tensor]]:
    """``count`` copies of ``generator``'s weights, stacked, and their forward.

    Returns:
        ``(names, weights, forward)``: the parameter names, one tensor per
        parameter with a leading copy axis ``(count, ...)`` (fresh copies of
        the pretrained weights), and ``forward(weights, codes)`` that runs
        copy ``k`` on code ``k`` (``codes (count, nz, 1, 1)``) in eval mode,
        batched with ``vmap`` or looped.
    """
    generator = generator.eval()
    params, buffers = stack_module_state([generator] * count)
    names = list(params)
    weights = [params[n].detach().clone() for n in names]
    shared_buffers = dict(generator.named_buffers())

    def one(weights_k: dict[str, torch.Tensor], code: torch.Tensor) -> torch.Tensor:
        return functional_call(
            generator, {**weights_k, **shared_buffers}, (code.unsqueeze(0),)
        ).squeeze(0)

    def forward(stacked: list[torch.Tensor], codes: torch.Tensor) -> torch.Tensor:
        if batched:
            return vmap(one)(dict(zip(names, stacked, strict=True)), codes)
        return torch.stack(
            [
                one({n: w[k] for n, w in zip(names, stacked, strict=True)}, codes[k])
                for k in range(codes.shape[0])
            ]
        )

    return names, weights, forward


def parameter_search(
    observation: fl.Observation,
    config: GIASConfig,
    code: torch.Tensor,
    *,
    truth: torch.Tensor | None = None,
) -> Reconstruction:
    """GIAS's second phase: per-image generator copies from the best code."""
    _require(config.generator, observation)
    trained = config.generator
    assert trained is not None
    device = observation.device
    matching = _Matching(observation, config.cost, config.priors)
    size = observation.image_shape[1]
    codes = code.detach().to(device)
    _, weights, forward = generator_copies(
        trained.generator, codes.shape[0], batched=config.batched_copies
    )

    def render(variables: list[torch.Tensor]) -> torch.Tensor:
        return to_images(forward(variables, codes), size)

    def objective(variables: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return matching(render(variables))

    problem = Problem(
        objective=objective,
        init=lambda _restart: [w.clone() for w in weights],
        labels=fixed_labels(matching.labels),
        space=pixel_space(device),
        description="GIAS",
        render=render,
    )
    return optimize(problem, config.optim, truth=truth)


@register_attack("gi_z", config=LatentConfig)
def reconstruct_latent(run: AttackRun[LatentConfig]) -> Reconstruction:
    """GI-z (GIAS's latent search): a trained generator's code, cosine, Adam.

    Searches the code of the attacker's ``generator`` (in the config) for
    images whose gradient matches one client's FedSGD gradient (BatchNorm in
    eval mode); restart ``r`` draws its codes from ``attack_generator(seed, r)``.
    """
    observation, config = run.observation, run.config
    result, _ = latent_search(observation, config, seed=run.seed, truth=run.truth)
    return result


@register_attack("gias", config=GIASConfig)
def reconstruct(run: AttackRun[GIASConfig]) -> GIASReconstruction:
    """GIAS: GI-z, then per-image copies of the generator's weights.

    The latent search (seeded by ``seed``), then each image's copy of the
    attacker's ``generator`` trained to match one client's FedSGD gradient
    (BatchNorm in eval mode).

    Returns:
        The parameter search's reconstruction; ``latent`` holds the latent
        search's (GI-z), ``evaluations`` counts both phases.
    """
    observation, config = run.observation, run.config
    latent_config = LatentConfig(
        optim=config.latent_optim,
        cost=config.cost,
        priors=config.priors,
        generator=config.generator,
    )
    latent, code = latent_search(
        observation, latent_config, seed=run.seed, truth=run.truth
    )
    result = parameter_search(observation, config, code, truth=run.truth)
    return result.extend(
        GIASReconstruction,
        restart=latent.restart,
        evaluations=latent.evaluations + result.evaluations,
        latent=latent,
        code=code,
    )
