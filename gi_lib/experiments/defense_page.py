"""The defense pages' engine: attack single images through defense settings,
and train the utility model under each defense.

The pruning, MixUp, InstaHide and DP-SGD notebooks share it. Each trial
draws a victim image, a freshly initialised attacked model (as DLG's code
does) and a fresh defense (seeded per trial), takes the defended FedSGD
update and runs the page's attack on it, chosen by name through the attack
registry (``attack`` parameter). The client's other images (``pool``, the
partners MixUp and InstaHide mix with) are further images of the same
split, never the victim. Attack quality is always measured against the
*private* image, which is what a defense protects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch
from matplotlib.figure import Figure
from torch import nn
from tqdm import tqdm

from gi_lib import data, fl, models, plots

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
from gi_lib.params import ExperimentParams, param, resolve_device
from gi_lib.results import PaperValue, ResultRow

ATTACK_TITLES = {"dlg": "DLG", "idlg": "iDLG", "inverting": "Inverting Gradients"}
"""The attacks a defense page runs, by registry name. All three fit its
threat model: one image per FedSGD update, nothing known but the model and
the batch size (labels are read off the update where the attack needs
them). The BatchNorm-prior attack needs BatchNorm statistics, which these
pages' models (LeNet, ConvNet in eval mode) do not give."""

POOL_SIZE = 64
"""Images of the client's own data a defense may mix the victim with."""

DefenseMaker = Callable[[tuple[torch.Tensor, torch.Tensor] | None, int], Defense]
"""``(pool, seed) -> Defense``: a fresh defense for one trial or training
run; a pool of None mixes inside the training batch."""


@dataclass(frozen=True, kw_only=True)
class DefendedAttackParams(ExperimentParams):
    """The parameters of attacking through defenses (the pruning page's)."""

    attack: str = param(
        "attack run through every defense setting", choices=tuple(ATTACK_TITLES)
    )
    max_iterations: int = param(
        "attack iterations (L-BFGS steps for DLG and iDLG, Adam steps for "
        "Inverting Gradients)",
        minimum=1,
    )
    num_shown: int = param("images shown in the figure", minimum=1)


@dataclass(frozen=True, kw_only=True)
class DefensePageParams(DefendedAttackParams):
    """The parameters the MixUp, InstaHide and DP-SGD notebooks share: the
    attack's, and those of training the utility model."""

    attack_model: str = param("the model attacked", choices=model_names)
    train_epochs: int = param("epochs of the utility runs", minimum=1)
    train_images: int = param("training images of the utility runs", minimum=64)
    train_lr: float = param("SGD step size of the utility runs", minimum=1e-6)
    batch_size: int = param("images per training step", minimum=2)


PageParams = TypeVar("PageParams", bound=DefendedAttackParams)
TrainingPageParams = TypeVar("TrainingPageParams", bound=DefensePageParams)


def page_attack(params: DefendedAttackParams) -> Attack:
    """The page's attack with its paper's settings, ``max_iterations`` steps;
    a diverged trial is a failed trial, not a crash."""
    return build_attack(
        params.attack, max_iterations=params.max_iterations, on_divergence="stop"
    )


