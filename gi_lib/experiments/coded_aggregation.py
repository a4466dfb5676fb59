"""What the LightSecAgg and FastSecAgg pages share: their common parameters,
cost runs on the harness against SecAgg and SecAgg+, and the inversion check
of one client's upload.

Cost runs use synthetic updates (uniform draws of the right size; the
protocols' cost does not depend on the values) and time every party by its
own CPU seconds (:class:`gi_lib.defenses.aggregation.Transcript`); a
:class:`~gi_lib.defenses.aggregation.NetworkModel` turns a transcript into
modelled wall time. The inversion check runs one FedSGD round of real
clients (one image each) through a protocol, feeds one client's upload as
the server received it to Inverting Gradients, does the same with that
client's plaintext update, and checks that the decoded sum is the plaintext
fixed-point sum bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from gi_lib import data, fl, metrics, models, plots

# Imported so that make sees the page's dependency on the attack it runs.
from gi_lib.attacks import build_attack, inverting  # noqa: F401
from gi_lib.defenses import DropoutSchedule, NetworkModel, ProtocolAbort
from gi_lib.defenses._fixedpoint import FixedPoint, unpack_bits
from gi_lib.defenses.aggregation import (
    AggregationProtocol,
    UpdateLayout,
    client_name,
)
from gi_lib.defenses.secagg import SecAgg, secaggplus_parameters
from gi_lib.experiments.common import AttackedSample, attack_and_score, mean, mean_of
from gi_lib.params import ExperimentParams, check_parameters, param
from gi_lib.results import ResultRow

# --------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CodedAggregationParams(ExperimentParams):
    """The parameters both pages take; each page adds its own.

    The cost runs use updates of ``model_size`` values and a
    :class:`~gi_lib.defenses.aggregation.NetworkModel` of these bandwidths
    and latency (:func:`network`); the inversion check runs one round of
    ``attack_clients`` clients and attacks ``num_trials`` of them.
    """

    model_size: int = param("values per update in the cost runs", minimum=1)
    client_mbps: float = param("client bandwidth, Mb/s", above=0)
    server_mbps: float = param("server bandwidth, Mb/s", above=0)
    latency_ms: float = param("one-way latency, ms", minimum=0)
    attack_clients: int = param(
        "clients in the round whose uploads are inverted", minimum=2
    )
    max_iterations: int = param("Inverting Gradients' Adam steps", minimum=1)
    frac_bits: int = param("fixed-point fractional bits", minimum=1, maximum=30)
    clip: float = param("updates are clipped to [-clip, clip]", above=0)


_Page = TypeVar("_Page", bound=CodedAggregationParams)


def check_page(values: Mapping[str, Any], cls: type[_Page], *, notebook: str) -> _Page:
    """Check a page's parameters (:func:`gi_lib.params.check_parameters`),
    and that the round of the inversion check has a client per trial."""
    params = check_parameters(values, cls, notebook=notebook)
    if params.num_trials > params.attack_clients:
        raise ValueError(
            f"num_trials ({params.num_trials}) clients are attacked, but the round "
            f"has only attack_clients = {params.attack_clients}."
        )
    return params


def network(params: CodedAggregationParams) -> NetworkModel:
    """The page's network model."""
    return NetworkModel(
        client_bandwidth=params.client_mbps * 1e6,
        server_bandwidth=params.server_mbps * 1e6,
        latency=params.latency_ms / 1e3,
    )


# --------------------------------------------------------------------------
# Cost runs
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# What the server can and cannot invert
# --------------------------------------------------------------------------


@dataclass
class InversionDemo:
    """One FedSGD round through a protocol, and what inverting it gives.

    Attributes:
        protocol: the protocol's label.
        num_clients: clients in the round (one image each).
        upload_kind: the message kind read as a client's upload.
        masked: Inverting Gradients on each attacked client's upload as the
            server received it (read as a fixed-point update).
        plain: the same on that client's plaintext update.
        unrelated_psnr: per attacked client, the mean PSNR of the round's
            other private images against its image (the level of an
            unrelated image).
        correlation: per attacked client, the correlation of its upload (as
            signed integers) with its fixed-point update.
        mismatches: values where the decoded sum differs from the plaintext
            fixed-point sum of the survivors (0: bit for bit).
        decoded_equal: the decoded float aggregate equals the decoding of
            that plaintext sum exactly.
        survivors: clients the sum is over.
    """

    protocol: str
    num_clients: int
    upload_kind: str
    masked: list[AttackedSample] = field(default_factory=list)
    plain: list[AttackedSample] = field(default_factory=list)
    unrelated_psnr: list[float] = field(default_factory=list)
    correlation: list[float] = field(default_factory=list)
    mismatches: int = -1
    decoded_equal: bool = False
    survivors: tuple[int, ...] = ()

    @property
    def exact(self) -> bool:
        return self.mismatches == 0 and self.decoded_equal


