"""The InstaHide notebook: vanilla vs InstaHide accuracy, and attacks
through InstaHide.

Utility: the page's model trained without InstaHide, with inside-dataset
InstaHide and with cross-dataset InstaHide. Attack: every attack of the page
on ``attack_model`` checkpoints trained under each setting (vanilla training
for the undefended client, MixUp of the same ``k`` for the setting without
the sign mask), as GradAttack attacks a model trained with the defense. The
engine is the defense pages' own (:mod:`gi_lib.experiments.defense_page`).
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
from gi_lib.experiments import common, defense_page
from gi_lib.params import ParameterError, check_parameters, param
from gi_lib.results import Claim, PaperValue, ResultRow

NOTEBOOK = "instahide"

Pool = tuple[torch.Tensor, torch.Tensor] | None
"""The client's other images a defense mixes with (None: the training batch)."""


@dataclass(frozen=True, kw_only=True)
class InstaHideParams(defense_page.DefendedCheckpointParams):
    """The InstaHide notebook's parameters."""

    k: int = common.mixed_param("images mixed per encoding")
    upper: float = common.upper_param()
    public_images: int = param(
        "held-out training images standing in for a public set "
        "(0: inside-dataset InstaHide only)",
        minimum=0,
    )


PAPER_NOTE = (
    "the paper trains ResNet-18 on all of CIFAR-10; its accuracy table could not "
    "be read from the sources available here (PAPER_VALUES.md §11, NF), so no "
    "value is entered"
)
ABSTRACT = "Huang et al. 2020 (InstaHide), abstract"
HUANG_2021 = (
    "Huang et al. 2021 evaluate Intra-InstaHide against gradient inversion "
    "(Table 2; its numbers are not available here, PAPER_VALUES.md §8)"
)
MINOR_DROP = 0.02
"""The accuracy drop read as "minor" (the book's accuracy band): the paper
states the claim without a number available here."""

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


def labels(params: InstaHideParams) -> dict[str, str]:
    """The settings' labels: ``none``, ``vanilla`` (its training), ``mixup``,
    ``inside`` and ``cross`` (cross-dataset, when ``public_images`` > 0)."""
    k = params.k
    return {
        "none": "none",
        "vanilla": "vanilla",
        "mixup": f"MixUp k={k}",
        "inside": f"InstaHide k={k}",
        "cross": f"Cross-InstaHide k={k}",
    }


@common.uses_num_threads
def run(
    params: InstaHideParams, *, progress: bool = True
) -> defense_page.DefensePageRun[InstaHideParams]:
    """Vanilla vs InstaHide training; every attack through each setting, on
    the attacked model trained under that setting.

    InstaHide runs inside the data set and, when ``public_images`` > 0, across
    data sets with the held-out stand-in public set (:func:`public_set`).
    """
    info = data.dataset_info(params.dataset)
    k, upper, seed = params.k, params.upper, params.seed
    public = public_set(params)
    name = labels(params)

    def mixup(pool: Pool, s: int) -> Defense:
        return MixUp(k, alpha=private_heavy_alpha(k), upper=upper, pool=pool, seed=s)

    def inside(pool: Pool, s: int) -> Defense:
        return InstaHide(k, upper=upper, pool=pool, center=info.mean, seed=s)

    def cross(pool: Pool, s: int) -> Defense:
        return InstaHide(
            k,
            upper=upper,
            pool=pool,
            center=info.mean,
            public=public,
            public_count=public_partners(k),
            seed=s,
        )

    attacked: dict[str, defense_page.DefenseMaker] = {
        name["none"]: lambda pool, s: NoDefense(seed=s),
        name["mixup"]: mixup,
        name["inside"]: inside,
    }
    # Training mixes inside the training batch: partners are the client's
    # other images.
    training: dict[str, Defense] = {
        name["vanilla"]: NoDefense(seed=seed),
        name["inside"]: inside(None, seed),
    }
    if public is not None:
        attacked[name["cross"]] = cross
        training[name["cross"]] = cross(None, seed)
    return defense_page.run_defense_page(
        params,
        training,
        attacked,
        checkpoints={n: (lambda m=make: m(None, seed)) for n, make in attacked.items()},
        checkpoint_epochs=params.attack_epochs,
        per_image_accuracy=True,
        progress=progress,
    )


