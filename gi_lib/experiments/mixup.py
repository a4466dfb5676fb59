"""The MixUp notebook: ERM vs MixUp accuracy, and attacks through MixUp.

Utility: the page's model trained with ERM, with the original MixUp (k=2)
and with Huang et al.'s MixUp (k=4, coefficients at most 0.65). Attack:
every attack of the page without a defense and through Huang et al.'s
MixUp, each on an ``attack_model`` checkpoint trained under that setting
(ERM for the undefended client), as GradAttack attacks a model trained with
the defense. The engine is the defense pages' own
(:mod:`gi_lib.experiments.defense_page`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from gi_lib.defenses import MixUp, NoDefense
from gi_lib.defenses.base import Defense
from gi_lib.defenses.mixup import private_heavy_alpha
from gi_lib.experiments import defense_page
from gi_lib.experiments.common import uses_num_threads
from gi_lib.params import check_parameters, param
from gi_lib.results import Claim, PaperValue, ResultRow

NOTEBOOK = "mixup"


@dataclass(frozen=True, kw_only=True)
class MixUpParams(defense_page.DefendedCheckpointParams):
    """The MixUp notebook's parameters."""

    alpha: float = param("MixUp's Beta(alpha, alpha)", minimum=1e-3)


ERM, MIXUP, HUANG = "ERM", "MixUp k=2", "MixUp k=4"
"""The utility runs: plain training, the original MixUp, Huang et al.'s."""
NONE = "none"
"""The undefended attacked setting (attacked on the ERM checkpoint)."""

ZHANG_SOURCE = "Zhang et al. 2018, Sec. 3.2 (CIFAR-10 and CIFAR-100)"
ZHANG_REPOSITORY = (
    "Zhang et al. 2018, the first author's repository (hongyi-zhang/mixup, "
    "README): PreAct ResNet-18 on CIFAR-10, median test error of the last 10 "
    "of 200 epochs, weight decay 1e-4"
)
HUANG_SOURCE = (
    "Huang et al. 2021, Table 2 (attack and accuracy per defense; its numbers "
    "are not available here, PAPER_VALUES.md §8)"
)
PAPER = {
    ERM: PaperValue(1 - 0.0553, ZHANG_REPOSITORY, "P"),
    MIXUP: PaperValue(1 - 0.0424, ZHANG_REPOSITORY, "P"),
}
"""The paper's accuracies (1 - test error), from the author's repository."""

PAPER_NOTE = (
    "the paper's value is a PreAct ResNet-18 trained 200 epochs on all 50,000 "
    "CIFAR-10 images with data augmentation; this run's model and training are "
    "far smaller, so a value outside the paper's band is expected"
)

# The figures and the summary are the defense pages' (the notebook calls
# them through this module).
examples_figure = defense_page.examples_figure
summary_text = defense_page.summary_text


def check(values: Mapping[str, Any]) -> MixUpParams:
    """Check the parameters (see :class:`MixUpParams`)."""
    return check_parameters(values, MixUpParams, notebook=NOTEBOOK)


def huang_mixup(pool: tuple[torch.Tensor, torch.Tensor] | None, seed: int) -> MixUp:
    """MixUp as Huang et al. (2021) evaluate it: k=4, coefficients <= 0.65."""
    return MixUp(4, alpha=private_heavy_alpha(4), upper=0.65, pool=pool, seed=seed)


@uses_num_threads
def run(
    params: MixUpParams, *, progress: bool = True
) -> defense_page.DefensePageRun[MixUpParams]:
    """ERM, MixUp k=2 and MixUp k=4 training; every attack with no defense
    and through Huang et al.'s MixUp k=4, each on the attacked model trained
    under that setting (ERM for the undefended client)."""
    seed = params.seed
    # Training mixes inside the batch (no pool), as the official code does.
    training: dict[str, Defense] = {
        ERM: NoDefense(seed=seed),
        MIXUP: MixUp(2, alpha=params.alpha, seed=seed),
        HUANG: huang_mixup(None, seed),
    }
    attacked: dict[str, defense_page.DefenseMaker] = {
        NONE: lambda pool, s: NoDefense(seed=s),
        HUANG: huang_mixup,
    }
    return defense_page.run_defense_page(
        params,
        training,
        attacked,
        checkpoints={
            NONE: lambda: NoDefense(seed=seed),
            HUANG: lambda: huang_mixup(None, seed),
        },
        checkpoint_epochs=params.attack_epochs,
        per_image_accuracy=True,
        progress=progress,
    )


def accuracy_figure(result: defense_page.DefensePageRun[MixUpParams]):  # noqa: ANN201
    """Test accuracy of each training run beside the paper's."""
    return defense_page.accuracy_figure(result, PAPER)


def rows(result: defense_page.DefensePageRun[MixUpParams]) -> list[ResultRow]:
    """Accuracy per training run (the paper's beside ERM and MixUp k=2), of
    each attacked checkpoint, and the attacks' scores per setting."""
    return defense_page.page_rows(
        result,
        paper=PAPER,
        notes={ERM: PAPER_NOTE, MIXUP: PAPER_NOTE},
    )


def claims(result: defense_page.DefensePageRun[MixUpParams]) -> list[Claim]:
    """The MixUp paper's claim and Huang et al.'s, with this run's verdicts.

    Accuracy claims pair the two models on the same clean test images;
    attack claims pair the settings on the same victims and attack seeds.
    """
    drop = defense_page.PSNRDrop(
        lambda owner: (
            f"MixUp ({HUANG}, coefficients at most 0.65) lowers {owner} "
            "PSNR against the private image (each setting attacked on a model trained "
            "with it)."
        ),
        HUANG_SOURCE,
        setting=HUANG,
        baseline=NONE,
    )
    return [
        defense_page.accuracy_claim(
            result,
            claim="MixUp (k=2, weights from Beta(alpha, alpha)) generalises better "
            "than ERM: it has a higher test accuracy (the repository gives 95.76% "
            "vs 94.47% for PreAct ResNet-18 on CIFAR-10).",
            source=f"{ZHANG_SOURCE}; the numbers: {ZHANG_REPOSITORY}",
            better=MIXUP,
            worse=ERM,
        ),
        defense_page.accuracy_claim(
            result,
            claim="MixUp as a federated defense (k=4, coefficients at most 0.65) "
            "costs test accuracy: ERM is more accurate.",
            source=HUANG_SOURCE,
            better=ERM,
            worse=HUANG,
        ),
        *defense_page.lowers_psnr_per_attack(result, [drop]),
    ]
