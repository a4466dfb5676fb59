"""The GradInversion page's run: the trained network, the label sweep,
the prior ablation and the group arms on unique-label batches."""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field

import torch

from gi_lib import data, fl, metrics, models, training

# The attacks this page runs by name, imported so the dependency is visible.
from gi_lib.attacks import bn_prior, build_attack  # noqa: F401
from gi_lib.attacks import gradinversion as gi
from gi_lib.experiments.common import uses_num_threads
from gi_lib.experiments.gradinversion.labels import LabelPoint, label_sweep
from gi_lib.experiments.gradinversion.params import (
    ARMS,
    GROUP_ARMS,
    GradInversionParams,
)
from gi_lib.labels import multiset_accuracy
from gi_lib.params import call_with_fields, resolve_device


@dataclass
class Attacked:
    """One arm on one batch: the returned images and their scores."""

    arm: str
    trial: int
    images: torch.Tensor  # matched to the truth
    psnr: list[float]  # per image
    label_accuracy: float
    seconds: float
    history: list[tuple[float, float]] = field(default_factory=list)
    seeds_psnr: list[float] = field(default_factory=list)  # mean per seed
    best_seed_psnr: float | None = None
    consensus_psnr: float | None = None
    best_seed_images: torch.Tensor | None = None
    consensus_images: torch.Tensor | None = None
    registration_moved: float | None = None  # fraction of seed images moved

    @property
    def mean_psnr(self) -> float:
        return sum(self.psnr) / len(self.psnr)


@dataclass
class GradInversionRun:
    """Everything the page shows."""

    params: GradInversionParams
    device: torch.device
    label_points: list[LabelPoint]
    trained_accuracy: float
    truths: list[torch.Tensor]
    labels: list[torch.Tensor]
    attacked: list[Attacked]
    bn_recovery_error: float  # max |recovered - true| over layers and trials
    lpips_measured: bool
    seconds: dict[str, float]

    def arm(self, name: str) -> list[Attacked]:
        return sorted(
            (a for a in self.attacked if a.arm == name), key=lambda a: a.trial
        )

    def per_image(self, name: str) -> list[float]:
        return [p for a in self.arm(name) for p in a.psnr]

    def best_seed_per_image(self, name: str) -> list[float]:
        """Per-image PSNR of a group arm's best seed (by gradient loss)."""
        out: list[float] = []
        for record in self.arm(name):
            if record.best_seed_images is None:
                return []
            truth = self.truths[record.trial]
            out += [float(v) for v in metrics.psnr(record.best_seed_images, truth)]
        return out


def _matched(
    images: torch.Tensor, truth: torch.Tensor
) -> tuple[torch.Tensor, list[float]]:
    matched = images[metrics.best_matching(images, truth)]
    return matched, [float(v) for v in metrics.psnr(matched, truth)]


