"""Cost runs on the aggregation harness: synthetic updates, dropout
schedules, per-party CPU seconds and bytes, the SecAgg and SecAgg+
baselines, and the tables and slopes of their records."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gi_lib.defenses import DropoutSchedule, NetworkModel, ProtocolAbort
from gi_lib.defenses._fixedpoint import FixedPoint
from gi_lib.defenses.aggregation import AggregationProtocol, UpdateLayout, client_name
from gi_lib.defenses.secagg import SecAgg, secaggplus_parameters


@dataclass(frozen=True)
class CostRecord:
    """One protocol run's costs.

    Attributes:
        protocol: its label (``"SecAgg"``, ``"SecAgg+"``, ``"LightSecAgg"``...).
        num_clients: N.
        dropout: the nominal dropout rate.
        dropped: clients that went silent.
        settings: the protocol's parameters in words.
        phases: modelled seconds per phase (rounds grouped by name).
        total: modelled seconds of the whole run.
        client_seconds: mean CPU seconds per client that worked.
        server_seconds: the server's CPU seconds.
        client_bytes: mean bytes sent and received per client.
        exact: the decoded sum equals the plaintext fixed-point sum.
        failed: the abort message when the protocol stopped, else ``None``.
        server_phases: the server's CPU seconds per phase.
    """

    protocol: str
    num_clients: int
    dropout: float
    dropped: int
    settings: str
    phases: dict[str, float]
    total: float
    client_seconds: float
    server_seconds: float
    client_bytes: float
    exact: bool
    failed: str | None = None
    server_phases: dict[str, float] = field(default_factory=dict)


def synthetic_updates(
    num_clients: int, size: int, seed: int
) -> list[tuple[torch.Tensor]]:
    """One flat update per client, uniform in [-0.5, 0.5) (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    return [(torch.rand(size, generator=generator) - 0.5,) for _ in range(num_clients)]


def drop_schedule(
    num_clients: int, count: int, *, round: int, seed: int
) -> DropoutSchedule:
    """``count`` clients chosen uniformly (seeded), silent from ``round``."""
    chosen = np.random.default_rng(seed).choice(num_clients, count, replace=False)
    return DropoutSchedule({int(c): round for c in sorted(chosen)})


def cost_run(
    label: str,
    protocol: AggregationProtocol,
    updates: Sequence[Sequence[torch.Tensor]],
    schedule: DropoutSchedule,
    *,
    dropout: float,
    settings: str,
    phases: Mapping[int, str],
    network: NetworkModel,
) -> CostRecord:
    """Run ``protocol`` once and keep its costs (not the transcript).

    Args:
        label: the protocol's label in tables.
        protocol: a protocol with an ``encoding`` (:class:`FixedPoint`).
        updates: one update per client.
        schedule: who drops when.
        dropout: the nominal rate, for tables.
        settings: the protocol's parameters in words.
        phases: round -> phase name; rounds of one phase are added up.
        network: turns the transcript into modelled seconds.
    """
    n = len(updates)
    try:
        result = protocol.run(updates, dropouts=schedule)
    except ProtocolAbort as abort:
        return CostRecord(
            label, n, dropout, len(schedule.silent_from), settings, {}, math.nan,
            math.nan, math.nan, math.nan, False, str(abort),
        )  # fmt: skip
    transcript = result.transcript
    by_phase: dict[str, float] = {}
    server: dict[str, float] = {}
    for r in transcript.rounds:
        name = phases.get(r, transcript.round_name(r))
        by_phase[name] = by_phase.get(name, 0.0) + network.round_seconds(transcript, r)
        server[name] = server.get(name, 0.0) + transcript.seconds("server", round=r)
    encoding: FixedPoint = protocol.encoding  # type: ignore[attr-defined]
    layout = UpdateLayout.of(updates)
    expected = sum(
        encoding.quantise(layout.flatten(updates[i])) for i in result.survivors
    )
    exact = result.encoded is not None and bool(
        np.array_equal(encoding.to_signed(result.encoded), expected)
    )
    clients = [client_name(i) for i in range(n)]
    traffic = [transcript.bytes_sent(c) + transcript.bytes_received(c) for c in clients]
    return CostRecord(
        protocol=label,
        num_clients=n,
        dropout=dropout,
        dropped=len(schedule.silent_from),
        settings=settings,
        phases=by_phase,
        total=float(sum(by_phase.values())),
        client_seconds=transcript.mean_client_seconds(),
        server_seconds=transcript.seconds("server"),
        client_bytes=float(np.mean(traffic)),
        exact=exact,
        server_phases=server,
    )


def secagg_baselines(
    num_clients: int,
    dropout: float,
    *,
    seed: int,
    threshold: int | None = None,
    frac_bits: int = 16,
    clip: float = 1.0,
) -> dict[str, tuple[SecAgg, str]]:
    """SecAgg and SecAgg+ for ``num_clients`` and a dropout rate below 1/2.

    SecAgg uses ``threshold`` (default: its own, ceil(2N/3)). SecAgg+ uses
    :func:`gi_lib.defenses.secagg.secaggplus_parameters` (a degree of about
    2 log2 N, raised until random dropouts at this rate leave every client
    enough share holders); where no degree below N - 1 is enough it falls
    back to the complete graph with SecAgg's threshold, and says so.
    """
    t = threshold
    secagg = SecAgg(threshold=t, frac_bits=frac_bits, clip=clip, seed=seed)
    shown_t = secagg.threshold_for(num_clients)
    degree, t_plus = secaggplus_parameters(num_clients, dropout)
    if degree is None:
        plus = SecAgg(threshold=t, frac_bits=frac_bits, clip=clip, seed=seed)
        plus_words = f"no smaller degree survives: complete graph, t={shown_t}"
    else:
        plus = SecAgg(
            degree=degree, threshold=t_plus, frac_bits=frac_bits, clip=clip, seed=seed
        )
        plus_words = f"degree {degree}, t={t_plus}"
    return {
        "SecAgg": (secagg, f"t={shown_t}"),
        "SecAgg+": (plus, plus_words),
    }


SECAGG_PHASES = {0: "offline", 1: "offline", 2: "masked upload", 3: "recovery"}
SECAGG_MASKED_ROUND = 2
"""The round in which SecAgg's clients upload their masked input."""
"""SecAgg's rounds by phase: advertising and sharing keys do not depend on the
update (they can run before training ends), as LightSecAgg's offline phase."""


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The least-squares slope of log y against log x (NaN below two points)."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(pairs) < 2:
        return math.nan
    lx, ly = np.log([p[0] for p in pairs]), np.log([p[1] for p in pairs])
    return float(np.polyfit(lx, ly, 1)[0])


def cost_frame(records: Sequence[CostRecord], *, by_phase: bool = False) -> Any:
    """The cost runs as a table (pandas), one row per run.

    With ``by_phase`` (runs at several dropout rates) a row gives the rate and
    the modelled seconds of each phase and their total before the CPU seconds
    and bytes; without, the modelled total follows them.
    """
    import pandas as pd

    def row(r: CostRecord) -> dict[str, Any]:
        out: dict[str, Any] = {"protocol": r.protocol, "N": r.num_clients}
        if by_phase:
            out["dropout"] = f"{100 * r.dropout:.0f}%"
        out.update({"dropped": r.dropped, "parameters": r.settings})
        if by_phase:
            out.update({f"{p} (s)": round(s, 3) for p, s in r.phases.items()})
            out["total (s)"] = round(r.total, 3)
        out.update(
            {
                "client CPU (s)": round(r.client_seconds, 4),
                "server CPU (s)": round(r.server_seconds, 4),
                "MB per client": round(r.client_bytes / 1e6, 3),
            }
        )
        if not by_phase:
            out["modelled total (s)"] = round(r.total, 3)
        out.update({"exact": r.exact, "stopped": r.failed or ""})
        return out

    return pd.DataFrame([row(r) for r in records])


def records_of(
    records: Sequence[CostRecord], protocol: str, dropout: float | None = None
) -> list[CostRecord]:
    """The records of one protocol (and rate), by number of clients."""
    chosen = [
        r
        for r in records
        if r.protocol == protocol and (dropout is None or r.dropout == dropout)
    ]
    return sorted(chosen, key=lambda r: r.num_clients)
