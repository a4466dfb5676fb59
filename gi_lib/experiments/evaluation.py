"""Huang et al. (NeurIPS 2021), the experiments: gradient inversion against
defenses, re-evaluated.

The attack is Inverting Gradients with a BatchNorm prior
(:mod:`gi_lib.attacks.bn_prior`) on one client's FedSGD gradient of a batch,
taken with BatchNorm in train mode on an early checkpoint of a BatchNorm
network. Four experiments share the victims and the attack:

1. **Main table**: attack PSNR/SSIM (LPIPS when its weights exist) and the
   test accuracy of a model trained under each defense: none, gradient
   pruning at several ratios, MixUp, Intra-InstaHide, and pruning combined
   with MixUp and with Intra-InstaHide. The attacker has the paper's strong
   assumptions (exact BatchNorm statistics, the labels the client trained on).
2. **Assumptions**: no defense; BatchNorm statistics known or not crossed with
   labels known or not.
3. **Training course**: no defense; the same attack on checkpoints after
   several epochs of training.
4. **Privacy-utility**: attack PSNR against test accuracy, one point per
   defense setting.

Each defended batch is encoded by the defense with the client's other images
as partners; attack quality is always measured against the private images,
one-to-one matched. The notebook's figures, tables and the paper's findings
are in :mod:`gi_lib.experiments.attacks_vs_defenses`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from gi_lib import data, metrics, models
from gi_lib.attacks import bn_prior, build_attack
from gi_lib.defenses import Combined, GradientPruning, InstaHide, MixUp, NoDefense
from gi_lib.defenses.base import Defense
from gi_lib.defenses.mixup import private_heavy_alpha
from gi_lib.defenses.utility import DefendedModel
from gi_lib.experiments.common import (
    AttackedSample,
    mixed_param,
    ratio_param,
    upper_param,
)
from gi_lib.experiments.defense_page import (
    POOL_SIZE,
    DefenseMaker,
    UtilityTrainingParams,
    attack_defended,
    train_utility,
)
from gi_lib.params import param, resolve_device


@dataclass(frozen=True, kw_only=True)
class EvaluationParams(UtilityTrainingParams):
    """The evaluation notebook's parameters."""

    batch_size: int = param("images in the attacked batch", minimum=1)
    max_iterations: int = param("attack iterations (Adam steps)", minimum=1)
    lr: float = param("attack step size (normalised space)", minimum=1e-6)
    tv_weight: float = param("TV weight, exact BN statistics", minimum=0)
    bn_weight: float = param("BN prior weight, exact statistics", minimum=0)
    realistic_tv_weight: float = param("TV weight, BN unknown", minimum=0)
    realistic_bn_weight: float = param("BN prior weight, unknown", minimum=0)
    ratios: tuple[float, ...] = ratio_param("gradient pruning ratios")
    k: int = mixed_param("images mixed by MixUp/InstaHide")
    upper: float = upper_param()
    combined_ratio: float = ratio_param("pruning in combos")
    combined_k: int = mixed_param("images mixed in combos")
    attack_epoch: int = param("epochs of the attacked checkpoint", minimum=0)
    checkpoints: tuple[int, ...] = param(
        "epochs for the training course (sorted, repeats dropped)", minimum=0
    )
    train_batch_size: int = param("images per training step", minimum=2)
    num_shown: int = param("images per batch shown in figures", minimum=1)


def defense_settings(params: EvaluationParams) -> dict[str, DefenseMaker]:
    """Setting label -> defense maker, in the order of the paper's table."""
    info = data.dataset_info(params.dataset)
    k, ck, upper = params.k, params.combined_k, params.upper
    cr = params.combined_ratio

    def mixup(size: int) -> DefenseMaker:
        return lambda pool, seed: MixUp(
            size, alpha=private_heavy_alpha(size), upper=upper, pool=pool, seed=seed
        )

    def instahide(size: int) -> DefenseMaker:
        return lambda pool, seed: InstaHide(
            size, upper=upper, pool=pool, center=info.mean, seed=seed
        )

    def pruned(inner: DefenseMaker) -> DefenseMaker:
        return lambda pool, seed: Combined(
            [inner(pool, seed), GradientPruning(cr)], seed=seed
        )

    out: dict[str, DefenseMaker] = {"none": lambda pool, seed: NoDefense(seed=seed)}
    for ratio in params.ratios:
        out[f"prune {ratio:g}"] = lambda pool, seed, r=ratio: GradientPruning(
            r, seed=seed
        )
    out[f"MixUp k={k}"] = mixup(k)
    out[f"Intra-InstaHide k={k}"] = instahide(k)
    out[f"prune {cr:g} + MixUp k={ck}"] = pruned(mixup(ck))
    out[f"prune {cr:g} + Intra-InstaHide k={ck}"] = pruned(instahide(ck))
    return out


