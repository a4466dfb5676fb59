"""The HE page's parameters and the paper's numbers it is checked against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gi_lib.params import ExperimentParams, ParameterError, check_parameters, param
from gi_lib.results import DEFAULT_BANDS

NOTEBOOK = "he"
PAPER = "Phong et al., IEEE TIFS 2018"
TABLE3 = f"{PAPER}, Table 3 (LWE-based, 1 thread)"
TABLE3_20 = f"{PAPER}, Table 3 (LWE-based, 20 threads)"
ABSTRACT = f"{PAPER}, abstract"

# Table 3 of the paper, LWE-based scheme (n_lwe = 3000, s = 8, p = 2^48 + 1,
# q = 2^77): n_gd -> {threads: (Enc ms, Dec ms, Add µs)}, its two columns of
# one thread and of 20 threads. Read from a verbatim copy of the table
# (confidence T, PAPER_VALUES.md §15).
PAPER_TABLE3: dict[int, dict[int, tuple[float, float, float]]] = {
    20000: {1: (164.4, 143.6, 51.0), 20: (30.2, 31.9, 9.5)},
    27882: {1: (213.1, 194.5, 72.3), 20: (50.8, 44.7, 11.1)},
    50000: {1: (364.6, 354.6, 137.7), 20: (93.2, 85.8, 15.8)},
    52650: {1: (454.8, 412.6, 91.2), 20: (70.3, 78.5, 14.0)},
    100000: {1: (732.9, 666.1, 211.5), 20: (188.9, 196.0, 19.5)},
    200000: {1: (1395.1, 1355.0, 441.7), 20: (415.8, 460.5, 38.7)},
    300000: {1: (2031.6, 1996.5, 481.0), 20: (587.8, 644.9, 41.1)},
    402250: {1: (2797.4, 2738.0, 698.4), 20: (875.4, 820.9, 56.4)},
}
ESTIMATE = f"{PAPER}, end-to-end estimate for the MNIST MLP (figure)"
PAPER_ESTIMATE_SECONDS = 0.4055
"""The paper's time per upload of its MNIST MLP: original computation, Enc
and Dec at 20 threads, upload, download and Add (405.5 ms; T)."""
MNIST_NGD = 109386  # the paper's MNIST gradient size (S), our MLP's parameter count
BACKEND_TITLES = {
    "lwe": "LWE (paper's scheme)",
    "paillier": "packed Paillier",
    "ckks": "CKKS (tenseal)",
    "bfv": "BFV (tenseal)",
    "plaintext": "plaintext (float32)",
}
# Two PSNRs within the scorecard's band for PSNR count as the same level.
PSNR_MARGIN = DEFAULT_BANDS["psnr"][1]
HARDWARE_NOTE = (
    "hardware and implementation differ (the paper: its own code on a 2017 "
    "CPU; ours: numpy on float64 BLAS), so the band is a factor of 3"
)


@dataclass(frozen=True, kw_only=True)
class HEParams(ExperimentParams):
    """The homomorphic-encryption notebook's parameters."""

    dataset: str = param("data set (the paper's MNIST)", choices=("mnist",))
    model: str = param(
        "the paper's MNIST network: an MLP 784-128-64-10", choices=("mlp",)
    )
    frac_bits: int = param("fractional bits of the fixed-point encoding", minimum=1)
    clip: float = param("values are clipped to +-clip before encoding", above=0)
    lwe_n: int = param("LWE dimension n_lwe (the paper: 3000)", minimum=16)
    lwe_block: int = param("LWE plaintext slots per ciphertext block", minimum=1)
    lwe_sizes: tuple[int, ...] = param(
        "update sizes n_gd timed with LWE (Table 3: 20000 ... 402250)",
        minimum=1,
        unique=True,
    )
    paillier_key_bits: int = param("bits of the Paillier modulus", minimum=512)
    paillier_sizes: tuple[int, ...] = param(
        "update sizes timed with packed Paillier", minimum=1, unique=True
    )
    ckks_poly_degree: int = param(
        "CKKS ring degree (4096, 8192, 16384 or 32768)", minimum=4096, maximum=32768
    )
    ckks_sizes: tuple[int, ...] = param(
        "update sizes timed with CKKS", minimum=1, unique=True
    )
    bfv_poly_degree: int = param(
        "BFV ring degree (4096, 8192, 16384 or 32768)", minimum=4096, maximum=32768
    )
    bfv_sizes: tuple[int, ...] = param(
        "update sizes timed with BFV", minimum=1, unique=True
    )
    timing_repeats: int = param("timings per operation (the median is kept)", minimum=1)
    harness_clients: int = param("clients in the harness round", minimum=1)
    harness_size: int = param("values per update in the harness round", minimum=1)
    train_participants: int = param("participants of the training", minimum=1)
    train_images: int = param("MNIST training images, split among them", minimum=1)
    train_batch_size: int = param("mini-batch per upload", minimum=1)
    train_epochs: int = param("passes over the training images", minimum=1)
    train_lr: float = param("SGD step size alpha", above=0)
    test_images: int = param("MNIST test images for the accuracy", minimum=1)
    attack_iterations: int = param("Inverting Gradients' iterations", minimum=1)


def check(values: Mapping[str, Any]) -> HEParams:
    """Check the parameters (see :class:`HEParams`)."""
    params = check_parameters(values, HEParams, notebook=NOTEBOOK)
    for name in ("ckks_poly_degree", "bfv_poly_degree"):
        if getattr(params, name) not in (4096, 8192, 16384, 32768):
            raise ParameterError(
                f"{name} must be 4096, 8192, 16384 or 32768, got "
                f"{getattr(params, name)}."
            )
    if params.train_participants < 2:
        raise ParameterError(
            "train_participants must be at least 2: the attack needs a second "
            "participant who decrypts the model around the victim's upload."
        )
    if params.train_images < params.train_participants * params.train_batch_size:
        raise ParameterError(
            f"train_images ({params.train_images}) must give each of the "
            f"{params.train_participants} participants at least one mini-batch of "
            f"{params.train_batch_size}."
        )
    return params
