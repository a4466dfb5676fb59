"""The FastSecAgg page's run: cost runs of the three protocols, the check of
the secret-sharing scheme, the inversion check (:func:`run`)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from gi_lib.defenses import DropoutSchedule, ProtocolAbort
from gi_lib.defenses._fastshare import FastShare
from gi_lib.defenses.fastsecagg import FastSecAgg, recovery_probability
from gi_lib.experiments import coded_aggregation as coded
from gi_lib.experiments.common import uses_num_threads
from gi_lib.experiments.fastsecagg.params import (
    FASTSECAGG_PHASES,
    PROTOCOLS,
    FastSecAggParams,
)
from gi_lib.params import call_with_fields, resolve_device


@dataclass
class SchemeCheck:
    """FastShare at one N: privacy by rank, recovery, the adversarial pattern.

    Attributes:
        scheme: the instance.
        checked: sets of T shares checked by rank (all of them when
            ``exhaustive``).
        exhaustive: every set of T shares was checked.
        leaking: how many of them leak (0: T-privacy holds on them).
        row_leaks: T + 1 shares in one row of the grid leak.
        recovery: random dropout share -> probability FastRecon recovers.
        adversarial: the adversarial pattern's size.
        adversarial_stuck: FastRecon is stuck on it.
        random_same_size: probability of recovery from as many random dropouts.
    """

    scheme: FastShare
    checked: int
    exhaustive: bool
    leaking: int
    row_leaks: bool
    recovery: dict[float, float]
    adversarial: int
    adversarial_stuck: bool
    random_same_size: float


@dataclass
class FastSecAggRun:
    """Cost records, FastShare checks and the inversion check of one run."""

    params: FastSecAggParams
    device: torch.device
    costs: list[coded.CostRecord]
    schemes: dict[int, SchemeCheck]
    demo: coded.InversionDemo
    adversarial_abort: str


def cost_runs(
    params: FastSecAggParams, *, progress: bool = True
) -> list[coded.CostRecord]:
    """Every protocol at every number of clients, the same clients dropping."""
    net = coded.network(params)
    records = []
    with tqdm(
        total=len(params.num_clients) * len(PROTOCOLS),
        disable=not progress,
        mininterval=5.0,
    ) as bar:
        for n in params.num_clients:
            updates = coded.synthetic_updates(n, params.model_size, params.seed)
            dropped = math.floor(params.dropout * n + 0.5)
            schedule = coded.drop_schedule(n, dropped, round=2, seed=params.seed)
            scheme = FastShare.design(n, privacy=params.privacy, parity=params.parity)
            runs = {
                "FastSecAgg": (
                    FastSecAgg(scheme=scheme, seed=params.seed),
                    f"{scheme.n1}x{scheme.n2} grid, T={scheme.privacy}, "
                    f"L={scheme.num_secrets}",
                    FASTSECAGG_PHASES,
                )
            }
            for name, (protocol, words) in coded.secagg_baselines(
                n, params.dropout, seed=params.seed
            ).items():
                runs[name] = (protocol, words, coded.SECAGG_PHASES)
            for name, (protocol, words, phases) in runs.items():
                records.append(
                    coded.cost_run(
                        name, protocol, updates, schedule, dropout=params.dropout,
                        settings=words, phases=phases, network=net,
                    )
                )  # fmt: skip
                bar.update(1)
    return records


def scheme_check(scheme: FastShare, params: FastSecAggParams) -> SchemeCheck:
    """Privacy by rank, recovery probabilities and the adversarial pattern."""
    n, t = scheme.num_shares, scheme.privacy
    rng = np.random.default_rng(params.seed)
    if math.comb(n, t) <= max(params.privacy_subsets, 500):
        subsets = [list(s) for s in itertools.combinations(range(n), t)]
        exhaustive = True
    else:
        subsets = [
            rng.choice(n, t, replace=False) for _ in range(params.privacy_subsets)
        ]
        exhaustive = False
    leaking = sum(scheme.leaks(s) for s in subsets)
    j = np.arange(n)
    row_leaks = scheme.leaks(j[j % scheme.n1 == 0][: t + 1])
    recovery = {
        rate: recovery_probability(
            scheme, rate, trials=params.recovery_trials, seed=params.seed
        )
        for rate in params.recovery_rates
    }
    pattern = scheme.adversarial_dropouts()
    available = np.ones(n, dtype=bool)
    available[pattern] = False
    return SchemeCheck(
        scheme=scheme,
        checked=len(subsets),
        exhaustive=exhaustive,
        leaking=int(leaking),
        row_leaks=bool(row_leaks),
        recovery=recovery,
        adversarial=int(pattern.size),
        adversarial_stuck=bool(scheme.stuck_erasures(available).any()),
        random_same_size=recovery_probability(
            scheme, pattern.size / n, trials=params.recovery_trials, seed=params.seed
        ),
    )


@uses_num_threads
def run(params: FastSecAggParams, *, progress: bool = True) -> FastSecAggRun:
    """The cost runs, the FastShare checks, an adversarial run and the
    inversion check."""
    device = resolve_device(params.device)
    costs = cost_runs(params, progress=progress)
    schemes = {
        n: scheme_check(
            FastShare.design(n, privacy=params.privacy, parity=params.parity), params
        )
        for n in params.num_clients
    }
    n = params.attack_clients
    # The page's privacy, parity, fixed-point encoding and seed.
    protocol = call_with_fields(FastSecAgg, params)
    # The adversarial pattern, in a real run: those clients go silent after sharing.
    pattern = protocol.scheme_for(n).adversarial_dropouts()
    try:
        protocol.run(
            coded.synthetic_updates(n, 64, params.seed),
            dropouts=DropoutSchedule({int(c): 2 for c in pattern}),
        )
        abort = ""
    except ProtocolAbort as stop:
        abort = str(stop)
    demo = coded.inversion_demo(
        "FastSecAgg", protocol, params, upload_kind="encrypted shares", device=device
    )
    return FastSecAggRun(params, device, costs, schemes, demo, abort)
