"""The MixUp notebook: ERM vs MixUp accuracy, and an attack through MixUp.

The training and attack engine is the defense pages' own
(:mod:`gi_lib.experiments.defense_page`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from gi_lib.defenses import MixUp, NoDefense
from gi_lib.defenses.mixup import private_heavy_alpha
from gi_lib.experiments import defense_claims, defense_page
from gi_lib.experiments.common import uses_num_threads
from gi_lib.params import check_parameters, param
from gi_lib.results import Claim, ResultRow

NOTEBOOK = "mixup"


@dataclass(frozen=True, kw_only=True)
class MixUpParams(defense_page.DefensePageParams):
    """The MixUp notebook's parameters."""

    alpha: float = param("MixUp's Beta(alpha, alpha)", minimum=1e-3)


PAPER_NOTE = (
    "The paper trains PreAct ResNet-18 for 200 epochs on all of CIFAR-10; its "
    "error rates are not entered here (not verified from a source available to "
    "this build)."
)

# The figures and the summary are the defense pages' (the notebook calls
# them through this module).
accuracy_figure = defense_page.accuracy_figure
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
    """ERM vs MixUp training; the attack with no defense, MixUp k=2 and k=4."""
    alpha = params.alpha
    training = {
        "ERM": NoDefense(seed=params.seed),
        "MixUp": MixUp(2, alpha=alpha, seed=params.seed),
    }
    attacked: dict[str, defense_page.DefenseMaker] = {
        "none": lambda pool, seed: NoDefense(seed=seed),
        "MixUp k=2": lambda pool, seed: MixUp(2, alpha=alpha, pool=pool, seed=seed),
        "MixUp k=4": huang_mixup,
    }
    return defense_page.run_defense_page(params, training, attacked, progress=progress)


def rows(result: defense_page.DefensePageRun[MixUpParams]) -> list[ResultRow]:
    """Accuracy per training run and the attack's scores per setting."""
    return defense_page.page_rows(result, note=PAPER_NOTE)


ZHANG = "Zhang et al., ICLR 2018, Sec. 3.2 (CIFAR-10 and CIFAR-100)"


def claims(result: defense_page.DefensePageRun[MixUpParams]) -> list[Claim]:
    """MixUp's own claim (generalisation) and Huang et al.'s (as a defense)."""
    return [
        defense_claims.accuracy_comparison(
            result, "MixUp", "ERM", "MixUp generalises better than ERM", ZHANG
        ),
        defense_claims.lowers_psnr(
            result,
            "MixUp k=2",
            "MixUp of two images lowers the attack's PSNR",
            defense_claims.HUANG,
        ),
        defense_claims.lowers_psnr(
            result,
            "MixUp k=4",
            "MixUp of four images (coefficients <= 0.65) lowers the attack's PSNR",
            defense_claims.HUANG,
        ),
    ]
