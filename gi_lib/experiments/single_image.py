"""Attacking one image at a time with DLG or iDLG, as both papers do: the
DLG and iDLG notebooks' shared parameters and trials."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, TypeVar

import torch
from tqdm import tqdm

from gi_lib import data, fl, models

# Both attacks this module runs by name, imported so that the dependency on
# them is visible (to make, through the import graph).
from gi_lib.attacks import build_attack, dlg, idlg  # noqa: F401
from gi_lib.attacks.base import OptimConfig, Reconstruction, infer_labels
from gi_lib.experiments.common import (
    AttackedSample,
    attack_and_score,
    mean,
    mean_of,
)
from gi_lib.params import ExperimentParams, check_parameters, datasets_param, param

AttackName = Literal["dlg", "idlg"]
P = TypeVar("P", bound="SingleImageParams")


@dataclass(frozen=True, kw_only=True)
class SingleImageParams(ExperimentParams):
    """The parameters the DLG and iDLG notebooks share."""

    dataset: tuple[str, ...] = datasets_param()
    max_iterations: int = param("L-BFGS steps per attack (paper code: 300)", minimum=1)
    lr: float = param("L-BFGS step size (paper code: 1)", minimum=1e-6)
    success_psnr: float = param(
        "PSNR (dB) above which a trial counts as success", minimum=0
    )
    num_shown: int = param("images per data set shown in the figure", minimum=1)


def checker(cls: type[P], notebook: str) -> Callable[[Mapping[str, Any]], P]:
    """The ``check`` of a notebook whose parameters are ``cls``: check the
    values against it; figures show at most ``num_trials`` images."""

    def check(values: Mapping[str, Any]) -> P:
        params = check_parameters(values, cls, notebook=notebook)
        return dataclasses.replace(
            params, num_shown=min(params.num_shown, params.num_trials)
        )

    check.__doc__ = f"Check the {notebook} notebook's parameters (see {cls.__name__})."
    return check


def lbfgs(params: SingleImageParams, **options: Any) -> OptimConfig:
    """The papers' loop: L-BFGS with step ``lr`` for ``max_iterations`` steps
    (``options`` add to it); a diverged trial is a failed trial, not a crash."""
    return OptimConfig(
        optimizer="lbfgs",
        lr=params.lr,
        max_iterations=params.max_iterations,
        on_divergence="stop",
        **options,
    )


def run_datasets(
    params: SingleImageParams,
    attacks: tuple[AttackName, ...],
    optim: OptimConfig,
    device: torch.device,
    *,
    progress: bool,
) -> dict[str, list[AttackedSample]]:
    """:func:`run_trials` on each of the notebook's data sets."""
    return {
        name: run_trials(
            name,
            attacks,
            model=params.model,
            num_trials=params.num_trials,
            seed=params.seed,
            device=device,
            optim=optim,
            progress=progress,
        )
        for name in params.dataset
    }


def snapshot_schedule(max_iterations: int, count: int = 6) -> tuple[int, ...]:
    """Iterations to show in a figure: 0, a few early ones, and the last."""
    fractions = (0.0, 0.03, 0.1, 0.2, 0.5, 1.0)[:count]
    points = sorted({round(f * max_iterations) for f in fractions} | {max_iterations})
    return tuple(points)


def attack_one(
    attack: AttackName,
    observation: fl.Observation,
    optim: OptimConfig,
    *,
    seed: int,
    truth: torch.Tensor,
) -> Reconstruction:
    """Run DLG or iDLG (any registered attack with an ``optim``) on an observation."""
    return build_attack(attack, optim=optim).reconstruct(
        observation, seed=seed, truth=truth
    )


def run_trials(
    dataset: str,
    attacks: tuple[AttackName, ...],
    *,
    model: str,
    num_trials: int,
    seed: int,
    device: torch.device,
    optim: OptimConfig,
    progress: bool = True,
) -> list[AttackedSample]:
    """Attack ``num_trials`` victim images of ``dataset``, one per update.

    Each trial draws a victim image and a freshly initialised model (as the
    official iDLG code does), takes the client's FedSGD gradient, and runs
    every attack in ``attacks`` on the same observation with the same seed.
    Each record's ``setting`` is the attack's name.
    """
    info = data.dataset_info(dataset)
    victims, labels, _ = data.sample_victims(
        data.load_dataset(dataset), num_trials, seed
    )
    trials: list[AttackedSample] = []
    total = num_trials * len(attacks)
    with tqdm(
        total=total, desc=f"{dataset}", disable=not progress, mininterval=5.0
    ) as bar:
        for i in range(num_trials):
            truth = victims[i : i + 1].to(device)
            label = labels[i : i + 1].to(device)
            net = models.build_model(model, info, seed=seed + i).to(device)
            observation = fl.observe_fedsgd(
                net, truth, label, num_classes=info.num_classes
            )
            for attack in attacks:
                trials.append(
                    attack_and_score(
                        partial(
                            attack_one,
                            attack,
                            observation,
                            optim,
                            seed=seed + i,
                            truth=truth,
                        ),
                        truth,
                        setting=attack,
                        index=i,
                        true_labels=label,
                    )
                )
                bar.update(1)
    return trials


def idlg_label_accuracy(
    dataset: str, *, model: str, num_images: int, seed: int, device: torch.device
) -> tuple[float, int]:
    """Share of images whose label iDLG's analytic rule recovers.

    Cheap (one gradient per image), so it runs on many more images than the
    full reconstructions; each image gets a freshly initialised model. A data
    set smaller than ``num_images`` (the LFW subset has 200) is used whole.

    Returns:
        ``(accuracy, number of images checked)``.
    """
    info = data.dataset_info(dataset)
    images = data.load_dataset(dataset)
    count = min(num_images, len(images))  # type: ignore[arg-type]
    victims, labels, _ = data.sample_victims(images, count, seed)
    correct = 0
    for i in range(count):
        net = models.build_model(model, info, seed=seed + i).to(device)
        observation = fl.observe_fedsgd(
            net,
            victims[i : i + 1].to(device),
            labels[i : i + 1].to(device),
            num_classes=info.num_classes,
        )
        correct += int(infer_labels(observation).item() == int(labels[i]))
    return correct / count, count


def summarize(trials: list[AttackedSample], *, success_psnr: float) -> dict[str, float]:
    """Mean and median PSNR, SSIM, success rate and label accuracy of trials."""
    if not trials:
        raise ValueError("no trials to summarize")
    psnrs = torch.tensor([t.psnr for t in trials])
    return {
        "trials": float(len(trials)),
        "psnr_mean": mean_of(trials, "psnr"),
        "psnr_median": float(psnrs.median()),
        "ssim_mean": mean_of(trials, "ssim"),
        "mse_mean": mean_of(trials, "mse"),
        "success_rate": float((psnrs >= success_psnr).float().mean()),
        "label_accuracy": mean(t.label_accuracy for t in trials),
        "diverged": float(sum(t.diverged for t in trials)),
        "seconds_mean": mean_of(trials, "seconds"),
    }
