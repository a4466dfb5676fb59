"""The InstaHide notebook: vanilla vs InstaHide accuracy, and DLG through InstaHide."""

from __future__ import annotations

from typing import Any

from gi_lib import data
from gi_lib.defenses import InstaHide, MixUp, NoDefense
from gi_lib.defenses.evaluate import DefenseFactory
from gi_lib.experiments.mixup import (
    TRAINING_PARAMETERS,
    DefensePageRun,
    accuracy_figure,
    examples_figure,
    page_rows,
    run_defense_page,
    summary_text,
)
from gi_lib.params import Param, check_parameters, common_parameters
from gi_lib.results import ResultRow

NOTEBOOK = "instahide"
PARAMETERS: dict[str, Param] = {
    **common_parameters(),
    **TRAINING_PARAMETERS,
    "k": Param(int, minimum=2, maximum=8, help="images mixed per encoding"),
    "upper": Param(float, minimum=0.13, maximum=1.0, help="largest coefficient c_2"),
}
PAPER_NOTE = (
    "The paper trains ResNet-18 on all of CIFAR-10; its accuracies are not "
    "entered here (not verified from a source available to this build)."
)
__all__ = ["accuracy_figure", "examples_figure", "summary_text"]


def check(values: dict[str, Any]) -> dict[str, Any]:
    """Validate the parameters (see :data:`PARAMETERS`)."""
    params = check_parameters(values, PARAMETERS, notebook=NOTEBOOK)
    if params["upper"] < 1 / params["k"]:
        raise ValueError(f"upper must be at least 1/k = {1 / params['k']:.3f}.")
    return params


def run(params: dict[str, Any], *, progress: bool = True) -> DefensePageRun:
    """Vanilla vs Inside-dataset InstaHide training; DLG through each setting."""
    info = data.dataset_info(params["dataset"])
    k, upper, seed = params["k"], params["upper"], params["seed"]
    training = {
        "vanilla": NoDefense(seed=seed),
        # Inside the training batch: partners are the client's other images.
        f"InstaHide k={k}": InstaHide(k, upper=upper, center=info.mean, seed=seed),
    }
    attacked: dict[str, DefenseFactory] = {
        "none": lambda pool, s: NoDefense(seed=s),
        f"MixUp k={k}": lambda pool, s: MixUp(
            k, alpha=[3.0] + [1.0] * (k - 1), upper=upper, pool=pool, seed=s
        ),
        f"InstaHide k={k}": lambda pool, s: InstaHide(
            k, upper=upper, pool=pool, center=info.mean, seed=s
        ),
    }
    return run_defense_page(params, training, attacked, progress=progress)


def rows(result: DefensePageRun) -> list[ResultRow]:
    return page_rows(result, note=PAPER_NOTE)
