"""MixUp (Zhang et al., ICLR 2018) used as a federated defense.

The client trains on convex combinations of its images and of their one-hot
labels, never on a raw image. Encoded image ``i`` mixes the private image
``i`` (first coefficient) with ``k - 1`` partners drawn from the client's own
data (its ``pool``; the batch itself when no pool is given):

    x'_i = sum_j lambda_ij x_{s_ij},   y'_i = sum_j lambda_ij onehot(y_{s_ij}).

The coefficients come from a Dirichlet distribution and are redrawn until
every one lies in ``[lower, upper]``. With ``k=2`` and ``alpha=(a, a)`` this
is the original MixUp (``lambda ~ Beta(a, a)``; the paper uses ``a = 1`` on
CIFAR-10); Huang et al. (2021) mix ``k=4`` images with the coefficient bounds
``[0, 0.65]`` and, in GradAttack's code, ``alpha=(3, 1, 1, 1)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gi_lib.defenses.base import Defense, one_hot


@dataclass(frozen=True)
class Encoding:
    """The secret key of one encoded batch (what the client keeps to itself).

    Returned by :meth:`MixUp.encode_with_key`; the encoded batch itself is
    what the client trains on (:attr:`gi_lib.fl.ClientStep.images`).

    Attributes:
        coefficients: mixing weights ``(N, k)``; each row sums to one.
        partners: ``(N, k-1)`` indices of the partners in the pool (or batch);
            negative ``-1 - i`` for image ``i`` of InstaHide's public set.
        mask: InstaHide's sign mask ``(N, C, H, W)`` of +-1, else None.
    """

    coefficients: torch.Tensor
    partners: torch.Tensor
    mask: torch.Tensor | None = None


def private_heavy_alpha(k: int) -> tuple[float, ...]:
    """Dirichlet(3, 1, ..., 1) concentrations for ``k`` mixed images.

    InstaHide's official code and GradAttack draw the coefficients so: the
    private image (first) tends to carry the largest weight.
    """
    return (3.0,) + (1.0,) * (k - 1)


class MixUp(Defense):
    """Train on mixtures of ``k`` images and their labels.

    Args:
        k: number of images in each mixture (2 for the original MixUp).
        alpha: Dirichlet concentration, one value per mixed image or one for all.
        lower, upper: bounds every coefficient must satisfy (rejection).
        pool: ``(images, labels)`` the partners are drawn from (the client's
            private data set); None mixes within the batch.
        seed: seeds the coefficients and the partner choice.
    """

    name = "mixup"

    def __init__(
        self,
        k: int = 2,
        *,
        alpha: float | Sequence[float] = 1.0,
        lower: float = 0.0,
        upper: float = 1.0,
        pool: tuple[torch.Tensor, torch.Tensor] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        alphas = [float(alpha)] * k if isinstance(alpha, int | float) else list(alpha)
        if len(alphas) != k or min(alphas) <= 0:
            raise ValueError(f"alpha needs {k} positive values, got {alpha!r}.")
        if not 0.0 <= lower <= 1.0 / k <= upper <= 1.0:
            raise ValueError(
                f"coefficient bounds [{lower}, {upper}] admit no mixture of {k} "
                f"images; need lower <= 1/k <= upper."
            )
        self.k = k
        self.alpha = tuple(alphas)
        self.lower = lower
        self.upper = upper
        self.pool = pool

    def sample_coefficients(self, count: int) -> torch.Tensor:
        """``(count, k)`` Dirichlet weights inside ``[lower, upper]``."""
        gamma = torch.tensor(self.alpha, dtype=torch.float64)
        out = torch.empty(count, self.k, dtype=torch.float64)
        todo = torch.arange(count)
        for _ in range(10_000):
            if len(todo) == 0:
                break
            # Dirichlet draws as normalised Gamma variables, from our generator.
            draws = _gamma(gamma, len(todo), self.generator)
            weights = draws / draws.sum(1, keepdim=True)
            ok = (weights.min(1).values >= self.lower) & (
                weights.max(1).values <= self.upper
            )
            out[todo[ok]] = weights[ok]
            todo = todo[~ok]
        if len(todo):
            raise RuntimeError("could not draw coefficients inside the bounds.")
        return out.float()

    def _partners(self, batch_size: int) -> torch.Tensor:
        if self.pool is not None:
            size = len(self.pool[0])
        else:
            size = batch_size
        if self.k > 1 and size < self.k:
            raise ValueError(
                f"MixUp with k={self.k} needs at least {self.k} images to mix from; "
                "pass the client's data set as pool."
            )
        rows = []
        for i in range(batch_size):
            # Partners differ from each other and, inside the batch, from image i.
            order = torch.randperm(size, generator=self.generator)
            if self.pool is None:
                order = order[order != i]
            rows.append(order[: self.k - 1])
        partners = (
            torch.stack(rows) if rows else torch.empty(0, self.k - 1, dtype=torch.long)
        )
        return partners

    def mix(
        self, images: torch.Tensor, labels: torch.Tensor, num_classes: int
    ) -> tuple[torch.Tensor, torch.Tensor, Encoding]:
        """Mixed images and soft labels, and the encoding that made them."""
        n = images.shape[0]
        coefficients = self.sample_coefficients(n).to(images.device)
        partners = self._partners(n)
        source_images, source_labels = (
            (images, labels)
            if self.pool is None
            else (self.pool[0].to(images.device), self.pool[1].to(images.device))
        )
        targets = one_hot(labels, num_classes).to(images.device)
        source_targets = one_hot(source_labels, num_classes).to(images.device)
        mixed = coefficients[:, 0].view(-1, 1, 1, 1) * images
        mixed_targets = coefficients[:, :1] * targets
        for j in range(self.k - 1):
            index = partners[:, j].to(images.device)
            weight = coefficients[:, j + 1]
            mixed = mixed + weight.view(-1, 1, 1, 1) * source_images[index]
            mixed_targets = mixed_targets + weight[:, None] * source_targets[index]
        return mixed, mixed_targets, Encoding(coefficients, partners)

    def encode_with_key(
        self, images: torch.Tensor, labels: torch.Tensor, num_classes: int
    ) -> tuple[torch.Tensor, torch.Tensor, Encoding]:
        """:meth:`encode`, and the secret key of the encoding.

        The key never leaves the client; a page or test that shows or checks
        the mixture calls this instead of :meth:`encode` (same randomness).
        """
        return self.mix(images, labels, num_classes)

    def encode(
        self, images: torch.Tensor, labels: torch.Tensor, num_classes: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        encoded, targets, _ = self.encode_with_key(images, labels, num_classes)
        return encoded, targets

    def describe(self) -> str:
        return f"{self.name}k{self.k}"

    def cache_key(self) -> str:
        alpha = "_".join(f"{a:g}" for a in self.alpha)
        key = f"{super().cache_key()}-a{alpha}-l{self.lower:g}-u{self.upper:g}"
        if self.pool is not None:
            key += f"-pool{tensor_digest(self.pool[0], self.pool[1])}"
        return key


def tensor_digest(*tensors: torch.Tensor) -> str:
    """A short digest of tensors' contents, for cache keys."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def _gamma(
    concentration: torch.Tensor, count: int, generator: torch.Generator
) -> torch.Tensor:
    """``(count, k)`` Gamma(concentration, 1) draws from ``generator``.

    Marsaglia and Tsang's method (with the ``alpha < 1`` boost), written out
    because torch's own Gamma sampler takes no generator.
    """
    k = concentration.shape[0]
    alpha = concentration.expand(count, k)
    boost = alpha < 1
    a = torch.where(boost, alpha + 1, alpha)
    d = a - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.empty(count, k, dtype=torch.float64)
    todo = torch.ones(count, k, dtype=torch.bool)
    while bool(todo.any()):
        x = torch.randn(count, k, generator=generator, dtype=torch.float64)
        u = torch.rand(count, k, generator=generator, dtype=torch.float64)
        v = (1 + c * x) ** 3
        ok = (v > 0) & (
            torch.log(u.clamp_min(1e-300))
            < 0.5 * x * x + d - d * v + d * torch.log(v.clamp_min(1e-300))
        )
        take = todo & ok
        out[take] = (d * v)[take]
        todo = todo & ~ok
    u = torch.rand(count, k, generator=generator, dtype=torch.float64)
    return torch.where(boost, out * u ** (1.0 / alpha), out)
