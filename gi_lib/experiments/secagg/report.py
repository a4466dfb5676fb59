"""What the SecAgg page reports: fitted cost slopes, rows, claims and prose."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gi_lib.experiments.secagg.costs import CostPoint
from gi_lib.experiments.secagg.experiment import SecAggRun
from gi_lib.experiments.secagg.params import (
    COST_SOURCE,
    DROPOUT_SOURCE,
    PAPER_EXPANSION,
    SECURITY_SOURCE,
)
from gi_lib.results import Claim, ResultRow, bound_claim, paired_claim, untested_claim

# --- analysis ---------------------------------------------------------------


def slope(points: Sequence[CostPoint], what: str) -> float:
    """The least-squares slope of log(seconds) against log(n)."""
    usable = [p for p in points if not p.aborted and getattr(p, what) > 0]
    if len({p.num_clients for p in usable}) < 2:
        return float("nan")
    x = np.log([p.num_clients for p in usable])
    y = np.log([getattr(p, what) for p in usable])
    return float(np.polyfit(x, y, 1)[0])


def series(result: SecAggRun, protocol: str, dropout: float) -> list[CostPoint]:
    return sorted(
        (p for p in result.costs if p.protocol == protocol and p.dropout == dropout),
        key=lambda p: p.num_clients,
    )


def slopes(result: SecAggRun) -> dict[tuple[str, float], dict[str, float]]:
    """Fitted slopes of client and server CPU seconds per (protocol, dropout)."""
    keys = sorted({(p.protocol, p.dropout) for p in result.costs})
    return {
        key: {
            "client": slope(series(result, *key), "client_seconds"),
            "server": slope(series(result, *key), "server_seconds"),
        }
        for key in keys
    }


def _largest(points: Sequence[CostPoint]) -> CostPoint | None:
    done = [p for p in points if not p.aborted]
    return max(done, key=lambda p: p.num_clients) if done else None


def rows(result: SecAggRun) -> list[ResultRow]:
    """Expansion beside the paper's figures; costs, bytes and PSNRs of this run."""
    out: list[ResultRow] = []
    for (n, m), paper in PAPER_EXPANSION.items():
        e = result.expansions[f"{n},{m}"]
        note = (
            f"byte model of our implementation (X25519 keys, AES-GCM tags, 31-bit "
            f"Shamir pieces, ring of {int(e['ring bits'])} bits), checked against "
            f"runs; the idealised accounting gives {e['idealised']:.3f}"
        )
        experiment = (
            f"expansion, 2^{int(math.log2(n))} clients, 2^{int(math.log2(m))} values"
        )
        out.append(
            ResultRow.against(experiment, "expansion", e["ours"], paper, note=note)
        )
    for check_ in result.validation:
        out.append(
            ResultRow.against(
                f"bytes per client, {check_.num_clients} clients, "
                f"{check_.size} values (run)",
                "bytes",
                float(check_.measured_max),
                None,
                note=f"byte model: {check_.model_bytes}",
            )
        )
    for protocol in ("secagg", "secagg+"):
        for dropout in sorted(
            {p.dropout for p in result.costs if p.protocol == protocol}
        ):
            point = _largest(series(result, protocol, dropout))
            if point is None:
                continue
            label = f"{protocol}, {point.num_clients} clients, {dropout:.0%} dropout"
            out.append(
                ResultRow.against(
                    f"client CPU, {label}",
                    "seconds",
                    point.client_seconds,
                    None,
                    note=f"{result.params.vector_size} values, per surviving client",
                )
            )
            out.append(
                ResultRow.against(
                    f"server CPU, {label}",
                    "seconds",
                    point.server_seconds,
                    None,
                    note=f"{result.params.vector_size} values",
                )
            )
    if result.trials:
        for name, attr in (
            ("plaintext update", "psnr_plain"),
            ("masked upload", "psnr_masked"),
            ("unrelated image", "psnr_unrelated"),
        ):
            out.append(
                ResultRow.against(
                    f"Inverting Gradients on one client's {name}"
                    if name != "unrelated image"
                    else "an unrelated image against the victim",
                    "psnr",
                    float(np.mean([getattr(t, attr) for t in result.trials])),
                    None,
                    note=f"mean of {len(result.trials)} trials",
                )
            )
    return out


