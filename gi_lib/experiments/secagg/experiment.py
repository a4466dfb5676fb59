"""The SecAgg page's whole run: :func:`run` and its result :class:`SecAggRun`."""

from __future__ import annotations

from dataclasses import dataclass, field

from gi_lib.defenses import NetworkModel
from gi_lib.experiments.common import uses_num_threads
from gi_lib.experiments.secagg.attack import AttackTrial, run_attacks
from gi_lib.experiments.secagg.costs import (
    CostPoint,
    ExpansionCheck,
    ToleranceCheck,
    check_tolerance,
    paper_expansions,
    run_costs,
    validate_bytes,
)
from gi_lib.experiments.secagg.params import SecAggParams
from gi_lib.params import resolve_device


@dataclass
class SecAggRun:
    """Everything the notebook shows."""

    params: SecAggParams
    device: str
    costs: list[CostPoint] = field(default_factory=list)
    validation: list[ExpansionCheck] = field(default_factory=list)
    expansions: dict[str, dict[str, float]] = field(default_factory=dict)
    tolerance: list[ToleranceCheck] = field(default_factory=list)
    trials: list[AttackTrial] = field(default_factory=list)
    network: NetworkModel = field(default_factory=NetworkModel)


@uses_num_threads
def run(params: SecAggParams, *, progress: bool = True) -> SecAggRun:
    """All four experiments (see the module docstring)."""
    device = resolve_device(params.device)
    network = NetworkModel()
    result = SecAggRun(params=params, device=str(device), network=network)
    result.validation = validate_bytes(params)
    result.expansions = paper_expansions()
    result.tolerance = check_tolerance(params)
    result.costs = run_costs(params, network, progress=progress)
    result.trials = run_attacks(params, str(device), progress=progress)
    return result
