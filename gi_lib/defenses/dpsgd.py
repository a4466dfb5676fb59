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
batches, the usual approximation (Abadi et al. also use fixed-size lots). The
training of Abadi et al.'s MNIST network (:mod:`gi_lib.defenses.dp_mnist`)
samples its lots as the accountant assumes.

Accounting. :func:`epsilon` is opacus's RDP accountant (the same analysis
as the paper's moments accountant: the paper's log moment of order
``lambda`` is ``lambda`` times the Renyi divergence of order ``lambda + 1``),
with opacus's conversion to ``(epsilon, delta)`` (Balle et al., 2020), which
is tighter than the paper's tail bound; :func:`moments_accountant_epsilon`
applies the paper's own tail bound to the same Renyi divergences, for a
like-for-like comparison with the paper's numbers. opacus's
``PrivacyEngine`` defaults to its PRV accountant; this module uses RDP
throughout, which composes the DP-PCA's release in the same history.
"""

from __future__ import annotations

import copy
import math
import warnings

import torch
from opacus import GradSampleModule
from opacus.accountants import RDPAccountant
from opacus.accountants.analysis.rdp import compute_rdp
from opacus.validators import ModuleValidator
from torch import nn

from gi_lib import fl
from gi_lib.defenses import dp_pca
from gi_lib.defenses.base import Defense

ALPHAS: tuple[float, ...] = (*RDPAccountant.DEFAULT_ALPHAS, *range(64, 257, 16))
"""Renyi orders searched for the best conversion: opacus's defaults (up to
63) and a few larger ones, which a large PCA noise with few steps needs."""

MOMENTS_ORDERS = 32
"""The paper's moments accountant keeps the log moments of orders 1 to 32
(the authors' code's default)."""


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


def _history(
    noise_multiplier: float, sample_rate: float, steps: int, pca_noise: float | None
) -> list[tuple[float, float, int]]:
    """opacus's accountant history: DP-SGD's steps, then the DP-PCA's release."""
    if not 0 < sample_rate <= 1:
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}.")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}.")
    history = (
        [(float(noise_multiplier), float(sample_rate), int(steps))] if steps else []
    )
    if pca_noise is not None:
        history.append(dp_pca.accountant_entry(pca_noise))
    return history


def epsilon(
    *,
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    pca_noise: float | None = None,
) -> float:
    """Epsilon of a DP-SGD run, from opacus's RDP accountant.

    Args:
        noise_multiplier: DP-SGD's ``sigma``.
        sample_rate: each example's chance of being in a lot, ``q = L / N``.
        steps: lots trained on.
        delta: the ``delta`` of ``(epsilon, delta)``.
        pca_noise: the DP-PCA's ``sigma_p`` when the run's input projection
            was computed privately from the same data; its release is
            composed with the steps (``None``: no such projection).
    """
    accountant = RDPAccountant()
    accountant.history = _history(noise_multiplier, sample_rate, steps, pca_noise)
    if not accountant.history:
        return 0.0
    with warnings.catch_warnings():
        # opacus warns when the best order is the largest one searched; the
        # epsilon at that order is still a valid (looser) bound, and the
        # bisection of noise_for_epsilon visits such far-off noise levels.
        warnings.filterwarnings("ignore", message="Optimal order is the largest")
        return float(accountant.get_epsilon(delta=delta, alphas=list(ALPHAS)))


def noise_for_epsilon(
    target_epsilon: float,
    *,
    sample_rate: float,
    steps: int,
    delta: float,
    pca_noise: float | None = None,
    tolerance: float = 2e-3,
) -> float:
    """A noise multiplier whose run spends at most ``target_epsilon`` and at
    least ``(1 - tolerance) * target_epsilon``.

    A bisection over :func:`epsilon`, as opacus's ``get_noise_multiplier``
    searches (which cannot compose the DP-PCA's release).

    Raises:
        ValueError: the PCA's release alone spends ``target_epsilon``.
    """
    if target_epsilon <= 0:
        raise ValueError(f"target_epsilon must be positive, got {target_epsilon}.")

    def spent(sigma: float) -> float:
        return epsilon(
            noise_multiplier=sigma,
            sample_rate=sample_rate,
            steps=steps,
            delta=delta,
            pca_noise=pca_noise,
        )

    if pca_noise is not None:
        floor = epsilon(
            noise_multiplier=1.0,
            sample_rate=sample_rate,
            steps=0,
            delta=delta,
            pca_noise=pca_noise,
        )
        if floor >= target_epsilon:
            raise ValueError(
                f"The DP-PCA's release alone (sigma_p = {pca_noise:g}) spends "
                f"epsilon = {floor:.3g} >= {target_epsilon:g}; raise its noise."
            )
    low, high = 0.0, 1.0
    while (reached := spent(high)) > target_epsilon:
        low, high = high, 2 * high
        if high > 1e6:
            raise ValueError(f"No noise multiplier reaches epsilon {target_epsilon:g}.")
    while reached < (1 - tolerance) * target_epsilon and high - low > 1e-9 * high:
        middle = (low + high) / 2
        if (value := spent(middle)) > target_epsilon:
            low = middle
        else:
            high, reached = middle, value
    return high


def moments_accountant_epsilon(
    *,
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    max_order: int = MOMENTS_ORDERS,
) -> float:
    """Epsilon by the paper's moments accountant (Abadi et al., Theorem 2).

    The log moment of the privacy loss at order ``lambda`` is
    ``alpha(lambda) = lambda * D_{lambda+1}``, with ``D`` the Renyi divergence
    of the sampled Gaussian mechanism over all steps, which opacus computes
    (``compute_rdp``); the tail bound gives ``epsilon = min over lambda in
    1..max_order of (alpha(lambda) + log(1/delta)) / lambda``.
    """
    if max_order < 1:
        raise ValueError(f"max_order must be >= 1, got {max_order}.")
    lambdas = list(range(1, max_order + 1))
    renyi = compute_rdp(
        q=sample_rate,
        noise_multiplier=noise_multiplier,
        steps=steps,
        orders=[lam + 1 for lam in lambdas],
    )
    return float(
        min(
            (lam * float(d) + math.log(1 / delta)) / lam
            for lam, d in zip(lambdas, renyi, strict=True)
        )
    )
