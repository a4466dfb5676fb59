"""Huang et al. (NeurIPS 2021): gradient inversion against defenses, re-evaluated.

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
one-to-one matched.
"""

from __future__ import annotations

import dataclasses
import textwrap
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import nn
from tqdm import tqdm

from gi_lib import data, fl, metrics, models, plots
from gi_lib.attacks import bn_prior, build_attack
from gi_lib.defenses import Combined, GradientPruning, InstaHide, MixUp, NoDefense
from gi_lib.defenses.base import Defense
from gi_lib.defenses.utility import DefendedModel, train_with_defense
from gi_lib.experiments.common import (
    check_upper,
    mixed_param,
    ratio_param,
    upper_param,
    uses_num_threads,
)
from gi_lib.params import (
    ExperimentParams,
    check_parameters,
    param,
    resolve_device,
)
from gi_lib.results import ResultRow

NOTEBOOK = "attacks_vs_defenses"
POOL_SIZE = 64


@dataclass(frozen=True, kw_only=True)
class EvaluationParams(ExperimentParams):
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
    train_epochs: int = param("epochs of the utility runs", minimum=1)
    train_images: int = param("training images of all runs", minimum=64)
    train_lr: float = param("SGD step size of all runs", minimum=1e-6)
    train_batch_size: int = param("images per training step", minimum=2)
    num_shown: int = param("images per batch shown in figures", minimum=1)


PAPER_NOTE = (
    "paper: ResNet-18, CIFAR-10, batch 16, full training; its table's numbers "
    "are not entered (not verified from a source available to this build)"
)

DefenseMaker = Callable[[tuple[torch.Tensor, torch.Tensor] | None, int], Defense]
"""``(pool or None, seed) -> Defense``; None mixes inside the training batch."""


def check(values: Mapping[str, Any]) -> EvaluationParams:
    """Check the parameters (see :class:`EvaluationParams`): ``upper`` at least
    ``1/k`` and ``1/combined_k``; the checkpoints sorted, without repeats."""
    params = check_parameters(values, EvaluationParams, notebook=NOTEBOOK)
    check_upper(params.upper, k=params.k, combined_k=params.combined_k)
    return dataclasses.replace(
        params, checkpoints=tuple(sorted(set(params.checkpoints)))
    )


def _alpha(k: int) -> list[float]:
    # GradAttack's and InstaHide's Dirichlet(3, 1, ..., 1): the private image
    # tends to carry the largest weight.
    return [3.0] + [1.0] * (k - 1)


def defense_settings(params: EvaluationParams) -> dict[str, DefenseMaker]:
    """Setting label -> defense maker, in the order of the paper's table."""
    info = data.dataset_info(params.dataset)
    k, ck, upper = params.k, params.combined_k, params.upper
    cr = params.combined_ratio

    def mixup(size: int) -> DefenseMaker:
        return lambda pool, seed: MixUp(
            size, alpha=_alpha(size), upper=upper, pool=pool, seed=seed
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


@dataclass
class Attacked:
    """One attacked batch in one setting."""

    setting: str
    true_images: torch.Tensor
    sent_images: torch.Tensor
    images: torch.Tensor  # reconstruction, matched one-to-one to the truth
    psnr: float
    ssim: float
    lpips: float | None
    seconds: float


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
) -> Attacked:
    """One defended FedSGD step of ``net`` on a private batch, then the attack.

    Args:
        net: the global model (BatchNorm runs in train mode on the client).
        images, labels: the client's private batch.
        defense: what the client applies.
        num_classes: number of classes.
        bn_known: the attacker knows the exact BatchNorm statistics of the
            batch the client trained on; otherwise its prior targets the
            model's running statistics.
        labels_known: the attacker is given the labels the client trained on
            (MixUp's soft labels under MixUp); otherwise it infers them.
        config: attack settings.
        seed: the attack's initialisation.
        setting: label stored with the result.
    """
    step = fl.client_fedsgd(
        net,
        images,
        labels,
        num_classes=num_classes,
        model_mode="train",
        defense=defense,
    )
    # The strong threat model reveals the statistics of the batch the client
    # trained on (after the defense's encoding) with the update.
    observation = fl.observe_round(
        net, [step], reveal_labels=labels_known, reveal_bn_statistics=bn_known
    )
    start = time.perf_counter()
    result = build_attack("bn_prior", config=config).reconstruct(observation, seed=seed)
    seconds = time.perf_counter() - start
    matched = result.images[metrics.best_matching(result.images, images)]
    lpips = metrics.lpips(matched, images)
    return Attacked(
        setting=setting,
        true_images=images.cpu(),
        sent_images=step.images.cpu(),
        images=matched.cpu(),
        psnr=float(metrics.psnr(matched, images).mean()),
        ssim=float(metrics.ssim(matched, images).mean()),
        lpips=None if lpips is None else float(lpips.mean()),
        seconds=seconds,
    )