def attack_batch(
    net: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    defense: Defense,
    *,
    num_classes: int,
    bn_known: bool,
    labels_known: bool,
    config: bn_prior.BNPriorConfig,
    seed: int,
    setting: str = "",
    index: int = 0,
) -> AttackedSample:
    """One defended FedSGD step of ``net`` on a private batch, then the attack.

    Args:
        net: the global model (BatchNorm runs in train mode on the client).
        images, labels: the client's private batch.
        defense: what the client applies.
        num_classes: number of classes.
        bn_known: the attacker knows the exact BatchNorm statistics of the
            batch the client trained on (after the defense's encoding);
            otherwise its prior targets the model's running statistics.
        labels_known: the attacker is given the labels the client trained on
            (MixUp's soft labels under MixUp); otherwise it infers them.
        config: attack settings.
        seed: the attack's initialisation.
        setting, index: stored with the result.
    """
    return attack_defended(
        build_attack("bn_prior", config=config),
        net,
        images,
        labels,
        defense,
        num_classes=num_classes,
        seed=seed,
        setting=setting,
        index=index,
        model_mode="train",
        reveal_labels=labels_known,
        reveal_bn_statistics=bn_known,
    )


ASSUMPTIONS = {
    "BN known, labels known": (True, True),
    "BN known, labels unknown": (True, False),
    "BN unknown, labels known": (False, True),
    "BN unknown, labels unknown": (False, False),
}
"""Experiment 2's settings: (BatchNorm statistics known, labels known)."""


@dataclass
class EvaluationRun:
    """Everything the notebook shows.

    Attributes:
        params: the run's parameters.
        device: where it ran.
        utility: defense setting -> the model trained under it.
        defenses: defense setting -> attacked batches (experiment 1).
        assumptions: attacker's knowledge -> attacked batches (experiment 2).
        course: checkpoint epochs -> attacked batches (experiment 3).
        unrelated_psnr: per batch, the PSNR of unrelated images against it.
        seconds: wall time of training and of the attacks.
    """

    params: EvaluationParams
    device: torch.device
    utility: dict[str, DefendedModel]
    defenses: dict[str, list[AttackedSample]]
    assumptions: dict[str, list[AttackedSample]]
    course: dict[int, list[AttackedSample]]
    unrelated_psnr: list[float] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def attack_config(
    params: EvaluationParams, *, bn_known: bool
) -> bn_prior.BNPriorConfig:
    """GradAttack's weights: the strong ones with exact statistics, else realistic."""
    return build_attack(
        "bn_prior",
        bn_target="observed" if bn_known else "running",
        max_iterations=params.max_iterations,
        lr=params.lr,
        tv_weight=params.tv_weight if bn_known else params.realistic_tv_weight,
        bn_statistics_weight=(
            params.bn_weight if bn_known else params.realistic_bn_weight
        ),
    ).config


def _train(
    params: EvaluationParams, defense: Defense, epochs: int, device: torch.device
) -> DefendedModel:
    return train_utility(
        params,
        params.model,
        defense,
        epochs=epochs,
        batch_size=params.train_batch_size,
        device=device,
    )


def checkpoint(
    params: EvaluationParams, epochs: int, device: torch.device
) -> nn.Module:
    """The undefended model after ``epochs`` epochs (0: the initialisation)."""
    if epochs == 0:
        info = data.dataset_info(params.dataset)
        return models.build_model(params.model, info, seed=params.seed).to(device)
    return _train(params, NoDefense(seed=params.seed), epochs, device).model