def attack_through_defenses(
    params: DefendedAttackParams,
    settings: Mapping[str, DefenseMaker],
    *,
    model: str,
    device: torch.device,
    progress: bool = True,
) -> dict[str, list[AttackedSample]]:
    """The page's attack on ``num_trials`` images under every defense setting.

    Every setting sees the same victims, models and attack seeds.

    Args:
        params: the page's parameters: the attack and its budget, the data
            set, ``num_trials`` victim images (one per update) and the seed of
            victims, models, defenses and attack initialisation.
        settings: setting label -> defense maker (``NoDefense`` for the baseline).
        model: the attacked model.
        device: where to compute.
        progress: show a progress bar.
    """
    attack = page_attack(params)
    dataset, num_trials, seed = params.dataset, params.num_trials, params.seed
    info = data.dataset_info(dataset)
    images, labels, _ = data.sample_victims(
        data.load_dataset(dataset), num_trials + POOL_SIZE, seed
    )
    pool = (images[num_trials:], labels[num_trials:])
    out: dict[str, list[AttackedSample]] = {name: [] for name in settings}
    total = num_trials * len(settings)
    with tqdm(total=total, disable=not progress, mininterval=5.0) as bar:
        for i in range(num_trials):
            truth = images[i : i + 1].to(device)
            label = labels[i : i + 1].to(device)
            net = models.build_model(model, info, seed=seed + i).to(device)
            for name, make in settings.items():
                out[name].append(
                    attack_defended(
                        attack,
                        net,
                        truth,
                        label,
                        make(pool, seed + i),
                        num_classes=info.num_classes,
                        seed=seed + i,
                        setting=name,
                        index=i,
                    )
                )
                bar.update(1)
    return out


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
    """Utility per training defense (none on the pruning page) and attack
    trials per attacked setting."""

    params: PageParams
    device: torch.device
    utility: dict[str, DefendedModel]
    trials: dict[str, list[AttackedSample]]


def run_defense_page(
    params: TrainingPageParams,
    training: Mapping[str, Defense],
    attacked: Mapping[str, DefenseMaker],
    *,
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
        progress: show progress bars.
        prepare: a transform of the model before training (DP-SGD's
            BatchNorm-free copy; see :func:`train_with_defense`).
    """
    device = resolve_device(params.device)
    utility = {}
    for name, defense in training.items():
        utility[name] = train_with_defense(
            params.model,
            params.dataset,
            defense,
            epochs=params.train_epochs,
            seed=params.seed,
            device=device,
            num_images=params.train_images,
            lr=params.train_lr,
            batch_size=params.batch_size,
            prepare=prepare,
            progress=progress,
        )
    trials = attack_through_defenses(
        params, attacked, model=params.attack_model, device=device, progress=progress
    )
    return DefensePageRun(params, device, utility, trials)


def examples_figure(result: DefensePageRun) -> Figure:
    """One row per shown victim: the truth, what each encoding defense sent,
    then the reconstruction under each setting."""
    trials = result.trials
    names = list(trials)
    sent = [n for n in names if trials[n][0].sent_images is not None]
    rows, titles = [], []
    for i in range(min(result.params.num_shown, len(trials[names[0]]))):
        row = [trials[names[0]][i].true_images[0]]
        row += [trials[n][i].sent_images[0].clamp(0, 1) for n in sent]  # type: ignore[index]
        row += [trials[n][i].images[0] for n in names]
        rows.append(row)
        titles.append(f"image {i}")
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


def page_rows(
    result: DefensePageRun,
    *,
    paper: Mapping[str, PaperValue | None] | None = None,
    note: str = "",
) -> list[ResultRow]:
    """Accuracy per training run and the attack's PSNR/SSIM per attacked setting."""
    p = result.params
    paper = paper or {}
    info = data.dataset_info(p.dataset)
    out = []
    for name, trained in result.utility.items():
        out.append(
            ResultRow.against(
                f"{info.name}/{p.model}/{name}",
                "test_accuracy",
                trained.test_accuracy,
                paper.get(name),
                f"{p.train_epochs} epochs on {p.train_images} images "
                f"({p.profile} profile); {note}",
            )
        )
    title = ATTACK_TITLES[p.attack]
    for name, trials in result.trials.items():
        out += score_rows(
            f"{info.name}/{p.attack_model}/bs1/{name}",
            trials,
            f"{title} against the private image, mean over {len(trials)} images",
        )
    return out


def summary_text(result: DefensePageRun) -> str:
    """The run's test accuracies and attack PSNRs, for the page's prose."""
    accuracy = "; ".join(
        f"{n} {100 * m.test_accuracy:.1f}%" for n, m in result.utility.items()
    )
    attack = "; ".join(
        f"{n} {mean_of(t, 'psnr'):.1f} dB" for n, t in result.trials.items()
    )
    return (
        f"In this run ({result.params.profile} profile): test accuracy {accuracy}. "
        f"{ATTACK_TITLES[result.params.attack]}'s mean PSNR against the private "
        f"image: {attack}."
    )