ASSUMPTIONS = {
    "BN known, labels known": (True, True),
    "BN known, labels unknown": (True, False),
    "BN unknown, labels known": (False, True),
    "BN unknown, labels unknown": (False, False),
}


@dataclass
class EvaluationRun:
    """Everything the notebook shows."""

    params: EvaluationParams
    device: torch.device
    utility: dict[str, DefendedModel]
    checkpoint_accuracy: dict[int, float]
    defenses: dict[str, list[Attacked]]
    assumptions: dict[str, list[Attacked]]
    course: dict[int, list[Attacked]]
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


def _checkpoint(
    params: EvaluationParams, epochs: int, device: torch.device
) -> tuple[nn.Module, float | None]:
    """The undefended model after ``epochs`` epochs (0: the initialisation)."""
    info = data.dataset_info(params.dataset)
    if epochs == 0:
        return models.build_model(params.model, info, seed=params.seed).to(device), None
    trained = _train(params, NoDefense(seed=params.seed), epochs, device)
    return trained.model, trained.test_accuracy


def _train(
    params: EvaluationParams, defense: Defense, epochs: int, device: torch.device
) -> DefendedModel:
    return train_with_defense(
        params.model,
        params.dataset,
        defense,
        epochs=epochs,
        seed=params.seed,
        device=device,
        num_images=params.train_images,
        lr=params.train_lr,
        batch_size=params.train_batch_size,
    )


@uses_num_threads
def run(params: EvaluationParams, *, progress: bool = True) -> EvaluationRun:
    """Train the utility and checkpoint models, then run every attack."""
    device = resolve_device(params.device)
    info = data.dataset_info(params.dataset)
    seed, size = params.seed, params.batch_size
    settings = defense_settings(params)
    epochs = params.checkpoints
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    utility = {
        name: _train(params, make(None, seed), params.train_epochs, device)
        for name, make in tqdm(settings.items(), desc="utility", disable=not progress)
    }
    checkpoints = {e: _checkpoint(params, e, device) for e in epochs}
    if params.attack_epoch not in checkpoints:
        checkpoints[params.attack_epoch] = _checkpoint(
            params, params.attack_epoch, device
        )
    seconds["training"] = time.perf_counter() - start

    count = params.num_trials * size
    images, labels, _ = data.sample_victims(
        data.load_dataset(params.dataset), count + max(POOL_SIZE, size), seed
    )
    pool = (images[count:], labels[count:])
    attacked_net = checkpoints[params.attack_epoch][0]
    unrelated: list[float] = []
    defenses: dict[str, list[Attacked]] = {name: [] for name in settings}
    assumptions: dict[str, list[Attacked]] = {name: [] for name in ASSUMPTIONS}
    course: dict[int, list[Attacked]] = {e: [] for e in epochs}
    total = params.num_trials * (len(settings) + len(ASSUMPTIONS) + len(epochs))
    bar = tqdm(total=total, desc="attacks", disable=not progress, mininterval=5.0)
    start = time.perf_counter()
    for trial in range(params.num_trials):
        truth = images[trial * size : (trial + 1) * size].to(device)
        truth_labels = labels[trial * size : (trial + 1) * size].to(device)
        trial_seed = seed + trial
        unrelated.append(unrelated_psnr(truth, pool[0][:size].to(device)))

        def attack(
            net: nn.Module,
            defense: Defense,
            bn_known: bool,
            labels_known: bool,
            setting: str,
            trial_seed: int = trial_seed,
            truth: torch.Tensor = truth,
            truth_labels: torch.Tensor = truth_labels,
        ) -> Attacked:
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
                seed=trial_seed,
                setting=setting,
            )

        for name, make in settings.items():
            defenses[name].append(
                attack(attacked_net, make(pool, trial_seed), True, True, name)
            )
        for name, (bn_known, labels_known) in ASSUMPTIONS.items():
            if bn_known and labels_known:  # the main table's undefended run
                assumptions[name].append(defenses["none"][-1])
                bar.update(1)
                continue
            assumptions[name].append(
                attack(
                    attacked_net,
                    NoDefense(seed=trial_seed),
                    bn_known,
                    labels_known,
                    name,
                )
            )
        for e in epochs:
            if e == params.attack_epoch:
                course[e].append(defenses["none"][-1])
                bar.update(1)
                continue
            course[e].append(
                attack(
                    checkpoints[e][0],
                    NoDefense(seed=trial_seed),
                    True,
                    True,
                    f"epoch {e}",
                )
            )
    bar.close()
    seconds["attacks"] = time.perf_counter() - start
    return EvaluationRun(
        params=params,
        device=device,
        utility=utility,
        checkpoint_accuracy={
            e: acc for e, (_, acc) in checkpoints.items() if acc is not None
        },
        defenses=defenses,
        assumptions=assumptions,
        course=course,
        unrelated_psnr=unrelated,
        seconds=seconds,
    )


