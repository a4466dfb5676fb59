"""The FastSecAgg notebook: measured scaling against SecAgg and SecAgg+,
privacy by rank over F_p, recovery under random and adversarial dropouts,
and what the server can and cannot invert.

Cost runs: for each number of clients (of the form 3 * 2**a, so that it
divides p - 1 and has a coprime grid), FastSecAgg, SecAgg and SecAgg+ sum
the same synthetic updates on the aggregation harness while the same share
of clients drops after sharing. Every party is timed by its own CPU seconds;
log-log slopes against N give the measured scaling. FastRecon's recovery
probability is a Monte-Carlo estimate over random dropout patterns (only the
pattern matters, so no protocol run is needed); the adversarial pattern is
the smallest stopping set of FastShare's product code.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm import tqdm

from gi_lib import plots
from gi_lib.defenses import DropoutSchedule, ProtocolAbort
from gi_lib.defenses._fastshare import FastShare
from gi_lib.defenses.fastsecagg import FastSecAgg, recovery_probability
from gi_lib.experiments import coded_aggregation as coded
from gi_lib.experiments.common import uses_num_threads
from gi_lib.params import param, resolve_device
from gi_lib.results import (
    Claim,
    ResultRow,
    bound_claim,
    paired_claim,
    untested_claim,
)

NOTEBOOK = "fastsecagg"
PROTOCOLS = ("FastSecAgg", "SecAgg", "SecAgg+")
FASTSECAGG_PHASES = {0: "keys", 1: "sharing", 2: "recovery"}
ABSTRACT = "Kadhe et al., FastSecAgg (arXiv 2009.11248), abstract"


@dataclass(frozen=True, kw_only=True)
class FastSecAggParams(coded.CodedAggregationParams):
    """The FastSecAgg notebook's parameters."""

    num_clients: tuple[int, ...] = param(
        "numbers of clients of the cost runs (3 * 2**a, 5 * 2**a, 15 * 2**a)",
        minimum=6,
        unique=True,
    )
    dropout: float = param(
        "share of clients dropping after sharing in the cost runs",
        minimum=0,
        below=0.3,
    )
    privacy: float = param("T as a share of the clients", above=0, below=0.5)
    parity: float = param("row parities as a share of the row", above=0, below=1)
    recovery_rates: tuple[float, ...] = param(
        "random dropout shares of the recovery estimate", minimum=0, below=1
    )
    recovery_trials: int = param("random patterns per share", minimum=1)
    privacy_subsets: int = param("random sets of T shares checked by rank", minimum=1)
    attack_clients: int = param(
        "clients in the round whose uploads are inverted (3 * 2**a)", minimum=6
    )


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


def check(values: Mapping[str, Any]) -> FastSecAggParams:
    """Check the parameters (see :class:`FastSecAggParams`), including that
    every number of clients has a FastShare grid with this privacy."""
    params = coded.check_page(values, FastSecAggParams, notebook=NOTEBOOK)
    for n in (*params.num_clients, params.attack_clients):
        FastShare.design(n, privacy=params.privacy, parity=params.parity)
    return params


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
    protocol = FastSecAgg(
        privacy=params.privacy,
        parity=params.parity,
        frac_bits=params.frac_bits,
        clip=params.clip,
        seed=params.seed,
    )
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
    demo = coded.page_inversion_demo(
        "FastSecAgg", protocol, params, upload_kind="encrypted shares", device=device
    )
    return FastSecAggRun(params, device, costs, schemes, demo, abort)


# ---------------------------------------------------------------- the page


def slopes(result: FastSecAggRun) -> dict[str, dict[str, float]]:
    """Log-log slopes against N of client CPU, server CPU and bytes per client."""
    out = {}
    for name in PROTOCOLS:
        chosen = [r for r in coded.records_of(result.costs, name) if r.failed is None]
        xs = [r.num_clients for r in chosen]
        out[name] = {
            "client CPU": coded.loglog_slope(xs, [r.client_seconds for r in chosen]),
            "server CPU": coded.loglog_slope(xs, [r.server_seconds for r in chosen]),
            "bytes per client": coded.loglog_slope(
                xs, [r.client_bytes for r in chosen]
            ),
        }
    return out


