"""The defense pages' parameters: attack budget, training, and the attacks a
page runs by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

# The attacks a page can run by name, imported so that the dependency on
# them is visible (to make, through the import graph).
from gi_lib.attacks import Attack, build_attack, dlg, idlg, inverting  # noqa: F401
from gi_lib.defenses.base import Defense
from gi_lib.models import model_names
from gi_lib.params import ExperimentParams, param

ATTACK_TITLES = {"dlg": "DLG", "idlg": "iDLG", "inverting": "Inverting Gradients"}
"""The attacks a defense page runs, by registry name. All three fit its
threat model: one image per FedSGD update, nothing known but the model and
the batch size (labels are read off the update where the attack needs
them). The BatchNorm-prior attack needs BatchNorm statistics, which these
pages' attacked models (LeNet, ConvNet in eval mode) do not give."""

ATTACK_SHORT = {"dlg": "DLG", "idlg": "iDLG", "inverting": "IG"}
"""The attacks' names where a figure has little room."""

POOL_SIZE = 64
"""Images of the client's own data a defense may mix the victim with."""

MIN_TRIALS = 3
"""Trials (images) a verdict on an attack's quality needs."""

TEST_IMAGES = 2000
"""Clean test images every training run of a defense page is scored on."""

DefenseMaker = Callable[[tuple[torch.Tensor, torch.Tensor] | None, int], Defense]
"""``(pool, seed) -> Defense``: a fresh defense for one trial or training
run; a pool of None mixes inside the training batch."""


@dataclass(frozen=True, kw_only=True)
class AttackBudgetParams(ExperimentParams):
    """What every defense page's attack takes: its budget and the figure."""

    max_iterations: int = param(
        "attack iterations (L-BFGS steps for DLG and iDLG; Adam steps for "
        "Inverting Gradients unless the page has inverting_iterations)",
        minimum=1,
    )
    num_shown: int = param("images shown in the figure", minimum=1)


@dataclass(frozen=True, kw_only=True)
class DefendedAttackParams(AttackBudgetParams):
    """A page that runs one attack through its defenses (the DP-SGD page's)."""

    attack: str = param(
        "attack run through every defense setting", choices=tuple(ATTACK_TITLES)
    )


@dataclass(frozen=True, kw_only=True)
class MultiAttackParams(AttackBudgetParams):
    """A page that runs several attacks through its defenses, each on the
    same defended updates (the pruning, MixUp and InstaHide pages')."""

    attacks: tuple[str, ...] = param(
        "attacks run through every defense setting, each on the same updates",
        choices=tuple(ATTACK_TITLES),
        unique=True,
    )
    inverting_iterations: int = param(
        "Adam steps of Inverting Gradients (max_iterations is DLG's and iDLG's)",
        minimum=1,
    )


@dataclass(frozen=True, kw_only=True)
class UtilityTrainingParams(ExperimentParams):
    """How a page trains its utility runs and checkpoints (the defense pages'
    and the attacks-vs-defenses evaluation's); each adds its batch size."""

    train_epochs: int = param("epochs of the utility runs", minimum=1)
    train_images: int = param("training images of every training run", minimum=64)
    train_lr: float = param("SGD step size of every training run", minimum=1e-6)


@dataclass(frozen=True, kw_only=True)
class TrainingParams(UtilityTrainingParams):
    """The utility runs of a defense page, and the model it attacks."""

    attack_model: str = param("the model attacked", choices=model_names)
    batch_size: int = param("images per training step", minimum=2)


@dataclass(frozen=True, kw_only=True)
class DefensePageParams(DefendedAttackParams, TrainingParams):
    """The DP-SGD page's: one attack on a freshly initialised ``attack_model``
    per trial, and the utility runs."""


@dataclass(frozen=True, kw_only=True)
class DefendedCheckpointParams(MultiAttackParams, TrainingParams):
    """The MixUp and InstaHide pages': several attacks, each setting attacked
    at a checkpoint of ``attack_model`` trained under that setting's defense."""

    attack_epochs: int = param(
        "epochs of the attacked checkpoint, trained under the setting's defense "
        "with the utility runs' images, step size and batch size (0: a freshly "
        "initialised model per trial)",
        minimum=0,
    )


PageParams = TypeVar("PageParams", bound=AttackBudgetParams)
TrainingPageParams = TypeVar("TrainingPageParams", bound=TrainingParams)


def attack_names(params: AttackBudgetParams) -> tuple[str, ...]:
    """The page's attacks by registry name: its ``attacks``, else its ``attack``."""
    if isinstance(params, MultiAttackParams):
        return params.attacks
    if isinstance(params, DefendedAttackParams):
        return (params.attack,)
    raise TypeError(f"{type(params).__name__} names no attack (attack or attacks).")


def attack_iterations(params: AttackBudgetParams, name: str) -> int:
    """The budget of attack ``name``: ``inverting_iterations`` for Inverting
    Gradients where the page has it, else ``max_iterations``."""
    if name == "inverting" and isinstance(params, MultiAttackParams):
        return params.inverting_iterations
    return params.max_iterations


def page_attacks(params: AttackBudgetParams) -> dict[str, Attack]:
    """The page's attacks, by name, with their papers' settings and this
    page's budgets; a diverged trial is a failed trial, not a crash."""
    return {
        name: build_attack(
            name,
            max_iterations=attack_iterations(params, name),
            on_divergence="stop",
        )
        for name in attack_names(params)
    }


def page_attack(params: AttackBudgetParams) -> Attack:
    """The page's first attack (see :func:`page_attacks`)."""
    return next(iter(page_attacks(params).values()))
