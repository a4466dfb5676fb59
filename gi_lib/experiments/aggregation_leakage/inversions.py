"""Sections 1, 3 and 6 of the aggregation-leakage page: Inverting Gradients on
a masked upload and on the aggregate of N clients, and model inconsistency
(on the ConvNet, and read exactly off FC-2's first layer); with the helpers
the other sections share (the page's SecAgg, its image pool, the attack).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from gi_lib import data, fl, metrics, models
from gi_lib.attacks import (
    build_attack,
    cocktail_party,
    collusion,
    inconsistency,
)
from gi_lib.defenses.aggregation import UpdateLayout
from gi_lib.defenses.secagg import SecAgg
from gi_lib.experiments.aggregation_leakage.params import LeakageParams, LeakageRun
from gi_lib.experiments.secagg import masked_upload, secure_round


def _ig(params: LeakageParams) -> Any:
    return build_attack(
        "inverting",
        max_iterations=params.max_iterations,
        tv_weight=params.tv_weight,
        on_divergence="stop",
    )


def _matched_psnr(images: torch.Tensor, truth: torch.Tensor) -> float:
    if images.shape[0] > 1:
        images = images[metrics.best_matching(images, truth)]
    return float(metrics.psnr(images, truth).mean())


def _secure(params: LeakageParams, seed: int) -> SecAgg:
    """The attacked rounds' SecAgg: a 64-bit ring, 24 fractional bits."""
    return SecAgg(bits=64, frac_bits=24, clip=8.0, seed=seed)


