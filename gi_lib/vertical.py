"""Vertical federated learning (CAFE, Jin et al., NeurIPS 2021).

Every party holds a slice of the features of *every* sample (here: a strip of
image columns) and a bottom model; the server holds the top model and the
labels. Each training step the server picks a batch of sample indices; each
party runs its bottom model on its slice of those samples and sends the
embeddings; the server computes the loss and sends back the gradient with
respect to each party's embeddings; each party sends its bottom model's
gradient for the batch, and the server updates every model (as in CAFE's
official code, where the server steps all optimisers).

Threat model: an honest-but-curious server. It sees the batch indices, the
labels, the embeddings, every model's weights and every model's
batch-averaged gradient (:class:`VerticalObservation`). It never sees a
party's features.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from gi_lib._registry import Registry
from gi_lib.fl import cross_entropy


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
    on the concatenated embeddings).

    Args:
        slice_shapes: each party's feature shape (:func:`split_features`).
        num_classes: outputs of the top model.
        channels, hidden, embedding: sizes of the bottom models.
        seed: draw the initial weights from this seed (torch's global random
            state is left as it was); ``None`` draws them from that state.
    """

    def __init__(
        self,
        slice_shapes: Sequence[tuple[int, int, int]],
        num_classes: int,
        *,
        channels: int = 8,
        hidden: int = 128,
        embedding: int = 16,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.slice_shapes = [tuple(s) for s in slice_shapes]
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.parties = nn.ModuleList(
                BottomModel(s, channels=channels, hidden=hidden, embedding=embedding)
                for s in slice_shapes
            )
            self.top = nn.Linear(embedding * len(slice_shapes), num_classes)

    def forward(self, slices: Sequence[torch.Tensor]) -> torch.Tensor:
        embeddings = [party(x) for party, x in zip(self.parties, slices, strict=True)]
        return self.top(torch.cat(embeddings, dim=1))


VerticalModelFactory = Callable[[Sequence[tuple[int, int, int]], int], VerticalModel]

VERTICAL_MODELS: Registry[VerticalModelFactory] = Registry(
    "vertical model",
    {
        # CAFE's setting: each party a small CNN whose first fully connected
        # layer is the one the attack inverts, the server a linear top.
        "vertical_cnn": VerticalModel,
    },
)
"""Vertical models by name: ``(slice_shapes, num_classes) -> VerticalModel``.

A model the attack supports has parties shaped like :class:`BottomModel`
(``features``, ``first_fc``, ``embed``); register another width or depth
here and the CAFE notebook's ``model`` parameter can choose it."""


def vertical_model_names() -> tuple[str, ...]:
    """The registered vertical models."""
    return tuple(VERTICAL_MODELS)


def build_vertical_model(
    name: str,
    slice_shapes: Sequence[tuple[int, int, int]],
    num_classes: int,
    *,
    seed: int,
) -> VerticalModel:
    """Vertical model ``name`` for these party slices, initialised from ``seed``.

    Raises:
        ValueError: ``name`` is not registered (the message names the choices).
    """
    factory = VERTICAL_MODELS.lookup(name)
    # fork_rng keeps the caller's global RNG untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(slice_shapes, num_classes)


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
