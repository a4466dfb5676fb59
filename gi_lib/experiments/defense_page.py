"""The defense pages' engine: attack single images through defense settings,
train the utility model under each defense, and check the papers' claims.

The pruning, MixUp, InstaHide and DP-SGD notebooks share it. Each trial
draws a victim image and a fresh defense (seeded per trial), takes the
defended FedSGD update and runs every attack of the page on it, each chosen
by name through the attack registry (``attacks`` parameter, or a single
``attack``); every attack sees the same update, so the attacks are paired
on the same images, defenses and seeds. The attacked network is either a
freshly initialised model per trial (as DLG's code does) or, where the page
asks for it, a checkpoint of ``attack_model`` trained *with* the setting's
defense (as GradAttack, the code of Huang et al. 2021, attacks a model
trained under the defense it evaluates). The client's other images
(``pool``, the partners MixUp and InstaHide mix with) are further images of
the same split, never the victim. Attack quality is always measured against
the *private* image, which is what a defense protects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch
from matplotlib.figure import Figure
from torch import nn
from tqdm import tqdm

from gi_lib import data, fl, metrics, models, plots

# The attacks a page can run by name, imported so that the dependency on
# them is visible (to make, through the import graph).
from gi_lib.attacks import Attack, build_attack, dlg, idlg, inverting  # noqa: F401
from gi_lib.defenses.base import Defense
from gi_lib.defenses.utility import DefendedModel, train_with_defense
from gi_lib.experiments.common import (
    AttackedSample,
    attack_and_score,
    mean_of,
    score_rows,
)
from gi_lib.models import model_names
from gi_lib.params import ExperimentParams, ParameterError, param, resolve_device
from gi_lib.results import (
    DOES_NOT_HOLD,
    HOLDS,
    NOT_ENOUGH_TRIALS,
    NOT_TESTED,
    Claim,
    PaperValue,
    ResultRow,
    bound_claim,
    paired_claim,
)
from gi_lib.training import sample_split

ATTACK_TITLES = {"dlg": "DLG", "idlg": "iDLG", "inverting": "Inverting Gradients"}
"""The attacks a defense page runs, by registry name. All three fit its
threat model: one image per FedSGD update, nothing known but the model and
the batch size (labels are read off the update where the attack needs
them). The BatchNorm-prior attack needs BatchNorm statistics, which these
pages' attacked models (LeNet, ConvNet in eval mode) do not give."""

ATTACK_SHORT = {"dlg": "DLG", "idlg": "iDLG", "inverting": "IG"}
"""The attacks' names where a figure has little room."""

POOL_SIZE = 64
"""Images of the client's own data a defense may mix the victim with."""

MIN_TRIALS = 3
"""Trials (images) a verdict on an attack's quality needs."""

TEST_IMAGES = 2000
"""Clean test images every training run of a defense page is scored on."""

DefenseMaker = Callable[[tuple[torch.Tensor, torch.Tensor] | None, int], Defense]
"""``(pool, seed) -> Defense``: a fresh defense for one trial or training
run; a pool of None mixes inside the training batch."""


# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AttackBudgetParams(ExperimentParams):
    """What every defense page's attack takes: its budget and the figure."""

    max_iterations: int = param(
        "attack iterations (L-BFGS steps for DLG and iDLG; Adam steps for "
        "Inverting Gradients unless the page has inverting_iterations)",
        minimum=1,
    )
    num_shown: int = param("images shown in the figure", minimum=1)


@dataclass(frozen=True, kw_only=True)
class DefendedAttackParams(AttackBudgetParams):
    """A page that runs one attack through its defenses (the DP-SGD page's)."""

    attack: str = param(
        "attack run through every defense setting", choices=tuple(ATTACK_TITLES)
    )


@dataclass(frozen=True, kw_only=True)
class MultiAttackParams(AttackBudgetParams):
    """A page that runs several attacks through its defenses, each on the
    same defended updates (the pruning, MixUp and InstaHide pages')."""

    attacks: tuple[str, ...] = param(
        "attacks run through every defense setting, each on the same updates",
        choices=tuple(ATTACK_TITLES),
        unique=True,
    )
    inverting_iterations: int = param(
        "Adam steps of Inverting Gradients (max_iterations is DLG's and iDLG's)",
        minimum=1,
    )


