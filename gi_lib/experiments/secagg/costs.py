"""The SecAgg page's protocol measurements: communication expansion (checked
byte for byte against real runs), dropout tolerance and CPU cost per party."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from gi_lib.defenses import DropoutSchedule, NetworkModel, ProtocolAbort
from gi_lib.defenses.aggregation import SERVER, AggregationResult, client_name
from gi_lib.defenses.secagg import (
    SecAgg,
    client_bytes,
    expansion,
    idealised_expansion,
    secaggplus_parameters,
)
from gi_lib.experiments.secagg.params import INPUT_BITS, PAPER_EXPANSION, SecAggParams

# --- results ----------------------------------------------------------------


@dataclass(frozen=True)
class CostPoint:
    """One run of the cost sweep."""

    protocol: str
    num_clients: int
    dropout: float
    degree: int | None
    threshold: int
    dropped: int
    aborted: bool
    client_seconds: float
    server_seconds: float
    server_unmask_seconds: float
    client_bytes: float
    modelled_seconds: float


@dataclass(frozen=True)
class ExpansionCheck:
    """The byte model against one real run."""

    num_clients: int
    size: int
    bits: int
    model_bytes: int
    measured_min: int
    measured_max: int
    exact_sum: bool


@dataclass(frozen=True)
class ToleranceCheck:
    """Dropout tolerance at one number of clients."""

    num_clients: int
    threshold: int
    tolerated: int
    exact: bool
    one_more_aborts: bool
    abort_message: str


# --- the experiments --------------------------------------------------------


def _random_updates(
    n: int, d: int, seed: int, scale: float
) -> list[tuple[torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(d, generator=generator) * scale,) for _ in range(n)]


def _survivor_means(result: AggregationResult) -> tuple[float, float]:
    """Mean CPU seconds and bytes (sent + received) of the surviving clients."""
    transcript = result.transcript
    names = [client_name(i) for i in result.survivors]
    seconds = [transcript.seconds(n) for n in names]
    traffic = [transcript.bytes_sent(n) + transcript.bytes_received(n) for n in names]
    return float(np.mean(seconds)), float(np.mean(traffic))


def cost_point(
    protocol: SecAgg,
    n: int,
    dropout: float,
    params: SecAggParams,
    network: NetworkModel,
) -> CostPoint:
    """Run ``protocol`` once with ``n`` clients, ``dropout`` of them silent
    from the masked-input round on."""
    schedule = DropoutSchedule.random(n, dropout, from_round=2, seed=params.seed + n)
    updates = _random_updates(n, params.vector_size, params.seed + n, params.clip / 8)
    common = {
        "protocol": protocol.name,
        "num_clients": n,
        "dropout": dropout,
        "degree": protocol.degree,
        "threshold": protocol.threshold_for(n),
        "dropped": len(schedule.silent_from),
    }
    try:
        result = protocol.run(updates, dropouts=schedule)
    except ProtocolAbort:
        nan = float("nan")
        return CostPoint(
            **common,
            aborted=True,
            client_seconds=nan,
            server_seconds=nan,
            server_unmask_seconds=nan,
            client_bytes=nan,
            modelled_seconds=nan,
        )
    seconds, traffic = _survivor_means(result)
    transcript = result.transcript
    return CostPoint(
        **common,
        aborted=False,
        client_seconds=seconds,
        server_seconds=transcript.seconds(SERVER),
        server_unmask_seconds=transcript.seconds(SERVER, round=3),
        client_bytes=traffic,
        modelled_seconds=network.total_seconds(transcript),
    )


def run_costs(
    params: SecAggParams, network: NetworkModel, *, progress: bool
) -> list[CostPoint]:
    """SecAgg at every (n, dropout); SecAgg+ at every (n, plus dropout)."""
    jobs: list[tuple[SecAgg, int, float]] = []
    base = {
        "bits": params.ring_bits,
        "frac_bits": params.frac_bits,
        "clip": params.clip,
    }
    for n in params.client_counts:
        for dropout in params.dropouts:
            jobs.append((SecAgg(**base, seed=params.seed), n, dropout))
        for dropout in params.plus_dropouts:
            degree, threshold = secaggplus_parameters(n, dropout)
            if degree is not None:
                plus = SecAgg(
                    **base, degree=degree, threshold=threshold, seed=params.seed
                )
                jobs.append((plus, n, dropout))
    return [
        cost_point(protocol, n, dropout, params, network)
        for protocol, n, dropout in tqdm(jobs, desc="cost sweep", disable=not progress)
    ]


def integer_protocol(
    num_clients: int, *, seed: int, degree: int | None = None
) -> SecAgg:
    """SecAgg on 16-bit integer inputs, in the smallest ring that holds their sum."""
    bits = INPUT_BITS + math.ceil(math.log2(num_clients))
    return SecAgg(
        bits=bits, frac_bits=0, clip=2 ** (INPUT_BITS - 1) - 1, seed=seed, degree=degree
    )


def validate_bytes(params: SecAggParams) -> list[ExpansionCheck]:
    """Real runs on 16-bit integer inputs: bytes per client vs the model."""
    out = []
    for n in params.validation_clients:
        protocol = integer_protocol(n, seed=params.seed)
        generator = torch.Generator().manual_seed(params.seed + n)
        high = 2 ** (INPUT_BITS - 1)
        updates = [
            (
                torch.randint(
                    -high + 1, high, (params.validation_size,), generator=generator
                ).to(torch.float32),
            )
            for _ in range(n)
        ]
        result = protocol.run(updates)
        transcript = result.transcript
        measured = [
            transcript.bytes_sent(client_name(i))
            + transcript.bytes_received(client_name(i))
            for i in range(n)
        ]
        bits = protocol.encoding.bits
        assert bits is not None
        want = sum(u[0].to(torch.int64) for u in updates).numpy()
        out.append(
            ExpansionCheck(
                num_clients=n,
                size=params.validation_size,
                bits=bits,
                model_bytes=client_bytes(n, params.validation_size, bits)["total"],
                measured_min=min(measured),
                measured_max=max(measured),
                exact_sum=bool(
                    np.array_equal(protocol.encoding.to_signed(result.encoded), want)
                ),
            )
        )
    return out


def paper_expansions() -> dict[str, dict[str, float]]:
    """Expansion at the paper's two sizes: ours (byte model), the idealised
    accounting, and SecAgg+ with the degree that survives 10 % dropout."""
    out = {}
    for n, m in PAPER_EXPANSION:
        degree, _ = secaggplus_parameters(n, 0.1)
        out[f"{n},{m}"] = {
            "num_clients": n,
            "size": m,
            "ours": expansion(n, m, INPUT_BITS),
            "idealised": idealised_expansion(n, m, INPUT_BITS),
            "secagg+": expansion(n, m, INPUT_BITS, degree=degree),
            "secagg+ degree": float(degree or n - 1),
            "ring bits": INPUT_BITS + math.ceil(math.log2(n)),
        }
    return out


def check_tolerance(params: SecAggParams) -> list[ToleranceCheck]:
    """floor(n/3) clients dropping after sharing keys, then one more."""
    out = []
    for n in params.tolerance_clients:
        protocol = SecAgg(
            bits=params.ring_bits,
            frac_bits=params.frac_bits,
            clip=params.clip,
            seed=params.seed,
        )
        updates = _random_updates(n, 64, params.seed, params.clip / 8)
        tolerated = n // 3
        dropped = DropoutSchedule({u: 2 for u in range(tolerated)})
        result = protocol.run(updates, dropouts=dropped)
        want = sum(
            protocol.encoding.quantise(updates[i][0].numpy()) for i in result.survivors
        )
        exact = bool(np.array_equal(protocol.encoding.to_signed(result.encoded), want))
        message = ""
        try:
            protocol.run(
                updates, dropouts=DropoutSchedule({u: 2 for u in range(tolerated + 1)})
            )
            aborts = False
        except ProtocolAbort as abort:
            aborts, message = True, str(abort)
        out.append(
            ToleranceCheck(
                n, protocol.threshold_for(n), tolerated, exact, aborts, message
            )
        )
    return out
