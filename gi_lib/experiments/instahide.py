"""The InstaHide notebook: vanilla vs InstaHide accuracy, and an attack
through InstaHide.

The training and attack engine is the defense pages' own
(:mod:`gi_lib.experiments.defense_page`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from gi_lib import data
from gi_lib.defenses import InstaHide, MixUp, NoDefense
from gi_lib.defenses.base import Defense
from gi_lib.defenses.mixup import private_heavy_alpha
from gi_lib.experiments import common, defense_claims, defense_page
from gi_lib.params import ParameterError, check_parameters, param
from gi_lib.results import Claim, ResultRow

NOTEBOOK = "instahide"


@dataclass(frozen=True, kw_only=True)
class InstaHideParams(defense_page.DefensePageParams):
    """The InstaHide notebook's parameters."""

    k: int = common.mixed_param("images mixed per encoding")
    upper: float = common.upper_param()
    public_images: int = param(
        "held-out training images standing in for a public set "
        "(0: inside-dataset InstaHide only)",
        minimum=0,
    )


PAPER_NOTE = (
    "The paper trains ResNet-18 on all of CIFAR-10; its accuracies are not "
    "entered here (not verified from a source available to this build)."
)

# The figures and the summary are the defense pages' (the notebook calls
# them through this module).
accuracy_figure = defense_page.accuracy_figure
examples_figure = defense_page.examples_figure
summary_text = defense_page.summary_text


def check(values: Mapping[str, Any]) -> InstaHideParams:
    """Check the parameters (see :class:`InstaHideParams`), ``upper >= 1/k``."""
    params = check_parameters(values, InstaHideParams, notebook=NOTEBOOK)
    common.check_upper(params.upper, k=params.k)
    return params


def public_partners(k: int) -> int:
    """Public images among the ``k - 1`` partners of cross-dataset InstaHide.

    The paper's illustration (k = 4) mixes the private image with one other
    private image and two public ones: all but one partner are public.
    """
    return max(k - 2, 1)


def public_set(params: InstaHideParams) -> torch.Tensor | None:
    """Training images the client never trains on, standing in for a public set.

    The paper mixes CIFAR-10 with ImageNet, which is not available here; these
    images come from the same data set's training split, after the
    ``train_images`` the models train on (the same seeded order), so they are
    disjoint from the training images and from the test images.

    Raises:
        ParameterError: the data set has fewer than ``train_images +
            public_images`` training images.
    """
    count = params.public_images
    if count == 0:
        return None
    train = data.load_dataset(params.dataset, "train")
    size = len(train)  # type: ignore[arg-type]
    if params.train_images + count > size:
        raise ParameterError(
            f"public_images={count} needs {params.train_images + count} training "
            f"images with train_images={params.train_images}, but the data set "
            f"has {size}; lower public_images or train_images."
        )
    # The seeded order of defenses.utility's training sample, continued.
    images, _, _ = data.sample_victims(
        train, params.train_images + count, seed=params.seed
    )
    return images[params.train_images :]


@common.uses_num_threads
def run(
    params: InstaHideParams, *, progress: bool = True
) -> defense_page.DefensePageRun[InstaHideParams]:
    """Vanilla vs InstaHide training; the attack through each setting.

    InstaHide runs inside the data set and, when ``public_images`` > 0, across
    data sets with the held-out stand-in public set (:func:`public_set`).
    """
    info = data.dataset_info(params.dataset)
    k, upper, seed = params.k, params.upper, params.seed
    public = public_set(params)
    training: dict[str, Defense] = {
        "vanilla": NoDefense(seed=seed),
        # Inside the training batch: partners are the client's other images.
        f"InstaHide k={k}": InstaHide(k, upper=upper, center=info.mean, seed=seed),
    }
    cross = f"Cross-InstaHide k={k}"
    if public is not None:
        training[cross] = InstaHide(
            k,
            upper=upper,
            center=info.mean,
            public=public,
            public_count=public_partners(k),
            seed=seed,
        )
    attacked: dict[str, defense_page.DefenseMaker] = {
        "none": lambda pool, s: NoDefense(seed=s),
        f"MixUp k={k}": lambda pool, s: MixUp(
            k, alpha=private_heavy_alpha(k), upper=upper, pool=pool, seed=s
        ),
        f"InstaHide k={k}": lambda pool, s: InstaHide(
            k, upper=upper, pool=pool, center=info.mean, seed=s
        ),
    }
    if public is not None:
        attacked[cross] = lambda pool, s: InstaHide(
            k,
            upper=upper,
            pool=pool,
            center=info.mean,
            public=public,
            public_count=public_partners(k),
            seed=s,
        )
    return defense_page.run_defense_page(params, training, attacked, progress=progress)


def rows(result: defense_page.DefensePageRun[InstaHideParams]) -> list[ResultRow]:
    """Accuracy per training run and the attack's scores per setting."""
    return defense_page.page_rows(result, note=PAPER_NOTE)


INSTAHIDE = "Huang, Song, Li and Arora, ICML 2020, abstract"


def claims(result: defense_page.DefensePageRun[InstaHideParams]) -> list[Claim]:
    """InstaHide's accuracy claim and Huang et al.'s test of it as a defense."""
    k = result.params.k
    return [
        defense_claims.small_accuracy_cost(
            result,
            "vanilla",
            f"InstaHide k={k}",
            "InstaHide has a minor effect on test accuracy (taken here: at most "
            "5 points below vanilla training)",
            INSTAHIDE,
            at_most=0.05,
        ),
        defense_claims.lowers_psnr(
            result,
            f"InstaHide k={k}",
            f"InstaHide (k={k}) lowers the attack's PSNR",
            defense_claims.HUANG,
        ),
    ]