EXPECTED_ORDERS = {
    "FastSecAgg": {
        "client CPU": "O(N + d log N): N key agreements, FFT sharing of d/L blocks",
        "server CPU": "O(d log N) + peeling fills",
        "bytes per client": "O(d N / L) = O(d) with L = Theta(N)",
    },
    "SecAgg": {
        "client CPU": "O(N^2 + d N): Shamir shares and N pairwise masks",
        "server CPU": "O(N^2 + d N D): masks of D dropped clients with everyone",
        "bytes per client": "O(N + d)",
    },
    "SecAgg+": {
        "client CPU": "O(k^2 + d k), k = O(log N) neighbours",
        "server CPU": "O(N k^2 + d D k)",
        "bytes per client": "O(k + d)",
    },
}
"""The orders our reading of each protocol gives (not the paper's table,
which could not be read); the measured slopes are to be read against them."""


def slope_table(result: FastSecAggRun) -> Any:
    """Measured log-log slopes beside the orders each protocol's structure gives."""
    import pandas as pd

    measured = slopes(result)
    return pd.DataFrame(
        [
            {
                "protocol": name,
                "quantity": quantity,
                "slope against N": round(measured[name][quantity], 2),
                "expected order (our reading)": order,
            }
            for name, orders in EXPECTED_ORDERS.items()
            for quantity, order in orders.items()
        ]
    )


def scaling_figure(result: FastSecAggRun) -> Figure:
    """Client CPU, server CPU and bytes per client against N (log-log)."""
    figure, axes = plt.subplots(1, 3, figsize=(10.5, 3.1))
    panels = (
        ("client CPU (s)", lambda r: r.client_seconds),
        ("server CPU (s)", lambda r: r.server_seconds),
        ("MB per client", lambda r: r.client_bytes / 1e6),
    )
    for axis, (label, value) in zip(axes, panels, strict=True):
        for m, name in enumerate(PROTOCOLS):
            chosen = [
                r for r in coded.records_of(result.costs, name) if r.failed is None
            ]
            axis.plot(
                [r.num_clients for r in chosen],
                [value(r) for r in chosen],
                marker="o",
                color=plots.PALETTE[m],
                label=name,
            )
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("clients N")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    return figure


