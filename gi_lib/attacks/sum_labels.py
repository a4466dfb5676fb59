"""Label counts of a whole round from the aggregated last-layer bias gradient.

Wainakh, Ventola, Müßig, Keim, Cordero, Zimmer, Grube, Kersting and
Mühlhäuser, "User-Level Label Leakage from Gradients in Federated
Learning", PETS 2022. For cross-entropy FedSGD the gradient of the last
layer's bias, averaged over the round's ``M`` samples, is
``g = mean_i (p_i - y_i)``, with ``p_i`` the softmax and ``y_i`` the
one-hot label of sample i. So the round's label counts are
``M (p_bar - g)``, with ``p_bar`` the mean softmax over the round's samples.
Aggregation does not hide them: the weighted mean of the clients' updates is
the same expression over the union of their batches.

The server does not know ``p_bar``; like the paper's LLG+ it estimates it
by passing dummy inputs through the model it sent (on an untrained model
the softmax barely depends on the input), then rounds the counts so that
they sum to ``M`` (largest remainders).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gi_lib.attacks.base import Reconstruction
from gi_lib.attacks.registry import AttackRun, register_attack
from gi_lib.fl import trainable_parameters


@dataclass(frozen=True)
class SumLabelsConfig:
    """Settings of the label-count attack.

    Attributes:
        probe_images: dummy inputs (uniform noise) used to estimate the mean
            softmax of the round's samples.
    """

    probe_images: int = 64

    def __post_init__(self) -> None:
        if self.probe_images < 1:
            raise ValueError(
                f"probe_images must be at least 1, got {self.probe_images}."
            )


@dataclass
class LabelCounts(Reconstruction):
    """A label-count attack's answer: ``labels`` are the counts expanded (in
    class order); ``images`` are empty (nothing of the images is recovered).

    Attributes:
        counts: ``(K,)`` integer counts per class.
        estimate: ``(K,)`` the unrounded estimate ``M (p_bar - g)``.
    """

    counts: torch.Tensor = torch.zeros(0)
    estimate: torch.Tensor = torch.zeros(0)


def last_bias_index(model: nn.Module) -> int:
    """Position, among the trainable parameters, of the last linear layer's bias."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears or linears[-1].bias is None:
        raise ValueError(
            "the label-count attack needs a model whose last linear layer has a "
            "bias; this model has none."
        )
    bias = linears[-1].bias
    for k, p in enumerate(trainable_parameters(model)):
        if p is bias:
            return k
    raise ValueError("the last linear layer's bias is not a trainable parameter.")


def round_counts(estimate: torch.Tensor, total: int) -> torch.Tensor:
    """Non-negative integers summing to ``total``, closest to ``estimate``
    (largest remainders)."""
    clipped = estimate.clamp(min=0)
    base = torch.floor(clipped).long()
    missing = total - int(base.sum())
    if missing > 0:
        order = torch.argsort(clipped - base, descending=True)
        base[order[:missing]] += 1
    while missing < 0:  # more than total after flooring: take from the smallest
        k = int(torch.argmax(base))
        base[k] -= 1
        missing += 1
    return base


@register_attack("sum_labels", config=SumLabelsConfig)
def reconstruct(run: AttackRun[SumLabelsConfig]) -> LabelCounts:
    """Wainakh et al. (PETS 2022): label counts from the summed last-layer bias.

    The label counts of every sample summed into the observation (a round's
    aggregate or one client's update).
    """
    observation, config = run.observation, run.config
    if observation.update_kind != "gradient":
        raise ValueError(
            "the label-count attack reads a FedSGD gradient; this observation "
            f"holds a {observation.update_kind!r}."
        )
    model = observation.model
    gradient = observation.gradients[last_bias_index(model)].detach().float()
    generator = torch.Generator(device="cpu").manual_seed(run.seed)
    probes = torch.rand(
        (config.probe_images, *observation.image_shape), generator=generator
    ).to(observation.device)
    with torch.no_grad():
        p_bar = torch.softmax(model(probes), dim=-1).mean(0).float()
    total = int(observation.num_images)
    estimate = total * (p_bar - gradient)
    counts = round_counts(estimate.cpu(), total)
    labels = torch.repeat_interleave(torch.arange(counts.numel()), counts)
    return LabelCounts(
        images=torch.zeros((0, *observation.image_shape)),
        labels=labels,
        loss=0.0,
        counts=counts,
        estimate=estimate.cpu(),
    )


def true_counts(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The label counts of a batch (for scoring)."""
    return torch.bincount(labels.cpu().long(), minlength=num_classes)
