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

The engine's modules: :mod:`~gi_lib.experiments.defense_page.params`
(parameters and the attacks by name),
:mod:`~gi_lib.experiments.defense_page.attacking` (attacks through a defense),
:mod:`~gi_lib.experiments.defense_page.engine` (checkpoints and the page's
run), :mod:`~gi_lib.experiments.defense_page.report` (figures, rows, prose)
and :mod:`~gi_lib.experiments.defense_page.claims`.
"""

from __future__ import annotations

from gi_lib.experiments.defense_page.attacking import (
    attack_defended,
    attack_through_defenses,
    observe_defended,
    unrelated_levels,
    victims_and_pool,
)
from gi_lib.experiments.defense_page.claims import (
    PSNRDrop,
    accuracy_claim,
    all_of,
    correct_per_test_image,
    lowers_psnr,
    lowers_psnr_per_attack,
    trials_bound,
)
from gi_lib.experiments.defense_page.engine import (
    DefensePageRun,
    attacked_checkpoint,
    classify_test_images,
    run_defense_page,
    train_utility,
)
from gi_lib.experiments.defense_page.params import (
    ATTACK_SHORT,
    ATTACK_TITLES,
    MIN_TRIALS,
    POOL_SIZE,
    TEST_IMAGES,
    AttackBudgetParams,
    DefendedAttackParams,
    DefendedCheckpointParams,
    DefenseMaker,
    DefensePageParams,
    MultiAttackParams,
    PageParams,
    TrainingPageParams,
    TrainingParams,
    UtilityTrainingParams,
    attack_iterations,
    attack_names,
    page_attack,
    page_attacks,
)
from gi_lib.experiments.defense_page.report import (
    accuracy_figure,
    checkpoint_text,
    examples_figure,
    page_rows,
    possessive,
    summary_text,
    unrelated_text,
)

__all__ = [
    "ATTACK_SHORT",
    "ATTACK_TITLES",
    "AttackBudgetParams",
    "DefendedAttackParams",
    "DefendedCheckpointParams",
    "DefenseMaker",
    "DefensePageParams",
    "DefensePageRun",
    "MIN_TRIALS",
    "MultiAttackParams",
    "POOL_SIZE",
    "PSNRDrop",
    "PageParams",
    "TEST_IMAGES",
    "TrainingPageParams",
    "TrainingParams",
    "UtilityTrainingParams",
    "accuracy_claim",
    "accuracy_figure",
    "all_of",
    "attack_defended",
    "attack_iterations",
    "attack_names",
    "attack_through_defenses",
    "attacked_checkpoint",
    "checkpoint_text",
    "classify_test_images",
    "correct_per_test_image",
    "examples_figure",
    "lowers_psnr",
    "lowers_psnr_per_attack",
    "observe_defended",
    "page_attack",
    "page_attacks",
    "page_rows",
    "possessive",
    "run_defense_page",
    "summary_text",
    "train_utility",
    "trials_bound",
    "unrelated_levels",
    "unrelated_text",
    "victims_and_pool",
]