@dataclass(frozen=True, kw_only=True)
class TrainingParams(ExperimentParams):
    """The utility runs of a defense page, and the model it attacks."""

    attack_model: str = param("the model attacked", choices=model_names)
    train_epochs: int = param("epochs of the utility runs", minimum=1)
    train_images: int = param("training images of the utility runs", minimum=64)
    train_lr: float = param("SGD step size of the utility runs", minimum=1e-6)
    batch_size: int = param("images per training step", minimum=2)


@dataclass(frozen=True, kw_only=True)
class DefensePageParams(DefendedAttackParams, TrainingParams):
    """The DP-SGD page's: one attack on a freshly initialised ``attack_model``
    per trial, and the utility runs."""


@dataclass(frozen=True, kw_only=True)
class DefendedCheckpointParams(MultiAttackParams, TrainingParams):
    """The MixUp and InstaHide pages': several attacks, each setting attacked
    at a checkpoint of ``attack_model`` trained under that setting's defense."""

    attack_epochs: int = param(
        "epochs of the attacked checkpoint, trained under the setting's defense "
        "with the utility runs' images, step size and batch size (0: a freshly "
        "initialised model per trial)",
        minimum=0,
    )


PageParams = TypeVar("PageParams", bound=AttackBudgetParams)
TrainingPageParams = TypeVar("TrainingPageParams", bound=TrainingParams)


def attack_names(params: AttackBudgetParams) -> tuple[str, ...]:
    """The page's attacks by registry name: its ``attacks``, else its ``attack``."""
    if isinstance(params, MultiAttackParams):
        return params.attacks
    if isinstance(params, DefendedAttackParams):
        return (params.attack,)
    raise TypeError(f"{type(params).__name__} names no attack (attack or attacks).")


def attack_iterations(params: AttackBudgetParams, name: str) -> int:
    """The budget of attack ``name``: ``inverting_iterations`` for Inverting
    Gradients where the page has it, else ``max_iterations``."""
    if name == "inverting" and isinstance(params, MultiAttackParams):
        return params.inverting_iterations
    return params.max_iterations


def page_attacks(params: AttackBudgetParams) -> dict[str, Attack]:
    """The page's attacks, by name, with their papers' settings and this
    page's budgets; a diverged trial is a failed trial, not a crash."""
    return {
        name: build_attack(
            name,
            max_iterations=attack_iterations(params, name),
            on_divergence="stop",
        )
        for name in attack_names(params)
    }


def page_attack(params: AttackBudgetParams) -> Attack:
    """The page's first attack (see :func:`page_attacks`)."""
    return next(iter(page_attacks(params).values()))


# ---------------------------------------------------------------------------
# Attacking through defenses
# ---------------------------------------------------------------------------


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


def train_checkpoints(
    params: TrainingParams,
    makers: Mapping[str, Callable[[], Defense]],
    *,
    epochs: int,
    device: torch.device,
    progress: bool = True,
    prepare: Callable[[nn.Module], nn.Module] | None = None,
) -> dict[str, DefendedModel]:
    """``attack_model`` trained for ``epochs`` under each setting's defense.

    The runs use the utility runs' seed, images, step size and batch size
    and the same cache (:func:`train_with_defense`), so a checkpoint that
    equals a utility run (same model, defense and epochs) is trained once.
    """
    return {
        name: _train(
            params, params.attack_model, make(), epochs, device, progress, prepare
        )
        for name, make in makers.items()
    }


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
    trained = _train(
        params, params.attack_model, defense, params.attack_epochs, device, False, None
    )
    return trained.model


def _train(
    params: TrainingParams,
    model: str,
    defense: Defense,
    epochs: int,
    device: torch.device,
    progress: bool,
    prepare: Callable[[nn.Module], nn.Module] | None,
) -> DefendedModel:
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
        batch_size=params.batch_size,
        prepare=prepare,
        progress=progress,
    )


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
    utility = {
        name: _train(
            params,
            params.model,
            defense,
            params.train_epochs,
            device,
            progress,
            prepare,
        )
        for name, defense in training.items()
    }
    trained: dict[str, DefendedModel] = {}
    if checkpoints and checkpoint_epochs > 0:
        unknown = sorted(set(checkpoints) - set(attacked))
        if unknown:
            raise ParameterError(f"checkpoints name settings not attacked: {unknown}.")
        trained = train_checkpoints(
            params,
            checkpoints,
            epochs=checkpoint_epochs,
            device=device,
            progress=progress,
            prepare=prepare,
        )
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


