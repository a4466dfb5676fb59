"""The GIAS page's run: the generators, the checking classifier and the
three arms on the same attacked batches in each setting."""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from gi_lib import data, fl, generators, models, training
from gi_lib.attacks import build_attack, gias, inverting  # noqa: F401 (make deps)
from gi_lib.defenses import GradientPruning
from gi_lib.experiments.common import (
    AttackedSample,
    attack_and_score,
    uses_num_threads,
)
from gi_lib.experiments.gias import params as page
from gi_lib.experiments.gias.params import GIASParams
from gi_lib.params import resolve_device


@dataclass
class Setting:
    """One attacked setting: the arms' records, one per trial, and ceilings."""

    name: str
    arms: dict[str, list[AttackedSample]] = field(default_factory=dict)
    losses: dict[str, list[float]] = field(default_factory=dict)
    ceiling: list[float] = field(default_factory=list)  # projection PSNR per trial

    def add(self, arm: str, sample: AttackedSample, loss: float) -> None:
        self.arms.setdefault(arm, []).append(sample)
        self.losses.setdefault(arm, []).append(loss)

    def psnr(self, arm: str) -> list[float]:
        return [s.psnr for s in self.arms.get(arm, [])]


@dataclass
class GIASResult:
    """What the GIAS notebook's run returns."""

    params: GIASParams
    device: str
    budget: int
    generator: generators.TrainedGenerator
    stress_generator: generators.TrainedGenerator
    classifier_accuracy: float
    confidence: generators.Confidence
    stress_confidence: generators.Confidence
    real_confidence: generators.Confidence
    samples: torch.Tensor
    stress_samples: torch.Tensor
    projections: torch.Tensor  # first batch fitted by the main generator
    settings: dict[str, Setting]
    seconds: float = 0.0


