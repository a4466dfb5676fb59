"""What a federated client sends and what an eavesdropper observes.

Threat model (DLG, iDLG, Inverting Gradients): an honest-but-curious server,
or anyone on the wire, sees one client's update (or, after aggregation, the
sum of several clients' updates) and knows the model it was computed on.
Everything the attacker may use is one :class:`Observation`; it holds no
client data, only the update and the side information that a paper's threat
model grants (labels, BatchNorm statistics, FedAvg's local schedule).

What the client actually did is a separate value, :class:`ClientStep` (the
batch it trained on after its defense's encoding, and the update it sent).
Experiments keep it to score and display an attack; attacks never get it.
The path is explicit::

    step = client_fedsgd(model, images, labels, num_classes=10, defense=d)
    observation = observe_round(model, [step], reveal_labels=True)

:func:`observe_fedsgd` does both for one client, :func:`observe_aggregate`
for several (FedSGD with a plaintext weighted mean, :func:`aggregate`).

This module imports nothing from :mod:`gi_lib.defenses`: a client defense is
anything with the two hooks of :class:`ClientDefense`, which
:class:`gi_lib.defenses.base.Defense` has.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad

from gi_lib.batchnorm import BNStatistics, batch_statistics

ModelMode = Literal["train", "eval"]


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


@runtime_checkable
class ClientDefense(Protocol):
    """The two hooks a client-side (plaintext) defense offers :func:`client_fedsgd`.

    Structural: :class:`gi_lib.defenses.base.Defense` and its subclasses
    satisfy it without this module importing them. Threat model: the
    defense runs on the client, before anything leaves it; the server sees
    only what :meth:`client_gradients` returns.
    """

    def encode(
        self, images: torch.Tensor, labels: torch.Tensor, num_classes: int, /
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch the client trains on: ``(images, labels or probabilities)``."""
        ...

    def client_gradients(
        self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor, /
    ) -> tuple[torch.Tensor, ...]:
        """The update the client sends for its (encoded) batch."""
        ...


@dataclass(frozen=True)
class ClientStep:
    """What one client did in one FedSGD round: the experiment's record.

    This is client-side truth (it holds the batch), for scoring and showing
    an attack; an attacker gets only the :class:`Observation` that
    :func:`observe_round` makes of it.

    Attributes:
        images: the batch the client trained on, after its defense's encoding
            (MixUp's mixtures, InstaHide's signed mixtures), ``(N, C, H, W)``.
        targets: the labels ``(N,)`` or label probabilities ``(N, K)`` it
            trained on.
        gradients: the update it sent, one tensor per trainable parameter
            (after the defense's clipping, noise or pruning).
        num_classes: number of classes of the task.
        model_mode: the mode of the client's forward pass.
        encoded: True when the defense's encoding replaced the private batch
            (``images`` is then not the client's private images).
    """

    images: torch.Tensor
    targets: torch.Tensor
    gradients: tuple[torch.Tensor, ...]
    num_classes: int
    model_mode: ModelMode
    encoded: bool = False

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])


def client_fedsgd(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int,
    model_mode: ModelMode = "eval",
    defense: ClientDefense | None = None,
) -> ClientStep:
    """Run one client's FedSGD step on a copy of the global model.

    Args:
        model: the global model sent to the client (left unchanged, running
            statistics included).
        images: the client's private batch ``(N, C, H, W)`` in [0, 1].
        labels: the client's private labels ``(N,)``.
        num_classes: number of classes of the task.
        model_mode: forward-pass mode of the client (``"train"`` normalises
            BatchNorm with the batch's own statistics).
        defense: a client-side defense (:class:`ClientDefense`, e.g. any
            :mod:`gi_lib.defenses` plaintext defense): it encodes the batch,
            then computes and transforms the gradient.

    Returns:
        The batch trained on and the update sent (:class:`ClientStep`).
    """
    if images.ndim != 4:
        raise ValueError(
            f"images must be (N, C, H, W), got shape {tuple(images.shape)}."
        )
    if labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"labels must have one entry per image: got {labels.shape[0]} labels "
            f"for {images.shape[0]} images."
        )
    if model_mode not in ("train", "eval"):
        raise ValueError(f"model_mode must be 'train' or 'eval', got {model_mode!r}.")
    client_model = copy.deepcopy(model)
    client_model.train(model_mode == "train")
    if defense is None:
        sent, targets = images, labels
        gradients = fedsgd_gradient(client_model, images, labels)
    else:
        sent, targets = defense.encode(images, labels, num_classes)
        gradients = defense.client_gradients(client_model, sent, targets)
    return ClientStep(
        images=sent.detach().clone(),
        targets=targets.detach().clone(),
        gradients=tuple(g.detach() for g in gradients),
        num_classes=num_classes,
        model_mode=model_mode,
        encoded=sent is not images,
    )