# ---------------------------------------------------------------------------
# Figures, rows and prose
# ---------------------------------------------------------------------------


def examples_figure(result: DefensePageRun) -> Figure:
    """One row per shown victim and attack: the truth, what each encoding
    defense sent, then the attack's reconstruction under each setting."""
    first = result.trials
    names = list(first)
    sent = [n for n in names if first[n][0].sent_images is not None]
    rows, titles = [], []
    for i in range(min(result.params.num_shown, len(first[names[0]]))):
        for attack in result.attacks:
            trials = result.by_attack[attack]
            row = [first[names[0]][i].true_images[0]]
            row += [first[n][i].sent_images[0].clamp(0, 1) for n in sent]  # type: ignore[index]
            row += [trials[n][i].images[0] for n in names]
            rows.append(row)
            titles.append(f"{ATTACK_SHORT[attack]}\nimage {i}")
    columns = ["truth", *(f"{n} (sent)" for n in sent), *names]
    return plots.image_rows(rows, columns, titles)


def accuracy_figure(
    result: DefensePageRun, paper: Mapping[str, PaperValue | None] | None = None
) -> Figure:
    """Test accuracy of each training run beside the paper's (if cited)."""
    names = list(result.utility)
    paper = paper or {}
    return plots.paper_vs_ours_bars(
        names,
        {"test accuracy": [result.utility[n].test_accuracy for n in names]},
        {
            "test accuracy": [
                None if paper.get(n) is None else paper[n].value  # type: ignore[union-attr]
                for n in names
            ]
        },
        ylabel="test accuracy",
    )


def checkpoint_text(result: DefensePageRun, setting: str) -> str:
    """Which network was attacked under ``setting``."""
    p = result.params
    model = getattr(p, "attack_model", p.model)
    trained = result.checkpoints.get(setting)
    if trained is None:
        return f"a freshly initialised {model} per image (seed + image index)"
    epochs = p.attack_epochs if isinstance(p, DefendedCheckpointParams) else "some"
    plural = "" if epochs == 1 else "s"
    defense = "no defense" if trained.defense == "none" else trained.defense
    return (
        f"the {model} checkpoint trained {epochs} epoch{plural} with {defense} "
        f"(test accuracy {100 * trained.test_accuracy:.1f}%)"
    )


def page_rows(
    result: DefensePageRun,
    *,
    paper: Mapping[str, PaperValue | None] | None = None,
    note: str = "",
    notes: Mapping[str, str] | None = None,
) -> list[ResultRow]:
    """Accuracy per training run (``notes`` adds a note per run), accuracy
    of each attacked checkpoint, and every attack's PSNR/SSIM per setting."""
    p = result.params
    paper = paper or {}
    notes = notes or {}
    info = data.dataset_info(p.dataset)
    out = []
    for name, trained in result.utility.items():
        text = "; ".join(
            t
            for t in (
                f"{p.train_epochs} epochs on {p.train_images} images "
                f"({p.profile} profile)",
                notes.get(name, ""),
                note,
            )
            if t
        )
        out.append(
            ResultRow.against(
                f"{info.name}/{p.model}/{name}",
                "test_accuracy",
                trained.test_accuracy,
                paper.get(name),
                text,
            )
        )
    model = getattr(p, "attack_model", p.model)
    for name, trained in result.checkpoints.items():
        out.append(
            ResultRow.against(
                f"{info.name}/{model}/{name}/attacked checkpoint",
                "test_accuracy",
                trained.test_accuracy,
                None,
                f"the checkpoint attacked under {name}: "
                f"{checkpoint_text(result, name)}",
            )
        )
    # A page of one attack keeps the experiment names it had before pages
    # ran several.
    several = isinstance(p, MultiAttackParams)
    for attack in result.attacks:
        title = ATTACK_TITLES[attack]
        for name, trials in result.by_attack[attack].items():
            out += score_rows(
                f"{info.name}/{model}/bs1/{name}" + (f"/{attack}" if several else ""),
                trials,
                f"{title} against the private image, mean over {len(trials)} "
                f"images; attacked: {checkpoint_text(result, name)}",
            )
    return out


