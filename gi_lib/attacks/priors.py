"""Image priors: named terms an attack's config lists.

A prior is a function ``(images, context) -> scalar`` registered under a
name; a config lists :class:`Prior` entries (name, weight, options), and the
attack adds ``weight * term`` to its matching loss, in the listed order.
``images`` are the dummy images in the space the attack optimises (the
model's normalised space for Inverting Gradients and its descendants), and
``context`` carries what a term needs beyond them (the BatchNorm statistics
the dummy batch produced in the simulated forward, and the target).

Registered here: ``"tv"`` (total variation, Inverting Gradients) and
``"bn_statistics"`` (the BatchNorm prior of Yin et al. 2021). Group
consistency (GradInversion) and a generator prior (GIAS) register the same
way, in their own modules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from gi_lib._registry import Registry
from gi_lib.batchnorm import BNStatistics


@dataclass
class PriorContext:
    """What prior terms may read besides the images.

    Attributes:
        bn_records: ``(mean, variance)`` at each BatchNorm input during the
            simulated forward of the dummy batch.
        bn_target: the statistics the BatchNorm prior pulls towards.
    """

    bn_records: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    bn_target: BNStatistics | None = None


PriorFn = Callable[..., torch.Tensor]
PRIORS: Registry[PriorFn] = Registry("prior")


def register_prior(name: str) -> Callable[[PriorFn], PriorFn]:
    """Register ``fn(images, context, **options) -> scalar`` as prior ``name``."""
    return PRIORS.register(name)


@dataclass(frozen=True)
class Prior:
    """One prior term of an attack's objective.

    Attributes:
        name: a registered prior (see :data:`PRIORS`).
        weight: its weight; 0 leaves the term out.
        options: keyword options of the term (e.g. ``first_multiplier``).
    """

    name: str
    weight: float
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        PRIORS.lookup(self.name)  # fails naming the choices
        if not self.weight >= 0:
            raise ValueError(
                f"prior {self.name!r} needs a weight >= 0, got {self.weight!r}."
            )


def add_priors(
    total: torch.Tensor,
    priors: tuple[Prior, ...],
    images: torch.Tensor,
    context: PriorContext | None = None,
) -> torch.Tensor:
    """``total`` plus each prior's weighted term, in the listed order."""
    context = context or PriorContext()
    for prior in priors:
        if prior.weight > 0:
            term = PRIORS[prior.name](images, context, **prior.options)
            total = total + prior.weight * term
    return total


@register_prior("tv")
def total_variation(images: torch.Tensor, _context: Any = None) -> torch.Tensor:
    """Anisotropic TV: mean absolute difference of neighbours, both directions."""
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().mean()
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().mean()
    return dx + dy


@register_prior("bn_statistics")
def bn_statistics(
    _images: torch.Tensor, context: PriorContext, first_multiplier: float = 1.0
) -> torch.Tensor:
    """Sum over layers of ``||mean - target mean|| + ||var - target var||``.

    The first layer's term is multiplied by ``first_multiplier``
    (DeepInversion's ``first_bn_multiplier``, 10 in NVlabs' code and
    hard-coded in breaching; GradAttack's option of that name defaults to 1).
    """
    records, target = context.bn_records, context.bn_target
    if target is None:
        raise ValueError("the BatchNorm prior needs target statistics.")
    if len(records) != len(target.means):
        raise ValueError(
            f"{len(records)} BatchNorm layers ran but the target has "
            f"{len(target.means)}."
        )
    terms = [
        torch.linalg.vector_norm(m - tm) + torch.linalg.vector_norm(v - tv)
        for (m, v), tm, tv in zip(records, target.means, target.variances, strict=True)
    ]
    weights = torch.ones(len(terms), device=terms[0].device)
    weights[0] = first_multiplier
    return (torch.stack(terms) * weights).sum()