def read_as_update(payload: bytes, size: int, encoding: FixedPoint) -> np.ndarray:
    """What an attacker does with a client's upload: read its first bytes as
    ``size`` bit-packed field elements and decode them as a fixed-point
    update (float32). For a masked upload that is the masked update; for
    ciphertexts it is whatever those bytes decode to."""
    bits = int(encoding.prime).bit_length()  # type: ignore[arg-type]
    need = math.ceil(size * bits / 8)
    if len(payload) < need:
        raise ValueError(
            f"the upload has {len(payload)} bytes, fewer than the {need} of an update."
        )
    values = unpack_bits(payload[:need], size, bits).astype(np.int64)
    return encoding.decode(values % int(encoding.prime)).astype(np.float32)


def inversion_demo(
    label: str,
    protocol: AggregationProtocol,
    *,
    upload_kind: str,
    dataset: str,
    model: str,
    num_clients: int,
    num_attacked: int,
    max_iterations: int,
    seed: int,
    device: torch.device,
) -> InversionDemo:
    """One FedSGD round of ``num_clients`` clients through ``protocol``.

    Every client holds one private image and computes its FedSGD gradient on
    the same freshly initialised model; the protocol sums the updates. For
    the first ``num_attacked`` clients, Inverting Gradients attacks (a) the
    bytes the server received from that client (``upload_kind`` messages,
    read with :func:`read_as_update`) and (b) its plaintext update, with the
    same budget and seed. The decoded sum is compared with the plaintext
    fixed-point sum of the survivors.
    """
    if not 1 <= num_attacked <= num_clients:
        raise ValueError(
            f"attack between 1 and {num_clients} clients, got {num_attacked}."
        )
    info = data.dataset_info(dataset)
    images, labels, _ = data.sample_victims(
        data.load_dataset(info.name), num_clients, seed
    )
    net = models.build_model(model, info, seed=seed).to(device)
    steps = [
        fl.client_fedsgd(
            net,
            images[i : i + 1].to(device),
            labels[i : i + 1].to(device),
            num_classes=info.num_classes,
        )
        for i in range(num_clients)
    ]
    updates = [tuple(g.detach().cpu() for g in step.gradients) for step in steps]
    result = protocol.run(updates)
    encoding: FixedPoint = protocol.encoding  # type: ignore[attr-defined]
    layout = UpdateLayout.of(updates)
    expected = sum(
        encoding.quantise(layout.flatten(updates[i])) for i in result.survivors
    )
    got = encoding.to_signed(result.encoded)
    demo = InversionDemo(label, num_clients, upload_kind, survivors=result.survivors)
    demo.mismatches = int(np.count_nonzero(got != expected))
    want = layout.unflatten(encoding.decode(expected).astype(np.float32))
    demo.decoded_equal = all(
        torch.equal(a, b) for a, b in zip(result.aggregate, want, strict=True)
    )
    attack = build_attack(
        "inverting", max_iterations=max_iterations, on_divergence="stop"
    )
    view = result.server_view
    for i in range(num_attacked):
        (message,) = view.from_party(client_name(i), kind=upload_kind)
        seen = read_as_update(message.payload, layout.size, encoding)
        masked_observation = fl.observe_round(
            net, [steps[i]], gradients=[t.to(device) for t in layout.unflatten(seen)]
        )
        plain_observation = fl.observe_round(net, [steps[i]])
        truth = images[i : i + 1].to(device)
        demo.masked.append(
            attack_and_score(
                lambda o=masked_observation, s=seed + i: attack.reconstruct(o, seed=s),
                truth,
                setting=f"{label} upload",
                index=i,
            )
        )
        demo.plain.append(
            attack_and_score(
                lambda o=plain_observation, s=seed + i: attack.reconstruct(o, seed=s),
                truth,
                setting="plaintext update",
                index=i,
            )
        )
        others = [j for j in range(num_clients) if j != i]
        demo.unrelated_psnr.append(
            mean(
                float(metrics.psnr(images[j : j + 1], images[i : i + 1]))
                for j in others
            )
        )
        mine = encoding.quantise(layout.flatten(updates[i])).astype(np.float64)
        demo.correlation.append(float(np.corrcoef(mine, seen.astype(np.float64))[0, 1]))
    return demo


def inversion_summary(demo: InversionDemo) -> str:
    """The inversion check's numbers, for a page's prose."""
    return (
        f"Inverting Gradients on {len(demo.masked)} client(s) of a round of "
        f"{demo.num_clients}: from the {demo.protocol} upload the server received, "
        f"mean PSNR {mean_of(demo.masked, 'psnr'):.1f} dB; from the same client's "
        f"plaintext update, {mean_of(demo.plain, 'psnr'):.1f} dB; another private "
        f"image of the round scores {mean(demo.unrelated_psnr):.1f} dB against it. "
        f"The upload's correlation with the client's update: "
        f"{mean(demo.correlation):+.3f}. The decoded sum "
        + (
            "equals the plaintext fixed-point sum of the "
            f"{len(demo.survivors)} clients bit for bit."
            if demo.exact
            else f"differs from the plaintext fixed-point sum in {demo.mismatches} "
            "values."
        )
    )


