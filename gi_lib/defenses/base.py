"""What every plaintext defense shares: the client-side hook and a combination.

A plaintext defense changes what one client sends (its gradient: pruning,
DP-SGD's clipping and noise) or what it trains on (its images and labels:
MixUp, InstaHide). Both kinds plug into the client's update the same way,
through :class:`Defense`:

1. :meth:`Defense.encode` turns the private batch into the batch the client
   actually trains on (identity for gradient defenses);
2. :meth:`Defense.client_gradients` computes the update from that batch
   (the plain mean-loss gradient, or DP-SGD's clipped and noised one);
3. :meth:`Defense.transform_gradients` post-processes the update (pruning).

:func:`gi_lib.fl.client_fedsgd` (and so :func:`gi_lib.fl.observe_fedsgd`)
calls the first two when given ``defense=``; the utility trainer
(:mod:`gi_lib.defenses.utility`) calls them on every training step, so the
attacked update and the trained model come from the same code. ``fl`` knows
these hooks only as a structural protocol (:class:`gi_lib.fl.ClientDefense`)
and imports nothing from this package. Every defense owns a seeded
:class:`torch.Generator`, so a run is repeatable and successive batches get
fresh randomness.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gi_lib import fl


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class indices ``(N,)`` as float probabilities ``(N, num_classes)``."""
    if labels.ndim == 2:
        return labels.float()
    return torch.nn.functional.one_hot(labels.long(), num_classes).float()


class Defense:
    """A plaintext defense applied by the client (no defense by default).

    Subclasses override :meth:`encode`, :meth:`client_gradients` or
    :meth:`transform_gradients` and :meth:`describe`.

    Args:
        seed: seeds the defense's own randomness (masks, noise, partners).
    """

    name = "none"

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def encode(
        self, images: torch.Tensor, labels: torch.Tensor, num_classes: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch the client trains on: ``(images, labels or probabilities)``."""
        return images, labels

    def client_gradients(
        self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """The update the client sends for its (encoded) batch."""
        return self.transform_gradients(fl.fedsgd_gradient(model, images, targets))

    def transform_gradients(
        self, gradients: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, ...]:
        """Post-process a computed update (identity unless overridden)."""
        return tuple(gradients)

    def describe(self) -> str:
        """A short stable label, used in tables and plots."""
        return self.name

    def cache_key(self) -> str:
        """Everything that changes what a model trained with this defense is.

        Used in cache file names, so two defenses with the same label but
        different settings (MixUp's bounds, InstaHide's public set, the seed)
        never share a cached model. Subclasses with settings beyond their
        label extend it.
        """
        return f"{self.describe()}-d{self.seed}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()}, seed={self.seed})"


class NoDefense(Defense):
    """The undefended client: plain FedSGD."""


class Combined(Defense):
    """Several defenses applied in turn, as Huang et al. combine them.

    The encodings run in the given order; the update is the plain gradient
    of the encoded batch, then every defense's :meth:`~Defense.transform_gradients`
    in order (e.g. Intra-InstaHide followed by gradient pruning). DP-SGD
    replaces the gradient computation itself and so cannot be combined here.
    """

    def __init__(self, defenses: Sequence[Defense], *, seed: int = 0) -> None:
        super().__init__(seed=seed)
        if not defenses:
            raise ValueError("Combined needs at least one defense.")
        for defense in defenses:
            if type(defense).client_gradients is not Defense.client_gradients:
                raise ValueError(
                    f"{defense!r} replaces the gradient computation (DP-SGD) and "
                    "cannot be combined; apply it alone."
                )
        self.defenses = tuple(defenses)

    def encode(
        self, images: torch.Tensor, labels: torch.Tensor, num_classes: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        for defense in self.defenses:
            images, labels = defense.encode(images, labels, num_classes)
        return images, labels

    def transform_gradients(
        self, gradients: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, ...]:
        out = tuple(gradients)
        for defense in self.defenses:
            out = defense.transform_gradients(out)
        return out

    def describe(self) -> str:
        return "+".join(d.describe() for d in self.defenses)

    def cache_key(self) -> str:
        return "+".join(d.cache_key() for d in self.defenses) + f"-d{self.seed}"
