"""Experiment 2 of Inverting Gradients: FedAvg updates over local epochs,
images and learning rates, attacked as if they were gradients."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import torch

from gi_lib import data, fl, models
from gi_lib.attacks import inverting
from gi_lib.experiments.common import AttackedSample, attack_and_score
from gi_lib.experiments.inverting_experiments.params import (
    FEDAVG_SEED_STRIDE,
    IGParams,
    _config,
)
from gi_lib.experiments.inverting_experiments.trials import distinct_label_victims


def fedavg_settings(params: IGParams) -> list[dict[str, float]]:
    """The base setting, then one factor changed at a time."""
    epochs, images, lrs = params.fedavg_epochs, params.fedavg_images, params.fedavg_lrs
    base = {"epochs": epochs[0], "images": images[0], "lr": lrs[0]}
    settings = [dict(base)]
    settings += [{**base, "epochs": e} for e in epochs[1:]]
    settings += [{**base, "images": n} for n in images[1:]]
    settings += [{**base, "lr": lr} for lr in lrs[1:]]
    return settings


def _local_steps(setting: dict[str, float], batch_size: int) -> tuple[int, int | None]:
    images = int(setting["images"])
    size = images if batch_size == 0 else min(batch_size, images)
    return int(setting["epochs"]) * (images // size), size


def _fedavg_trial(
    params: IGParams,
    device: torch.device,
    dataset: torch.utils.data.Dataset,
    net: torch.nn.Module,
    setting: dict[str, float],
    trial: int,
) -> tuple[fl.Observation, AttackedSample]:
    """One client of ``setting`` on image set ``trial``, attacked by unrolling."""
    info = data.dataset_info(params.dataset)
    truth, labels = distinct_label_victims(
        dataset, int(setting["images"]), params.seed + 1 + FEDAVG_SEED_STRIDE * trial
    )
    truth = truth.to(device)
    steps, size = _local_steps(setting, params.fedavg_batch_size)
    observation = fl.observe_fedavg(
        net,
        truth,
        labels.to(device),
        num_classes=info.num_classes,
        local_lr=setting["lr"],
        local_steps=steps,
        local_batch_size=size,
        reveal_labels=True,
    )
    label = (
        f"{int(setting['epochs'])} ep, {int(setting['images'])} img, "
        f"lr {setting['lr']:g}"
    )
    config = _config(params, params.fedavg_iterations)
    attacked = attack_and_score(
        partial(inverting.reconstruct, observation, config, seed=params.seed + trial),
        truth,
        setting=label,
        index=trial,
    )
    return observation, attacked


def most_steps(settings: list[dict[str, float]], batch_size: int) -> int:
    """Index of the setting with the most local steps (the first if tied)."""
    steps = [_local_steps(s, batch_size)[0] for s in settings]
    return steps.index(max(steps))


@dataclass
class FedAvgRun:
    """Experiment 2's records.

    Attributes:
        settings: ``(client setting with its local steps, record)`` per
            setting, all on image set 0.
        ignoring_steps: the base setting's update attacked as a gradient.
        trials: the setting with the most local steps (``trial_setting``) on
            image sets ``0 .. num_trials - 1`` (set 0 is its settings record).
        trial_setting: that setting, with its local steps.
    """

    settings: list[tuple[dict[str, float], AttackedSample]]
    ignoring_steps: AttackedSample
    trials: list[AttackedSample]
    trial_setting: dict[str, float]


def run_fedavg(
    params: IGParams,
    device: torch.device,
    dataset: torch.utils.data.Dataset,
    *,
    progress: bool = False,
) -> FedAvgRun:
    """Experiment 2: FedAvg updates on an untrained network.

    Image set ``t`` is drawn with seed ``seed + 1 + 10 t`` and attacked with
    seed ``seed + t``.
    """
    info = data.dataset_info(params.dataset)
    net = models.build_model(params.model, info, seed=params.seed).to(device)
    config = _config(params, params.fedavg_iterations)
    settings = fedavg_settings(params)
    out = []
    for setting in settings:
        observation, attacked = _fedavg_trial(
            params, device, dataset, net, setting, trial=0
        )
        steps, _ = _local_steps(setting, params.fedavg_batch_size)
        out.append(({**setting, "steps": steps}, attacked))
        if len(out) == 1:
            base_observation, base_truth = observation, attacked.true_images
        if progress:
            print(f"FedAvg {attacked.setting}: {attacked.psnr:.1f} dB", flush=True)
    ignoring = attack_and_score(
        partial(
            inverting.reconstruct,
            as_gradient(base_observation),
            config,
            seed=params.seed,
        ),
        base_truth.to(device),
        setting="ignoring local steps",
    )
    pick = most_steps(settings, params.fedavg_batch_size)
    trials = [out[pick][1]]
    for trial in range(1, params.num_trials):
        _, attacked = _fedavg_trial(
            params, device, dataset, net, settings[pick], trial=trial
        )
        trials.append(attacked)
        if progress:
            print(
                f"FedAvg {attacked.setting}, set {trial}: {attacked.psnr:.1f} dB",
                flush=True,
            )
    return FedAvgRun(
        settings=out, ignoring_steps=ignoring, trials=trials, trial_setting=out[pick][0]
    )


def as_gradient(observation: fl.Observation) -> fl.Observation:
    """A FedAvg update read as if it were one gradient (``-update``).

    The attack that ignores the local steps: it matches the (sign-flipped)
    weight difference with one simulated gradient on the whole batch.
    """
    return dataclasses.replace(
        observation,
        gradients=tuple(-u for u in observation.gradients),
        update_kind="gradient",
        local_lr=None,
        local_steps=None,
        local_batch_size=None,
    )