def unrelated_psnr(truth: torch.Tensor, others: torch.Tensor) -> float:
    """Mean PSNR of other images against ``truth``, matched as attacks are.

    The level an attack that recovers nothing of the private batch reaches;
    the pool's images are never the private ones.
    """
    matched = others[metrics.best_matching(others, truth)]
    return float(metrics.psnr(matched, truth).mean())


def evaluate(params: EvaluationParams, *, progress: bool = True) -> EvaluationRun:
    """Train the utility and checkpoint models, then run every attack.

    The caller sets the CPU threads (the notebook's ``run``).
    """
    device = resolve_device(params.device)
    seed, size = params.seed, params.batch_size
    settings = defense_settings(params)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    utility = {
        name: _train(params, make(None, seed), params.train_epochs, device)
        for name, make in tqdm(settings.items(), desc="utility", disable=not progress)
    }
    nets = {
        e: checkpoint(params, e, device)
        for e in dict.fromkeys((*params.checkpoints, params.attack_epoch))
    }
    seconds["training"] = time.perf_counter() - start

    count = params.num_trials * size
    images, labels, _ = data.sample_victims(
        data.load_dataset(params.dataset), count + max(POOL_SIZE, size), seed
    )
    pool = (images[count:], labels[count:])
    run = EvaluationRun(
        params=params,
        device=device,
        utility=utility,
        defenses={name: [] for name in settings},
        assumptions={name: [] for name in ASSUMPTIONS},
        course={e: [] for e in params.checkpoints},
        seconds=seconds,
    )
    total = params.num_trials * (
        len(settings) + len(ASSUMPTIONS) + len(params.checkpoints)
    )
    start = time.perf_counter()
    with tqdm(
        total=total, desc="attacks", disable=not progress, mininterval=5.0
    ) as bar:
        for trial in range(params.num_trials):
            batch = slice(trial * size, (trial + 1) * size)
            truth = images[batch].to(device)
            run.unrelated_psnr.append(unrelated_psnr(truth, pool[0][:size].to(device)))
            _attack_trial(
                run, nets, settings, pool, truth, labels[batch].to(device), trial, bar
            )
    seconds["attacks"] = time.perf_counter() - start
    return run


def _attack_trial(
    run: EvaluationRun,
    nets: dict[int, nn.Module],
    settings: dict[str, DefenseMaker],
    pool: tuple[torch.Tensor, torch.Tensor],
    truth: torch.Tensor,
    truth_labels: torch.Tensor,
    trial: int,
    bar: tqdm,
) -> None:
    """The three attack experiments on one private batch, appended to ``run``;
    ``bar`` advances once per result.

    The main table's undefended attack is also the strong-assumption one and
    the one on the attacked checkpoint: it runs once.
    """
    params = run.params
    seed = params.seed + trial
    info = data.dataset_info(params.dataset)

    def attack(
        setting: str,
        net: nn.Module,
        defense: Defense,
        bn_known: bool = True,
        labels_known: bool = True,
    ) -> AttackedSample:
        bar.update(1)
        return attack_batch(
            net,
            truth,
            truth_labels,
            defense,
            num_classes=info.num_classes,
            bn_known=bn_known,
            labels_known=labels_known,
            config=attack_config(params, bn_known=bn_known),
            seed=seed,
            setting=setting,
            index=trial,
        )

    def reuse(sample: AttackedSample) -> AttackedSample:
        bar.update(1)
        return sample

    attacked_net = nets[params.attack_epoch]
    for name, make in settings.items():
        run.defenses[name].append(attack(name, attacked_net, make(pool, seed)))
    strong = run.defenses["none"][-1]
    for name, (bn_known, labels_known) in ASSUMPTIONS.items():
        run.assumptions[name].append(
            reuse(strong)
            if bn_known and labels_known
            else attack(
                name, attacked_net, NoDefense(seed=seed), bn_known, labels_known
            )
        )
    for e in params.checkpoints:
        run.course[e].append(
            reuse(strong)
            if e == params.attack_epoch
            else attack(f"epoch {e}", nets[e], NoDefense(seed=seed))
        )
