"""What the FastSecAgg page reports: fitted slopes against the paper's
orders, tables, rows, claims and prose."""

from __future__ import annotations

import math
from typing import Any

from gi_lib.experiments import coded_aggregation as coded
from gi_lib.experiments.fastsecagg.experiment import FastSecAggRun
from gi_lib.experiments.fastsecagg.params import ABSTRACT, PROTOCOLS
from gi_lib.results import Claim, ResultRow, bound_claim, paired_claim, untested_claim

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
