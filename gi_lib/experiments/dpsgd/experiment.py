"""The DP-SGD page's run: DP-SGD training per target epsilon and the attack
through its noise (:func:`run`, :class:`DPSGDRun`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gi_lib.defenses import DPSGD, NoDefense, dp_mnist
from gi_lib.defenses.dpsgd import epsilon, noise_for_epsilon
from gi_lib.experiments import defense_page
from gi_lib.experiments.common import AttackedSample, uses_num_threads
from gi_lib.experiments.dpsgd.accountant import AccountantCheck, accountant_check
from gi_lib.experiments.dpsgd.params import (
    PAPER_MOMENTS,
    DPSGDParams,
    attack_label,
    label,
)
from gi_lib.params import ParameterError, call_with_fields, resolve_device
from gi_lib.training import sample_split


@dataclass
class DPSGDRun:
    """The page's result.

    Attributes:
        params: the checked parameters.
        device: where the attack ran (the utility runs train on the CPU).
        non_private: the network trained without privacy.
        private: target-epsilon label -> the private run.
        noise: target-epsilon label -> its noise multiplier.
        epsilons: target-epsilon label -> epsilon spent after each epoch of
            its curve (``curve_epochs``), the DP-PCA included.
        accountant: the paper's accountant example at 100 and 400 epochs.
        trials: attacked setting -> attack trials (``none`` first).
        test_count: test images the accuracies are measured on.
    """

    params: DPSGDParams
    device: torch.device
    non_private: dp_mnist.PrivateRun
    private: dict[str, dp_mnist.PrivateRun]
    noise: dict[str, float]
    epsilons: dict[str, list[float]]
    accountant: list[AccountantCheck]
    trials: dict[str, list[AttackedSample]]
    test_count: int

    @property
    def attacks(self) -> tuple[str, ...]:
        """The page's one attack, by registry name (as a defense page's run)."""
        return (self.params.attack,)

    @property
    def by_attack(self) -> dict[str, dict[str, list[AttackedSample]]]:
        """Attack name -> setting label -> trials (as a defense page's run)."""
        return {self.params.attack: self.trials}


def settings(
    params: DPSGDParams, noise: float | None, pca_noise: float
) -> dp_mnist.TrainingSettings:
    """One utility run's settings from the page's parameters: the fields of
    the same names, ``train_epochs`` as ``epochs``, and this run's noise."""
    return call_with_fields(
        dp_mnist.TrainingSettings,
        params,
        noise_multiplier=noise,
        pca_noise=pca_noise,
        epochs=params.train_epochs,
    )


@uses_num_threads
def run(params: DPSGDParams, *, progress: bool = True) -> DPSGDRun:
    """The non-private and private utility runs, the accountant example, and
    the attack with no defense and through each noise multiplier."""
    device = resolve_device(params.device)
    images, labels = sample_split(
        params.dataset, "train", params.train_images, params.seed
    )
    test_images, test_labels = sample_split(
        params.dataset, "test", params.test_images, params.seed + 1
    )
    try:
        sample_rate, steps = dp_mnist.lot_schedule(
            len(labels), params.lot_size, params.train_epochs
        )
    except ValueError as error:
        raise ParameterError(str(error)) from None

    def train(noise: float | None, pca_noise: float) -> dp_mnist.PrivateRun:
        return dp_mnist.train(
            settings(params, noise, pca_noise),
            images,
            labels,
            test_images,
            test_labels,
            progress=progress,
        )

    non_private = train(None, 0.0)
    private, noise, epsilons = {}, {}, {}
    for target, pca_noise in zip(params.target_epsilons, params.pca_noise, strict=True):
        name = label(target)
        noise[name] = noise_for_epsilon(
            target,
            sample_rate=sample_rate,
            steps=steps,
            delta=params.delta,
            pca_noise=pca_noise,
        )
        private[name] = train(noise[name], pca_noise)
        epsilons[name] = [
            epsilon(
                noise_multiplier=noise[name],
                sample_rate=sample_rate,
                steps=private[name].steps_after(epoch),
                delta=params.delta,
                pca_noise=pca_noise,
            )
            for epoch in private[name].curve_epochs
        ]
    clip = params.clip_norm
    attacked: dict[str, defense_page.DefenseMaker] = {
        "none": lambda pool, s: NoDefense(seed=s)
    }
    attacked |= {
        attack_label(v): (
            lambda pool, s, _v=v: DPSGD(clip_norm=clip, noise_multiplier=_v, seed=s)
        )
        for v in params.noise_multipliers
    }
    trials = defense_page.attack_through_defenses(
        params, attacked, model=params.attack_model, device=device, progress=progress
    )[params.attack]
    accountant = [accountant_check(epochs) for epochs in PAPER_MOMENTS]
    return DPSGDRun(
        params,
        device,
        non_private,
        private,
        noise,
        epsilons,
        accountant,
        trials,
        len(test_labels),
    )


def spent(result: DPSGDRun, name: str, epoch: int | None = None) -> float:
    """Epsilon a private run has spent after ``epoch`` epochs of its curve
    (the last by default), the DP-PCA included."""
    trained = result.private[name]
    epoch = trained.curve_epochs[-1] if epoch is None else epoch
    return result.epsilons[name][trained.curve_epochs.index(epoch)]


def target_of(result: DPSGDRun, name: str) -> float:
    """A private run's target epsilon."""
    return result.params.target_epsilons[list(result.private).index(name)]
