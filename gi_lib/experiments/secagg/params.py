"""The SecAgg page's parameters and the paper's numbers it is checked against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gi_lib.defenses.secagg import SecAgg
from gi_lib.params import ExperimentParams, check_parameters, param
from gi_lib.results import PaperValue

NOTEBOOK = "secagg"

EXPANSION_SOURCE = "Bonawitz et al., CCS 2017 (ePrint 2017/281), abstract"
PAPER_EXPANSION = {
    (2**10, 2**20): PaperValue(1.73, EXPANSION_SOURCE, "P", tolerance=0.09),
    (2**14, 2**24): PaperValue(1.98, EXPANSION_SOURCE, "P", tolerance=0.1),
}
"""The abstract's expansion figures for 16-bit inputs; the band is +-5 %."""
DROPOUT_SOURCE = (
    "Bonawitz et al., arXiv 1611.04482 (NeurIPS 2016 workshop), abstract; "
    "CCS 2017 Sec. 4 (threshold t)"
)
COST_SOURCE = (
    "Bonawitz et al., CCS 2017, Table 1 (server computation O(mn^2), user "
    "O(n^2 + mn)), as summarised in the design notes; not re-read in the paper"
)
SECURITY_SOURCE = (
    "Bonawitz et al., CCS 2017 (ePrint 2017/281), abstract: the server learns "
    "only the sum of the surviving users' inputs"
)
INPUT_BITS = 16
"""The paper's input precision for its expansion figures."""


@dataclass(frozen=True, kw_only=True)
class SecAggParams(ExperimentParams):
    """The SecAgg notebook's parameters."""

    client_counts: tuple[int, ...] = param(
        "numbers of clients of the cost sweep", minimum=3, unique=True
    )
    dropouts: tuple[float, ...] = param(
        "dropout rates of the cost sweep (clients drop after sharing keys)",
        minimum=0.0,
        maximum=0.33,
        unique=True,
    )
    plus_dropouts: tuple[float, ...] = param(
        "dropout rates at which SecAgg+ is run", minimum=0.0, below=0.5, unique=True
    )
    vector_size: int = param("values per update in the cost sweep", minimum=1)
    ring_bits: int = param(
        "bits of the ring Z_2^b of the cost sweep", minimum=8, maximum=64
    )
    frac_bits: int = param("fixed-point fractional bits of the cost sweep", minimum=0)
    clip: float = param("updates are clipped to [-clip, clip]", above=0.0)
    validation_clients: tuple[int, ...] = param(
        "client counts at which the byte model is checked against runs", minimum=3
    )
    validation_size: int = param("values per update of those runs", minimum=1)
    tolerance_clients: tuple[int, ...] = param(
        "client counts of the dropout-tolerance check", minimum=3, unique=True
    )
    attack_clients: int = param("clients in the attacked round", minimum=2)
    attack_clip: float = param("clip of the attacked round's updates", above=0.0)
    max_iterations: int = param("Inverting Gradients' Adam steps", minimum=1)
    num_shown: int = param("trials shown in the attack figure", minimum=1)


def check(values: Mapping[str, Any]) -> SecAggParams:
    """Check the parameters (see :class:`SecAggParams`)."""
    params = check_parameters(values, SecAggParams, notebook=NOTEBOOK)
    # Set-up errors (a threshold or ring that cannot work) surface before
    # anything runs.
    for n in params.client_counts:
        SecAgg(
            bits=params.ring_bits, frac_bits=params.frac_bits, clip=params.clip
        ).check_setup(n, params.vector_size)
    return params
