"""Inverting Gradients' parameters and the attack configurations and
network names they select."""

from __future__ import annotations

from dataclasses import dataclass

from gi_lib.attacks import inverting
from gi_lib.params import ExperimentParams, ParameterError, param

CONVNET_WIDTHS = (8, 16, 32, 64)
"""The ConvNet widths :mod:`gi_lib.models` registers (``convnet<w>``)."""

FEDAVG_SEED_STRIDE = 10
"""FedAvg trial ``t`` draws its images with seed ``seed + 1 + 10 t`` (trial 0
is the settings table's image set; the batch experiment uses ``seed + 2``)."""


@dataclass(frozen=True, kw_only=True)
class IGParams(ExperimentParams):
    """The Inverting Gradients notebook's parameters."""

    max_iterations: int = param(
        "signed-Adam steps per attack (paper code: 4,800-24,000)", minimum=1
    )
    lr: float = param("Adam step size, normalised space (0.1)", minimum=1e-6)
    tv_weight: float = param("total-variation weight (untrained networks)", minimum=0)
    trained_tv_weight: float = param(
        "total-variation weight on the trained network (official notebooks: "
        "1e-2 to 1e-1 on trained networks)",
        minimum=0,
    )
    restarts: int = param("restarts per attack, best by loss", minimum=1)
    compile_step: bool = param(
        "compile the matching step (torch.compile): minutes up front, then "
        "faster steps; pays on long runs (make bench prints the break-even)"
    )
    lbfgs_iterations: int = param(
        "L-BFGS steps of the L2 baseline (20 evaluations each)", minimum=1
    )
    train_epochs: int = param("epochs for the trained network", minimum=1)
    train_images: int = param("training images (0: all)", minimum=0)
    train_lr: float = param("training learning rate (paper: 0.1)", minimum=1e-6)
    train_batch_size: int = param("training mini-batch size (paper: 128)", minimum=1)
    widths: tuple[int, ...] = param(
        "ConvNet widths attacked untrained on the table's images (paper: 64)",
        minimum=1,
        unique=True,
    )
    fedavg_epochs: tuple[int, ...] = param("local epochs; first is base", minimum=1)
    fedavg_images: tuple[int, ...] = param("local image counts", minimum=1)
    fedavg_lrs: tuple[float, ...] = param("local learning rates", above=0)
    fedavg_batch_size: int = param(
        "local mini-batch size (0: the whole local batch)", minimum=0
    )
    fedavg_iterations: int = param("attack steps per FedAvg attack", minimum=1)
    batch_sizes: tuple[int, ...] = param("images per update", minimum=1)
    batch_iterations: int = param("attack steps per batch attack", minimum=1)
    num_shown: int = param("victim images shown in the figure", minimum=1)


def _config(
    params: IGParams, iterations: int, tv_weight: float | None = None
) -> inverting.InvertingConfig:
    return inverting.tv_config(
        tv_weight=params.tv_weight if tv_weight is None else tv_weight,
        lr=params.lr,
        max_iterations=iterations,
        restarts=params.restarts,
        on_divergence="stop",
        compile=params.compile_step,
    )


def convnet_name(width: int) -> str:
    """The model name of the ConvNet of ``width`` (``convnet`` is width 64)."""
    if width not in CONVNET_WIDTHS:
        raise ParameterError(
            f"No ConvNet of width {width}; gi_lib.models registers widths "
            f"{', '.join(map(str, CONVNET_WIDTHS))}."
        )
    return f"convnet{width}"


def convnet_width(model: str) -> int | None:
    """The width of a ConvNet model name (``convnet`` -> 64), else None."""
    if model == "convnet":
        return 64
    if model.startswith("convnet") and model[len("convnet") :].isdigit():
        return int(model[len("convnet") :])
    return None
