"""BatchNorm statistics: what a train-mode forward normalises with.

Shared by :mod:`gi_lib.fl` (a client whose threat model reveals its batch's
statistics) and the attacks whose priors pull a dummy batch's statistics
towards a target (:mod:`gi_lib.attacks.priors`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class BNStatistics:
    """Per-channel mean and (biased) variance at each BatchNorm layer's input."""

    means: tuple[torch.Tensor, ...]
    variances: tuple[torch.Tensor, ...]

    def to(self, device: torch.device | str) -> BNStatistics:
        return BNStatistics(
            tuple(m.to(device) for m in self.means),
            tuple(v.to(device) for v in self.variances),
        )


def bn_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The model's BatchNorm layers, in order of definition."""
    return [
        m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]


@contextmanager
def recording(model: nn.Module) -> Iterator[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Record ``(mean, variance)`` of every BatchNorm input during forwards."""
    records: list[tuple[torch.Tensor, torch.Tensor]] = []

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _out) -> None:  # noqa: ANN001
        x = inputs[0]
        dims = [0, *range(2, x.ndim)]
        records.append((x.mean(dims), x.var(dims, unbiased=False)))

    handles = [layer.register_forward_hook(hook) for layer in bn_layers(model)]
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def batch_statistics(model: nn.Module, images: torch.Tensor) -> BNStatistics:
    """The statistics a train-mode forward of ``images`` normalises with.

    Runs on a copy, so ``model``'s running statistics are left unchanged.
    """
    client = copy.deepcopy(model).train()
    with torch.no_grad(), recording(client) as records:
        client(images)
    return BNStatistics(
        tuple(m.detach() for m, _ in records), tuple(v.detach() for _, v in records)
    )


def running_statistics(model: nn.Module) -> BNStatistics:
    """The model's running statistics (what the server knows of the data)."""
    layers = bn_layers(model)
    return BNStatistics(
        tuple(layer.running_mean.detach().clone() for layer in layers),  # type: ignore[union-attr]
        tuple(layer.running_var.detach().clone() for layer in layers),  # type: ignore[union-attr]
    )