def summary_text(result: DefensePageRun) -> str:
    """The run's test accuracies and every attack's PSNRs, for the page's prose."""
    parts = [f"In this run ({result.params.profile} profile)"]
    if result.utility:
        accuracy = "; ".join(
            f"{n} {100 * m.test_accuracy:.1f}%" for n, m in result.utility.items()
        )
        parts.append(f": test accuracy {accuracy}. ")
    else:
        parts.append(": ")
    for attack in result.attacks:
        psnr = "; ".join(
            f"{n} {mean_of(t, 'psnr'):.1f} dB ("
            + ", ".join(f"{s.psnr:.1f}" for s in t)
            + ")"
            for n, t in result.by_attack[attack].items()
        )
        parts.append(
            f"{possessive(ATTACK_TITLES[attack])} mean PSNR against the private "
            f"image (each image's in brackets): {psnr}. "
        )
    if result.unrelated:
        parts.append(unrelated_text(result))
    return "".join(parts).rstrip()


def unrelated_text(result: DefensePageRun) -> str:
    """The PSNR that recovering nothing scores, for the page's prose (empty
    where the run did not record it)."""
    levels = result.unrelated
    if not levels:
        return ""
    each = ", ".join(f"{v:.1f}" for v in levels)
    return (
        f"An unrelated image of the data set scores {sum(levels) / len(levels):.1f} "
        f"dB against the private image ({each}): an attack at that level has "
        "recovered nothing."
    )


# ---------------------------------------------------------------------------
# Claims
# ---------------------------------------------------------------------------


def possessive(title: str) -> str:
    """``DLG's``, ``Inverting Gradients'``."""
    return f"{title}'" if title.endswith("s") else f"{title}'s"


def lowers_psnr(
    result: DefensePageRun,
    *,
    claim: str,
    source: str,
    attack: str,
    setting: str,
    baseline: str = "none",
) -> Claim:
    """ "``setting`` lowers ``attack``'s PSNR below ``baseline``'s", judged on
    the paired trials (same images and attack seeds) of the two settings.

    A defense can only lower an attack that recovers something: where the run
    records the level of an unrelated image (``result.unrelated``), the
    baseline must beat it on the paired trials. If the baseline is clearly no
    better, the claim is **not tested**; if that is undecided, a claim that
    would hold has **not enough trials**.
    """
    out = paired_claim(
        claim,
        source,
        result.psnr(attack, baseline),
        result.psnr(attack, setting),
        names=(baseline, setting),
        unit="dB",
        min_trials=MIN_TRIALS,
    )
    if not result.unrelated or out.verdict == NOT_TESTED:
        return out
    recovers = paired_claim(
        "recovers something",
        source,
        result.psnr(attack, baseline),
        result.unrelated,
        names=(baseline, "an unrelated image"),
        unit="dB",
        min_trials=MIN_TRIALS,
    )
    if recovers.verdict == HOLDS:
        return out
    title = ATTACK_TITLES[attack]
    if recovers.verdict == DOES_NOT_HOLD:
        return Claim(
            claim,
            source,
            NOT_TESTED,
            f"under {baseline}, {title} is no closer to the private image than an "
            f"unrelated image of the data set ({recovers.evidence}), so there is "
            f"nothing for a defense to lower; {setting} vs {baseline}: "
            f"{out.evidence}",
        )
    why = (
        f"{out.evidence}; but under {baseline}, {title} is not shown to beat an "
        f"unrelated image of the data set ({recovers.evidence})"
    )
    return Claim(claim, source, NOT_ENOUGH_TRIALS, why)


@dataclass(frozen=True)
class PSNRDrop:
    """A claim that ``setting`` lowers an attack's PSNR below ``baseline``'s
    (see :func:`lowers_psnr`), made for every attack of a run.

    Attributes:
        claim: the claim's words for one attack, given its possessive title
            (``"DLG's"``).
        source: where the paper says it.
        setting: the defended setting.
        baseline: the setting it is compared with.
    """

    claim: Callable[[str], str]
    source: str
    setting: str
    baseline: str = "none"


