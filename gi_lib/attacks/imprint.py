"""Robbing the Fed (Fowl, Geiping, Czaja, Goldblum, Goldstein; ICLR 2022).

A malicious server prepends an *imprint block* to the model it sends every
client: a linear layer from the flattened image to ``k`` bins whose rows
all compute the image's mean brightness (weights ``1/d``) with biases
``-q_i`` at increasing quantiles of the brightness distribution, then ReLU,
then a linear map back to the image (every bin's column the same), added to
the input. A sample with brightness in ``(q_i, q_{i+1}]`` activates bins
``0..i``, and every active bin passes it the same backward signal ``g``, so
the gradients of rows i and i+1 differ by that bin's samples only:

    (grad W_i - grad W_{i+1}) / (grad b_i - grad b_{i+1}) = x

exactly when one sample falls in bin i. Gradients are linear in the
samples, so this holds for the sum of all the clients' updates as well:
secure aggregation does not change what the server recovers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from gi_lib.attacks.base import Reconstruction
from gi_lib.attacks.registry import AttackRun, register_attack
from gi_lib.fl import trainable_parameters


class ImprintBlock(nn.Module):
    """The server's imprint block: ``x + back(relu(imprint(flat x)))``.

    Args:
        image_shape: ``(C, H, W)``.
        num_bins: k, the bins.
        mean, std: the brightness distribution the server assumes (from
            public data); the biases sit at its Gaussian quantiles
            ``i / k`` (``i = 1..k-1``), the first bin far below it.
        scale: the back map's entries (small: the block barely changes what
            the rest of the model sees).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        num_bins: int,
        *,
        mean: float,
        std: float,
        scale: float = 1e-2,
    ) -> None:
        super().__init__()
        if num_bins < 2:
            raise ValueError(f"num_bins must be at least 2, got {num_bins}.")
        if not std > 0:
            raise ValueError(f"std must be positive, got {std}.")
        self.image_shape = tuple(image_shape)
        d = math.prod(image_shape)
        self.imprint = nn.Linear(d, num_bins)
        self.back = nn.Linear(num_bins, d, bias=False)
        normal = torch.distributions.Normal(mean, std)
        levels = torch.arange(1, num_bins, dtype=torch.float64) / num_bins
        cuts = normal.icdf(levels).float()
        cuts = torch.cat([torch.tensor([mean - 10 * std]), cuts])
        with torch.no_grad():
            self.imprint.weight.fill_(1.0 / d)
            self.imprint.bias.copy_(-cuts)
            self.back.weight.fill_(scale / num_bins)

    @property
    def cuts(self) -> torch.Tensor:
        """The brightness thresholds ``q_i`` of the bins."""
        return -self.imprint.bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        return x + self.back(torch.relu(self.imprint(flat))).view_as(x)


class ImprintedModel(nn.Module):
    """The model the malicious server sends: imprint block, then ``base``."""

    def __init__(self, block: ImprintBlock, base: nn.Module) -> None:
        super().__init__()
        self.block = block
        self.base = base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(self.block(x))


def imprinted(
    base: nn.Module,
    image_shape: tuple[int, int, int],
    num_bins: int,
    *,
    mean: float,
    std: float,
) -> ImprintedModel:
    """``base`` with an imprint block of ``num_bins`` bins in front."""
    return ImprintedModel(ImprintBlock(image_shape, num_bins, mean=mean, std=std), base)


@dataclass(frozen=True)
class RobbingConfig:
    """Settings of the analytic recovery.

    Attributes:
        min_bias_gradient: bins whose bias-gradient difference is at most
            this (relative to the largest) are taken as empty.
    """

    min_bias_gradient: float = 1e-6


@dataclass
class ImprintRecovery(Reconstruction):
    """The recovered images, one per non-empty bin difference, with the bin
    each came from (``bins``)."""

    bins: tuple[int, ...] = ()


def _imprint_indices(model: nn.Module) -> tuple[int, int]:
    blocks = [m for m in model.modules() if isinstance(m, ImprintBlock)]
    if not blocks:
        raise ValueError(
            "Robbing the Fed reads an imprint block's gradients; this model has "
            "none (build it with gi_lib.attacks.imprint.imprinted)."
        )
    params = trainable_parameters(model)
    ids = [id(p) for p in params]
    block = blocks[0]
    return ids.index(id(block.imprint.weight)), ids.index(id(block.imprint.bias))


@register_attack("robbing_the_fed", config=RobbingConfig)
def reconstruct(run: AttackRun[RobbingConfig]) -> ImprintRecovery:
    """Robbing the Fed (ICLR 2022): images read off an imprint layer's gradient.

    Every image alone in its bin, from the (aggregated) update; nothing is
    random and nothing iterated, so ``seed`` and ``truth`` are not used.
    """
    observation, config = run.observation, run.config
    w_index, b_index = _imprint_indices(observation.model)
    grad_w = observation.gradients[w_index].detach().double()
    grad_b = observation.gradients[b_index].detach().double()
    zero_w = torch.zeros_like(grad_w[:1])
    zero_b = torch.zeros_like(grad_b[:1])
    diff_w = grad_w - torch.cat([grad_w[1:], zero_w])
    diff_b = grad_b - torch.cat([grad_b[1:], zero_b])
    level = config.min_bias_gradient * float(diff_b.abs().max().clamp(min=1e-30))
    bins = [i for i in range(diff_b.numel()) if abs(float(diff_b[i])) > level]
    shape = observation.image_shape
    if bins:
        images = (diff_w[bins] / diff_b[bins, None]).view(len(bins), *shape)
    else:
        images = torch.zeros((0, *shape), dtype=torch.float64)
    return ImprintRecovery(
        images=images.float().clamp(0, 1),
        labels=torch.zeros(len(bins), dtype=torch.long),
        loss=0.0,
        bins=tuple(bins),
    )


def expected_singletons(num_samples: int, num_bins: int) -> float:
    """Expected number of samples alone in their bin, when each of
    ``num_samples`` falls in one of ``num_bins`` equally likely bins."""
    if num_samples < 1:
        return 0.0
    return num_samples * (1 - 1 / num_bins) ** (num_samples - 1)
