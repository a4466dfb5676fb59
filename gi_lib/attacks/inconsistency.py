"""Model inconsistency: a server that sends different clients different models
(Pasquini, Francati and Ateniese, "Eluding Secure Aggregation in Federated
Learning via Model Inconsistency", CCS 2022).

The server sends the target the real model and every other client a copy
whose last ReLU layer is dead (its pre-activation bias set far below zero).
A dead ReLU passes no gradient: every parameter up to and including the
classifier's weight gets an exactly zero gradient from those clients, and
only the classifier's bias still carries ``softmax - onehot``. The secure
sum of the round is then, on every other parameter, the target's update
alone, and the server inverts it as if there were no aggregation. Secure
aggregation binds the set of clients, not the model each one received, so
none of the protocols here notices.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from gi_lib.fl import Observation, trainable_parameters

DEAD_BIAS = -1e4
"""The bias that keeps a ReLU layer's inputs negative for images in [0, 1]."""


def suppressing_model(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose last parameterised layer before the
    classifier (in module order) has its bias set to :data:`DEAD_BIAS`, so
    the ReLU after it never fires.

    Raises:
        ValueError: the model has no such layer with a bias.
    """
    bad = copy.deepcopy(model)
    linears = [m for m in bad.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("model inconsistency needs a final linear classifier.")
    classifier = linears[-1]
    candidates = [
        m
        for m in bad.modules()
        if m is not classifier
        and isinstance(getattr(m, "bias", None), torch.Tensor)
        and not list(m.children())
    ]
    if not candidates:
        raise ValueError(
            "the model has no layer with a bias before its classifier to kill."
        )
    with torch.no_grad():
        candidates[-1].bias.fill_(DEAD_BIAS)  # type: ignore[union-attr]
    return bad


def silent_parameters(
    suppressed: nn.Module, image_shape: tuple[int, ...], *, probes: int = 4
) -> tuple[int, ...]:
    """The trainable parameters whose gradient under ``suppressed`` is exactly
    zero (checked on random images with random labels, as the server can)."""
    images = torch.rand((probes, *image_shape))
    logits = suppressed(images)
    labels = torch.randint(0, logits.shape[-1], (probes,))
    loss = torch.nn.functional.cross_entropy(logits, labels)
    grads = torch.autograd.grad(loss, trainable_parameters(suppressed))
    return tuple(k for k, g in enumerate(grads) if not bool(g.abs().max() > 0))


def target_observation(
    model: nn.Module,
    aggregate: Sequence[torch.Tensor],
    silent: Sequence[int],
    *,
    num_images: int,
    num_classes: int,
    image_shape: tuple[int, int, int],
) -> Observation:
    """What the server attacks: the aggregate restricted to the parameters on
    which the non-targets contribute nothing, on the target's model (the
    other parameters are frozen in the attacker's copy)."""
    keep = set(silent)
    attacker = copy.deepcopy(model).eval()
    for k, p in enumerate(trainable_parameters(attacker)):
        if k not in keep:
            p.requires_grad_(False)
    return Observation(
        model=attacker,
        gradients=tuple(aggregate[k].detach().clone() for k in sorted(keep)),
        num_images=num_images,
        image_shape=image_shape,
        num_classes=num_classes,
    )
