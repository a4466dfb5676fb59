"""DP-SGD (Abadi et al., CCS 2016) through opacus.

The client computes one gradient per example, clips each to L2 norm at most
``clip_norm`` (over all parameters together), sums them, adds Gaussian noise
of standard deviation ``noise_multiplier * clip_norm`` to every coordinate
and divides by the batch size. The attacker observes exactly that noised
batch gradient. Per-example gradients come from opacus's
:class:`~opacus.GradSampleModule`; the privacy guarantee ``(epsilon, delta)``
of a training run comes from opacus's RDP accountant for the run's sampling
rate, noise multiplier and number of steps, never from a formula here.

Opacus cannot compute per-example gradients through BatchNorm (it mixes the
examples of a batch); :func:`private_model` swaps BatchNorm for GroupNorm
with opacus's validator, which changes the model being trained and attacked.

The accountant assumes Poisson sampling of each batch with rate
``batch_size / dataset_size``; our trainer shuffles and cuts fixed-size
batches, the usual approximation (Abadi et al. also use fixed-size lots).
"""

from __future__ import annotations

import copy
import warnings

import torch
from opacus import GradSampleModule
from opacus.accountants import RDPAccountant
from opacus.accountants.utils import get_noise_multiplier
from opacus.validators import ModuleValidator
from torch import nn

from gi_lib import fl
from gi_lib.defenses.base import Defense


def private_model(model: nn.Module) -> nn.Module:
    """A copy of ``model`` that opacus accepts (BatchNorm replaced by GroupNorm)."""
    fixed = ModuleValidator.fix(copy.deepcopy(model))
    errors = ModuleValidator.validate(fixed, strict=False)
    if errors:
        raise ValueError(f"opacus cannot train this model privately: {errors}")
    return fixed


def per_sample_gradients(
    model: nn.Module, images: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """One gradient per example ``(N, *param.shape)`` per trainable parameter.

    Example ``i``'s gradient is that of its own loss ``cross_entropy(f(x_i), y_i)``
    (opacus's grad samples with a summed loss).
    """
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise ValueError(
            "per-example gradients are undefined through BatchNorm; "
            "build the model with private_model()."
        )
    # opacus records activations only in train mode; without BatchNorm (and
    # without dropout in our models) train and eval mode compute the same thing.
    wrapped = GradSampleModule(copy.deepcopy(model).train(), loss_reduction="sum")
    parameters = [p for p in wrapped.parameters() if p.requires_grad]
    loss = fl.cross_entropy(wrapped(images), targets) * images.shape[0]
    with warnings.catch_warnings():
        # opacus's hooks capture the gradients of module outputs; torch warns
        # that they fire although the images need no gradient, which is so here.
        warnings.filterwarnings(
            "ignore", message="Full backward hook is firing", category=UserWarning
        )
        loss.backward()
    samples = tuple(p.grad_sample.detach().clone() for p in parameters)  # type: ignore[union-attr]
    wrapped._close()
    return samples


def clip_per_sample(
    samples: tuple[torch.Tensor, ...], clip_norm: float
) -> tuple[torch.Tensor, ...]:
    """Scale each example's gradient to L2 norm at most ``clip_norm``."""
    norms = torch.sqrt(sum(s.flatten(1).pow(2).sum(1) for s in samples))  # type: ignore[arg-type]
    factor = (clip_norm / (norms + 1e-6)).clamp(max=1.0)
    return tuple(s * factor.view(-1, *([1] * (s.ndim - 1))) for s in samples)


class DPSGD(Defense):
    """Per-example clipping and Gaussian noise on the client's gradient.

    Args:
        clip_norm: per-example L2 bound ``C`` (Abadi et al. use 4 on MNIST).
        noise_multiplier: ``sigma``; the noise's standard deviation is ``sigma * C``.
        seed: seeds the noise.
    """

    name = "dpsgd"

    def __init__(
        self, *, clip_norm: float, noise_multiplier: float, seed: int = 0
    ) -> None:
        super().__init__(seed=seed)
        if clip_norm <= 0:
            raise ValueError(f"clip_norm must be positive, got {clip_norm}.")
        if noise_multiplier < 0:
            raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier}.")
        self.clip_norm = clip_norm
        self.noise_multiplier = noise_multiplier

    def client_gradients(
        self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        clipped = clip_per_sample(
            per_sample_gradients(model, images, targets), self.clip_norm
        )
        std = self.noise_multiplier * self.clip_norm
        out = []
        for sample in clipped:
            noise = torch.randn(sample.shape[1:], generator=self.generator) * std
            out.append((sample.sum(0) + noise.to(sample)) / images.shape[0])
        return self.transform_gradients(out)

    def describe(self) -> str:
        return f"dpsgd-s{self.noise_multiplier:g}-c{self.clip_norm:g}"


def epsilon(
    *, noise_multiplier: float, sample_rate: float, steps: int, delta: float
) -> float:
    """Epsilon of a DP-SGD run, from opacus's RDP accountant."""
    accountant = RDPAccountant()
    for _ in range(steps):
        accountant.step(noise_multiplier=noise_multiplier, sample_rate=sample_rate)
    return float(accountant.get_epsilon(delta=delta))


def noise_for_epsilon(
    target_epsilon: float, *, sample_rate: float, steps: int, delta: float
) -> float:
    """The noise multiplier that spends ``target_epsilon`` (opacus's search)."""
    return float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant="rdp",
        )
    )