def claims(result: SecAggRun) -> list[Claim]:
    """The paper's statements, checked on this run."""
    out = []
    for (n, m), paper in PAPER_EXPANSION.items():
        e = result.expansions[f"{n},{m}"]
        out.append(
            bound_claim(
                f"For 16-bit inputs, the protocol's communication expansion is "
                f"{paper.value}x for 2^{int(math.log2(n))} users and "
                f"2^{int(math.log2(m))}-dimensional vectors (checked within +-5 %)",
                paper.source,
                [e["ours"]],
                above=paper.value * 0.95,
                below=paper.value * 1.05,
                unit="x",
                what="our byte model, validated against runs",
            )
        )
    if result.tolerance:
        fractions = [
            c.tolerated / c.num_clients if c.exact and c.one_more_aborts else 0.0
            for c in result.tolerance
        ]
        out.append(
            bound_claim(
                "The protocol tolerates up to 1/3 of the users dropping out "
                "(with t = ceil(2n/3))",
                DROPOUT_SOURCE,
                [min(fractions)],
                above=1 / 3 - 0.02,
                what=(
                    "smallest share of clients that could drop after sharing keys "
                    "with the exact sum still recovered, over n = "
                    f"{', '.join(str(c.num_clients) for c in result.tolerance)}"
                ),
            )
        )
    fits = slopes(result)
    worst = max((d for p, d in fits if p == "secagg"), default=None)
    quadratic = (
        "The server's computation grows quadratically with the number of users "
        "when users drop out (O(mn^2))"
    )
    server_slope = fits[("secagg", worst)]["server"] if worst else float("nan")
    if worst and math.isfinite(server_slope):
        out.append(
            bound_claim(
                quadratic,
                COST_SOURCE,
                [server_slope],
                above=1.5,
                below=2.5,
                what=(
                    "log-log slope of server CPU seconds against n at "
                    f"{worst:.0%} dropout"
                ),
            )
        )
    else:
        out.append(
            untested_claim(
                quadratic,
                COST_SOURCE,
                "this profile has fewer than two finished SecAgg runs with dropouts "
                "to fit a slope to",
            )
        )
    if result.trials:
        out.append(
            paired_claim(
                "The server learns nothing about one user's input from its masked "
                "upload: an inversion of the user's plaintext update beats an "
                "inversion of its masked upload",
                SECURITY_SOURCE,
                [t.psnr_plain for t in result.trials],
                [t.psnr_masked for t in result.trials],
                names=("plaintext update", "masked upload"),
                unit="dB",
            )
        )
        out.append(
            bound_claim(
                "The server's output is exactly the sum of the surviving users' inputs",
                SECURITY_SOURCE,
                [float(sum(t.mismatches for t in result.trials))],
                below=0.5,
                what=(
                    "entries where the decoded sum differs from the plaintext "
                    "fixed-point sum, "
                    f"over {len(result.trials)} rounds of "
                    f"{result.trials[0].values} values"
                ),
            )
        )
    return out


def summary_text(result: SecAggRun) -> str:
    """The run's headline numbers, for the page's prose."""
    parts = []
    for key, e in result.expansions.items():
        n, m = (int(v) for v in key.split(","))
        parts.append(
            f"for 2^{int(math.log2(n))} clients and 2^{int(math.log2(m))} values "
            f"our byte model gives an expansion of **{e['ours']:.3f}x** (the "
            f"idealised accounting {e['idealised']:.3f}x; SecAgg+ with "
            f"k = {int(e['secagg+ degree'])} "
            f"neighbours {e['secagg+']:.3f}x)"
        )
    text = "Expansion: " + "; ".join(parts) + "."
    ok = all(
        c.model_bytes == c.measured_min == c.measured_max for c in result.validation
    )
    text += (
        f" The byte model {'matches' if ok else 'does NOT match'} every client's "
        f"bytes in the {len(result.validation)} validation runs"
        f"{' exactly' if ok else ''}."
    )
    fits = slopes(result)
    if fits:
        text += (
            " Fitted log-log slopes (client / server): "
            + "; ".join(
                f"{p} at {d:.0%} dropout {s['client']:.2f} / {s['server']:.2f}"
                for (p, d), s in fits.items()
            )
            + "."
        )
    aborted = [p for p in result.costs if p.aborted]
    if aborted:
        text += (
            " Aborted runs: "
            + ", ".join(
                f"{p.protocol} n={p.num_clients} at {p.dropout:.0%}" for p in aborted
            )
            + "."
        )
    if result.trials:
        mean = {
            a: float(np.mean([getattr(t, a) for t in result.trials]))
            for a in ("psnr_plain", "psnr_masked", "psnr_unrelated")
        }
        mism = sum(t.mismatches for t in result.trials)
        text += (
            f" Inverting Gradients reaches {mean['psnr_plain']:.1f} dB on a client's "
            f"plaintext update and {mean['psnr_masked']:.1f} dB on its masked upload; "
            f"an unrelated image scores {mean['psnr_unrelated']:.1f} dB (means of "
            f"{len(result.trials)} trials). The decoded sum differs from the "
            f"plaintext fixed-point sum in {mism} entries."
        )
    return text