def recovery_figure(result: FastSecAggRun) -> Figure:
    """Probability that FastRecon recovers against the share of random
    dropouts, per N, with each N's adversarial pattern marked."""
    figure, axis = plt.subplots(figsize=(5.6, 3.3))
    for m, (n, c) in enumerate(result.schemes.items()):
        color = plots.PALETTE[m % len(plots.PALETTE)]
        rates = sorted(c.recovery)
        axis.plot(
            [100 * r for r in rates],
            [c.recovery[r] for r in rates],
            marker="o",
            color=color,
            label=f"N = {n} ({c.scheme.n1}x{c.scheme.n2}, z2 = {c.scheme.z2})",
        )
        axis.scatter(
            [100 * c.adversarial / n], [0.0], marker="x", color=color, s=50, zorder=3
        )
    axis.axvline(10, color="black", linestyle=":", linewidth=0.8)
    axis.text(10.5, 0.5, "paper's e.g. 10%", fontsize=7, rotation=90)
    axis.set_xlabel("clients missing (%)")
    axis.set_ylabel("P(FastRecon recovers)")
    axis.set_title("random dropouts (lines) vs. adversarial pattern (x)", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def inversion_figure(result: FastSecAggRun) -> Figure:
    """The private images and what Inverting Gradients makes of each upload."""
    return coded.inversion_figure(result.demo)


def cost_table(result: FastSecAggRun) -> Any:
    """The cost runs as a table (pandas)."""
    return coded.cost_frame(result.costs)


def scheme_table(result: FastSecAggRun) -> Any:
    """FastShare per N: parameters, privacy by rank, recovery, adversary."""
    import pandas as pd

    rows = []
    for n, c in result.schemes.items():
        s = c.scheme
        near = min(c.recovery, key=lambda r: abs(r - 0.1))
        rows.append(
            {
                "N": n,
                "grid": f"{s.n1}x{s.n2}",
                "T (privacy)": s.privacy,
                "T/N": round(s.privacy / n, 3),
                "L (secrets)": s.num_secrets,
                "T-sets checked": f"{c.checked}" + (" (all)" if c.exhaustive else ""),
                "T-sets leaking": c.leaking,
                "T+1 in a row leak": c.row_leaks,
                "every pattern up to": s.worst_case_dropouts,
                f"P(recover), {100 * near:.0f}% random": c.recovery[near],
                "adversarial pattern": c.adversarial,
                "adversarial recovered": not c.adversarial_stuck,
                "P(recover), as many random": c.random_same_size,
            }
        )
    return pd.DataFrame(rows)


def summary_text(result: FastSecAggRun) -> str:
    """The run's headline numbers, for the page's prose."""
    p = result.params
    sl = slopes(result)
    largest = max(p.num_clients)
    at = {r.protocol: r for r in result.costs if r.num_clients == largest}
    c = result.schemes[largest]
    near = min(c.recovery, key=lambda r: abs(r - 0.1))
    parts = [
        f"In this run ({p.profile} profile, d = {p.model_size}, "
        f"{100 * p.dropout:.0f}% of the clients dropping after sharing): at "
        f"N = {largest}, client CPU {at['FastSecAgg'].client_seconds:.3f} s "
        f"(FastSecAgg) vs {at['SecAgg'].client_seconds:.3f} s (SecAgg) and "
        f"{at['SecAgg+'].client_seconds:.3f} s (SecAgg+); server CPU "
        f"{at['FastSecAgg'].server_seconds:.3f} s vs {at['SecAgg'].server_seconds:.3f}"
        f" s and {at['SecAgg+'].server_seconds:.3f} s; "
        f"{at['FastSecAgg'].client_bytes / 1e6:.2f} MB per client vs "
        f"{at['SecAgg'].client_bytes / 1e6:.2f} MB and "
        f"{at['SecAgg+'].client_bytes / 1e6:.2f} MB.",
        "Log-log slopes against N (client CPU / server CPU / bytes per client): "
        + "; ".join(
            f"{name} {v['client CPU']:.2f} / {v['server CPU']:.2f} / "
            f"{v['bytes per client']:.2f}"
            for name, v in sl.items()
        )
        + ".",
        f"FastShare at N = {largest} ({c.scheme.n1}x{c.scheme.n2} grid): T = "
        f"{c.scheme.privacy} ({100 * c.scheme.privacy / largest:.0f}% of the "
        f"clients), {c.leaking} of {c.checked} sets of T shares leak by rank; "
        f"FastRecon recovers {100 * c.recovery[near]:.0f}% of random patterns with "
        f"{100 * near:.0f}% of the clients missing, and "
        f"{100 * c.random_same_size:.0f}% with {c.adversarial} random clients "
        f"missing, but the adversarial pattern of {c.adversarial} clients "
        f"({100 * c.adversarial / largest:.0f}%) is "
        + ("never recovered." if c.adversarial_stuck else "recovered.")
        + (
            f" A run at N = {p.attack_clients} with that pattern stopped: "
            f"\u201c{result.adversarial_abort[:160]}...\u201d"
            if result.adversarial_abort
            else ""
        ),
    ]
    return " ".join(parts) + " " + coded.inversion_summary(result.demo)


def rows(result: FastSecAggRun) -> list[ResultRow]:
    """Costs at the largest N, recovery, and the inversion (the paper prints
    no numbers to put beside them)."""
    p = result.params
    largest = max(p.num_clients)
    out: list[ResultRow] = []
    for r in result.costs:
        if r.num_clients != largest or r.failed is not None:
            continue
        name = f"{r.protocol}/N{largest}/d{p.model_size}"
        out += [
            ResultRow.against(
                f"{name}/client", "seconds", r.client_seconds, None,
                f"mean client CPU ({r.settings}); the paper prints no runtimes",
            ),
            ResultRow.against(
                f"{name}/server", "seconds", r.server_seconds, None,
                f"server CPU, {r.dropped} clients dropped after sharing",
            ),
            ResultRow.against(
                name, "bytes", r.client_bytes, None,
                "mean bytes sent and received per client",
            ),
        ]  # fmt: skip
    for n, c in result.schemes.items():
        near = min(c.recovery, key=lambda r: abs(r - 0.1))
        out.append(
            ResultRow.against(
                f"FastRecon/N{n}/random{100 * near:.0f}",
                "success_rate",
                c.recovery[near],
                None,
                f"{p.recovery_trials} random patterns; the abstract's 'e.g. ~10%' "
                "is an example, not a measured number",
            )
        )
        out.append(
            ResultRow.against(
                f"FastRecon/N{n}/adversarial{c.adversarial}",
                "success_rate",
                float(not c.adversarial_stuck),
                None,
                f"the {c.scheme.z1 + 1}x{c.scheme.z2 + 1} stopping set of the grid",
            )
        )
    seen = "the bytes the server received from the client (its encrypted shares)"
    return out + coded.inversion_rows(
        result.demo, p, upload="encrypted shares", seen=seen
    )


def claims(result: FastSecAggRun) -> list[Claim]:
    """The abstract's claims, checked on this run."""
    checks = list(result.schemes.values())
    fractions = ", ".join(
        f"N = {c.scheme.num_shares}: T = {c.scheme.privacy}" for c in checks
    )
    out = [
        bound_claim(
            "FastSecAgg is secure against the server colluding with any subset of "
            "some constant fraction (e.g. ~10%) of the clients.",
            ABSTRACT,
            [float(sum(c.leaking for c in checks))],
            below=0.5,
            what=(
                f"sets of T shares that leak, by rank over F_p ({fractions}; "
                + ", ".join(
                    f"{c.checked}{' (all)' if c.exhaustive else ' random'}"
                    for c in checks
                )
                + " sets checked)"
            ),
        )
    ]
    near = [c.recovery[min(c.recovery, key=lambda r: abs(r - 0.1))] for c in checks]
    out.append(
        bound_claim(
            "FastSecAgg tolerates dropouts of a random subset of some constant "
            "fraction (e.g. ~10%) of the clients.",
            ABSTRACT,
            near,
            above=0.95,
            what="probability that FastRecon recovers with ~10% of the clients "
            "missing at random, one value per N",
        )
    )
    by_n = sorted(result.costs, key=lambda r: r.num_clients)
    for base in ("SecAgg", "SecAgg+"):
        pairs = [
            (a.client_seconds + a.server_seconds, b.client_seconds + b.server_seconds)
            for a in by_n
            for b in by_n
            if a.protocol == "FastSecAgg"
            and b.protocol == base
            and a.num_clients == b.num_clients
            and a.failed is None
            and b.failed is None
        ]
        out.append(
            paired_claim(
                "FastSecAgg achieves significantly smaller computation cost than "
                f"existing schemes ({base}).",
                ABSTRACT,
                [-math.log(a) for a, _ in pairs],
                [-math.log(b) for _, b in pairs],
                names=(
                    "-ln(FastSecAgg client + server CPU s)",
                    f"-ln({base} client + server CPU s)",
                ),
                unit="",
            )
        )
    sl = slopes(result)
    out.append(
        bound_claim(
            "FastSecAgg achieves the same (orderwise) communication cost.",
            ABSTRACT,
            [sl["FastSecAgg"]["bytes per client"] - sl["SecAgg"]["bytes per client"]],
            below=0.1,
            what="log-log slope against N of FastSecAgg's bytes per client minus "
            "SecAgg's (below 0.1: it grows no faster with N; the constant factor "
            "is in the table)",
        )
    )
    out.append(
        untested_claim(
            "FastSecAgg guarantees security against adaptive adversaries.",
            ABSTRACT,
            "adaptive corruption is a property of the proof; this page checks "
            "privacy against fixed sets of colluders by rank",
        )
    )
    return out