def unrelated_psnr(truth: torch.Tensor, others: torch.Tensor) -> float:
    """Mean PSNR of other images against ``truth``, matched as attacks are.

    The level an attack that recovers nothing of the private batch reaches;
    the pool's images are never the private ones.
    """
    matched = others[metrics.best_matching(others, truth)]
    return float(metrics.psnr(matched, truth).mean())


def _mean(values: list[float]) -> float:
    return float(torch.tensor(values, dtype=torch.float64).mean())


def mean_psnr(trials: list[Attacked]) -> float:
    """Mean PSNR over the attacked batches."""
    return _mean([t.psnr for t in trials])


def table_frame(result: EvaluationRun):  # noqa: ANN201 - pandas imported lazily
    """The main table: one row per defense setting."""
    import pandas as pd

    records = []
    for name, trials in result.defenses.items():
        record = {
            "defense": name,
            "attack PSNR (dB)": round(mean_psnr(trials), 2),
            "attack SSIM": round(_mean([t.ssim for t in trials]), 3),
        }
        lpips = [t.lpips for t in trials if t.lpips is not None]
        if lpips:
            record["attack LPIPS"] = round(_mean(lpips), 3)
        record["test accuracy"] = round(result.utility[name].test_accuracy, 3)
        records.append(record)
    return pd.DataFrame(records)


def examples_figure(result: EvaluationRun) -> Figure:
    """The first batch: one row per private image, the truth then each setting."""
    shown = min(result.params.num_shown, result.params.batch_size)
    first = result.defenses["none"][0]
    names = list(result.defenses)
    rows = [
        [first.true_images[j]] + [result.defenses[n][0].images[j] for n in names]
        for j in range(shown)
    ]
    columns = ["truth"] + [textwrap.fill(n, 14) for n in names]
    titles = [f"image {j + 1}" for j in range(shown)]
    return plots.image_rows(rows, columns, titles, cell_size=1.1)


def assumptions_figure(result: EvaluationRun) -> Figure:
    """Mean PSNR for each combination of BatchNorm and label knowledge."""
    names = list(result.assumptions)
    return plots.paper_vs_ours_bars(
        [n.replace(", ", "\n") for n in names],
        {"PSNR": [mean_psnr(result.assumptions[n]) for n in names]},
        {"PSNR": [None] * len(names)},
        ylabel="attack PSNR (dB)",
    )


