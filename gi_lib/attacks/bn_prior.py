"""Inverting Gradients with a BatchNorm prior, the attack Huang et al. (2021) evaluate.

Threat model: the client computes its update with BatchNorm in train mode, so
each BatchNorm layer normalises with the *private batch's* statistics, as in
real training. The attacker's simulated client does the same with its dummy
batch. On top of Inverting Gradients' cosine matching and total variation
(:mod:`gi_lib.attacks.inverting`) it adds the BatchNorm prior of Yin et al.
(2021): for every BatchNorm layer, the distance between the dummy batch's
per-channel mean and variance at the layer's input and a *target*. The target
is what the attacker is assumed to know:

- the private batch's exact statistics (the "strong" assumption under which
  Geiping et al. evaluated; GradAttack's ``BN_exact``), or
- the global model's running statistics (the realistic case: the server knows
  only the model it sent).

Labels come from the observation when the threat model grants them, else from
the last layer's update (iDLG's sign rule, which assumes distinct labels).
One restart; Adam on the sign of the image gradient in the model's normalised
space with Inverting Gradients' learning-rate cuts and box constraint.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

from gi_lib import fl
from gi_lib.attacks.base import Reconstruction, attack_generator
from gi_lib.attacks.inverting import (
    attack_labels,
    cosine_distance,
    image_normalisation,
    lr_milestones,
    total_variation,
)
from gi_lib.batchnorm import (
    BNStatistics,
    batch_statistics,
    bn_layers,
    recording,
    running_statistics,
)
from gi_lib.metrics import best_matching, psnr

__all__ = [
    "BNStatistics",
    "batch_statistics",
    "bn_layers",
    "recording",
    "running_statistics",
]


def bn_prior(
    records: list[tuple[torch.Tensor, torch.Tensor]],
    target: BNStatistics,
    first_multiplier: float = 1.0,
) -> torch.Tensor:
    """Sum over layers of ``||mean - target mean|| + ||var - target var||``.

    The first layer's term is multiplied by ``first_multiplier`` (GradAttack's
    ``first_bn_multiplier``, 10 in its examples, after Yin et al.).
    """
    if len(records) != len(target.means):
        raise ValueError(
            f"{len(records)} BatchNorm layers ran but the target has "
            f"{len(target.means)}."
        )
    terms = [
        torch.linalg.vector_norm(m - tm) + torch.linalg.vector_norm(v - tv)
        for (m, v), tm, tv in zip(records, target.means, target.variances, strict=True)
    ]
    weights = torch.ones(len(terms), device=terms[0].device)
    weights[0] = first_multiplier
    return (torch.stack(terms) * weights).sum()


@dataclass(frozen=True)
class BNPriorConfig:
    """Attack settings; defaults follow GradAttack's strong-assumption example.

    Attributes:
        max_iterations: Adam steps (GradAttack runs 10,000 at batch size 16).
        lr: Adam's step size in the normalised image space.
        tv_weight: total variation weight (0.1 with exact statistics, 0.05
            without, in GradAttack's examples).
        bn_weight: BatchNorm prior weight (0.005 and 0.001 there).
        first_bn_multiplier: extra weight of the first BatchNorm layer's
            term (GradAttack's default 10).
        progress: show a progress bar.
        monitor_every: record PSNR every this many iterations when the truth
            is given (0 picks about 20 points).
    """

    max_iterations: int = 10_000
    lr: float = 0.1
    tv_weight: float = 0.1
    bn_weight: float = 0.005
    first_bn_multiplier: float = 10.0
    progress: bool = False
    monitor_every: int = 0

    def __post_init__(self) -> None:
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {self.max_iterations}.")
        if self.tv_weight < 0 or self.bn_weight < 0:
            raise ValueError("tv_weight and bn_weight must be >= 0.")


class _SimulatedBatchNorm(nn.Module):
    """A BatchNorm layer of the attacker's simulated client (train mode).

    It normalises with the dummy batch's own statistics, exactly as the
    client's layer does with the private batch's, so the simulated update is
    a genuine function of the dummy images that equals the client's at the
    true batch. It also records those statistics for the prior.

    Known statistics are *not* substituted into the normalisation: an earlier
    version normalised with the known values while letting gradients flow
    through the dummy batch's statistics. That matches the client at the
    truth but is not the gradient of any function elsewhere, so the image
    gradient pointed nowhere useful and, with the prior on, the images
    saturated (about 5 dB). The known statistics now enter only through
    :func:`bn_prior`, as in GradAttack and Yin et al.
    """

    def __init__(
        self,
        layer: nn.modules.batchnorm._BatchNorm,
        records: list[tuple[torch.Tensor, torch.Tensor]],
    ) -> None:
        super().__init__()
        self.layer = layer
        self.records = records

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0, *range(2, x.ndim)]
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        self.records.append((mean, var))
        shape = [1, -1] + [1] * (x.ndim - 2)
        out = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.layer.eps)
        if self.layer.affine:
            out = out * self.layer.weight.view(shape) + self.layer.bias.view(shape)
        return out


def simulated_client(
    model: nn.Module,
    records: list[tuple[torch.Tensor, torch.Tensor]],
    known: BNStatistics | None,
) -> nn.Module:
    """A copy of ``model`` whose BatchNorm layers are :class:`_SimulatedBatchNorm`.

    Parameter order is unchanged, so its gradients line up with the observed.
    ``known`` (the statistics the prior targets) is only checked against the
    model's BatchNorm layers; the simulated client always normalises with the
    dummy batch's own statistics, as the client does.
    """
    client = copy.deepcopy(model).train()
    layers = bn_layers(client)
    if known is not None and len(known.means) != len(layers):
        raise ValueError(
            f"the model has {len(layers)} BatchNorm layers but the known statistics "
            f"cover {len(known.means)}."
        )
    replaced = {id(layer): i for i, layer in enumerate(layers)}
    for parent in list(client.modules()):
        for name, child in list(parent.named_children()):
            if id(child) in replaced:
                setattr(parent, name, _SimulatedBatchNorm(child, records))  # type: ignore[arg-type]
    return client


def reconstruct(
    observation: fl.Observation,
    config: BNPriorConfig | None = None,
    *,
    bn_target: BNStatistics | None,
    exact_statistics: bool = False,
    seed: int = 0,
    truth: torch.Tensor | None = None,
) -> Reconstruction:
    """Reconstruct the client's batch from a FedSGD gradient taken in train mode.

    Args:
        observation: what the attacker sees (``model_mode`` must be "train").
        config: attack settings.
        bn_target: the BatchNorm statistics the prior pulls towards (the
            private batch's, or the model's running ones); None drops the prior.
        exact_statistics: ``bn_target`` is the private batch's own statistics
            (GradAttack's ``BN_exact``); it must then be given. Either way the
            simulated client normalises with the dummy batch's statistics and
            the target enters through the prior.
        seed: seeds the dummy initialisation.
        truth: true images, used only to record PSNR in the history.
    """
    config = config or BNPriorConfig()
    if observation.update_kind != "gradient" or observation.model_mode != "train":
        raise ValueError(
            "The BatchNorm-prior attack needs a FedSGD gradient taken in train mode."
        )
    device = observation.device
    if exact_statistics and bn_target is None:
        raise ValueError("exact_statistics needs the statistics as bn_target.")
    records: list[tuple[torch.Tensor, torch.Tensor]] = []
    attacker = simulated_client(observation.model, records, bn_target)
    parameters = fl.trainable_parameters(attacker)
    labels, _ = attack_labels(observation)
    mean, std = image_normalisation(attacker, observation.image_shape[0])
    mean, std = mean.to(device), std.to(device)
    low, high = -mean / std, (1 - mean) / std
    shape = (observation.num_images, *observation.image_shape)
    z = torch.randn(shape, generator=attack_generator(seed, 0, device), device=device)
    z.requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=config.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=lr_milestones(config.max_iterations), gamma=0.1
    )
    every = config.monitor_every or max(1, config.max_iterations // 20)
    history: list[dict[str, float]] = []
    diverged = False
    matching_value = math.inf

    def pixels() -> torch.Tensor:
        return (z.detach() * std + mean).clamp(0, 1)

    def monitored() -> float:
        assert truth is not None
        images = pixels()
        if images.shape[0] > 1:
            images = images[best_matching(images, truth)]
        return float(psnr(images, truth).mean())

    for iteration in tqdm(
        range(1, config.max_iterations + 1),
        desc="IG + BN prior",
        disable=not config.progress,
        mininterval=2.0,
        leave=False,
    ):
        records.clear()
        logits = attacker(z * std + mean)
        simulated = torch.autograd.grad(
            fl.cross_entropy(logits, labels), parameters, create_graph=True
        )
        matching = cosine_distance(simulated, observation.gradients)
        loss = matching + config.tv_weight * total_variation(z)
        if bn_target is not None and config.bn_weight > 0:
            loss = loss + config.bn_weight * bn_prior(
                records, bn_target, config.first_bn_multiplier
            )
        (image_grad,) = torch.autograd.grad(loss, z)
        matching_value = float(matching.detach())
        if (
            not math.isfinite(float(loss.detach()))
            or not torch.isfinite(image_grad).all()
        ):
            diverged = True  # keep the last finite images
            break
        z.grad = image_grad.sign()
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            z.copy_(torch.maximum(torch.minimum(z, high), low))
        record = {"iteration": float(iteration), "loss": matching_value}
        if truth is not None and (
            iteration % every == 0 or iteration == config.max_iterations
        ):
            record["psnr"] = monitored()
        history.append(record)
    return Reconstruction(
        images=pixels(),
        labels=labels,
        loss=matching_value,
        history=history,
        diverged=diverged,
        evaluations=len(history),
    )
