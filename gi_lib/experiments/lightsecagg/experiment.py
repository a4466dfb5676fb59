"""The LightSecAgg page's parameters and run: cost runs of the three
protocols under dropout, the privacy check of the masks, the inversion
check (:func:`run`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from gi_lib.defenses._field import FIELD
from gi_lib.defenses.lightsecagg import (
    MASKED_INPUT_ROUND,
    LightSecAgg,
    MaskCode,
    default_parameters,
)
from gi_lib.experiments import coded_aggregation as coded
from gi_lib.experiments.common import uses_num_threads
from gi_lib.params import param, resolve_device
from gi_lib.results import PaperValue

NOTEBOOK = "lightsecagg"
PROTOCOLS = ("LightSecAgg", "SecAgg", "SecAgg+")
LIGHTSECAGG_PHASES = {
    0: "offline",
    1: "offline",
    2: "offline",
    MASKED_INPUT_ROUND: "masked upload",
    4: "recovery",
}

SPEEDUP = PaperValue(
    12.7, "So et al., LightSecAgg (arXiv v1 / ITW 2021), abstract", "P"
)
"""'A performance gain of up to 12.7x over baselines' (total training time)."""
MLSYS = "So et al., LightSecAgg (MLSys 2022, arXiv 2109.14236), abstract"
V1 = "So et al., LightSecAgg (arXiv v1 / ITW 2021), abstract"


@dataclass(frozen=True, kw_only=True)
class LightSecAggParams(coded.CodedAggregationParams):
    """The LightSecAgg notebook's parameters."""

    num_clients: tuple[int, ...] = param(
        "numbers of clients of the cost runs", minimum=4, unique=True
    )
    dropout_rates: tuple[float, ...] = param(
        "dropout rates of the cost runs (capped just below 1/2)",
        minimum=0,
        below=1,
        unique=True,
    )
    privacy_subsets: int = param(
        "random sets of T encoded masks checked by rank", minimum=1
    )


@dataclass
class LightSecAggRun:
    """Cost records, the inversion check and the privacy check of one run."""

    params: LightSecAggParams
    device: torch.device
    costs: list[coded.CostRecord]
    demo: coded.InversionDemo
    privacy: dict[str, int]


def check(values: Mapping[str, Any]) -> LightSecAggParams:
    """Check the parameters (see :class:`LightSecAggParams`)."""
    return coded.check_page(values, LightSecAggParams, notebook=NOTEBOOK)


def dropped_count(num_clients: int, rate: float) -> int:
    """round(rate * N), at most ceil(N / 2) - 1 (SecAgg's majority threshold
    ``floor(N / 2) + 1`` must still be met)."""
    return min(math.floor(rate * num_clients + 0.5), -(-num_clients // 2) - 1)


def cost_runs(
    params: LightSecAggParams, *, progress: bool = True
) -> list[coded.CostRecord]:
    """Every protocol at every number of clients and dropout rate."""
    net = coded.network(params)
    records = []
    total = len(params.num_clients) * len(params.dropout_rates) * len(PROTOCOLS)
    with tqdm(total=total, disable=not progress, mininterval=5.0) as bar:
        for n in params.num_clients:
            updates = coded.synthetic_updates(n, params.model_size, params.seed)
            for rate in params.dropout_rates:
                dropped = dropped_count(n, rate)
                t, u = default_parameters(n, dropped / n)
                # The same clients go silent from each protocol's masked upload.
                runs = {
                    "LightSecAgg": (
                        LightSecAgg(privacy=t, target=u, seed=params.seed),
                        f"T={t}, U={u}",
                        LIGHTSECAGG_PHASES,
                        MASKED_INPUT_ROUND,
                    )
                }
                for name, (protocol, words) in coded.secagg_baselines(
                    n, dropped / n, seed=params.seed, threshold=n // 2 + 1
                ).items():
                    runs[name] = (
                        protocol, words, coded.SECAGG_PHASES, coded.SECAGG_MASKED_ROUND
                    )  # fmt: skip
                for name, (protocol, words, phases, silent_from) in runs.items():
                    schedule = coded.drop_schedule(
                        n, dropped, round=silent_from, seed=params.seed
                    )
                    records.append(
                        coded.cost_run(
                            name, protocol, updates, schedule, dropout=rate,
                            settings=words, phases=phases, network=net,
                        )
                    )  # fmt: skip
                    bar.update(1)
    return records


def privacy_check(params: LightSecAggParams) -> dict[str, int]:
    """Random sets of T encoded masks of one user at the largest N: how many
    have a noise block of rank below T (0: none reveals anything); and how
    many sets of T + 1 do leak (their noise block cannot cover them)."""
    n = max(params.num_clients)
    rate = max(params.dropout_rates)
    t, u = default_parameters(n, dropped_count(n, rate) / n)
    code = MaskCode(n, u, t, size=1)
    matrix = code.encoding_matrix
    noise, pieces = matrix[:, code.num_pieces :], matrix[:, : code.num_pieces]
    rng = np.random.default_rng(params.seed)
    private = leaking = 0
    for _ in range(params.privacy_subsets):
        rows = rng.choice(n, t, replace=False)
        private += FIELD.rank(noise[rows]) == t
        more = rng.choice(n, t + 1, replace=False)
        both = np.concatenate([noise[more], pieces[more]], axis=1)
        leaking += FIELD.rank(both) > FIELD.rank(noise[more])
    return {
        "num_clients": n,
        "T": t,
        "U": u,
        "subsets": params.privacy_subsets,
        "private T-sets": int(private),
        "leaking (T+1)-sets": int(leaking),
    }


@uses_num_threads
def run(params: LightSecAggParams, *, progress: bool = True) -> LightSecAggRun:
    """The cost runs, the privacy check and the inversion check."""
    device = resolve_device(params.device)
    costs = cost_runs(params, progress=progress)
    n = params.attack_clients
    demo_protocol = LightSecAgg(
        privacy=n // 2 - 1 if n > 2 else 0,
        target=n - 1,
        frac_bits=params.frac_bits,
        clip=params.clip,
        seed=params.seed,
    )
    demo = coded.inversion_demo(
        "LightSecAgg", demo_protocol, params, upload_kind="masked input", device=device
    )
    return LightSecAggRun(params, device, costs, demo, privacy_check(params))
