"""The inversion check: one client's upload as the server received it, fed
to Inverting Gradients beside its plaintext update, and the exact-sum
check; its summary and rows. The pages' worked examples use its steps
(:func:`local_round`, :func:`upload_observation`, :func:`sum_mismatches`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from gi_lib import data, fl, metrics, models

# Imported so that make sees the page's dependency on the attack it runs.
from gi_lib.attacks import build_attack, inverting  # noqa: F401
from gi_lib.defenses._fixedpoint import FixedPoint, unpack_bits
from gi_lib.defenses.aggregation import (
    AggregationProtocol,
    AggregationResult,
    UpdateLayout,
    client_name,
)
from gi_lib.experiments.coded_aggregation.params import CodedAggregationParams
from gi_lib.experiments.common import AttackedSample, attack_and_score, mean, mean_of
from gi_lib.results import ResultRow


@dataclass
class InversionDemo:
    """One FedSGD round through a protocol, and what inverting it gives.

    Attributes:
        protocol: the protocol's label.
        num_clients: clients in the round (one image each).
        upload_kind: the message kind read as a client's upload.
        masked: Inverting Gradients on each attacked client's upload as the
            server received it (read as a fixed-point update).
        plain: the same on that client's plaintext update.
        unrelated_psnr: per attacked client, the mean PSNR of the round's
            other private images against its image (the level of an
            unrelated image).
        correlation: per attacked client, the correlation of its upload (as
            signed integers) with its fixed-point update.
        mismatches: values where the decoded sum differs from the plaintext
            fixed-point sum of the survivors (0: bit for bit).
        decoded_equal: the decoded float aggregate equals the decoding of
            that plaintext sum exactly.
        survivors: clients the sum is over.
    """

    protocol: str
    num_clients: int
    upload_kind: str
    masked: list[AttackedSample] = field(default_factory=list)
    plain: list[AttackedSample] = field(default_factory=list)
    unrelated_psnr: list[float] = field(default_factory=list)
    correlation: list[float] = field(default_factory=list)
    mismatches: int = -1
    decoded_equal: bool = False
    survivors: tuple[int, ...] = ()

    @property
    def exact(self) -> bool:
        return self.mismatches == 0 and self.decoded_equal


@dataclass
class LocalRound:
    """A FedSGD round before aggregation: clients with one private image each
    and their updates on the same freshly initialised model.

    Attributes:
        net: the global model (on the device).
        images, labels: the private images and labels (on the device), client
            i's at index i.
        num_classes: classes of the task.
        steps: each client's FedSGD step (:func:`gi_lib.fl.client_fedsgd`).
        updates: each client's update (on the CPU): what it aggregates.
    """

    net: torch.nn.Module
    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    steps: list[fl.ClientStep]
    updates: list[tuple[torch.Tensor, ...]]

    @property
    def layout(self) -> UpdateLayout:
        return UpdateLayout.of(self.updates)


def local_round(
    dataset: str, model: str, num_clients: int, *, seed: int, device: torch.device
) -> LocalRound:
    """``num_clients`` private images of ``dataset`` (drawn with ``seed``) and
    each one's FedSGD step on ``model`` (initialised with ``seed``)."""
    info = data.dataset_info(dataset)
    images, labels, _ = data.sample_victims(
        data.load_dataset(info.name), num_clients, seed
    )
    images, labels = images.to(device), labels.to(device)
    net = models.build_model(model, info, seed=seed).to(device)
    steps = [
        fl.client_fedsgd(
            net, images[i : i + 1], labels[i : i + 1], num_classes=info.num_classes
        )
        for i in range(num_clients)
    ]
    updates = [tuple(g.detach().cpu() for g in step.gradients) for step in steps]
    return LocalRound(net, images, labels, info.num_classes, steps, updates)


def upload_observation(
    observation: fl.Observation,
    result: AggregationResult,
    kind: str,
    clients: LocalRound,
    encoding: FixedPoint,
    client: int = 0,
) -> fl.Observation:
    """``observation`` (of ``client``) with its gradients replaced by that
    client's ``kind`` upload as the server received it in ``result``, read
    as an update (:func:`read_as_update`)."""
    (upload,) = result.server_view.from_party(client_name(client), kind=kind)
    layout = clients.layout
    seen = layout.unflatten(read_as_update(upload.payload, layout.size, encoding))
    device = clients.images.device
    return dataclasses.replace(observation, gradients=tuple(t.to(device) for t in seen))


def plaintext_sum(
    result: AggregationResult, clients: LocalRound, encoding: FixedPoint
) -> np.ndarray:
    """The plaintext fixed-point sum of the survivors' updates."""
    layout = clients.layout
    return sum(
        encoding.quantise(layout.flatten(clients.updates[i])) for i in result.survivors
    )


def sum_mismatches(
    result: AggregationResult, clients: LocalRound, encoding: FixedPoint
) -> int:
    """Values where the decoded sum differs from :func:`plaintext_sum` (0:
    equal bit for bit)."""
    expected = plaintext_sum(result, clients, encoding)
    return int(np.count_nonzero(encoding.to_signed(result.encoded) != expected))


def read_as_update(payload: bytes, size: int, encoding: FixedPoint) -> np.ndarray:
    """What an attacker does with a client's upload: read its first bytes as
    ``size`` bit-packed field elements and decode them as a fixed-point
    update (float32). For a masked upload that is the masked update; for
    ciphertexts it is whatever those bytes decode to."""
    bits = int(encoding.prime).bit_length()  # type: ignore[arg-type]
    need = math.ceil(size * bits / 8)
    if len(payload) < need:
        raise ValueError(
            f"the upload has {len(payload)} bytes, fewer than the {need} of an update."
        )
    values = unpack_bits(payload[:need], size, bits).astype(np.int64)
    return encoding.decode(values % int(encoding.prime)).astype(np.float32)


