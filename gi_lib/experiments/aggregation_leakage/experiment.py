"""The aggregation-leakage page's run: every section, timed."""

from __future__ import annotations

import time

# The attacks this page runs by name, imported so that the dependency is visible.
from gi_lib.attacks import (
    inverting,  # noqa: F401
)
from gi_lib.experiments.aggregation_leakage.inversions import run_inversions
from gi_lib.experiments.aggregation_leakage.params import LeakageParams, LeakageRun
from gi_lib.experiments.aggregation_leakage.sections import (
    run_cocktail,
    run_collusion,
    run_he,
    run_imprint,
    run_labels,
)
from gi_lib.experiments.common import uses_num_threads
from gi_lib.params import resolve_device


@uses_num_threads
def run(params: LeakageParams, *, progress: bool = True) -> LeakageRun:
    """Every section (see the module docstring)."""
    device = resolve_device(params.device)
    result = LeakageRun(params=params, device=str(device))
    for name, section in (
        ("labels", lambda: run_labels(params, device, result)),
        ("cocktail party", lambda: run_cocktail(params, result, progress)),
        ("imprint", lambda: run_imprint(params, result)),
        ("collusion", lambda: run_collusion(params, result)),
        ("he", lambda: run_he(params, device, result)),
        ("inversions", lambda: run_inversions(params, device, result, progress)),
    ):
        start = time.perf_counter()
        section()
        result.seconds[name] = time.perf_counter() - start
    return result
