"""The GIAS notebook's experiments: a cached DCGAN and its checks, GI-x
against GI-z against GIAS at one step budget, a harder setting (gradient
pruning), the stress test with a generator that never saw the attacked
classes, and the paper's claims checked on paired trials.

Every batch holds ``batch_size`` test images of distinct classes drawn from
``attacked_classes`` (the paper's batches have unique known labels). The
main generator saw every class; the stress test's saw only
``generator_classes`` (ours, not the paper's). The attacked batches are the
same in every setting, so each comparison is paired.

Budget: every arm spends ``budget = restarts * latent_steps + gias_steps``
gradient evaluations. GI-x (Inverting Gradients: signed Adam, TV, boxed) runs
one restart of ``budget`` steps; GI-z runs ``restarts`` restarts of
``budget / restarts`` steps; GIAS runs ``restarts`` restarts of
``latent_steps`` (its own GI-z, reported as "GI-z (GIAS's first phase)")
and then ``gias_steps`` on the generator copies.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from gi_lib import data, fl, generators, models, plots, training
from gi_lib.attacks import build_attack, gias, inverting  # noqa: F401 (make deps)
from gi_lib.defenses import GradientPruning
from gi_lib.experiments.common import (
    PAPER_NUMBERS_UNREAD,
    AttackedSample,
    attack_and_score,
    mean,
    threads_text,
    uses_num_threads,
)
from gi_lib.params import (
    ExperimentParams,
    ParameterError,
    check_parameters,
    param,
    resolve_device,
)
from gi_lib.results import (
    Claim,
    ResultRow,
    paired_claim,
)

NOTEBOOK = "gias"
PAPER = "Jeon et al., NeurIPS 2021"
GIX, GIZ, GIZ_PHASE, GIAS = "GI-x", "GI-z", "GI-z (GIAS's first phase)", "GIAS"
MAIN, HARD, STRESS = "main", "pruned", "stress"


@dataclass(frozen=True, kw_only=True)
class GIASParams(ExperimentParams):
    """The GIAS notebook's parameters."""

    dataset: str = param(
        "data set (its train split trains the GAN)", choices=("mnist", "cifar10")
    )
    batch_size: int = param("images per attacked batch (distinct labels)", minimum=1)
    ngf: int = param("generator width (the GIAS code's ngf: 64)", minimum=1)
    gan_epochs: int = param("GAN training epochs over the train split", minimum=1)
    gan_images: int = param(
        "training images drawn for the GAN (at most the train split)", minimum=1
    )
    classifier_epochs: int = param(
        "epochs of the classifier that checks the samples", minimum=1
    )
    classifier_lr: float = param("initial SGD step of that classifier", above=0.0)
    classifier_images: int = param("training images of that classifier", minimum=1)
    restarts: int = param("latent-search restarts (GI-z and GIAS)", minimum=1)
    latent_steps: int = param("steps of each latent-search restart in GIAS", minimum=1)
    gias_steps: int = param("steps of GIAS's parameter search", minimum=1)
    latent_lr: float = param("latent search's Adam step", above=0.0)
    gias_lr: float = param("parameter search's Adam step", above=0.0)
    gix_lr: float = param("GI-x's signed-Adam step (normalised space)", above=0.0)
    tv_weight: float = param("total variation weight (GIAS: 1e-6)", minimum=0.0)
    gix_tv_weight: float = param("GI-x's total variation weight", minimum=0.0)
    pruning: float = param(
        "share of the gradient zeroed in the harder setting", minimum=0.0, maximum=0.999
    )
    attacked_classes: tuple[int, ...] = param(
        "classes of the attacked images", minimum=0, unique=True
    )
    generator_classes: tuple[int, ...] = param(
        "classes the stress test's generator saw", minimum=0, unique=True
    )
    projection_steps: int = param(
        "steps of the direct fit (the projection ceiling)", minimum=1
    )
    num_samples: int = param("generated samples scored by the classifier", minimum=1)