def unique_batches(
    dataset: str, count: int, size: int, seed: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``count`` test batches of ``size`` images with distinct labels."""
    images, labels, _ = data.sample_victims(
        data.load_dataset(dataset), count * size * 6 + 60, seed
    )
    batches, used = [], set()
    for _ in range(count):
        chosen: dict[int, int] = {}
        for i, label in enumerate(labels.tolist()):
            if i not in used and label not in chosen:
                chosen[label] = i
            if len(chosen) == size:
                break
        if len(chosen) < size:
            raise ValueError("not enough test images for the unique-label batches.")
        index = list(chosen.values())
        used.update(index)
        batches.append((images[index], labels[index]))
    return batches


def _config(params: GradInversionParams, arm: str) -> gi.GradInversionConfig:
    base = gi.GradInversionConfig()
    optim = dataclasses.replace(
        base.optim,
        lr=params.lr,
        max_iterations=params.max_iterations,
        warmup_iterations=min(params.warmup, params.max_iterations),
    )
    # The page's TV, l2 and BatchNorm weights and first-layer multiplier.
    fidelity = call_with_fields(gi.fidelity_priors, params)
    none = gi.fidelity_priors(tv_weight=0, l2_weight=0, bn_weight=0)
    config = dataclasses.replace(
        base,
        optim=optim,
        gradient_weight=params.gradient_weight,
        noise=params.noise,
        priors=fidelity,
        bn_target="observed",
    )
    if arm == "gradient only":
        return dataclasses.replace(config, priors=none, bn_target="running")
    if arm == "+ fidelity (BN_approx)":
        return dataclasses.replace(config, bn_target="running")
    if arm == "+ fidelity (BN_exact)":
        return config
    if arm == "BN_exact only":
        return dataclasses.replace(config, gradient_weight=0.0)
    if arm in GROUP_ARMS:
        group = gi.GroupConfig(
            seeds=params.group_seeds,
            weight=0.0 if arm == "seeds without group term" else params.group_weight,
            start=params.group_start,
            every=params.group_every,
            registration="translation" if arm == "+ group (registered)" else "mean",
            max_shift=params.max_shift,
            output="consensus",
        )
        return dataclasses.replace(config, group=group)
    raise ValueError(f"unknown arm {arm!r}")


def _history(history: list[dict[str, float]]) -> list[tuple[float, float]]:
    return [(h["iteration"], h["psnr"]) for h in history if "psnr" in h]


def attack_arm(
    params: GradInversionParams,
    arm: str,
    observation: fl.Observation,
    truth: torch.Tensor,
    labels: torch.Tensor,
    trial: int,
) -> Attacked:
    """Run one arm on one observed batch and score it."""
    start = time.perf_counter()
    seed = params.seed + trial
    if arm == "Inverting Gradients":
        attack = build_attack(
            "bn_prior",
            bn_target="running",
            bn_statistics_weight=0.0,
            tv_weight=params.ig_tv_weight,
            max_iterations=params.max_iterations,
            lr=params.lr,
            monitor_every=0,
        )
        out = attack.reconstruct(observation, seed=seed, truth=truth)
    else:
        out = build_attack("gradinversion", _config(params, arm)).reconstruct(
            observation, seed=seed, truth=truth
        )
    images, psnrs = _matched(out.images, truth)
    record = Attacked(
        arm=arm,
        trial=trial,
        images=images.cpu(),
        psnr=psnrs,
        label_accuracy=multiset_accuracy(out.labels, labels),
        seconds=time.perf_counter() - start,
        history=_history(out.history),
    )
    if isinstance(out, gi.GradInversionReconstruction) and out.seeds.shape[0] > 1:
        record.seeds_psnr = [sum(_matched(s, truth)[1]) / len(truth) for s in out.seeds]
        best, best_psnr = _matched(out.seeds[out.best_seed], truth)
        record.best_seed_psnr = sum(best_psnr) / len(best_psnr)
        record.best_seed_images = best.cpu()
        record.consensus_psnr = record.mean_psnr
        record.consensus_images = images.cpu()
        if arm == "+ group (registered)":
            record.registration_moved = gi.registration_moves(
                out.seeds, params.max_shift
            )
    return record


@uses_num_threads
def run(params: GradInversionParams, *, progress: bool = True) -> GradInversionRun:
    """Train (cached), sweep the label rules, run the ablation and the group."""
    device = resolve_device(params.device)
    info = data.dataset_info(params.dataset)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    # Every trained network of the page: the attacked one and the label sweep's.
    train = functools.partial(
        training.trained_model,
        dataset=params.dataset,
        epochs=params.train_epochs,
        seed=params.seed,
        device=device,
        num_images=params.train_images,
        lr=params.train_lr,
    )
    trained = train(params.model, progress=progress)
    seconds["training"] = time.perf_counter() - start

    start = time.perf_counter()
    pool_x, pool_y = training.sample_split(
        params.dataset, "test", params.label_images, params.seed + 500
    )
    points: list[LabelPoint] = []
    for name in params.label_models:
        untrained = models.build_model(name, info, seed=params.seed).to(device)
        points += label_sweep(
            f"{name} (untrained)", untrained, pool_x, pool_y, params, info.num_classes
        )
        net = trained.model if name == params.model else train(name).model
        points += label_sweep(
            f"{name} (trained)", net, pool_x, pool_y, params, info.num_classes
        )
    seconds["labels"] = time.perf_counter() - start

    start = time.perf_counter()
    net = trained.model
    # seed + 1: the step size and alpha_G were tuned on a batch of seed 0.
    batches = unique_batches(
        params.dataset, params.num_trials, params.batch_size, params.seed + 1
    )
    attacked: list[Attacked] = []
    truths, true_labels = [], []
    error = 0.0
    from gi_lib.batchnorm import batch_statistics

    for trial, (x, y) in enumerate(batches):
        x, y = x.to(device), y.to(device)
        truths.append(x.cpu())
        true_labels.append(y.cpu())
        observation = fl.observe_fedsgd(
            net, x, y, num_classes=info.num_classes, model_mode="train"
        )
        observation = gi.with_sent_buffers(observation, gi.sent_bn_buffers(net, x))
        exact = batch_statistics(net, x)
        got = observation.bn_statistics
        assert got is not None
        for a, b in zip(
            (*got.means, *got.variances), (*exact.means, *exact.variances), strict=True
        ):
            error = max(error, float((a - b).abs().max()))
        for arm in (*ARMS, *GROUP_ARMS):
            attacked.append(attack_arm(params, arm, observation, x, y, trial))
    seconds["attacks"] = time.perf_counter() - start
    return GradInversionRun(
        params=params,
        device=device,
        label_points=points,
        trained_accuracy=trained.test_accuracy,
        truths=truths,
        labels=true_labels,
        attacked=attacked,
        bn_recovery_error=error,
        lpips_measured=metrics.lpips_weights_present(),
        seconds=seconds,
    )
