"""What a federated client sends and what an eavesdropper observes.

Threat model (DLG, iDLG, Inverting Gradients): an honest-but-curious server,
or anyone on the wire, sees one client's update and knows the model it was
computed on. Everything the attacker may use is one :class:`Observation`;
it holds no client data, only the update and the side information that a
paper's threat model grants.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad

from gi_lib.batchnorm import BNStatistics

if TYPE_CHECKING:
    from gi_lib.defenses.base import Defense


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the batch, for class indices or probabilities.

    The client and the attacker use this same function, so the observed
    gradient and the attacker's simulated gradient have the same scale (a
    silently halved loss breaks L2 gradient matching).
    """
    if target.dtype in (torch.long, torch.int64, torch.int32):
        return F.cross_entropy(logits, target)
    return torch.mean(torch.sum(-target * F.log_softmax(logits, dim=-1), dim=-1))


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters that receive gradients, in ``model.parameters()`` order."""
    return [p for p in model.parameters() if p.requires_grad]


def fedsgd_gradient(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """The FedSGD update: the gradient of the mean batch loss w.r.t. the weights."""
    loss = cross_entropy(model(images), labels)
    gradients = torch.autograd.grad(loss, trainable_parameters(model))
    return tuple(g.detach().clone() for g in gradients)


@dataclass(frozen=True)
class Observation:
    """Everything an attacker may use.

    Attributes:
        model: a copy of the model at the time of the update (architecture and
            weights), in the mode the client used.
        gradients: the observed update, one tensor per trainable parameter.
        num_images: the client's batch size (assumed known, as in the papers).
        image_shape: ``(C, H, W)`` of one image.
        num_classes: number of classes of the task.
        labels: the batch's labels when the threat model grants them, else None.
        model_mode: ``"train"`` or ``"eval"``, the mode the client's forward
            pass used (matters for BatchNorm).
        update_kind: ``"gradient"`` (FedSGD: ``gradients`` is the gradient of
            the mean batch loss) or ``"weight_difference"`` (FedAvg:
            ``gradients`` holds ``weights_after - weights_before``).
        local_lr: FedAvg's local SGD step size (known to the server).
        local_steps: FedAvg's number of local SGD steps.
        local_batch_size: FedAvg's local mini-batch size; step ``t`` uses
            mini-batch ``t mod (num_images // local_batch_size)`` in the
            client's order.
    """

    model: nn.Module
    gradients: tuple[torch.Tensor, ...]
    num_images: int
    image_shape: tuple[int, int, int]
    num_classes: int
    labels: torch.Tensor | None = None
    model_mode: Literal["train", "eval"] = "eval"
    update_kind: Literal["gradient", "weight_difference"] = "gradient"
    local_lr: float | None = None
    local_steps: int | None = None
    local_batch_size: int | None = None
    bn_statistics: BNStatistics | None = None

    @property
    def device(self) -> torch.device:
        return self.gradients[0].device


def observe_fedsgd(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int,
    reveal_labels: bool = False,
    model_mode: Literal["train", "eval"] = "eval",
    defense: Defense | None = None,
) -> Observation:
    """Run one client's FedSGD step and return what the attacker sees.

    Args:
        model: the global model sent to the client.
        images: the client's private batch ``(N, C, H, W)`` in [0, 1].
        labels: the client's private labels ``(N,)``.
        num_classes: number of classes of the task.
        reveal_labels: grant the attacker the labels (side information).
        model_mode: forward-pass mode of the client.
        defense: a plaintext defense (:mod:`gi_lib.defenses`) the client applies:
            it encodes the batch, computes and transforms the gradient. With
            ``reveal_labels`` the attacker gets the labels the client trained
            on (MixUp's and InstaHide's mixed labels).
    """
    if images.ndim != 4:
        raise ValueError(
            f"images must be (N, C, H, W), got shape {tuple(images.shape)}."
        )
    client_model = copy.deepcopy(model)
    client_model.train(model_mode == "train")
    if defense is None:
        gradients = fedsgd_gradient(client_model, images, labels)
    else:
        images, labels = defense.encode(images, labels, num_classes)
        gradients = defense.client_gradients(client_model, images, labels)
    # The attacker gets the model as the server sent it: copying the client's
    # model after a train-mode pass would leak the batch into BatchNorm's
    # running statistics.
    attacker_model = copy.deepcopy(model)
    attacker_model.train(model_mode == "train")
    return Observation(
        model=attacker_model,
        gradients=gradients,
        num_images=images.shape[0],
        image_shape=tuple(images.shape[1:]),  # type: ignore[arg-type]
        num_classes=num_classes,
        labels=labels.detach().clone() if reveal_labels else None,
        model_mode=model_mode,
    )


def local_schedule(
    num_images: int, local_steps: int, local_batch_size: int | None
) -> list[slice]:
    """Which images each local step of a FedAvg client uses.

    ``local_batch_size=None`` (or at least ``num_images``) makes every step
    full-batch; otherwise the batch is cut into ``num_images // local_batch_size``
    consecutive mini-batches, used in turn. One local epoch is
    ``num_images // local_batch_size`` steps.
    """
    if local_steps < 1:
        raise ValueError(f"local_steps must be at least 1, got {local_steps}.")
    size = num_images if local_batch_size is None else local_batch_size
    if not 1 <= size <= num_images:
        raise ValueError(
            f"local_batch_size must be in [1, {num_images}], got {local_batch_size}."
        )
    count = num_images // size
    return [
        slice((t % count) * size, (t % count + 1) * size) for t in range(local_steps)
    ]


def unrolled_local_update(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    local_lr: float,
    local_steps: int,
    local_batch_size: int | None = None,
    parameter_names: Sequence[str] | None = None,
) -> tuple[torch.Tensor, ...]:
    """FedAvg's local training as a differentiable function of the images.

    Runs ``local_steps`` plain SGD steps on the cross-entropy of the batch (see
    :func:`local_schedule`) in functional form, with the model's buffers fixed
    (BatchNorm in eval mode uses its running statistics and never updates
    them), and returns ``weights_after - weights_before`` per trainable
    parameter. The client calls it to make its update; an attacker calls the
    very same function on dummy images and differentiates through every step
    (it works under ``torch.func.vmap`` too).
    """
    named = dict(model.named_parameters())
    names = (
        list(parameter_names)
        if parameter_names is not None
        else [n for n, p in named.items() if p.requires_grad]
    )
    buffers = dict(model.named_buffers())
    start = {n: named[n].detach() for n in names}
    frozen = {n: p.detach() for n, p in named.items() if n not in start}

    def batch_loss(
        weights: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        state = {**frozen, **weights, **buffers}
        return cross_entropy(functional_call(model, state, (x,)), y)

    weights = dict(start)
    for part in local_schedule(images.shape[0], local_steps, local_batch_size):
        step = grad(batch_loss)(weights, images[part], labels[part])
        weights = {n: weights[n] - local_lr * step[n] for n in names}
    return tuple(weights[n] - start[n] for n in names)


def observe_fedavg(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int,
    local_lr: float,
    local_steps: int,
    local_batch_size: int | None = None,
    reveal_labels: bool = False,
) -> Observation:
    """Run one FedAvg client and return what the attacker sees.

    The client trains on its batch for ``local_steps`` SGD steps of size
    ``local_lr`` (BatchNorm in eval mode, as in Inverting Gradients) and
    sends the weight difference. The server knows ``local_lr``,
    ``local_steps``, ``local_batch_size`` and the number of images, as the
    paper's threat model assumes.
    """
    if images.ndim != 4:
        raise ValueError(
            f"images must be (N, C, H, W), got shape {tuple(images.shape)}."
        )
    client_model = copy.deepcopy(model).eval()
    with torch.no_grad():
        update = unrolled_local_update(
            client_model,
            images,
            labels,
            local_lr=local_lr,
            local_steps=local_steps,
            local_batch_size=local_batch_size,
        )
    return Observation(
        model=copy.deepcopy(client_model),
        gradients=tuple(u.detach().clone() for u in update),
        num_images=images.shape[0],
        image_shape=tuple(images.shape[1:]),  # type: ignore[arg-type]
        num_classes=num_classes,
        labels=labels.detach().clone() if reveal_labels else None,
        model_mode="eval",
        update_kind="weight_difference",
        local_lr=local_lr,
        local_steps=local_steps,
        local_batch_size=local_batch_size,
    )
