"""A defense page's run: checkpoints trained under each defense, the attacks
on them, and the utility of the defended training (:func:`run_defense_page`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic

import torch
from torch import nn

from gi_lib import data, models
from gi_lib.defenses.base import Defense
from gi_lib.defenses.utility import DefendedModel, train_with_defense
from gi_lib.experiments.common import AttackedSample
from gi_lib.experiments.defense_page.attacking import (
    attack_through_defenses,
    unrelated_levels,
)
from gi_lib.experiments.defense_page.params import (
    TEST_IMAGES,
    DefendedCheckpointParams,
    DefenseMaker,
    PageParams,
    TrainingPageParams,
    UtilityTrainingParams,
)
from gi_lib.params import ExperimentParams, ParameterError, resolve_device
from gi_lib.training import sample_split


@dataclass
class DefensePageRun(Generic[PageParams]):
    """Utility per training defense (none on the pruning page), the attacked
    checkpoints, and the trials of every attack under every attacked setting.

    Attributes:
        params: the page's parameters.
        device: where it computed.
        utility: training label -> the utility model trained under it.
        by_attack: attack name -> setting label -> one sample per trial.
        checkpoints: setting label -> the trained checkpoint attacked under
            it; a setting not named here was attacked on a freshly
            initialised model per trial.
        test_correct: training label -> 1.0 / 0.0 per clean test image,
            whether the utility model classifies it correctly (where the page
            asked for them; see :func:`correct_per_test_image`).
        unrelated: per trial, the PSNR an unrelated image of the data set
            scores against the victim (:func:`unrelated_levels`).
    """

    params: PageParams
    device: torch.device
    utility: dict[str, DefendedModel]
    by_attack: dict[str, dict[str, list[AttackedSample]]]
    checkpoints: dict[str, DefendedModel] = field(default_factory=dict)
    test_correct: dict[str, list[float]] = field(default_factory=dict)
    unrelated: list[float] = field(default_factory=list)

    @property
    def attacks(self) -> tuple[str, ...]:
        """The attacks run, by registry name, the page's first attack first."""
        return tuple(self.by_attack)

    @property
    def trials(self) -> dict[str, list[AttackedSample]]:
        """Setting label -> trials of the page's first attack."""
        return self.by_attack[self.attacks[0]]

    def psnr(self, attack: str, setting: str) -> list[float]:
        """PSNR (dB) of every trial of ``attack`` under ``setting``, in trial order."""
        return [t.psnr for t in self.by_attack[attack][setting]]


def train_utility(
    params: UtilityTrainingParams,
    model: str,
    defense: Defense,
    *,
    epochs: int,
    batch_size: int,
    device: torch.device,
    progress: bool = False,
    prepare: Callable[[nn.Module], nn.Module] | None = None,
) -> DefendedModel:
    """``model`` trained ``epochs`` epochs under ``defense`` with the page's
    seed, training images and step size, scored on :data:`TEST_IMAGES` clean
    test images; cached (arguments as :func:`train_with_defense`'s)."""
    return train_with_defense(
        model,
        params.dataset,
        defense,
        epochs=epochs,
        seed=params.seed,
        device=device,
        num_images=params.train_images,
        test_images=TEST_IMAGES,
        lr=params.train_lr,
        batch_size=batch_size,
        prepare=prepare,
        progress=progress,
    )


def attacked_checkpoint(
    params: DefendedCheckpointParams, defense: Defense, *, device: torch.device
) -> nn.Module:
    """The network a page attacks under ``defense``: ``attack_model`` trained
    ``attack_epochs`` epochs with it, as the page's run trains it (the same
    cache file), or a freshly initialised one (seed ``params.seed``) when
    ``attack_epochs`` is 0."""
    if params.attack_epochs == 0:
        info = data.dataset_info(params.dataset)
        return models.build_model(params.attack_model, info, seed=params.seed).to(
            device
        )
    trained = train_utility(
        params,
        params.attack_model,
        defense,
        epochs=params.attack_epochs,
        batch_size=params.batch_size,
        device=device,
    )
    return trained.model


def run_defense_page(
    params: TrainingPageParams,
    training: Mapping[str, Defense],
    attacked: Mapping[str, DefenseMaker],
    *,
    checkpoints: Mapping[str, Callable[[], Defense]] | None = None,
    checkpoint_epochs: int = 0,
    per_image_accuracy: bool = False,
    progress: bool = True,
    prepare: Callable[[nn.Module], nn.Module] | None = None,
) -> DefensePageRun[TrainingPageParams]:
    """Train ``params.model`` under each training defense, then attack
    ``params.attack_model`` through each attacked setting.

    The caller's ``run`` sets the CPU threads (``uses_num_threads``).

    Args:
        params: the page's parameters.
        training: label -> defense the utility model trains under.
        attacked: label -> maker of the defense an attacked client applies.
        checkpoints: attacked label -> maker of the defense the attacked
            model trains under before that setting is attacked (as GradAttack
            attacks a model trained with the defense); settings it does not
            name are attacked on a freshly initialised model per trial.
        checkpoint_epochs: epochs of those checkpoints (0: none are trained,
            every setting is attacked on a fresh model per trial).
        per_image_accuracy: record which test images each utility model
            classifies correctly (for paired accuracy claims; one pass of
            each model over the test images).
        progress: show progress bars.
        prepare: a transform of the model before training (DP-SGD's
            BatchNorm-free copy; see :func:`train_with_defense`).
    """
    device = resolve_device(params.device)
    # The utility runs and the checkpoints train alike (the page's seed,
    # images, step size and batch size) and share the cache of
    # :func:`train_with_defense`: a checkpoint that equals a utility run (same
    # model, defense and epochs) is trained once.
    train = functools.partial(
        train_utility,
        params,
        batch_size=params.batch_size,
        device=device,
        progress=progress,
        prepare=prepare,
    )
    utility = {
        name: train(params.model, defense, epochs=params.train_epochs)
        for name, defense in training.items()
    }
    trained: dict[str, DefendedModel] = {}
    if checkpoints and checkpoint_epochs > 0:
        unknown = sorted(set(checkpoints) - set(attacked))
        if unknown:
            raise ParameterError(f"checkpoints name settings not attacked: {unknown}.")
        trained = {
            name: train(params.attack_model, make(), epochs=checkpoint_epochs)
            for name, make in checkpoints.items()
        }
    by_attack = attack_through_defenses(
        params,  # type: ignore[arg-type]
        attacked,
        model=params.attack_model,
        device=device,
        networks={name: m.model for name, m in trained.items()},
        progress=progress,
    )
    correct = (
        {
            name: classify_test_images(params, m.model, device)
            for name, m in utility.items()
        }
        if per_image_accuracy
        else {}
    )
    return DefensePageRun(
        params,  # type: ignore[arg-type]
        device,
        utility,
        by_attack,
        trained,
        correct,
        unrelated_levels(params),
    )


def classify_test_images(
    params: ExperimentParams, net: nn.Module, device: torch.device
) -> list[float]:
    """1.0 / 0.0 per clean test image (the :data:`TEST_IMAGES` a utility
    run's accuracy is measured on): whether ``net`` classifies it correctly."""
    images, labels = sample_split(params.dataset, "test", TEST_IMAGES, params.seed + 1)
    net.eval()
    flags: list[float] = []
    with torch.no_grad():
        for start in range(0, len(labels), 500):
            batch = images[start : start + 500].to(device)
            predicted = net(batch).argmax(1).cpu()
            flags += (predicted == labels[start : start + 500]).float().tolist()
    return flags
