"""Sections 2, 4, 5, 7 and 8 of the aggregation-leakage page: label counts from
the sum, Cocktail Party and FastICA, Robbing the Fed, collusion and
differencing, and homomorphic encryption.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from tqdm import tqdm

from gi_lib import data, fl, metrics, models
from gi_lib.attacks import (
    build_attack,
    cocktail_party,
    collusion,
    imprint,
    sum_labels,
)
from gi_lib.defenses.aggregation import AggregationProtocol, UpdateLayout
from gi_lib.defenses.he import AsyncSGD, make_backend
from gi_lib.defenses.lightsecagg import LightSecAgg
from gi_lib.defenses.secagg import default_threshold
from gi_lib.experiments.aggregation_leakage.inversions import (
    _fc_network,
    _ig,
    _pool,
    _secure,
)
from gi_lib.experiments.aggregation_leakage.params import LeakageParams, LeakageRun


def run_labels(params: LeakageParams, device: torch.device, result: LeakageRun) -> None:
    """Section 2: label counts of the round from the aggregate."""
    info = data.dataset_info(params.dataset)
    top = max(params.label_client_counts)
    images, labels = _pool(params, top * params.label_trials)
    attack = build_attack("sum_labels")
    for n in params.label_client_counts:
        exact, errors = [], []
        for trial in range(params.label_trials):
            net = models.build_model(params.model, info, seed=params.seed + trial).to(
                device
            )
            x = images[trial * top : trial * top + n].to(device)
            y = labels[trial * top : trial * top + n].to(device)
            obs = fl.observe_aggregate(
                net,
                [(x[i : i + 1], y[i : i + 1]) for i in range(n)],
                num_classes=info.num_classes,
            )
            counts = attack.reconstruct(obs, seed=params.seed + trial).counts  # type: ignore[attr-defined]
            truth = sum_labels.true_counts(y, info.num_classes)
            exact.append(float(bool((counts == truth).all())))
            errors.append(float((counts - truth).abs().sum()) / 2 / n)
        result.labels[n] = {
            "exact": float(np.mean(exact)),
            "label_accuracy": 1.0 - float(np.mean(errors)),
        }


def run_cocktail(params: LeakageParams, result: LeakageRun, progress: bool) -> None:
    """Section 4: Cocktail Party and FastICA against the samples in the sum."""
    info = data.dataset_info(params.dataset)
    images, labels = _pool(params, max(params.cpa_sizes))
    net = _fc_network(params, images)
    cpa = build_attack("cocktail_party", iterations=params.cpa_iterations)
    ica = build_attack("fastica")
    for m in tqdm(params.cpa_sizes, desc="cocktail party", disable=not progress):
        obs = fl.observe_aggregate(
            net,
            [(images[i : i + 1], labels[i : i + 1]) for i in range(m)],
            num_classes=info.num_classes,
        )
        row = {}
        for name, attack in (("cpa", cpa), ("fastica", ica)):
            rec = attack.reconstruct(obs, seed=params.seed).images
            values = cocktail_party.matched_psnr(rec, images[:m])
            row[f"{name}_fraction"] = float(
                np.mean([v >= params.recovered_psnr for v in values])
            )
            row[f"{name}_psnr"] = float(np.mean(values))
            if m == min(params.cpa_sizes):
                result.images[f"{name}_example"] = rec[:4].cpu()
        result.cpa[m] = row
    result.images["cpa_truth"] = images[: min(params.cpa_sizes)][:4]


def run_imprint(params: LeakageParams, result: LeakageRun) -> None:
    """Section 5: Robbing the Fed on the plaintext sum, and through SecAgg."""
    info = data.dataset_info(params.dataset)
    public, _, _ = data.sample_victims(
        data.load_dataset(info.name, split="train"), 256, params.seed + 1
    )
    brightness = public.flatten(1).mean(1)
    top = max(params.imprint_sizes)
    images, labels = _pool(params, top)
    shape = tuple(images.shape[1:])
    base = models.build_model(params.model, info, seed=params.seed)
    net = imprint.imprinted(
        base,
        shape,  # type: ignore[arg-type]
        params.num_bins,
        mean=float(brightness.mean()),
        std=float(brightness.std()),
    )
    attack = build_attack("robbing_the_fed")
    cuts = net.block.cuts
    for m in params.imprint_sizes:
        obs = fl.observe_aggregate(
            net,
            [(images[i : i + 1], labels[i : i + 1]) for i in range(m)],
            num_classes=info.num_classes,
        )
        rec = attack.reconstruct(obs)
        bins = torch.bucketize(images[:m].flatten(1).mean(1), cuts) - 1
        alone = int(sum(int((bins == b).sum()) == 1 for b in bins.tolist()))
        best = [
            max(
                (float(metrics.psnr(r[None], t[None])) for r in rec.images), default=0.0
            )
            for t in images[:m]
        ]
        result.rtf[m] = {
            "recovered": float(sum(v >= params.exact_psnr for v in best)),
            "singletons": float(alone),
            "expected_singletons": imprint.expected_singletons(m, params.num_bins),
            "fraction": float(np.mean([v >= params.exact_psnr for v in best])),
        }
    # Through SecAgg: secure_clients one-image clients.
    k = min(params.secure_clients, top)
    protocol = _secure(params, params.seed)
    steps = [
        fl.client_fedsgd(net, images[i : i + 1], labels[i : i + 1], num_classes=10)
        for i in range(k)
    ]
    secured = protocol.run([tuple(g / k for g in s.gradients) for s in steps])
    obs = fl.observe_round(net, steps, gradients=secured.aggregate)
    rec = attack.reconstruct(obs)
    best = [
        max((float(metrics.psnr(r[None], t[None])) for r in rec.images), default=0.0)
        for t in images[:k]
    ]
    result.rtf_secagg = {
        "clients": float(k),
        "recovered": float(sum(v >= params.exact_psnr for v in best)),
        "best_psnr": float(max(best)),
    }
    result.images["rtf_truth"] = images[:4]
    result.images["rtf_example"] = torch.stack(
        [
            max(rec.images, key=lambda r, t=t: float(metrics.psnr(r[None], t[None])))
            for t in images[:4]
        ]
    )


def run_collusion(params: LeakageParams, result: LeakageRun) -> None:
    """Section 7: thresholds, collusion and differencing (exact, in integers)."""
    info = data.dataset_info(params.dataset)
    n = params.secure_clients
    images, labels = _pool(params, n)
    net = models.build_model(params.model, info, seed=params.seed)
    updates = [
        tuple(
            g / n
            for g in fl.client_fedsgd(
                net, images[i : i + 1], labels[i : i + 1], num_classes=info.num_classes
            ).gradients
        )
        for i in range(n)
    ]
    secagg = _secure(params, params.seed)
    t = default_threshold(n)
    out: dict[str, float] = {"clients": float(n), "secagg_threshold": float(t)}

    def replay(
        name: str, protocol: AggregationProtocol, thresholds: dict[str, int]
    ) -> None:
        """Client 0 unmasked by the server and the first ``count`` others, at
        each threshold: whether it succeeds, and whether exactly."""
        for label, count in thresholds.items():
            got = collusion.replay_unmasking(
                protocol, updates, target=0, colluders=range(1, 1 + count)
            )
            out[f"{name}_{label}_recovers"] = float(got.succeeded)
            if got.succeeded:
                exact = np.array_equal(
                    collusion.signed(protocol, got.recovered),
                    collusion.quantised(protocol, updates[0]),
                )
                out[f"{name}_{label}_exact"] = float(exact)

    replay("secagg", secagg, {"t": t, "t_minus_1": t - 1})
    privacy, target = max(1, (n - 1) // 3), max(2, (2 * n) // 3)
    light = LightSecAgg(privacy=privacy, target=target, seed=params.seed)
    out["light_T"], out["light_U"] = float(privacy), float(target)
    size = UpdateLayout.of(updates).size
    code = light.code(n, size)
    result.light_pieces = {
        c: collusion.lightsecagg_leaked_pieces(code, range(1, 1 + c)) for c in range(n)
    }
    out["light_pieces"] = float(code.num_pieces)
    replay("light", light, {"U": target, "U_minus_1": target - 1})
    for name, protocol in (("secagg", secagg), ("lightsecagg", light)):
        diff = collusion.difference_rounds(protocol, updates, isolated=n - 1)
        mismatches = int(
            (
                collusion.signed(protocol, diff.recovered)
                != collusion.quantised(protocol, updates[n - 1])
            ).sum()
        )
        out[f"difference_{name}_mismatches"] = float(mismatches)
    result.collusion = out


def run_he(params: LeakageParams, device: torch.device, result: LeakageRun) -> None:
    """Section 8: the server's view, and a participant's two decryptions."""
    info = data.dataset_info(params.dataset)
    images, labels = _pool(params, 3)
    net = models.build_model(params.model, info, seed=params.seed)
    layout = UpdateLayout(tuple(tuple(p.shape) for p in fl.trainable_parameters(net)))
    initial = layout.flatten([p.detach() for p in fl.trainable_parameters(net)])
    lr = 0.1
    backend = make_backend(params.he_backend, seed=params.seed)
    sent: dict[int, list[np.ndarray]] = {}

    def local_update(participant: int, weights: np.ndarray) -> np.ndarray:
        model = models.build_model(params.model, info, seed=params.seed)
        with torch.no_grad():
            for p, w in zip(
                fl.trainable_parameters(model),
                layout.unflatten(weights.astype(np.float32)),
                strict=True,
            ):
                p.copy_(w)
        step = fl.client_fedsgd(
            model,
            images[participant : participant + 1],
            labels[participant : participant + 1],
            num_classes=info.num_classes,
        )
        update = -lr * layout.flatten(step.gradients).astype(np.float64)
        sent.setdefault(participant, []).append(update)
        return update

    start = time.perf_counter()
    system = AsyncSGD(backend, initial.astype(np.float64))
    run = system.run([0, 1, 0], local_update, keep_views=True)
    before, after = run.views[0][0], run.views[0][1]
    scale = None if params.he_backend == "plaintext" else 2.0**24

    def rounded(update: np.ndarray) -> np.ndarray:
        # What an update becomes in the backend's fixed point (make_backend's
        # defaults: 24 fractional bits, clip 8).
        if scale is None:
            return update
        return np.rint(np.clip(update, -8.0, 8.0) * scale) / scale

    # Participant 0 saw W before its own upload and after participant 1's:
    # the difference, less its own (known) update, is participant 1's.
    exact_update = after - before - rounded(sent[0][0])
    stolen = exact_update / -lr
    tolerance = 0.5 / scale if scale is not None else 0.0
    mismatches = int((np.abs(exact_update - rounded(sent[1][0])) > tolerance).sum())
    server = run.transcript.server_view()
    plain_bytes = sent[1][0].astype("<f8").tobytes()[:64]
    contains = server.contains(plain_bytes)
    model = models.build_model(params.model, info, seed=params.seed).to(device)
    with torch.no_grad():
        for p, w in zip(
            fl.trainable_parameters(model),
            layout.unflatten((before).astype(np.float32)),
            strict=True,
        ):
            p.copy_(w.to(device))
    step = fl.client_fedsgd(
        model, images[1:2].to(device), labels[1:2].to(device), num_classes=10
    )
    obs = fl.observe_round(
        model,
        [step],
        gradients=[t.to(device) for t in layout.unflatten(stolen.astype(np.float32))],
    )
    rec = _ig(params).reconstruct(obs, seed=params.seed).images
    result.he = {
        "mismatches": float(mismatches),
        "server_sees_plaintext": float(contains),
        "psnr_participant": float(metrics.psnr(rec, images[1:2].to(device))),
        "psnr_unrelated": float(metrics.psnr(images[2:3], images[1:2])),
        "seconds": time.perf_counter() - start,
    }
    result.images["he_truth"] = images[1].cpu()
    result.images["he_recovered"] = rec[0].detach().cpu()