def lowers_psnr_per_attack(
    result: DefensePageRun, drops: Sequence[PSNRDrop]
) -> list[Claim]:
    """:func:`lowers_psnr` of each of ``drops`` for each attack of the run,
    attack by attack; a drop whose setting that attack did not run under is
    left out."""
    out = []
    for attack in result.attacks:
        owner = possessive(ATTACK_TITLES[attack])
        for drop in drops:
            if drop.setting not in result.by_attack[attack]:
                continue
            out.append(
                lowers_psnr(
                    result,
                    claim=drop.claim(owner),
                    source=drop.source,
                    attack=attack,
                    setting=drop.setting,
                    baseline=drop.baseline,
                )
            )
    return out


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


def correct_per_test_image(result: DefensePageRun, name: str) -> list[float]:
    """1.0 / 0.0 per clean test image: whether utility run ``name`` classifies
    it correctly (the images its ``test_accuracy`` was measured on); recorded
    by the run where it asked for them, else computed now.

    Raises:
        ValueError: the share of correct images is not the run's recorded
            test accuracy (a cached run scored on other images).
    """
    trained = result.utility[name]
    flags = result.test_correct.get(name)
    if flags is None:
        flags = classify_test_images(result.params, trained.model, result.device)
    share = sum(flags) / max(len(flags), 1)
    if abs(share - trained.test_accuracy) > 1e-9:
        raise ValueError(
            f"{name}: {share:.4f} of the test images are classified correctly, "
            f"but the run recorded a test accuracy of {trained.test_accuracy:.4f}."
        )
    return flags


def accuracy_claim(
    result: DefensePageRun,
    *,
    claim: str,
    source: str,
    better: str,
    worse: str,
    margin: float = 0.0,
) -> Claim:
    """ "Utility run ``better`` is more accurate than ``worse`` (by more than
    ``margin``)", judged on the test images classified by both (paired)."""
    out = paired_claim(
        claim,
        source,
        correct_per_test_image(result, better),
        correct_per_test_image(result, worse),
        names=(better, worse),
        unit="",
        margin=margin,
    )
    return dataclasses.replace(
        out,
        evidence=out.evidence
        + f"; the trials are the {TEST_IMAGES} clean test images, each classified "
        "by both models (one training run each, so the interval covers the test "
        "sample, not the training seed)",
    )


def trials_bound(
    claim: str,
    source: str,
    values: Sequence[float],
    *,
    min_trials: int = MIN_TRIALS,
    **bounds: float | str,
) -> Claim:
    """:func:`gi_lib.results.bound_claim` on the trials of one setting, with no
    verdict below ``min_trials`` trials (one image is not a measurement of
    a setting, unlike one run of a closed-form result)."""
    out = bound_claim(claim, source, values, **bounds)  # type: ignore[arg-type]
    if len(values) < min_trials and out.verdict != NOT_TESTED:
        return dataclasses.replace(
            out,
            verdict=NOT_ENOUGH_TRIALS,
            evidence=f"{out.evidence}; {min_trials} trials are needed to judge",
        )
    return out


def all_of(claim: str, source: str, parts: Sequence[tuple[str, Claim]]) -> Claim:
    """One claim judged on several settings: it **holds** when it holds in
    every one, **does not hold** when it fails in any, and otherwise there
    are not enough trials; the evidence lists each part as ``label: ...``."""
    if not parts:
        return Claim(claim, source, NOT_TESTED, "no setting of this run tests it")
    verdicts = {c.verdict for _, c in parts}
    if DOES_NOT_HOLD in verdicts:
        verdict = DOES_NOT_HOLD
    elif NOT_ENOUGH_TRIALS in verdicts:
        verdict = NOT_ENOUGH_TRIALS
    elif verdicts == {HOLDS}:
        verdict = HOLDS
    else:  # some part not tested: the claim is not tested as a whole
        verdict = NOT_TESTED
    evidence = "; ".join(f"{label} ({c.verdict}): {c.evidence}" for label, c in parts)
    return Claim(claim, source, verdict, evidence)