def course_figure(result: EvaluationRun) -> Figure:
    """Mean PSNR against the epochs the attacked checkpoint was trained."""
    points = [(float(e), mean_psnr(t)) for e, t in result.course.items()]
    return plots.curves(
        {"IG + BN prior, no defense": points},
        xlabel="training epochs of the attacked model",
        ylabel="attack PSNR (dB)",
        hline=_mean(result.unrelated_psnr) if result.unrelated_psnr else None,
        hline_label="unrelated image",
    )


def tradeoff_figure(result: EvaluationRun) -> Figure:
    """Attack PSNR against test accuracy, one point per defense setting."""
    points = {
        name: (result.utility[name].test_accuracy, mean_psnr(trials))
        for name, trials in result.defenses.items()
    }
    return plots.scatter_labelled(
        points,
        xlabel="test accuracy (trained with the defense)",
        ylabel="attack PSNR (dB)",
        hline=_mean(result.unrelated_psnr) if result.unrelated_psnr else None,
        hline_label="unrelated image",
    )


def rows(result: EvaluationRun) -> list[ResultRow]:
    """Scorecard rows for the four experiments."""
    p = result.params
    base = f"{p.dataset}/{p.model}/bs{p.batch_size}"
    trials = p.num_trials
    checkpoint = f"checkpoint after {p.attack_epoch} epoch(s)"
    training = (
        f"{p.train_epochs} epochs on {p.train_images} images ({p.profile} profile)"
    )
    out: list[ResultRow] = []
    for name, attacked in result.defenses.items():
        experiment = f"{base}/{name.replace(' ', '')}"
        note = f"mean over {trials} batch(es); {checkpoint}; {PAPER_NOTE}"
        out.append(
            ResultRow.against(experiment, "psnr", mean_psnr(attacked), None, note)
        )
        out.append(
            ResultRow.against(
                experiment, "ssim", _mean([t.ssim for t in attacked]), None, ""
            )
        )
        lpips = [t.lpips for t in attacked if t.lpips is not None]
        if lpips:
            out.append(ResultRow.against(experiment, "lpips", _mean(lpips), None, ""))
        out.append(
            ResultRow.against(
                experiment,
                "test_accuracy",
                result.utility[name].test_accuracy,
                None,
                f"trained with the defense, {training}",
            )
        )
    out.append(
        ResultRow.against(
            f"{base}/unrelated-image",
            "psnr",
            _mean(result.unrelated_psnr),
            None,
            "other images of the data set against the private ones, matched "
            "one-to-one: the level of an attack that recovers nothing",
        )
    )
    for name, attacked in result.assumptions.items():
        key = name.replace(", ", "/").replace(" ", "-")
        out.append(
            ResultRow.against(
                f"{base}/assumptions/{key}",
                "psnr",
                mean_psnr(attacked),
                None,
                f"no defense; {checkpoint}",
            )
        )
    for epochs, attacked in result.course.items():
        out.append(
            ResultRow.against(
                f"{base}/epoch{epochs}",
                "psnr",
                mean_psnr(attacked),
                None,
                f"no defense; checkpoint after {epochs} epoch(s), strong assumptions",
            )
        )
    return out


@dataclass(frozen=True)
class Claim:
    """One of the paper's qualitative findings, checked on this run."""

    claim: str
    evidence: str
    holds: bool