CHALLENGE = "InstaHide Challenge leaderboard (Hazelsuko07/InstaHide_Challenge)"
CHALLENGE_SSIM = {
    "carlini-v1": (0.90, 0.43),
    "carlini-v2": (0.79, 0.37),
    "prng-attack": (0.98, 0.47),
}
"""The challenge's leaderboard: each attack's Max-SSIM and Mean-SSIM over the
challenge set (100 private images, 50 encodings each, k = 6)."""


def challenge_rows() -> list[ResultRow]:
    """The challenge leaderboard's numbers, which this page does not run:
    Carlini et al.'s decoding attack needs the challenge's 5,000 encodings of
    100 private images, and the PRNG attack exploits a bug of its code."""
    why = (
        "Carlini et al.'s decoding attack on the InstaHide Challenge (5,000 "
        "encodings of 100 private images, k = 6) is not implemented here; this "
        "page attacks gradients"
    )
    out = []
    for attack, (best, mean) in CHALLENGE_SSIM.items():
        for kind, value in (("max", best), ("mean", mean)):
            out.append(
                ResultRow.not_run(
                    f"instahide-challenge/{attack}/{kind}-ssim",
                    "ssim",
                    PaperValue(value, CHALLENGE, "P"),
                    why,
                )
            )
    return out


def rows(result: defense_page.DefensePageRun[InstaHideParams]) -> list[ResultRow]:
    """Accuracy per training run and per attacked checkpoint, the attacks'
    scores per setting, and the challenge leaderboard (not run here)."""
    return defense_page.page_rows(result, note=PAPER_NOTE) + challenge_rows()


def claims(result: defense_page.DefensePageRun[InstaHideParams]) -> list[Claim]:
    """InstaHide's claims (and Huang et al.'s test of it), with this run's
    verdicts.

    Accuracy claims pair the two models on the same clean test images;
    attack claims pair the settings on the same victims and attack seeds.
    """
    name = labels(result.params)
    encoded = [name["inside"]] + [name["cross"]] * (name["cross"] in result.utility)
    out = [
        defense_page.accuracy_claim(
            result,
            claim=f"Training with {setting} has only a minor effect on test "
            f"accuracy (read here as at most {100 * MINOR_DROP:g} points below "
            "vanilla training; no number of the paper's is available here).",
            source=ABSTRACT,
            better=setting,
            worse=name["vanilla"],
            margin=-MINOR_DROP,
        )
        for setting in encoded
    ]
    k = result.params.k
    drops = [
        defense_page.PSNRDrop(
            lambda owner: (
                f"InstaHide ({name['inside']}) lowers {owner} PSNR "
                "against the private image (checked on a model trained with it)."
            ),
            f"{ABSTRACT} (privacy against known attacks); {HUANG_2021}",
            setting=name["inside"],
            baseline=name["none"],
        ),
        defense_page.PSNRDrop(
            lambda owner: (
                f"The pixel-wise sign mask matters: {owner} PSNR is lower "
                f"through InstaHide than through MixUp of the same k={k} images (the "
                "paper shows MixUp alone insecure against other attacks than gradient "
                "inversion)."
            ),
            f"{ABSTRACT} (contribution d)",
            setting=name["inside"],
            baseline=name["mixup"],
        ),
        # Only where the run has a cross-dataset setting.
        defense_page.PSNRDrop(
            lambda owner: (
                "Mixing with a public data set improves security: "
                f"{owner} PSNR is lower through cross-dataset than through "
                "inside-dataset InstaHide (here the public set is a held-out part of "
                "the same data set, not ImageNet)."
            ),
            f"{ABSTRACT} (contribution a)",
            setting=name["cross"],
            baseline=name["inside"],
        ),
    ]
    return out + defense_page.lowers_psnr_per_attack(result, drops)