def attacked_batches(
    params: GIASParams,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``num_trials`` test batches of distinct labels from the attacked classes."""
    images, labels = training.sample_split(
        params.dataset, "test", 2000, params.seed + 7
    )
    rng = torch.Generator().manual_seed(params.seed)
    classes = torch.tensor(params.attacked_classes)
    used: set[int] = set()
    batches = []
    for _ in range(params.num_trials):
        chosen = classes[
            torch.randperm(len(classes), generator=rng)[: params.batch_size]
        ]
        index = []
        for c in chosen.tolist():
            pool = [
                i for i in (labels == c).nonzero().flatten().tolist() if i not in used
            ]
            pick = pool[int(torch.randint(len(pool), (1,), generator=rng))]
            used.add(pick)
            index.append(pick)
        batches.append((images[index], labels[index]))
    return batches


def _configs(params: GIASParams, trained: generators.TrainedGenerator, budget: int):
    latent = gias.latent_adam(
        lr=params.latent_lr,
        max_iterations=params.latent_steps,
        restarts=params.restarts,
    )
    gias_config = gias.GIASConfig(
        optim=gias.parameter_adam(lr=params.gias_lr, max_iterations=params.gias_steps),
        latent_optim=latent,
        priors=(gias.Prior("tv", params.tv_weight),),
        generator=trained,
    )
    giz_config = gias.LatentConfig(
        optim=dataclasses.replace(
            latent, max_iterations=max(1, budget // params.restarts)
        ),
        priors=(gias.Prior("tv", params.tv_weight),),
        generator=trained,
    )
    return gias_config, giz_config


def _attack(
    setting: Setting,
    arm: str,
    attack: Any,
    observation: fl.Observation,
    truth: torch.Tensor,
    labels: torch.Tensor,
    *,
    seed: int,
    trial: int,
) -> Any:
    """Run one arm on one batch; record its score and gradient loss (and, for
    GIAS, its first phase's)."""
    holder: dict[str, Any] = {}

    def call() -> Any:
        holder["r"] = attack.reconstruct(observation, seed=seed, truth=truth)
        return holder["r"]

    sample = attack_and_score(call, truth, setting=arm, index=trial, true_labels=labels)
    result = holder["r"]
    setting.add(arm, sample, result.loss)
    if isinstance(result, gias.GIASReconstruction) and result.latent is not None:
        phase = AttackedSample.scored(
            result.latent,
            truth,
            seconds=0.0,
            setting=page.GIZ_PHASE,
            index=trial,
            true_labels=labels,
        )
        setting.add(page.GIZ_PHASE, phase, result.latent.loss)
    return result


@uses_num_threads
def run(params: GIASParams, *, progress: bool = True) -> GIASResult:
    """Train (or load) the generators and the checking classifier, then attack."""
    start = time.perf_counter()
    device = resolve_device(params.device)
    info = data.dataset_info(params.dataset)
    budget = params.restarts * params.latent_steps + params.gias_steps
    # The main generator saw every class, the stress test's only some.
    gan = functools.partial(
        generators.trained_generator,
        params.dataset,
        epochs=params.gan_epochs,
        seed=params.seed,
        device=device,
        ngf=params.ngf,
        num_images=params.gan_images,
    )
    trained = gan()
    stress = gan(classes=params.generator_classes)
    classifier = training.trained_model(
        "smallconv16",
        params.dataset,
        epochs=params.classifier_epochs,
        seed=params.seed,
        device=device,
        num_images=params.classifier_images,
        lr=params.classifier_lr,
    )
    samples = trained.sample(params.num_samples, params.seed)
    stress_samples = stress.sample(params.num_samples, params.seed)
    confidence = generators.sample_confidence(classifier.model, samples)
    real_images, _ = training.sample_split(
        params.dataset, "test", params.num_samples, params.seed + 11
    )
    real_confidence = generators.sample_confidence(
        classifier.model, real_images.to(device)
    )
    stress_confidence = generators.sample_confidence(classifier.model, stress_samples)

    victim = models.build_model(params.model, info, seed=params.seed).to(device).eval()
    gias_config, giz_config = _configs(params, trained, budget)
    stress_gias, _ = _configs(params, stress, budget)
    settings = {name: Setting(name) for name in (page.MAIN, page.HARD, page.STRESS)}
    projections = torch.empty(0)
    gix = build_attack(
        "inverting",
        lr=params.gix_lr,
        max_iterations=budget,
        tv_weight=params.gix_tv_weight,
    )
    for trial, (truth, labels) in enumerate(attacked_batches(params)):
        truth, labels = truth.to(device), labels.to(device)
        seed = params.seed + trial
        (fitted, ceiling), (_, stress_ceiling) = (
            generators.projection(
                generator,
                truth,
                steps=params.projection_steps,
                restarts=params.restarts,
                seed=seed,
            )
            for generator in (trained, stress)
        )
        if trial == 0:
            projections = fitted
        settings[page.MAIN].ceiling.append(float(ceiling.mean()))
        settings[page.HARD].ceiling.append(float(ceiling.mean()))
        settings[page.STRESS].ceiling.append(float(stress_ceiling.mean()))
        pruning = GradientPruning(params.pruning, seed=seed)
        for name, defense in ((page.MAIN, None), (page.HARD, pruning)):
            observation = fl.observe_fedsgd(
                victim,
                truth,
                labels,
                num_classes=info.num_classes,
                reveal_labels=True,
                defense=defense,
            )
            setting = settings[name]
            run_arm = functools.partial(
                _attack,
                observation=observation,
                truth=truth,
                labels=labels,
                seed=seed,
                trial=trial,
            )
            run_arm(setting, page.GIX, gix)
            if name == page.MAIN:
                run_arm(setting, page.GIZ, build_attack("gi_z", giz_config))
            run_arm(setting, page.GIAS, build_attack("gias", gias_config))
            if name == page.MAIN:
                run_arm(
                    settings[page.STRESS], page.GIAS, build_attack("gias", stress_gias)
                )
        if progress:
            print(
                f"batch {trial + 1}/{params.num_trials}: "
                + ", ".join(
                    f"{a} {settings[page.MAIN].psnr(a)[-1]:.1f} dB"
                    for a in settings[page.MAIN].arms
                )
                + f"; ceiling {settings[page.MAIN].ceiling[-1]:.1f} dB",
                flush=True,
            )
    return GIASResult(
        params=params,
        device=str(device),
        budget=budget,
        generator=trained,
        stress_generator=stress,
        classifier_accuracy=classifier.test_accuracy,
        confidence=confidence,
        stress_confidence=stress_confidence,
        real_confidence=real_confidence,
        samples=samples.cpu(),
        stress_samples=stress_samples.cpu(),
        projections=projections.cpu(),
        settings=settings,
        seconds=time.perf_counter() - start,
    )