def claims(result: EvaluationRun) -> list[Claim]:
    """The paper's findings, each tested against this run's mean PSNRs.

    A finding "holds" when the inequality it states is true of this run's
    means; with few trials a difference of a decibel or so is within noise,
    which the evidence column lets the reader judge.
    """
    psnr = {n: mean_psnr(t) for n, t in result.defenses.items()}
    assumed = {n: mean_psnr(t) for n, t in result.assumptions.items()}
    strong = assumed["BN known, labels known"]
    out = [
        Claim(
            "Not knowing the batch's BatchNorm statistics weakens the attack",
            f"running statistics {assumed['BN unknown, labels known']:.1f} dB "
            f"vs the batch's {strong:.1f} dB (labels known)",
            assumed["BN unknown, labels known"] < strong,
        ),
        Claim(
            "Not knowing the labels weakens the attack",
            f"inferred labels {assumed['BN known, labels unknown']:.1f} dB vs given "
            f"{strong:.1f} dB (BatchNorm statistics known)",
            assumed["BN known, labels unknown"] < strong,
        ),
    ]
    course = sorted((e, mean_psnr(t)) for e, t in result.course.items())
    if len(course) > 1:
        (first, early), (last, late) = course[0], course[-1]
        out.append(
            Claim(
                "The attack weakens as the model trains",
                f"{late:.1f} dB after {last} epoch(s) vs {early:.1f} dB after {first}",
                late < early,
            )
        )
    pruned = sorted((r, psnr[f"prune {r:g}"]) for r in result.params.ratios)
    if pruned:
        (low, at_low), (high, at_high) = pruned[0], pruned[-1]
        out.append(
            Claim(
                "Gradient pruning needs a high ratio: a moderate one leaves the "
                "attack within 3 dB, a high one takes off more",
                f"none {psnr['none']:.1f} dB; pruning {low:g}: {at_low:.1f} dB; "
                f"pruning {high:g}: {at_high:.1f} dB",
                at_low > psnr["none"] - 3.0 and at_high <= psnr["none"] - 3.0,
            )
        )
    p = result.params
    cr = f"prune {p.combined_ratio:g}"
    for encoding, alone in (
        ("MixUp", f"MixUp k={p.k}"),
        ("Intra-InstaHide", f"Intra-InstaHide k={p.k}"),
    ):
        combined = f"{cr} + {encoding} k={p.combined_k}"
        out.append(
            Claim(
                f"Pruning combined with {encoding} protects more than {encoding} alone",
                f"{combined}: {psnr[combined]:.1f} dB vs {alone}: {psnr[alone]:.1f} dB",
                psnr[combined] < psnr[alone],
            )
        )
    return out


def claims_frame(result: EvaluationRun):  # noqa: ANN201 - pandas imported lazily
    """The claims as a table: the finding, this run's numbers, the verdict."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "the paper's finding": c.claim,
                "this run": c.evidence,
                "holds here": "yes" if c.holds else "no",
            }
            for c in claims(result)
        ]
    )


def claims_html(result: EvaluationRun) -> str:
    """:func:`claims_frame` as HTML with every cell whole (pandas would cut
    long cells short; the book renders notebook Markdown as CommonMark, which
    has no tables)."""
    import pandas as pd

    with pd.option_context("display.max_colwidth", None):
        return claims_frame(result).to_html(index=False)


def summary_text(result: EvaluationRun) -> str:
    """The run's headline numbers, for the page's prose."""
    psnr = {n: mean_psnr(t) for n, t in result.defenses.items()}
    acc = {n: m.test_accuracy for n, m in result.utility.items()}
    strongest = min(psnr, key=psnr.__getitem__)
    assumptions = "; ".join(
        f"{n}: {mean_psnr(t):.1f} dB" for n, t in result.assumptions.items()
    )
    course = "; ".join(
        f"{e} epochs: {mean_psnr(t):.1f} dB" for e, t in result.course.items()
    )
    held = [c for c in claims(result) if c.holds]
    return (
        f"In this run ({result.params.profile} profile, {result.params.model}, "
        f"batch {result.params.batch_size}): with no defense the attack reaches "
        f"{psnr['none']:.1f} dB at test accuracy {acc['none']:.2f}; the lowest attack "
        f"PSNR, {psnr[strongest]:.1f} dB, is under {strongest} (test accuracy "
        f"{acc[strongest]:.2f}). Relaxing the attacker's assumptions: {assumptions}. "
        f"Over training: {course}. For reference, an unrelated image scores "
        f"{_mean(result.unrelated_psnr):.1f} dB against the private ones: an "
        f"attack near that level recovers nothing. {len(held)} of the "
        f"{len(claims(result))} findings checked below hold in this run."
    )
