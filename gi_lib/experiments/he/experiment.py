"""The HE page's whole run: :func:`run` and its result :class:`HERun`."""

from __future__ import annotations

from dataclasses import dataclass

from gi_lib.defenses import he
from gi_lib.experiments.common import uses_num_threads
from gi_lib.experiments.he.costs import (
    HarnessRound,
    _backends,
    _harness_round,
    _time_operations,
)
from gi_lib.experiments.he.learning import (
    AttackTrial,
    Training,
    _attack,
    _schedule,
    _train,
)
from gi_lib.experiments.he.params import HEParams
from gi_lib.params import resolve_device


@dataclass
class HERun:
    """Everything the notebook shows."""

    params: HEParams
    costs: list[he.OperationCost]
    rounds: list[HarnessRound]
    training: Training
    trials: list[AttackTrial]
    setup_seconds: dict[str, float]


@uses_num_threads
def run(params: HEParams, *, progress: bool = True) -> HERun:
    """Time the backends, run one harness round each, train three ways, attack."""
    resolve_device(params.device, supported=("cpu",))
    uploads = len(_schedule(params))
    backends, setup = _backends(params, max_summands=uploads + params.num_trials + 1)
    costs = _time_operations(params, backends, progress)
    rounds = [_harness_round(params, "plaintext", None)] + [
        _harness_round(params, name, backend) for name, backend in backends.items()
    ]
    lwe = backends["lwe"]
    assert isinstance(lwe, he.LWEBackend)
    training_result, system, learner = _train(params, lwe, progress)
    trials = _attack(params, system, learner, lwe, progress)
    return HERun(params, costs, rounds, training_result, trials, setup)
