"""The parameters the LightSecAgg and FastSecAgg pages share, and the network
model they select."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from gi_lib.defenses import NetworkModel
from gi_lib.params import ExperimentParams, check_parameters, param


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