def inversion_demo(
    label: str,
    protocol: AggregationProtocol,
    params: CodedAggregationParams,
    *,
    upload_kind: str,
    device: torch.device,
) -> InversionDemo:
    """One FedSGD round of a page's ``attack_clients`` clients through
    ``protocol``.

    Every client holds one private image and computes its FedSGD gradient on
    the same freshly initialised model; the protocol sums the updates. For
    the first ``num_trials`` clients, Inverting Gradients (``max_iterations``)
    attacks (a) the bytes the server received from that client
    (``upload_kind`` messages, read with :func:`read_as_update`) and (b) its
    plaintext update, with the same budget and seed. The decoded sum is
    compared with the plaintext fixed-point sum of the survivors.
    """
    num_clients, num_attacked = params.attack_clients, params.num_trials
    seed, max_iterations = params.seed, params.max_iterations
    if not 1 <= num_attacked <= num_clients:
        raise ValueError(
            f"attack between 1 and {num_clients} clients, got {num_attacked}."
        )
    clients = local_round(
        params.dataset, params.model, num_clients, seed=seed, device=device
    )
    net, steps, updates = clients.net, clients.steps, clients.updates
    drawn = clients.images.cpu()  # unrelated images are scored on the CPU
    result = protocol.run(updates)
    encoding: FixedPoint = protocol.encoding  # type: ignore[attr-defined]
    layout = clients.layout
    demo = InversionDemo(label, num_clients, upload_kind, survivors=result.survivors)
    demo.mismatches = sum_mismatches(result, clients, encoding)
    expected = plaintext_sum(result, clients, encoding)
    want = layout.unflatten(encoding.decode(expected).astype(np.float32))
    demo.decoded_equal = all(
        torch.equal(a, b) for a, b in zip(result.aggregate, want, strict=True)
    )
    attack = build_attack(
        "inverting", max_iterations=max_iterations, on_divergence="stop"
    )
    view = result.server_view
    for i in range(num_attacked):
        (message,) = view.from_party(client_name(i), kind=upload_kind)
        seen = read_as_update(message.payload, layout.size, encoding)
        masked_observation = fl.observe_round(
            net, [steps[i]], gradients=[t.to(device) for t in layout.unflatten(seen)]
        )
        plain_observation = fl.observe_round(net, [steps[i]])
        truth = clients.images[i : i + 1]
        demo.masked.append(
            attack_and_score(
                lambda o=masked_observation, s=seed + i: attack.reconstruct(o, seed=s),
                truth,
                setting=f"{label} upload",
                index=i,
            )
        )
        demo.plain.append(
            attack_and_score(
                lambda o=plain_observation, s=seed + i: attack.reconstruct(o, seed=s),
                truth,
                setting="plaintext update",
                index=i,
            )
        )
        others = [j for j in range(num_clients) if j != i]
        demo.unrelated_psnr.append(
            mean(
                float(metrics.psnr(drawn[j : j + 1], drawn[i : i + 1])) for j in others
            )
        )
        mine = encoding.quantise(layout.flatten(updates[i])).astype(np.float64)
        demo.correlation.append(float(np.corrcoef(mine, seen.astype(np.float64))[0, 1]))
    return demo


def inversion_summary(demo: InversionDemo) -> str:
    """The inversion check's numbers, for a page's prose."""
    return (
        f"Inverting Gradients on {len(demo.masked)} client(s) of a round of "
        f"{demo.num_clients}: from the {demo.protocol} upload the server received, "
        f"mean PSNR {mean_of(demo.masked, 'psnr'):.1f} dB; from the same client's "
        f"plaintext update, {mean_of(demo.plain, 'psnr'):.1f} dB; another private "
        f"image of the round scores {mean(demo.unrelated_psnr):.1f} dB against it. "
        f"The upload's correlation with the client's update: "
        f"{mean(demo.correlation):+.3f}. The decoded sum "
        + (
            "equals the plaintext fixed-point sum of the "
            f"{len(demo.survivors)} clients bit for bit."
            if demo.exact
            else f"differs from the plaintext fixed-point sum in {demo.mismatches} "
            "values."
        )
    )


def inversion_rows(
    demo: InversionDemo,
    params: CodedAggregationParams,
    *,
    upload: str,
    seen: str,
    with_steps: bool = False,
) -> list[ResultRow]:
    """The inversion check as result rows (no paper values): PSNR on the
    upload (named ``upload``; ``seen`` says what the server received), on
    the plaintext update, of an unrelated image, and whether the sum was
    exact. ``with_steps`` adds the attack's budget to the upload's note."""
    info = data.dataset_info(params.dataset)
    base = f"{info.name}/{params.model}/N{demo.num_clients}"
    note = f"Inverting Gradients on {seen}, mean over {len(demo.masked)} clients"
    if with_steps:
        note += f", {params.max_iterations} steps"
    return [
        ResultRow.against(
            f"{base}/{upload}", "psnr", mean_of(demo.masked, "psnr"), None, note
        ),
        ResultRow.against(
            f"{base}/plaintext update", "psnr", mean_of(demo.plain, "psnr"), None,
            "the same clients' plaintext updates, same attack and budget",
        ),
        ResultRow.against(
            f"{base}/unrelated image", "psnr", mean(demo.unrelated_psnr), None,
            "another private image of the round against the client's image",
        ),
        ResultRow.against(
            f"{base}/decoded sum exact", "success_rate", float(demo.exact), None,
            "1: the decoded sum equals the plaintext fixed-point sum bit for bit",
        ),
    ]  # fmt: skip
