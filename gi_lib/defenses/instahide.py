"""InstaHide (Huang, Song, Li and Arora, ICML 2020).

An InstaHide encoding is a MixUp of ``k`` images followed by a private
pixel-wise sign mask, a fresh "one-time key" for every encoded image. Inside-
dataset InstaHide (Intra-InstaHide in Huang et al. 2021) mixes with the
client's own images; cross-dataset InstaHide mixes with a public data set (the
paper uses ImageNet), which here is any ``public`` tensor of images whose
labels do not enter the mixed label.

The sign flip happens in the model's normalised space, as in the official
code where images are normalised before encoding. Our images stay in [0, 1]
with the normalisation inside the model, so flipping the normalised pixel is
flipping the pixel around the channel mean ``center``:
``x' = center + sigma * (x_mix - center)`` with ``sigma`` in {-1, +1}.
Encoded images may therefore leave [0, 1].

Defaults follow the official code and GradAttack: ``k = 4``, coefficients
from Dirichlet(3, 1, 1, 1) bounded above by ``c_2 = 0.65``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gi_lib.defenses.base import one_hot
from gi_lib.defenses.mixup import (
    Encoding,
    MixUp,
    private_heavy_alpha,
    tensor_digest,
)


class InstaHide(MixUp):
    """MixUp of ``k`` images plus a random sign mask per pixel.

    Args:
        k: images per encoding (the private image plus ``k - 1`` partners).
        alpha: Dirichlet concentration (default ``(3, 1, ..., 1)``,
            :func:`~gi_lib.defenses.mixup.private_heavy_alpha`).
        lower, upper: coefficient bounds (GradAttack: ``c_1 = 0``, ``c_2 = 0.65``).
        pool: the client's private images and labels to mix with (inside-dataset).
        public: public images ``(M, C, H, W)``; when given, the last
            ``public_count`` partners come from it and carry no label.
        public_count: how many of the ``k - 1`` partners are public images.
        center: per-channel value the signs flip around (the data set mean);
            0 flips raw pixels.
        seed: seeds coefficients, partners and masks.
    """

    name = "instahide"

    def __init__(
        self,
        k: int = 4,
        *,
        alpha: float | Sequence[float] | None = None,
        lower: float = 0.0,
        upper: float = 0.65,
        pool: tuple[torch.Tensor, torch.Tensor] | None = None,
        public: torch.Tensor | None = None,
        public_count: int = 0,
        center: Sequence[float] | float = 0.0,
        seed: int = 0,
    ) -> None:
        if alpha is None:
            alpha = private_heavy_alpha(k)
        super().__init__(k, alpha=alpha, lower=lower, upper=upper, pool=pool, seed=seed)
        if public_count and public is None:
            raise ValueError("public_count > 0 needs a public image set.")
        if not 0 <= public_count <= k - 1:
            raise ValueError(
                f"public_count must be in [0, {k - 1}], got {public_count}."
            )
        self.public = public
        self.public_count = public_count
        self.center = center

    def encode_with_key(
        self, images: torch.Tensor, labels: torch.Tensor, num_classes: int
    ) -> tuple[torch.Tensor, torch.Tensor, Encoding]:
        """Encoded images, mixed labels and the key (coefficients, partners, mask)."""
        mixed, targets, encoding = self.mix_private_and_public(
            images, labels, num_classes
        )
        mask = (
            torch.randint(0, 2, mixed.shape, generator=self.generator).to(mixed) * 2 - 1
        )
        center = torch.as_tensor(self.center, dtype=mixed.dtype, device=mixed.device)
        center = center.view(-1, 1, 1) if center.ndim == 1 else center
        encoded = center + mask * (mixed - center)
        key = Encoding(encoding.coefficients, encoding.partners, mask)
        return encoded, targets, key

    def mix_private_and_public(
        self, images: torch.Tensor, labels: torch.Tensor, num_classes: int
    ) -> tuple[torch.Tensor, torch.Tensor, Encoding]:
        """MixUp of private images, with the last partners swapped for public ones.

        Public images contribute pixels but no label, so the soft label sums to
        the private coefficients only (as in cross-dataset InstaHide).
        """
        mixed, targets, encoding = self.mix(images, labels, num_classes)
        if self.public_count == 0:
            return mixed, targets, encoding
        assert self.public is not None
        n = images.shape[0]
        partners = encoding.partners.clone()
        source_images = images if self.pool is None else self.pool[0]
        source_labels = labels if self.pool is None else self.pool[1]
        source_targets = one_hot(source_labels, num_classes).to(images.device)
        public = self.public.to(images.device)
        for j in range(self.k - 1 - self.public_count, self.k - 1):
            weight = encoding.coefficients[:, j + 1]
            old = partners[:, j].to(images.device)
            new = torch.randint(0, len(public), (n,), generator=self.generator)
            mixed = (
                mixed - weight.view(-1, 1, 1, 1) * source_images.to(images.device)[old]
            )
            mixed = mixed + weight.view(-1, 1, 1, 1) * public[new.to(images.device)]
            targets = targets - weight[:, None] * source_targets[old]
            partners[:, j] = -1 - new  # negative: an index into the public set
        return mixed, targets, Encoding(encoding.coefficients, partners)

    def describe(self) -> str:
        suffix = f"p{self.public_count}" if self.public_count else ""
        return f"{self.name}k{self.k}{suffix}"

    def cache_key(self) -> str:
        center = torch.as_tensor(self.center, dtype=torch.float32)
        key = f"{super().cache_key()}-c{tensor_digest(center)}"
        if self.public_count:
            assert self.public is not None
            key += f"-pub{tensor_digest(self.public)}"
        return key