def _pool(
    params: LeakageParams, count: int, seed: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` test images and labels, drawn with ``seed`` (the page's)."""
    info = data.dataset_info(params.dataset)
    images, labels, _ = data.sample_victims(
        data.load_dataset(info.name),
        count,
        params.seed if seed is None else seed,
    )
    return images, labels


def _fc_network(params: LeakageParams, images: torch.Tensor) -> torch.nn.Module:
    """The page's FC-2 network (``cpa_hidden`` units) for images like ``images``."""
    return cocktail_party.fc_network(
        tuple(images.shape[1:]),  # type: ignore[arg-type]
        params.cpa_hidden,
        data.dataset_info(params.dataset).num_classes,
        seed=params.seed,
    )


def _analytic_first_layer(
    weight_gradient: torch.Tensor, bias_gradient: torch.Tensor, shape: tuple[int, ...]
) -> torch.Tensor:
    """The input of a first fully connected layer with bias, read off its
    update: for one image row ``r`` of ``dW`` is ``db_r x``, so
    ``x = dW_r / db_r`` (on the row with the largest ``|db_r|``). For a sum of
    several images this is a weighted mean of them, not one of them."""
    r = int(bias_gradient.abs().argmax())
    return (weight_gradient[r] / bias_gradient[r]).reshape(shape).clamp(0, 1)


def run_inversions(
    params: LeakageParams, device: torch.device, result: LeakageRun, progress: bool
) -> None:
    """Sections 1, 3 and 6, over ``num_trials`` paired trials (trial ``t``
    draws its clients' images with seed ``seed + t`` and seeds the attack
    with it): Inverting Gradients on a masked upload beside the plaintext
    update, on the aggregate of N clients, and on what model inconsistency
    isolates (with an exact analytic recovery on the FC-2 network beside it)."""
    info = data.dataset_info(params.dataset)
    count = max(max(params.client_counts), params.secure_clients) + 1
    k = params.secure_clients
    attack = _ig(params)
    masked_rows: dict[str, list[float]] = {
        "psnr_plain": [],
        "psnr_masked": [],
        "psnr_unrelated": [],
    }
    isolation: dict[str, list[float]] = {
        "ig_isolated": [],
        "ig_honest_target": [],
        "ig_honest_sum": [],
        "analytic_isolated": [],
        "analytic_honest": [],
    }
    curve: dict[int, list[float]] = {n: [] for n in params.client_counts}
    mismatches = 0
    for trial in tqdm(range(params.num_trials), desc="trials", disable=not progress):
        seed = params.seed + trial
        images, labels = _pool(params, count, seed)
        images, labels = images.to(device), labels.to(device)
        unrelated = images[-1:]
        victim = images[:1]
        net = models.build_model(params.model, info, seed=params.seed).to(device)
        masked_rows["psnr_unrelated"].append(float(metrics.psnr(unrelated, victim)))
        # 3. The aggregate of N one-image clients. Its N = 1 run is client 0's
        # plaintext update (section 1), and its N = secure_clients run is the
        # honest round's sum (section 6): every masking protocol decodes to
        # that sum (up to its fixed-point rounding), so those runs serve there.
        recs: dict[int, torch.Tensor] = {}
        for n in params.client_counts:
            obs = fl.observe_aggregate(
                net,
                [(images[i : i + 1], labels[i : i + 1]) for i in range(n)],
                num_classes=info.num_classes,
            )
            # The labels the server reads off the sum (section 2), in class
            # order: a batch's labels are a multiset, the images are matched after.
            read = build_attack("sum_labels").reconstruct(obs, seed=seed).labels
            obs = dataclasses.replace(obs, labels=read.to(device))
            recs[n] = attack.reconstruct(obs, seed=seed).images
            curve[n].append(_matched_psnr(recs[n], images[:n]))
        # 1. The masked upload of client 0 in a SecAgg round of k clients.
        protocol = _secure(params, seed)
        steps, secure = secure_round(
            net, images[:k], labels[:k], info.num_classes, protocol
        )
        masked = fl.observe_round(
            net,
            steps[:1],
            gradients=[g.to(device) for g in masked_upload(secure, protocol, 0)],
        )
        rec_plain = (
            recs[1]
            if 1 in recs
            else attack.reconstruct(fl.observe_round(net, steps[:1]), seed=seed).images
        )
        rec_masked = attack.reconstruct(masked, seed=seed).images
        masked_rows["psnr_plain"].append(float(metrics.psnr(rec_plain, victim)))
        masked_rows["psnr_masked"].append(float(metrics.psnr(rec_masked, victim)))
        # 6. Model inconsistency in a SecAgg round of k clients: Inverting
        # Gradients on the ConvNet, and the analytic recovery on FC-2.
        got = _inconsistent_round(params, net, images, labels, protocol, device)
        mismatches += int(got["mismatches"])
        rec_iso = attack.reconstruct(got["isolated"], seed=seed).images
        rec_full = (
            recs[k]
            if k in recs
            else attack.reconstruct(got["honest"], seed=seed).images
        )
        order = metrics.best_matching(rec_full, images[:k])
        isolation["ig_isolated"].append(float(metrics.psnr(rec_iso, victim)))
        isolation["ig_honest_target"].append(
            float(metrics.psnr(rec_full[order][:1], victim))
        )
        isolation["ig_honest_sum"].append(_matched_psnr(rec_full, images[:k]))
        fc = _inconsistent_fc(params, images, labels, seed)
        isolation["analytic_isolated"].append(fc["isolated"])
        isolation["analytic_honest"].append(fc["honest"])
        if trial == 0:
            result.images["victim"] = victim[0].cpu()
            result.images["plain"] = rec_plain[0].detach().cpu()
            result.images["masked"] = rec_masked[0].detach().cpu()
            result.images["unrelated"] = unrelated[0].cpu()
            result.images["isolated"] = rec_iso[0].detach().cpu()
            result.images["analytic"] = fc["image"]
            result.inconsistency = {
                "clients": float(k),
                "silent_parameters": got["silent_parameters"],
                "parameters": got["parameters"],
                "silent_fraction": got["silent_fraction"],
            }
        result.inconsistency["fc_mismatches"] = result.inconsistency.get(
            "fc_mismatches", 0.0
        ) + float(fc["mismatches"])
    result.inconsistency["mismatches"] = float(mismatches)
    result.inconsistency["trials"] = float(params.num_trials)
    result.masked = masked_rows
    result.isolation = isolation
    result.ig = curve


def _inconsistent_round(
    params: LeakageParams,
    net: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    protocol: SecAgg,
    device: torch.device,
) -> dict[str, Any]:
    """One SecAgg round of ``secure_clients`` in which every client but the
    target (client 0) receives the dead-ReLU model; also the honest round.
    Returns the isolated and the honest observations, and how many integers
    of the secure sum differ from the target's update on the silent
    parameters."""
    info = data.dataset_info(params.dataset)
    k = params.secure_clients
    suppressed = inconsistency.suppressing_model(net)
    steps = [
        fl.client_fedsgd(
            net, images[i : i + 1], labels[i : i + 1], num_classes=info.num_classes
        )
        for i in range(k)
    ]
    others = [
        fl.client_fedsgd(
            suppressed,
            images[i : i + 1],
            labels[i : i + 1],
            num_classes=info.num_classes,
        )
        for i in range(1, k)
    ]
    updates = [tuple(g / k for g in s.gradients) for s in [steps[0], *others]]
    honest_updates = [tuple(g / k for g in s.gradients) for s in steps]
    run = protocol.run(updates)
    honest = protocol.run(honest_updates)
    shape = tuple(images.shape[1:])
    silent = inconsistency.silent_parameters(suppressed.cpu(), shape)
    layout = UpdateLayout(tuple(tuple(t.shape) for t in run.aggregate))
    got = collusion.signed(protocol, run.encoded)
    want = collusion.quantised(protocol, updates[0])
    offsets = np.cumsum([0, *[int(np.prod(s)) for s in layout.shapes]])
    mismatches = sum(
        int(
            (
                got[offsets[j] : offsets[j + 1]] != want[offsets[j] : offsets[j + 1]]
            ).sum()
        )
        for j in silent
    )
    isolated = inconsistency.target_observation(
        net,
        [t.to(device) * k for t in run.aggregate],
        silent,
        num_images=1,
        num_classes=info.num_classes,
        image_shape=shape,  # type: ignore[arg-type]
    )
    full = fl.observe_round(
        net, steps, gradients=[t.to(device) for t in honest.aggregate]
    )
    silent_values = sum(int(np.prod(layout.shapes[j])) for j in silent)
    return {
        "isolated": isolated,
        "honest": full,
        "mismatches": mismatches,
        "silent_parameters": float(len(silent)),
        "parameters": float(len(layout.shapes)),
        "silent_fraction": silent_values / layout.size,
    }


def _inconsistent_fc(
    params: LeakageParams, images: torch.Tensor, labels: torch.Tensor, seed: int
) -> dict[str, Any]:
    """Model inconsistency on the FC-2 network (``cpa_hidden`` units), whose
    first layer has a bias: the target's image read exactly off the isolated
    secure sum (:func:`_analytic_first_layer`), and the same formula on the
    honest sum (a weighted mean of the clients' images). PSNR of both against
    the target's image; integers of the first layer's sum that differ from
    the target's update."""
    info = data.dataset_info(params.dataset)
    k = params.secure_clients
    images, labels = images[:k].cpu(), labels[:k].cpu()
    shape = tuple(images.shape[1:])
    net = _fc_network(params, images)
    suppressed = inconsistency.suppressing_model(net)

    def update(model: torch.nn.Module, i: int) -> tuple[torch.Tensor, ...]:
        step = fl.client_fedsgd(
            model, images[i : i + 1], labels[i : i + 1], num_classes=info.num_classes
        )
        return tuple(g / k for g in step.gradients)

    protocol = _secure(params, seed)
    target = update(net, 0)
    isolated = protocol.run([target, *[update(suppressed, i) for i in range(1, k)]])
    honest = protocol.run([update(net, i) for i in range(k)])
    got = collusion.signed(protocol, isolated.encoded)
    want = collusion.quantised(protocol, target)
    first = int(np.prod(target[0].shape)) + int(np.prod(target[1].shape))
    victim = images[:1]
    recovered = _analytic_first_layer(
        isolated.aggregate[0].double(), isolated.aggregate[1].double(), shape
    ).float()
    mixture = _analytic_first_layer(
        honest.aggregate[0].double(), honest.aggregate[1].double(), shape
    ).float()
    return {
        "isolated": float(metrics.psnr(recovered[None], victim)),
        "honest": float(metrics.psnr(mixture[None], victim)),
        "mismatches": int((got[:first] != want[:first]).sum()),
        "image": recovered,
    }
