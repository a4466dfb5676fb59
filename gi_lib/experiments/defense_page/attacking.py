"""Attacking single images through defenses: victims and the client's pool,
the defended update an attacker observes, and the paired trials of every
attack of a page."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from tqdm import tqdm

from gi_lib import data, fl, metrics, models
from gi_lib.attacks import Attack
from gi_lib.defenses.base import Defense
from gi_lib.experiments.common import AttackedSample, attack_and_score
from gi_lib.experiments.defense_page.params import (
    POOL_SIZE,
    AttackBudgetParams,
    DefenseMaker,
    page_attacks,
)


def victims_and_pool(
    params: AttackBudgetParams,
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """The page's ``num_trials`` victim images and labels, and the client's
    other images (:data:`POOL_SIZE`) that a defense mixes them with."""
    count = params.num_trials
    images, labels, _ = data.sample_victims(
        data.load_dataset(params.dataset), count + POOL_SIZE, params.seed
    )
    return images[:count], labels[:count], (images[count:], labels[count:])


def unrelated_levels(params: AttackBudgetParams) -> list[float]:
    """Per victim, the mean PSNR of the client's other images against it: what
    a reconstruction that knows nothing of the victim scores (an attack at
    this level has recovered nothing)."""
    victims, _, (others, _) = victims_and_pool(params)
    return [
        float(metrics.psnr(others, victim.expand_as(others)).mean())
        for victim in victims
    ]


def attack_through_defenses(
    params: AttackBudgetParams,
    settings: Mapping[str, DefenseMaker],
    *,
    model: str,
    device: torch.device,
    networks: Mapping[str, nn.Module] | None = None,
    progress: bool = True,
) -> dict[str, dict[str, list[AttackedSample]]]:
    """Every attack of the page on ``num_trials`` images under every setting.

    Every setting sees the same victims and attack seeds, and every attack
    the same defended update of a victim under a setting.

    Args:
        params: the page's parameters: the attacks and their budgets, the
            data set, ``num_trials`` victim images (one per update) and the
            seed of victims, models, defenses and attack initialisation.
        settings: setting label -> defense maker (``NoDefense`` for the baseline).
        model: the attacked model, freshly initialised per trial (seed + trial)
            for the settings ``networks`` does not name.
        device: where to compute.
        networks: setting label -> the network attacked under it (a trained
            checkpoint, the same for every trial).
        progress: show a progress bar.

    Returns:
        attack name -> setting label -> one sample per trial.
    """
    attacks = page_attacks(params)
    networks = networks or {}
    unknown = sorted(set(networks) - set(settings))
    if unknown:
        raise ValueError(f"networks name settings that are not attacked: {unknown}.")
    num_trials, seed = params.num_trials, params.seed
    info = data.dataset_info(params.dataset)
    images, labels, pool = victims_and_pool(params)
    out: dict[str, dict[str, list[AttackedSample]]] = {
        a: {name: [] for name in settings} for a in attacks
    }
    total = num_trials * len(settings) * len(attacks)
    with tqdm(total=total, disable=not progress, mininterval=5.0) as bar:
        for i in range(num_trials):
            truth = images[i : i + 1].to(device)
            label = labels[i : i + 1].to(device)
            fresh = None
            for name, make in settings.items():
                net = networks.get(name)
                if net is None:
                    if fresh is None:
                        fresh = models.build_model(model, info, seed=seed + i)
                        fresh = fresh.to(device)
                    net = fresh
                step, observation = observe_defended(
                    net,
                    truth,
                    label,
                    make(pool, seed + i),
                    num_classes=info.num_classes,
                )
                for attack_name, attack in attacks.items():
                    out[attack_name][name].append(
                        attack_and_score(
                            lambda a=attack, o=observation, s=seed + i: a.reconstruct(
                                o, seed=s
                            ),
                            truth,
                            setting=name,
                            index=i,
                            sent_images=step.images if step.encoded else None,
                            true_labels=label,
                        )
                    )
                    bar.update(1)
    return out


def observe_defended(
    net: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    defense: Defense,
    *,
    num_classes: int,
    model_mode: fl.ModelMode = "eval",
    reveal_labels: bool = False,
    reveal_bn_statistics: bool = False,
) -> tuple[fl.ClientStep, fl.Observation]:
    """One defended FedSGD step of ``net`` on a private batch, and what the
    attacker observes of it (arguments as :func:`attack_defended`'s)."""
    step = fl.client_fedsgd(
        net,
        images,
        labels,
        num_classes=num_classes,
        model_mode=model_mode,
        defense=defense,
    )
    observation = fl.observe_round(
        net,
        [step],
        reveal_labels=reveal_labels,
        reveal_bn_statistics=reveal_bn_statistics,
    )
    return step, observation


def attack_defended(
    attack: Attack,
    net: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    defense: Defense,
    *,
    num_classes: int,
    seed: int,
    setting: str = "",
    index: int = 0,
    model_mode: fl.ModelMode = "eval",
    reveal_labels: bool = False,
    reveal_bn_statistics: bool = False,
) -> AttackedSample:
    """One defended FedSGD step of ``net`` on a private batch, attacked and scored.

    Args:
        attack: the attack.
        net: the global model.
        images, labels: the client's private batch.
        defense: what the client applies.
        num_classes: number of classes.
        seed: the attack's initialisation.
        setting, index: stored with the result.
        model_mode: the client's forward-pass mode (``"train"``: BatchNorm
            normalises with the batch's statistics).
        reveal_labels: the attacker is given the labels the client trained
            on (MixUp's soft labels under MixUp).
        reveal_bn_statistics: the attacker is given the BatchNorm statistics
            of the batch the client trained on (after the defense's encoding).
    """
    step, observation = observe_defended(
        net,
        images,
        labels,
        defense,
        num_classes=num_classes,
        model_mode=model_mode,
        reveal_labels=reveal_labels,
        reveal_bn_statistics=reveal_bn_statistics,
    )
    return attack_and_score(
        lambda: attack.reconstruct(observation, seed=seed),
        images,
        setting=setting,
        index=index,
        sent_images=step.images if step.encoded else None,
        true_labels=labels,
    )
