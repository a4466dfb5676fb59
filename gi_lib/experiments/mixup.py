"""The MixUp notebook: ERM vs MixUp accuracy, and DLG through MixUp.

:func:`run_defense_page` is shared with the InstaHide and DP-SGD notebooks:
train the utility model with and without the defense, and attack single
images through each defense setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch
from matplotlib.figure import Figure

from gi_lib import data, plots
from gi_lib.defenses import MixUp, NoDefense
from gi_lib.defenses.base import Defense
from gi_lib.defenses.evaluate import (
    DefendedTrial,
    DefenseFactory,
    attack_through_defenses,
    examples_rows,
    mean_psnr,
    mean_ssim,
)
from gi_lib.defenses.utility import DefendedModel, train_with_defense
from gi_lib.experiments.common import uses_num_threads
from gi_lib.models import model_names
from gi_lib.params import ExperimentParams, check_parameters, param, resolve_device
from gi_lib.results import PaperValue, ResultRow

NOTEBOOK = "mixup"


@dataclass(frozen=True, kw_only=True)
class DefensePageParams(ExperimentParams):
    """The parameters the MixUp, InstaHide and DP-SGD notebooks share."""

    attack_model: str = param("model DLG attacks", choices=model_names)
    max_iterations: int = param("DLG's L-BFGS iterations", minimum=1)
    train_epochs: int = param("epochs of the utility runs", minimum=1)
    train_images: int = param("training images of the utility runs", minimum=64)
    train_lr: float = param("SGD step size of the utility runs", minimum=1e-6)
    batch_size: int = param("images per training step", minimum=2)
    num_shown: int = param("images shown in the figure", minimum=1)


@dataclass(frozen=True, kw_only=True)
class MixUpParams(DefensePageParams):
    """The MixUp notebook's parameters."""

    alpha: float = param("MixUp's Beta(alpha, alpha)", minimum=1e-3)


PAPER_NOTE = (
    "The paper trains PreAct ResNet-18 for 200 epochs on all of CIFAR-10; its "
    "error rates are not entered here (not verified from a source available to "
    "this build)."
)


def check(values: Mapping[str, Any]) -> MixUpParams:
    """Check the parameters (see :class:`MixUpParams`)."""
    return check_parameters(values, MixUpParams, notebook=NOTEBOOK)


PageParams = TypeVar("PageParams", bound=DefensePageParams)


@dataclass
class DefensePageRun(Generic[PageParams]):
    """Utility per training defense and attack trials per attacked setting."""

    params: PageParams
    device: torch.device
    utility: dict[str, DefendedModel]
    trials: dict[str, list[DefendedTrial]]


def run_defense_page(
    params: PageParams,
    training: Mapping[str, Defense],
    attacked: Mapping[str, DefenseFactory],
    *,
    progress: bool = True,
    prepare=None,  # noqa: ANN001 - a model transform, see train_with_defense
) -> DefensePageRun[PageParams]:
    """Train ``params.model`` under each training defense, then attack.

    The caller's ``run`` sets the CPU threads (:func:`uses_num_threads`).
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
        attacked,
        dataset=params.dataset,
        model=params.attack_model,
        num_trials=params.num_trials,
        seed=params.seed,
        device=device,
        max_iterations=params.max_iterations,
        progress=progress,
    )
    return DefensePageRun(params, device, utility, trials)


def huang_mixup(pool: tuple[torch.Tensor, torch.Tensor], seed: int) -> MixUp:
    """MixUp as Huang et al. (2021) evaluate it: k=4, coefficients <= 0.65."""
    return MixUp(4, alpha=(3.0, 1.0, 1.0, 1.0), upper=0.65, pool=pool, seed=seed)


@uses_num_threads
def run(params: MixUpParams, *, progress: bool = True) -> DefensePageRun[MixUpParams]:
    """ERM vs MixUp training; DLG with no defense, MixUp k=2 and k=4."""
    alpha = params.alpha
    training = {
        "ERM": NoDefense(seed=params.seed),
        "MixUp": MixUp(2, alpha=alpha, seed=params.seed),
    }
    attacked: dict[str, DefenseFactory] = {
        "none": lambda pool, seed: NoDefense(seed=seed),
        "MixUp k=2": lambda pool, seed: MixUp(2, alpha=alpha, pool=pool, seed=seed),
        "MixUp k=4": huang_mixup,
    }
    return run_defense_page(params, training, attacked, progress=progress)


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


def examples_figure(result: DefensePageRun) -> Figure:
    rows_, columns, titles = examples_rows(result.trials, result.params.num_shown)
    return plots.image_rows(rows_, columns, titles)


def page_rows(
    result: DefensePageRun,
    *,
    paper: Mapping[str, PaperValue | None] | None = None,
    note: str = "",
) -> list[ResultRow]:
    """Accuracy per training run and DLG's PSNR/SSIM per attacked setting."""
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
    for name, trials in result.trials.items():
        experiment = f"{info.name}/{p.attack_model}/bs1/{name}"
        out += [
            ResultRow.against(
                experiment,
                "psnr",
                mean_psnr(trials),
                None,
                f"DLG against the private image, mean over {len(trials)} images",
            ),
            ResultRow.against(experiment, "ssim", mean_ssim(trials), None, ""),
        ]
    return out


def rows(result: DefensePageRun) -> list[ResultRow]:
    return page_rows(result, note=PAPER_NOTE)


def summary_text(result: DefensePageRun) -> str:
    accuracy = "; ".join(
        f"{n} {100 * m.test_accuracy:.1f}%" for n, m in result.utility.items()
    )
    attack = "; ".join(f"{n} {mean_psnr(t):.1f} dB" for n, t in result.trials.items())
    return (
        f"In this run ({result.params.profile} profile): test accuracy {accuracy}. "
        f"DLG's mean PSNR against the private image: {attack}."
    )