def check(values: Mapping[str, Any]) -> GIASParams:
    """Check the parameters: unique-label batches from the attacked classes."""
    params = check_parameters(values, GIASParams, notebook=NOTEBOOK)
    classes = data.dataset_info(params.dataset).num_classes
    for name in ("attacked_classes", "generator_classes"):
        if max(getattr(params, name)) >= classes:
            raise ParameterError(f"{name} must be classes 0..{classes - 1}.")
    if params.batch_size > len(params.attacked_classes):
        raise ParameterError(
            f"batch_size {params.batch_size} exceeds the "
            f"{len(params.attacked_classes)} attacked classes: batches hold "
            "distinct labels (as the paper's)."
        )
    return params


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


def attacked_batches(params: GIASParams) -> list[tuple[torch.Tensor, torch.Tensor]]:
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
            setting=GIZ_PHASE,
            index=trial,
            true_labels=labels,
        )
        setting.add(GIZ_PHASE, phase, result.latent.loss)
    return result


@uses_num_threads
def run(params: GIASParams, *, progress: bool = True) -> GIASResult:
    """Train (or load) the generators and the checking classifier, then attack."""
    start = time.perf_counter()
    device = resolve_device(params.device)
    info = data.dataset_info(params.dataset)
    budget = params.restarts * params.latent_steps + params.gias_steps
    trained = generators.trained_generator(
        params.dataset,
        epochs=params.gan_epochs,
        seed=params.seed,
        device=device,
        ngf=params.ngf,
        num_images=params.gan_images,
    )
    stress = generators.trained_generator(
        params.dataset,
        epochs=params.gan_epochs,
        seed=params.seed,
        device=device,
        ngf=params.ngf,
        num_images=params.gan_images,
        classes=params.generator_classes,
    )
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
    settings = {name: Setting(name) for name in (MAIN, HARD, STRESS)}
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
        fitted, ceiling = generators.projection(
            trained,
            truth,
            steps=params.projection_steps,
            restarts=params.restarts,
            seed=seed,
        )
        _, stress_ceiling = generators.projection(
            stress,
            truth,
            steps=params.projection_steps,
            restarts=params.restarts,
            seed=seed,
        )
        if trial == 0:
            projections = fitted
        settings[MAIN].ceiling.append(float(ceiling.mean()))
        settings[HARD].ceiling.append(float(ceiling.mean()))
        settings[STRESS].ceiling.append(float(stress_ceiling.mean()))
        pruning = GradientPruning(params.pruning, seed=seed)
        for name, defense in ((MAIN, None), (HARD, pruning)):
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
            run_arm(setting, GIX, gix)
            if name == MAIN:
                run_arm(setting, GIZ, build_attack("gi_z", giz_config))
            run_arm(setting, GIAS, build_attack("gias", gias_config))
            if name == MAIN:
                run_arm(settings[STRESS], GIAS, build_attack("gias", stress_gias))
        if progress:
            print(
                f"batch {trial + 1}/{params.num_trials}: "
                + ", ".join(
                    f"{a} {settings[MAIN].psnr(a)[-1]:.1f} dB"
                    for a in settings[MAIN].arms
                )
                + f"; ceiling {settings[MAIN].ceiling[-1]:.1f} dB",
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


# ---------------------------------------------------------------------------
# Figures and text
# ---------------------------------------------------------------------------


def samples_figure(result: GIASResult, count: int = 10) -> Figure:
    """Samples of both generators (top: every class; bottom: the stress test's)."""
    count = min(count, len(result.samples))
    seen = ",".join(str(c) for c in result.params.generator_classes)
    return plots.image_rows(
        [list(result.samples[:count]), list(result.stress_samples[:count])],
        [""] * count,
        ["all classes", f"classes {seen}"],
        cell_size=0.8,
    )


def examples_figure(result: GIASResult, trial: int = 0) -> Figure:
    """One batch: the truth, its projection, and each arm's reconstruction."""
    main, hard, stress = (result.settings[k] for k in (MAIN, HARD, STRESS))
    truth = main.arms[GIX][trial].true_images
    rows = [
        ("truth", truth),
        ("projection", result.projections if trial == 0 else truth),
        (GIX, main.arms[GIX][trial].images),
        (GIZ, main.arms[GIZ][trial].images),
        (GIAS, main.arms[GIAS][trial].images),
        (f"{GIX} pruned", hard.arms[GIX][trial].images),
        (f"{GIAS} pruned", hard.arms[GIAS][trial].images),
        (
            "GI-z, G saw 0-4"
            if result.params.generator_classes == (0, 1, 2, 3, 4)
            else "GI-z stress",
            stress.arms[GIZ_PHASE][trial].images,
        ),
        (
            "GIAS, G saw 0-4"
            if result.params.generator_classes == (0, 1, 2, 3, 4)
            else "GIAS stress",
            stress.arms[GIAS][trial].images,
        ),
    ]
    count = truth.shape[0]
    figure = plots.image_rows(
        [list(images) for _, images in rows],
        [""] * count,
        [title for title, _ in rows],
        cell_size=0.9,
    )
    return figure


def psnr_figure(result: GIASResult) -> Figure:
    """Mean PSNR of each arm in each setting, trials as dots, ceilings as lines."""
    figure, axes = plt.subplots(1, 3, figsize=(10, 3.2), sharey=True)
    for axis, (key, title) in zip(
        axes,
        (
            (MAIN, "generator fits"),
            (HARD, f"{result.params.pruning:.0%} pruned"),
            (STRESS, "generator never saw the classes"),
        ),
        strict=True,
    ):
        setting = result.settings[key]
        arms = list(setting.arms)
        for x, arm in enumerate(arms):
            values = setting.psnr(arm)
            axis.bar(
                x,
                mean(values),
                color="C0" if arm.startswith("GIAS") else "C7",
                alpha=0.6,
            )
            axis.plot([x] * len(values), values, "k.", markersize=4)
        axis.axhline(
            mean(setting.ceiling), color="C3", ls="--", label="projection ceiling"
        )
        axis.set_xticks(
            range(len(arms)),
            [a.replace(" (GIAS's first phase)", "\n(phase 1)") for a in arms],
            fontsize=7,
        )
        axis.set_title(title, fontsize=9)
    axes[0].set_ylabel("PSNR (dB)")
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    return figure


def summary_text(result: GIASResult) -> str:
    """The run's numbers in a few sentences."""
    p = result.params
    main, hard, stress = (result.settings[k] for k in (MAIN, HARD, STRESS))
    gen = result.generator
    trained = (
        "loaded from the cache"
        if gen.cached
        else f"trained in {gen.train_seconds:.0f} s"
    )
    conf = result.confidence

    def fmt(setting: Setting, arm: str) -> str:
        return f"{arm} {mean(setting.psnr(arm)):.1f} dB"

    return (
        f"The generator (DCGAN, ngf {p.ngf}, {p.gan_epochs} epochs over up to "
        f"{p.gan_images} training images) was {trained}. A classifier trained "
        f"on {p.classifier_images} "
        f"images (test accuracy {result.classifier_accuracy:.2f}) gives its "
        f"samples a mean top-class probability of {conf.mean_confidence:.2f} "
        f"({conf.share_confident:.0%} above {conf.threshold}; on real test "
        f"images {result.real_confidence.mean_confidence:.2f} and "
        f"{result.real_confidence.share_confident:.0%}). On "
        f"{p.num_trials} batches of {p.batch_size}, at {result.budget} gradient "
        f"evaluations each: {fmt(main, GIX)}, {fmt(main, GIZ)}, "
        f"{fmt(main, GIAS)} ({fmt(main, GIZ_PHASE)}); the projection ceiling is "
        f"{mean(main.ceiling):.1f} dB. With {p.pruning:.0%} of the gradient "
        f"pruned: {fmt(hard, GIX)}, {fmt(hard, GIAS)}. With the generator that "
        f"never saw the attacked classes: {fmt(stress, GIZ_PHASE)}, "
        f"{fmt(stress, GIAS)}, ceiling {mean(stress.ceiling):.1f} dB "
        f"({threads_text(p.num_threads)}, {result.seconds:.0f} s)."
    )


# ---------------------------------------------------------------------------
# Rows and claims
# ---------------------------------------------------------------------------


def rows(result: GIASResult) -> list[ResultRow]:
    """Our numbers; the paper's PSNR values could not be read, so none is quoted."""
    out = []
    for key, setting in result.settings.items():
        for arm in setting.arms:
            out.append(
                ResultRow.against(
                    f"{key}: {arm}",
                    "psnr",
                    mean(setting.psnr(arm)),
                    None,
                    f"mean over {len(setting.psnr(arm))} batches; "
                    + PAPER_NUMBERS_UNREAD,
                )
            )
        out.append(
            ResultRow.against(
                f"{key}: projection ceiling",
                "psnr",
                mean(setting.ceiling),
                None,
                "the generator's code fitted to the images directly (ours)",
            )
        )
    out.append(
        ResultRow.against(
            "generator samples: classifier confidence",
            "success_rate",
            result.confidence.share_confident,
            None,
            f"share of {result.params.num_samples} samples with top-class probability "
            f">= {result.confidence.threshold} (ours, a check of the generator)",
        )
    )
    out.append(
        ResultRow.against(
            "real test images: classifier confidence",
            "success_rate",
            result.real_confidence.share_confident,
            None,
            "the same share on real test images, for comparison (ours)",
        )
    )
    return out


def claims(result: GIASResult) -> list[Claim]:
    """The paper's claims, judged on the paired batches of this run."""
    main, hard, stress = (result.settings[k] for k in (MAIN, HARD, STRESS))
    fig2 = (
        f"{PAPER}, Fig. 2 caption (search spaces x, z, w, z/w: GI-z/w, i.e. "
        "GIAS, best), as read in the arXiv source"
    )
    fig1 = (
        f"{PAPER}, Fig. 1 (the repository's main_result.png: latent search alone "
        "gives natural images, pixel search noise; qualitative)"
    )
    fig3 = (
        f"{PAPER}, Fig. 3 caption (GI-x replaced by GIAS), as read in the arXiv source"
    )
    motivation = (
        f"{PAPER}, the method's motivation (a latent search is confined to the "
        "generator's range; adapting its weights lifts that limit); the "
        "projection-ceiling test is ours"
    )
    out = [
        paired_claim(
            "GIAS beats latent search alone (GI-z) at the same number of steps.",
            fig2,
            main.psnr(GIAS),
            main.psnr(GIZ),
            names=(GIAS, GIZ),
        ),
        paired_claim(
            "When the generator fits the data, searching its code (GI-z) beats "
            "searching pixels (GI-x).",
            fig1,
            main.psnr(GIZ),
            main.psnr(GIX),
            names=(GIZ, GIX),
        ),
        paired_claim(
            "Replacing pixel search with GIAS improves the reconstruction where "
            "pixel search struggles (here: a pruned gradient).",
            fig3,
            hard.psnr(GIAS),
            hard.psnr(GIX),
            names=(GIAS, GIX),
        ),
        paired_claim(
            "A latent-only search stays under what the generator can represent "
            "(GI-z below the projection ceiling).",
            motivation,
            main.ceiling,
            main.psnr(GIZ),
            names=("ceiling", GIZ),
        ),
        paired_claim(
            "Adapting the generator's weights lets GIAS pass that ceiling.",
            motivation,
            main.psnr(GIAS),
            main.ceiling,
            names=(GIAS, "ceiling"),
        ),
        paired_claim(
            "Ours, not the paper's: with a generator that never saw the attacked "
            "classes, GIAS's parameter search still improves on its latent search.",
            "stress test of this book (generator trained on other classes)",
            stress.psnr(GIAS),
            stress.psnr(GIZ_PHASE),
            names=(GIAS, GIZ_PHASE),
        ),
        paired_claim(
            "Ours, not the paper's: with that generator, GIAS passes the "
            "generator's own projection ceiling (what its codes alone can make "
            "of the attacked images).",
            "stress test of this book (generator trained on other classes)",
            stress.psnr(GIAS),
            stress.ceiling,
            names=(GIAS, "ceiling"),
        ),
    ]
    return out
