"""The aggregation-leakage page's parameters, the papers it cites, and the
record of one run (:class:`LeakageRun`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gi_lib.params import ExperimentParams, check_parameters, param

NOTEBOOK = "aggregation_leakage"

SRC_LABELS = (
    "Wainakh et al., PETS 2022 (User-Level Label Leakage from Gradients), Sec. 4"
)
SRC_IG = "Geiping et al., NeurIPS 2020, Sec. 5 (batches and multiple steps)"
SRC_CPA = "Kariyappa et al., ICML 2023, abstract and Sec. 5 (batches up to 1024)"
SRC_RTF = "Fowl et al., ICLR 2022, Sec. 3 (imprint module) and Sec. 4"
SRC_INCONSISTENCY = "Pasquini, Francati and Ateniese, CCS 2022, Sec. 3-4"
SRC_SECAGG = "Bonawitz et al., CCS 2017, Sec. 4 (security against t-1 colluders)"
SRC_LIGHT = "So et al., LightSecAgg (MLSys 2022), Sec. 4 (T-privacy, U to decode)"
SRC_LAM = "Lam et al., ICML 2021 (Gradient Disaggregation), Sec. 3"
SRC_HE = "Phong et al., IEEE TIFS 2018, Sec. 3 (threat model: honest participants)"
SRC_MASK = "Bonawitz et al., CCS 2017, abstract: the server learns only the sum"


@dataclass(frozen=True, kw_only=True)
class LeakageParams(ExperimentParams):
    """The page's parameters."""

    max_iterations: int = param("Inverting Gradients' Adam steps", minimum=1)
    tv_weight: float = param("Inverting Gradients' total-variation weight", minimum=0.0)
    client_counts: tuple[int, ...] = param(
        "N: one-image clients summed for Inverting Gradients", minimum=1, unique=True
    )
    label_client_counts: tuple[int, ...] = param(
        "clients (one image each) of the label-count rounds", minimum=1, unique=True
    )
    label_trials: int = param("label-count rounds per client count", minimum=1)
    cpa_sizes: tuple[int, ...] = param(
        "samples summed in the first FC layer (Cocktail Party)", minimum=2, unique=True
    )
    cpa_hidden: int = param("hidden units of the FC-2 network", minimum=2)
    cpa_iterations: int = param("Adam steps on the unmixing matrix", minimum=1)
    recovered_psnr: float = param(
        "PSNR (dB, up to sign and scale) above which an image counts as recovered "
        "by blind source separation",
        above=0.0,
    )
    imprint_sizes: tuple[int, ...] = param(
        "samples summed through the imprint layer", minimum=1, unique=True
    )
    num_bins: int = param("bins of the imprint layer", minimum=2)
    exact_psnr: float = param(
        "PSNR (dB) above which an imprint recovery counts as exact", above=0.0
    )
    secure_clients: int = param(
        "clients of the collusion, differencing and inconsistency rounds", minimum=3
    )
    he_backend: str = param(
        "homomorphic-encryption backend", choices=("lwe", "paillier", "plaintext")
    )


def check(values: Mapping[str, Any]) -> LeakageParams:
    """Check the parameters (see :class:`LeakageParams`)."""
    params = check_parameters(values, LeakageParams, notebook=NOTEBOOK)
    if max(params.cpa_sizes) > params.cpa_hidden:
        from gi_lib.params import ParameterError

        raise ParameterError(
            f"{NOTEBOOK}: cpa_sizes go up to {max(params.cpa_sizes)} but the FC-2 "
            f"network has {params.cpa_hidden} hidden units; blind source separation "
            "needs at least as many mixtures (hidden units) as sources."
        )
    return params


# --- results -----------------------------------------------------------------


@dataclass
class LeakageRun:
    """Everything the page measured."""

    params: LeakageParams
    device: str
    masked: dict[str, list[float]] = field(default_factory=dict)
    labels: dict[int, dict[str, float]] = field(default_factory=dict)
    ig: dict[int, list[float]] = field(default_factory=dict)
    cpa: dict[int, dict[str, float]] = field(default_factory=dict)
    rtf: dict[int, dict[str, float]] = field(default_factory=dict)
    rtf_secagg: dict[str, float] = field(default_factory=dict)
    inconsistency: dict[str, float] = field(default_factory=dict)
    isolation: dict[str, list[float]] = field(default_factory=dict)
    collusion: dict[str, float] = field(default_factory=dict)
    light_pieces: dict[int, int] = field(default_factory=dict)
    he: dict[str, float] = field(default_factory=dict)
    images: dict[str, torch.Tensor] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _mean(values: list[float]) -> float:
    """The mean of one setting's trials."""
    return float(np.mean(values))
