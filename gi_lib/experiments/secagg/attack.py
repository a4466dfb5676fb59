"""The SecAgg page's attack: one client's masked upload decoded as an update
and inverted, beside its plaintext update, and the exact-sum check."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from gi_lib import data, fl, metrics, models

# The attack this page runs by name, imported so that the dependency is visible.
from gi_lib.attacks import build_attack, inverting  # noqa: F401
from gi_lib.defenses._fixedpoint import unpack_bits
from gi_lib.defenses.aggregation import AggregationResult, UpdateLayout, client_name
from gi_lib.defenses.secagg import SecAgg
from gi_lib.experiments.secagg.params import SecAggParams


@dataclass(frozen=True)
class AttackTrial:
    """One attacked round."""

    psnr_plain: float
    psnr_masked: float
    psnr_unrelated: float
    mismatches: int
    values: int
    images: tuple[torch.Tensor, ...]


def masked_upload(
    result: AggregationResult, protocol: SecAgg, client: int
) -> tuple[torch.Tensor, ...]:
    """Client ``client``'s masked upload as the server saw it, decoded as if
    it were a fixed-point update, in the update's tensor shapes."""
    (message,) = result.server_view.from_party(client_name(client), kind="masked input")
    bits = protocol.encoding.bits
    assert bits is not None
    size = sum(int(np.prod(t.shape)) for t in result.aggregate)
    values = unpack_bits(message.payload, size, bits)
    decoded = protocol.encoding.decode(values).astype(np.float32)
    layout = UpdateLayout(tuple(tuple(t.shape) for t in result.aggregate))
    return layout.unflatten(decoded)


def attack_protocol(params: SecAggParams, seed: int) -> SecAgg:
    """The attacked round's SecAgg: 64-bit ring, 24 fractional bits."""
    return SecAgg(bits=64, frac_bits=24, clip=params.attack_clip, seed=seed)


def secure_round(
    net: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    protocol: SecAgg,
) -> tuple[list[fl.ClientStep], AggregationResult]:
    """One FedSGD round of one-image clients through ``protocol``: each
    client sends its share of the mean update (its gradient / n)."""
    n = images.shape[0]
    steps = [
        fl.client_fedsgd(
            net, images[i : i + 1], labels[i : i + 1], num_classes=num_classes
        )
        for i in range(n)
    ]
    shares = [tuple(g / n for g in step.gradients) for step in steps]
    return steps, protocol.run(shares)


def exact_mismatches(
    result: AggregationResult, steps: Sequence[fl.ClientStep], protocol: SecAgg
) -> int:
    """Entries where the decoded sum differs from the plaintext fixed-point sum."""
    n = len(steps)
    layout = UpdateLayout(tuple(tuple(t.shape) for t in result.aggregate))
    want = sum(
        protocol.encoding.quantise(
            layout.flatten(tuple(g / n for g in steps[i].gradients))
        )
        for i in result.survivors
    )
    got = protocol.encoding.to_signed(result.encoded)
    return int((got != want).sum())


def run_attacks(
    params: SecAggParams, device: str, *, progress: bool
) -> list[AttackTrial]:
    """Inverting Gradients on one client's masked upload and on its plaintext."""
    info = data.dataset_info(params.dataset)
    dataset = data.load_dataset(info.name)
    per_trial = params.attack_clients + 1
    images, labels, _ = data.sample_victims(
        dataset, per_trial * params.num_trials, params.seed
    )
    attack = build_attack(
        "inverting", max_iterations=params.max_iterations, on_divergence="stop"
    )
    out = []
    for trial in tqdm(range(params.num_trials), desc="attacks", disable=not progress):
        block = slice(trial * per_trial, (trial + 1) * per_trial)
        x, y = images[block].to(device), labels[block].to(device)
        clients_x, clients_y, unrelated = x[:-1], y[:-1], x[-1:]
        net = models.build_model(params.model, info, seed=params.seed + trial).to(
            device
        )
        protocol = attack_protocol(params, params.seed + trial)
        steps, result = secure_round(
            net, clients_x, clients_y, info.num_classes, protocol
        )
        victim = clients_x[:1]
        plain = fl.observe_round(net, steps[:1])
        masked = fl.observe_round(
            net,
            steps[:1],
            gradients=[g.to(device) for g in masked_upload(result, protocol, 0)],
        )
        seed = params.seed + trial
        rec_plain = attack.reconstruct(plain, seed=seed).images
        rec_masked = attack.reconstruct(masked, seed=seed).images
        out.append(
            AttackTrial(
                psnr_plain=float(metrics.psnr(rec_plain, victim)),
                psnr_masked=float(metrics.psnr(rec_masked, victim)),
                psnr_unrelated=float(metrics.psnr(unrelated, victim)),
                mismatches=exact_mismatches(result, steps, protocol),
                values=sum(int(t.numel()) for t in result.aggregate),
                images=tuple(
                    t[0].detach().cpu()
                    for t in (victim, rec_plain, rec_masked, unrelated)
                ),
            )
        )
    return out
