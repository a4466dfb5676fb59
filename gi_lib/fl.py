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


# ===========================================================================
# Vertical federated learning (CAFE, Jin et al., NeurIPS 2021)
# ===========================================================================
#
# Every party holds a slice of the features of *every* sample (here: a strip of
# image columns) and a bottom model; the server holds the top model and the
# labels. Each training step the server picks a batch of sample indices; each
# party runs its bottom model on its slice of those samples and sends the
# embeddings; the server computes the loss and sends back the gradient with
# respect to each party's embeddings; each party sends its bottom model's
# gradient for the batch, and the server updates every model (as in CAFE's
# official code, where the server steps all optimisers). The server therefore
# sees: the batch indices, the labels, the embeddings, every model's weights
# and every model's batch-averaged gradient. It never sees a party's features.


def split_features(images: torch.Tensor, num_parties: int) -> list[torch.Tensor]:
    """Cut images ``(N, C, H, W)`` into ``num_parties`` strips of columns."""
    if not 1 <= num_parties <= images.shape[-1]:
        raise ValueError(
            f"num_parties must be in [1, {images.shape[-1]}], got {num_parties}."
        )
    return [s.contiguous() for s in torch.tensor_split(images, num_parties, dim=-1)]


def join_features(slices: Sequence[torch.Tensor]) -> torch.Tensor:
    """Put strips from :func:`split_features` back into images."""
    return torch.cat(list(slices), dim=-1)


class BottomModel(nn.Module):
    """A party's model: 3x3 convolution, ReLU, then ``first_fc`` (the layer CAFE
    attacks), ReLU and a linear embedding."""

    def __init__(
        self,
        slice_shape: tuple[int, int, int],
        *,
        channels: int,
        hidden: int,
        embedding: int,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(slice_shape[0], channels, 3, padding=1)
        self.first_fc = nn.Linear(channels * slice_shape[1] * slice_shape[2], hidden)
        self.embed = nn.Linear(hidden, embedding)

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """The input of ``first_fc``."""
        return torch.relu(self.conv(inputs)).flatten(1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.embed(torch.relu(self.first_fc(self.features(inputs))))


class VerticalModel(nn.Module):
    """The parties' bottom models and the server's top model (one linear layer
    on the concatenated embeddings)."""

    def __init__(
        self,
        slice_shapes: Sequence[tuple[int, int, int]],
        num_classes: int,
        *,
        channels: int = 8,
        hidden: int = 128,
        embedding: int = 16,
    ) -> None:
        super().__init__()
        self.slice_shapes = [tuple(s) for s in slice_shapes]
        self.parties = nn.ModuleList(
            BottomModel(s, channels=channels, hidden=hidden, embedding=embedding)
            for s in slice_shapes
        )
        self.top = nn.Linear(embedding * len(slice_shapes), num_classes)

    def forward(self, slices: Sequence[torch.Tensor]) -> torch.Tensor:
        embeddings = [party(x) for party, x in zip(self.parties, slices, strict=True)]
        return self.top(torch.cat(embeddings, dim=1))


def vertical_gradients(
    model: VerticalModel, slices: Sequence[torch.Tensor], labels: torch.Tensor
) -> tuple[tuple[torch.Tensor, ...], tuple[tuple[torch.Tensor, ...], ...]]:
    """Gradients of the batch's mean cross-entropy: ``(top, per party)``.

    The same function serves the protocol and an attacker's simulation: when
    the slices require gradients (dummy features), the returned gradients keep
    their graph so that a matching loss can be differentiated through them.
    """
    loss = cross_entropy(model(slices), labels)
    top = list(model.top.parameters())
    parties = [list(p.parameters()) for p in model.parties]
    flat = torch.autograd.grad(
        loss,
        top + [p for ps in parties for p in ps],
        create_graph=torch.is_grad_enabled() and any(s.requires_grad for s in slices),
    )
    out, start = [], len(top)
    for ps in parties:
        out.append(tuple(flat[start : start + len(ps)]))
        start += len(ps)
    return tuple(flat[: len(top)]), tuple(out)


@dataclass(frozen=True)
class VerticalObservation:
    """What the server sees in one vertical training step.

    Attributes:
        step: the training step.
        indices: the batch's sample indices (the server chose them).
        labels: the batch's labels (the server holds them).
        model: a copy of all models before this step's update.
        top_gradients: the top model's gradient.
        party_gradients: each party's bottom-model gradient, batch-averaged
            (parameter order of :class:`BottomModel`).
        embeddings: what each party sent forward, ``(B, embedding)``.
    """

    step: int
    indices: torch.Tensor
    labels: torch.Tensor
    model: VerticalModel
    top_gradients: tuple[torch.Tensor, ...]
    party_gradients: tuple[tuple[torch.Tensor, ...], ...]
    embeddings: tuple[torch.Tensor, ...]

    @property
    def num_parties(self) -> int:
        return len(self.party_gradients)


class _Party:
    """A party: its private features and nothing the server can reach."""

    def __init__(self, features: torch.Tensor) -> None:
        self.__features = features

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        return self.__features[indices]


class VerticalTraining:
    """Runs vertical FedSGD and hands the server's view of each step out.

    Args:
        model: the parties' and the server's models (trained in place).
        images: all samples ``(N, C, H, W)``; they are split into strips, one
            per party, and kept inside the parties.
        labels: the samples' labels (the server's).
        batch_size: samples per step; the server draws them uniformly.
        lr: SGD step size of every model (0 freezes the models).
        seed: seeds the batch draws.
    """

    def __init__(
        self,
        model: VerticalModel,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        lr: float,
        seed: int,
    ) -> None:
        if not 1 <= batch_size <= images.shape[0]:
            raise ValueError(
                f"batch_size must be in [1, {images.shape[0]}], got {batch_size}."
            )
        self.model = model
        self._parties = [_Party(s) for s in split_features(images, len(model.parties))]
        self.labels = labels
        self.num_samples = images.shape[0]
        self.batch_size = batch_size
        self.lr = lr
        self.step_count = 0
        self._generator = torch.Generator().manual_seed(seed)

    def step(self) -> VerticalObservation:
        """One training step; returns what the server saw."""
        indices = torch.randperm(self.num_samples, generator=self._generator)[
            : self.batch_size
        ]
        slices = [party.batch(indices) for party in self._parties]
        labels = self.labels[indices]
        snapshot = copy.deepcopy(self.model)
        with torch.enable_grad():
            top, parties = vertical_gradients(self.model, slices, labels)
        with torch.no_grad():
            embeddings = tuple(
                p(s).detach() for p, s in zip(self.model.parties, slices, strict=True)
            )
        observation = VerticalObservation(
            step=self.step_count,
            indices=indices,
            labels=labels.clone(),
            model=snapshot,
            top_gradients=tuple(g.detach() for g in top),
            party_gradients=tuple(tuple(g.detach() for g in p) for p in parties),
            embeddings=embeddings,
        )
        if self.lr > 0:
            with torch.no_grad():
                for parameter, gradient in zip(
                    list(self.model.top.parameters())
                    + [q for p in self.model.parties for q in p.parameters()],
                    list(observation.top_gradients)
                    + [g for p in observation.party_gradients for g in p],
                    strict=True,
                ):
                    parameter -= self.lr * gradient
        self.step_count += 1
        return observation