@dataclass(frozen=True)
class Observation:
    """Everything an attacker may use.

    Attributes:
        model: a copy of the model at the time of the update (architecture and
            weights), in the mode the client used.
        gradients: the observed update, one tensor per trainable parameter;
            after aggregation, the batch-size-weighted mean of the clients'.
        num_images: the batch size (assumed known, as in the papers); after
            aggregation, the total over the clients.
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
        bn_statistics: when the threat model grants them, the BatchNorm
            statistics a train-mode forward of the batch the client trained
            on normalises with, else None.
        num_clients: how many clients' updates ``gradients`` aggregates.
    """

    model: nn.Module
    gradients: tuple[torch.Tensor, ...]
    num_images: int
    image_shape: tuple[int, int, int]
    num_classes: int
    labels: torch.Tensor | None = None
    model_mode: ModelMode = "eval"
    update_kind: Literal["gradient", "weight_difference"] = "gradient"
    local_lr: float | None = None
    local_steps: int | None = None
    local_batch_size: int | None = None
    bn_statistics: BNStatistics | None = None
    num_clients: int = 1

    @property
    def device(self) -> torch.device:
        return self.gradients[0].device


def _check_bn_reveal(model_mode: str) -> None:
    """BatchNorm statistics are side information only in train mode."""
    if model_mode != "train":
        raise ValueError(
            "reveal_bn_statistics needs model_mode='train': in eval mode "
            "BatchNorm normalises with the running statistics, which the server "
            "already has (gi_lib.batchnorm.running_statistics)."
        )


def observe_round(
    model: nn.Module,
    steps: Sequence[ClientStep],
    *,
    reveal_labels: bool = False,
    reveal_bn_statistics: bool = False,
    gradients: Sequence[torch.Tensor] | None = None,
) -> Observation:
    """What the server sees of one FedSGD round of these clients.

    With one client this is its update; with several, the batch-size-weighted
    mean of their updates (:func:`aggregate`), which without a defense and
    with BatchNorm in eval mode (or no BatchNorm) is the gradient of the mean
    loss of the union of their batches. In train mode each client normalises
    with its own batch, so the mean is not the union batch's gradient.

    Args:
        model: the global model as the server sent it (the attacker's copy is
            taken from it, never from a client's copy, whose running
            statistics a train-mode pass changed).
        steps: the clients' steps (:func:`client_fedsgd`) on ``model``.
        reveal_labels: grant the attacker the labels the clients trained on
            (MixUp's and InstaHide's mixed labels), concatenated in client order.
        reveal_bn_statistics: grant the attacker the BatchNorm statistics of
            the batch the client trained on (one client, train mode only: in
            eval mode BatchNorm uses the running statistics, which the server
            already has).
        gradients: the aggregate as the server decoded it (e.g. an
            aggregation protocol's output); by default the plaintext weighted
            mean of the steps' updates.
    """
    if not steps:
        raise ValueError("observe_round needs at least one client step; got none.")
    first = steps[0]
    for k, step in enumerate(steps[1:], start=1):
        for name in ("model_mode", "num_classes"):
            if getattr(step, name) != getattr(first, name):
                raise ValueError(
                    f"client {k} has {name}={getattr(step, name)!r}, client 0 "
                    f"{getattr(first, name)!r}; one round uses one model and task."
                )
        if step.images.shape[1:] != first.images.shape[1:]:
            raise ValueError(
                f"client {k}'s images are {tuple(step.images.shape[1:])}, client "
                f"0's {tuple(first.images.shape[1:])}; one round uses one model."
            )
    if reveal_bn_statistics:
        _check_bn_reveal(first.model_mode)
    if reveal_bn_statistics and len(steps) > 1:
        raise ValueError(
            f"reveal_bn_statistics describes one client's batch, but this round "
            f"has {len(steps)} clients, each normalising with its own batch; "
            "observe one client (observe_fedsgd) to grant them."
        )
    total = sum(step.num_images for step in steps)
    if gradients is not None:
        expected = [tuple(g.shape) for g in first.gradients]
        if [tuple(g.shape) for g in gradients] != expected:
            raise ValueError(
                f"gradients has shapes {[tuple(g.shape) for g in gradients]}, but "
                f"the clients' updates have {expected}; pass the aggregate of "
                "these clients' updates."
            )
        observed = tuple(g.detach().clone() for g in gradients)
    elif len(steps) == 1:
        observed = tuple(g.detach().clone() for g in first.gradients)
    else:
        observed = aggregate(
            [step.gradients for step in steps],
            weights=[step.num_images / total for step in steps],
        )
    labels = None
    if reveal_labels:
        kinds = {step.targets.ndim for step in steps}
        if len(kinds) > 1:
            raise ValueError(
                "the clients trained on different kinds of targets (class "
                "indices and probabilities); reveal_labels needs one kind."
            )
        labels = torch.cat([step.targets for step in steps]).detach().clone()
    attacker_model = copy.deepcopy(model)
    attacker_model.train(first.model_mode == "train")
    return Observation(
        model=attacker_model,
        gradients=observed,
        num_images=total,
        image_shape=tuple(first.images.shape[1:]),  # type: ignore[arg-type]
        num_classes=first.num_classes,
        labels=labels,
        model_mode=first.model_mode,
        bn_statistics=(
            batch_statistics(model, first.images) if reveal_bn_statistics else None
        ),
        num_clients=len(steps),
    )


def observe_fedsgd(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int,
    reveal_labels: bool = False,
    model_mode: ModelMode = "eval",
    defense: ClientDefense | None = None,
    reveal_bn_statistics: bool = False,
) -> Observation:
    """Run one client's FedSGD step and return what the attacker sees.

    :func:`client_fedsgd` then :func:`observe_round`; call those two when the
    experiment also needs what the client trained on.

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
        reveal_bn_statistics: grant the attacker the BatchNorm statistics of
            the batch the client trained on (needs ``model_mode="train"``).
    """
    if reveal_bn_statistics:
        _check_bn_reveal(model_mode)  # before the client's work, not after
    step = client_fedsgd(
        model,
        images,
        labels,
        num_classes=num_classes,
        model_mode=model_mode,
        defense=defense,
    )
    return observe_round(
        model,
        [step],
        reveal_labels=reveal_labels,
        reveal_bn_statistics=reveal_bn_statistics,
    )


def check_updates(updates: Sequence[Sequence[torch.Tensor]]) -> None:
    """Raise a ValueError unless there is an update and all have client 0's shapes.

    Args:
        updates: one update per client, a sequence of tensors each.
    """
    if len(updates) == 0:
        raise ValueError("no client updates to aggregate; give at least one.")
    reference = [tuple(t.shape) for t in updates[0]]
    for k, update in enumerate(updates[1:], start=1):
        if len(update) != len(reference):
            raise ValueError(
                f"client {k}'s update has {len(update)} tensors, client 0's has "
                f"{len(reference)}; every client sends one tensor per trainable "
                "parameter of the same model."
            )
        for j, (tensor, shape) in enumerate(zip(update, reference, strict=True)):
            if tuple(tensor.shape) != shape:
                raise ValueError(
                    f"client {k}'s tensor {j} has shape {tuple(tensor.shape)}, "
                    f"client 0's has {shape}; every client must send updates of "
                    "the same model."
                )


def aggregate(
    updates: Sequence[Sequence[torch.Tensor]],
    *,
    weights: Sequence[float] | None = None,
) -> tuple[torch.Tensor, ...]:
    """The (weighted) sum of per-client updates, tensor by tensor.

    This is what plaintext aggregation reveals; every secure-aggregation
    protocol must decode to it. Clients are added in the given order, so the
    result is reproducible bit for bit.

    Args:
        updates: one update per client, each a sequence of tensors with the
            same shapes as the first client's.
        weights: one weight per client (e.g. ``n_k / N`` for FedSGD's
            weighted mean); None sums with weight one.

    Returns:
        One tensor per position, ``sum_k weights[k] * updates[k][j]``.
    """
    check_updates(updates)
    if weights is not None and len(weights) != len(updates):
        raise ValueError(
            f"weights has {len(weights)} entries for {len(updates)} clients; "
            "give one weight per client."
        )
    out = []
    for j in range(len(updates[0])):
        if weights is None:
            total = updates[0][j].detach().clone()
            for update in updates[1:]:
                total = total + update[j].detach()
        else:
            total = weights[0] * updates[0][j].detach()
            for weight, update in zip(weights[1:], updates[1:], strict=True):
                total = total + weight * update[j].detach()
        out.append(total)
    return tuple(out)


def observe_aggregate(
    model: nn.Module,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    num_classes: int,
    model_mode: ModelMode = "eval",
    reveal_labels: bool = False,
    defense: ClientDefense | None = None,
) -> Observation:
    """One FedSGD round over several clients, as an honest-but-curious server
    that sees only the plaintext aggregate observes it.

    Every client takes its FedSGD step on the same global model (applying
    ``defense``, whose randomness advances from client to client); the
    server sees the batch-size-weighted mean of their updates, the total
    number of images and the number of clients (:func:`observe_round`).

    Args:
        model: the global model sent to every client.
        batches: each client's private ``(images, labels)``.
        num_classes: number of classes of the task.
        model_mode: forward-pass mode of the clients.
        reveal_labels: grant the attacker every client's labels (in client
            order).
        defense: a client-side defense every client applies.
    """
    if not batches:
        raise ValueError("observe_aggregate needs at least one client batch; got none.")
    client = functools.partial(
        client_fedsgd,
        model,
        num_classes=num_classes,
        model_mode=model_mode,
        defense=defense,
    )
    steps = [client(images, labels) for images, labels in batches]
    return observe_round(model, steps, reveal_labels=reveal_labels)


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
