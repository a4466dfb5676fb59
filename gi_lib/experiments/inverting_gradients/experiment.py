"""The Inverting Gradients page's parameter check and run; the four
experiments are in :mod:`gi_lib.experiments.inverting_experiments`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from gi_lib import data
from gi_lib.experiments.common import uses_num_threads
from gi_lib.experiments.inverting_experiments import (
    IGParams,
    IGRun,
    convnet_name,
    run_all,
)
from gi_lib.params import ParameterError, check_parameters, resolve_device

NOTEBOOK = "inverting_gradients"

UNVERIFIED = (
    "the paper's value could not be verified from its text here, so none is shown"
)
PAPER_SETTING = (
    "paper: ResNet and LeNet on the first 100 CIFAR-10 validation images, "
    "4,800-24,000 steps"
)


def check(values: Mapping[str, Any]) -> IGParams:
    """Check the notebook's parameters (see :class:`IGParams`): batches hold
    at most one image per class; figures show at most ``num_trials`` images."""
    params = check_parameters(values, IGParams, notebook=NOTEBOOK)
    info = data.dataset_info(params.dataset)
    if max(params.batch_sizes) > info.num_classes:
        raise ParameterError(
            f"batch_sizes go up to {max(params.batch_sizes)}, but victims are drawn "
            f"with distinct labels and {params.dataset} has {info.num_classes} "
            "classes."
        )
    for width in params.widths:
        convnet_name(width)  # raises ParameterError for an unknown width
    return dataclasses.replace(
        params, num_shown=min(params.num_shown, params.num_trials)
    )


@uses_num_threads
def run(params: IGParams, *, progress: bool = True) -> IGRun:
    """Run all four experiments (on ``params.num_threads`` CPU threads)."""
    device = resolve_device(params.device)
    return run_all(params, device, progress=progress)