def page_inversion_demo(
    label: str,
    protocol: AggregationProtocol,
    params: CodedAggregationParams,
    *,
    upload_kind: str,
    device: torch.device,
) -> InversionDemo:
    """:func:`inversion_demo` with a page's parameters: a round of
    ``attack_clients`` clients, ``num_trials`` of them attacked."""
    return inversion_demo(
        label,
        protocol,
        upload_kind=upload_kind,
        dataset=params.dataset,
        model=params.model,
        num_clients=params.attack_clients,
        num_attacked=params.num_trials,
        max_iterations=params.max_iterations,
        seed=params.seed,
        device=device,
    )


def inversion_rows(
    demo: InversionDemo,
    params: CodedAggregationParams,
    *,
    upload: str,
    seen: str,
    with_steps: bool = False,
) -> list[ResultRow]:
    """The inversion check as result rows (no paper values): PSNR on the
    upload (named ``upload``; ``seen`` says what the server received), on
    the plaintext update, of an unrelated image, and whether the sum was
    exact. ``with_steps`` adds the attack's budget to the upload's note."""
    info = data.dataset_info(params.dataset)
    base = f"{info.name}/{params.model}/N{demo.num_clients}"
    note = f"Inverting Gradients on {seen}, mean over {len(demo.masked)} clients"
    if with_steps:
        note += f", {params.max_iterations} steps"
    return [
        ResultRow.against(
            f"{base}/{upload}", "psnr", mean_of(demo.masked, "psnr"), None, note
        ),
        ResultRow.against(
            f"{base}/plaintext update", "psnr", mean_of(demo.plain, "psnr"), None,
            "the same clients' plaintext updates, same attack and budget",
        ),
        ResultRow.against(
            f"{base}/unrelated image", "psnr", mean(demo.unrelated_psnr), None,
            "another private image of the round against the client's image",
        ),
        ResultRow.against(
            f"{base}/decoded sum exact", "success_rate", float(demo.exact), None,
            "1: the decoded sum equals the plaintext fixed-point sum bit for bit",
        ),
    ]  # fmt: skip


def inversion_figure(demo: InversionDemo) -> Figure:
    """Per attacked client: its image, IG on its plaintext update, IG on its
    upload as the server received it."""
    rows = [
        [m.true_images[0], p.images[0], m.images[0]]
        for m, p in zip(demo.masked, demo.plain, strict=True)
    ]
    titles = [f"client {m.index}" for m in demo.masked]
    return plots.image_rows(
        rows, ["private image", "IG: plaintext update", f"IG: {demo.protocol} upload"],
        titles,
    )  # fmt: skip


# --------------------------------------------------------------------------
# Figures of cost runs
# --------------------------------------------------------------------------


def time_figure(
    records: Sequence[CostRecord],
    protocols: Sequence[str],
    dropouts: Sequence[float],
    *,
    value: Callable[[CostRecord], float] = lambda r: r.total,
    ylabel: str = "modelled total time (s)",
    log: bool = False,
) -> Figure:
    """One panel per dropout rate: ``value`` against the number of clients."""
    figure, axes = plt.subplots(
        1, len(dropouts), figsize=(3.2 * len(dropouts) + 0.6, 3.0), squeeze=False
    )
    for k, rate in enumerate(dropouts):
        axis = axes[0][k]
        for m, name in enumerate(protocols):
            chosen = [r for r in records_of(records, name, rate) if r.failed is None]
            if chosen:
                axis.plot(
                    [r.num_clients for r in chosen],
                    [value(r) for r in chosen],
                    marker="o",
                    color=plots.PALETTE[m % len(plots.PALETTE)],
                    label=name,
                    linewidth=1.4,
                )
        if log:
            axis.set_xscale("log")
            axis.set_yscale("log")
        axis.set_title(f"{100 * rate:.0f}% dropout", fontsize=9)
        axis.set_xlabel("clients N")
        if k == 0:
            axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    return figure


def phase_figure(
    records: Sequence[CostRecord], protocols: Sequence[str], dropouts: Sequence[float]
) -> Figure:
    """Stacked modelled time per phase at the largest N, per protocol and rate."""
    largest = max(r.num_clients for r in records)
    chosen = [r for r in records if r.num_clients == largest and r.failed is None]
    names = [
        (p, d)
        for d in dropouts
        for p in protocols
        if any(r.protocol == p and r.dropout == d for r in chosen)
    ]
    phases: list[str] = []
    for r in chosen:
        phases += [p for p in r.phases if p not in phases]
    figure, axis = plt.subplots(figsize=(max(5.0, 0.65 * len(names) + 1.5), 3.3))
    bottom = np.zeros(len(names))
    for k, phase in enumerate(phases):
        heights = np.array(
            [
                next(
                    r for r in chosen if r.protocol == p and r.dropout == d
                ).phases.get(phase, 0.0)
                for p, d in names
            ]
        )
        axis.bar(
            range(len(names)), heights, bottom=bottom, label=phase,
            color=plots.PALETTE[k % len(plots.PALETTE)],
        )  # fmt: skip
        bottom += heights
    axis.set_xticks(
        range(len(names)), [f"{p}\n{100 * d:.0f}%" for p, d in names], fontsize=7
    )
    axis.set_ylabel(f"modelled time (s), N = {largest}")
    axis.legend(fontsize=7)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure
