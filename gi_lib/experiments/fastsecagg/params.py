"""The FastSecAgg page's parameters and the protocols it compares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gi_lib.defenses._fastshare import FastShare
from gi_lib.experiments import coded_aggregation as coded
from gi_lib.params import param

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


def check(values: Mapping[str, Any]) -> FastSecAggParams:
    """Check the parameters (see :class:`FastSecAggParams`), including that
    every number of clients has a FastShare grid with this privacy."""
    params = coded.check_page(values, FastSecAggParams, notebook=NOTEBOOK)
    for n in (*params.num_clients, params.attack_clients):
        FastShare.design(n, privacy=params.privacy, parity=params.parity)
    return params
