"""What encrypted aggregation still leaks: the book's own evaluation page.

The encrypted protocols (SecAgg, LightSecAgg, FastSecAgg, homomorphic
encryption) let the server learn the sum of the survivors' updates and
nothing else. This page runs the attacks on what they reveal (sections 1, 3
and 6 over ``num_trials`` paired trials, the exact ones once):

1. one client's masked upload, inverted (noise) beside its plaintext update;
2. the round's label counts from the summed last-layer bias gradient
   (Wainakh et al., PETS 2022) against the number of clients;
3. Inverting Gradients on the aggregate of N one-image clients;
4. the Cocktail Party Attack (Kariyappa et al., ICML 2023) and FastICA on the
   first FC layer's summed gradient, against the samples in the sum;
5. Robbing the Fed (Fowl et al., ICLR 2022): an imprint layer, read off the
   sum (plaintext and through SecAgg), beside the expected singleton bins;
6. model inconsistency (Pasquini et al., CCS 2022): dead-ReLU models for the
   non-targets make the secure sum the target's update, inverted on the
   ConvNet and read exactly off the first layer of an FC-2 network;
7. collusion at the threshold (SecAgg: t colluders, LightSecAgg: U, with the
   rank of what T+1.. colluders learn) and differencing two rounds (Lam et
   al., ICML 2021);
8. homomorphic encryption: the server's view, and a participant's two
   decryptions around another's upload.

Every section uses the protocols' public interface only.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm import tqdm

from gi_lib import data, fl, metrics, models, plots

# The attacks this page runs by name, imported so that the dependency is visible.
from gi_lib.attacks import (  # noqa: F401
    build_attack,
    cocktail_party,
    collusion,
    imprint,
    inconsistency,
    inverting,
    sum_labels,
)
from gi_lib.defenses.aggregation import UpdateLayout
from gi_lib.defenses.he import AsyncSGD, make_backend
from gi_lib.defenses.lightsecagg import LightSecAgg
from gi_lib.defenses.secagg import SecAgg, default_threshold
from gi_lib.experiments.common import uses_num_threads
from gi_lib.experiments.secagg import masked_upload, secure_round
from gi_lib.params import ExperimentParams, check_parameters, param, resolve_device
from gi_lib.results import Claim, ResultRow, bound_claim, paired_claim

NOTEBOOK = "aggregation_leakage"

SRC_LABELS = (
    "Wainakh et al., PETS 2022 (User-Level Label Leakage from Gradients), Sec. 4"
)
SRC_IG = "Geiping et al., NeurIPS 2020, Sec. 5 (batches and multiple steps)"
SRC_CPA = "Kariyappa et al., ICML 2023, abstract and Sec. 5 (batches up to 1024)"
SRC_RTF = "Fowl et al., ICLR 2022, Sec. 3 (imprint module) and Sec. 4"
SRC_INCONSISTENCY = "Pasquini, Francati and Ateniese, CCS 2022, Sec. 3-4"
SRC_SECAGG = "Bonawitz et al., CCS 2017, Sec. 4 (security against t-1 colluders)"
SRC_LIGHT = "So et al., LightSecAgg (MLSys 2022), Sec. 4 (T-privacy, U to decode)"
SRC_LAM = "Lam et al., ICML 2021 (Gradient Disaggregation), Sec. 3"
SRC_HE = "Phong et al., IEEE TIFS 2018, Sec. 3 (threat model: honest participants)"
SRC_MASK = "Bonawitz et al., CCS 2017, abstract: the server learns only the sum"


@dataclass(frozen=True, kw_only=True)
class LeakageParams(ExperimentParams):
    """The page's parameters."""

    max_iterations: int = param("Inverting Gradients' Adam steps", minimum=1)
    tv_weight: float = param("Inverting Gradients' total-variation weight", minimum=0.0)
    client_counts: tuple[int, ...] = param(
        "N: one-image clients summed for Inverting Gradients", minimum=1, unique=True
    )
    label_client_counts: tuple[int, ...] = param(
        "clients (one image each) of the label-count rounds", minimum=1, unique=True
    )
    label_trials: int = param("label-count rounds per client count", minimum=1)
    cpa_sizes: tuple[int, ...] = param(
        "samples summed in the first FC layer (Cocktail Party)", minimum=2, unique=True
    )
    cpa_hidden: int = param("hidden units of the FC-2 network", minimum=2)
    cpa_iterations: int = param("Adam steps on the unmixing matrix", minimum=1)
    recovered_psnr: float = param(
        "PSNR (dB, up to sign and scale) above which an image counts as recovered "
        "by blind source separation",
        above=0.0,
    )
    imprint_sizes: tuple[int, ...] = param(
        "samples summed through the imprint layer", minimum=1, unique=True
    )
    num_bins: int = param("bins of the imprint layer", minimum=2)
    exact_psnr: float = param(
        "PSNR (dB) above which an imprint recovery counts as exact", above=0.0
    )
    secure_clients: int = param(
        "clients of the collusion, differencing and inconsistency rounds", minimum=3
    )
    he_backend: str = param(
        "homomorphic-encryption backend", choices=("lwe", "paillier", "plaintext")
    )


def check(values: Mapping[str, Any]) -> LeakageParams:
    """Check the parameters (see :class:`LeakageParams`)."""
    params = check_parameters(values, LeakageParams, notebook=NOTEBOOK)
    if max(params.cpa_sizes) > params.cpa_hidden:
        from gi_lib.params import ParameterError

        raise ParameterError(
            f"{NOTEBOOK}: cpa_sizes go up to {max(params.cpa_sizes)} but the FC-2 "
            f"network has {params.cpa_hidden} hidden units; blind source separation "
            "needs at least as many mixtures (hidden units) as sources."
        )
    return params


# --- results -----------------------------------------------------------------


@dataclass
class LeakageRun:
    """Everything the page measured."""

    params: LeakageParams
    device: str
    masked: dict[str, list[float]] = field(default_factory=dict)
    labels: dict[int, dict[str, float]] = field(default_factory=dict)
    ig: dict[int, list[float]] = field(default_factory=dict)
    cpa: dict[int, dict[str, float]] = field(default_factory=dict)
    rtf: dict[int, dict[str, float]] = field(default_factory=dict)
    rtf_secagg: dict[str, float] = field(default_factory=dict)
    inconsistency: dict[str, float] = field(default_factory=dict)
    isolation: dict[str, list[float]] = field(default_factory=dict)
    collusion: dict[str, float] = field(default_factory=dict)
    light_pieces: dict[int, int] = field(default_factory=dict)
    he: dict[str, float] = field(default_factory=dict)
    images: dict[str, torch.Tensor] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _ig(params: LeakageParams) -> Any:
    return build_attack(
        "inverting",
        max_iterations=params.max_iterations,
        tv_weight=params.tv_weight,
        on_divergence="stop",
    )


def _mean(values: list[float]) -> float:
    """The mean of one setting's trials."""
    return float(np.mean(values))


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
    net = cocktail_party.fc_network(
        shape,  # type: ignore[arg-type]
        params.cpa_hidden,
        info.num_classes,
        seed=params.seed,
    )
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
    shape = tuple(images.shape[1:])
    net = cocktail_party.fc_network(
        shape,  # type: ignore[arg-type]
        params.cpa_hidden,
        info.num_classes,
        seed=params.seed,
    )
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
    for label, count in (("t", t), ("t_minus_1", t - 1)):
        replay = collusion.replay_unmasking(
            secagg, updates, target=0, colluders=range(1, 1 + count)
        )
        out[f"secagg_{label}_recovers"] = float(replay.succeeded)
        if replay.succeeded:
            exact = np.array_equal(
                collusion.signed(secagg, replay.recovered),
                collusion.quantised(secagg, updates[0]),
            )
            out[f"secagg_{label}_exact"] = float(exact)
    privacy, target = max(1, (n - 1) // 3), max(2, (2 * n) // 3)
    light = LightSecAgg(privacy=privacy, target=target, seed=params.seed)
    out["light_T"], out["light_U"] = float(privacy), float(target)
    size = UpdateLayout.of(updates).size
    code = light.code(n, size)
    result.light_pieces = {
        c: collusion.lightsecagg_leaked_pieces(code, range(1, 1 + c)) for c in range(n)
    }
    out["light_pieces"] = float(code.num_pieces)
    for label, count in (("U", target), ("U_minus_1", target - 1)):
        replay = collusion.replay_unmasking(
            light, updates, target=0, colluders=range(1, 1 + count)
        )
        out[f"light_{label}_recovers"] = float(replay.succeeded)
        if replay.succeeded:
            exact = np.array_equal(
                collusion.signed(light, replay.recovered),
                collusion.quantised(light, updates[0]),
            )
            out[f"light_{label}_exact"] = float(exact)
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


@uses_num_threads
def run(params: LeakageParams, *, progress: bool = True) -> LeakageRun:
    """Every section (see the module docstring)."""
    device = resolve_device(params.device)
    result = LeakageRun(params=params, device=str(device))
    for name, section in (
        ("labels", lambda: run_labels(params, device, result)),
        ("cocktail party", lambda: run_cocktail(params, result, progress)),
        ("imprint", lambda: run_imprint(params, result)),
        ("collusion", lambda: run_collusion(params, result)),
        ("he", lambda: run_he(params, device, result)),
        ("inversions", lambda: run_inversions(params, device, result, progress)),
    ):
        start = time.perf_counter()
        section()
        result.seconds[name] = time.perf_counter() - start
    return result


# --- what the page shows -------------------------------------------------------


def curves_figure(result: LeakageRun) -> Figure:
    """PSNR of Inverting Gradients against N; recovered fractions against the
    samples in the sum (Cocktail Party, FastICA, Robbing the Fed)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    ns = sorted(result.ig)
    axes[0].errorbar(
        ns,
        [_mean(result.ig[n]) for n in ns],
        yerr=[np.std(result.ig[n]) for n in ns],
        fmt="o-",
        capsize=3,
        label=f"aggregate of N (mean, sd over {len(result.ig[ns[0]])} trials)",
    )
    axes[0].axhline(
        _mean(result.masked["psnr_unrelated"]),
        color="grey",
        ls=":",
        label="unrelated image",
    )
    axes[0].set(xscale="log", xlabel="clients N (one image each)", ylabel="PSNR (dB)")
    axes[0].set_title("Inverting Gradients on the sum")
    axes[0].legend()
    ms = sorted(result.cpa)
    for key, label in (
        ("cpa_fraction", "Cocktail Party"),
        ("fastica_fraction", "FastICA"),
    ):
        axes[1].plot(ms, [result.cpa[m][key] for m in ms], "o-", label=label)
    axes[1].set(xscale="log", xlabel="samples in the sum", ylabel="fraction recovered")
    axes[1].set_ylim(-0.05, 1.05)
    axes[1].set_title("First FC layer (blind source separation)")
    axes[1].legend()
    ks = sorted(result.rtf)
    axes[2].plot(
        ks, [result.rtf[m]["fraction"] for m in ks], "o-", label="recovered exactly"
    )
    axes[2].plot(
        ks,
        [result.rtf[m]["expected_singletons"] / m for m in ks],
        "s--",
        label="expected singleton bins",
    )
    axes[2].set(xscale="log", xlabel="samples in the sum", ylabel="fraction")
    axes[2].set_ylim(-0.05, 1.05)
    axes[2].set_title(f"Robbing the Fed ({result.params.num_bins} bins)")
    axes[2].legend()
    fig.tight_layout()
    return fig


def examples_figure(result: LeakageRun) -> Figure:
    """The victim, its reconstructions from what each attack isolated."""
    shown = [
        ("victim", "private image"),
        ("plain", "plaintext update"),
        ("masked", "masked upload"),
        ("isolated", "inconsistency, IG"),
        ("analytic", "inconsistency, FC-2 exact"),
        ("unrelated", "unrelated image"),
    ]
    present = [(k, t) for k, t in shown if k in result.images]
    return plots.image_rows(
        [[result.images[k] for k, _ in present]], [t for _, t in present]
    )


def leak_table(result: LeakageRun):  # noqa: ANN201 - pandas imported lazily
    """The page's closing table: attack, who misbehaves, what it recovers,
    against which protocols, and this run's numbers."""
    import pandas as pd

    c, inc, he = result.collusion, result.inconsistency, result.he
    m = {k: _mean(v) for k, v in result.masked.items()}
    iso = {k: _mean(v) for k, v in result.isolation.items()}
    labels_exact = min(v["exact"] for v in result.labels.values())
    big_cpa = max(result.cpa)
    big_rtf = max(result.rtf)
    rows = [
        (
            "one client's masked upload",
            "nobody (honest-but-curious server)",
            "nothing: noise",
            "SecAgg, SecAgg+, LightSecAgg, FastSecAgg, HE",
            f"IG {m['psnr_masked']:.1f} dB vs plaintext {m['psnr_plain']:.1f} dB "
            f"(unrelated {m['psnr_unrelated']:.1f} dB; means of "
            f"{len(result.masked['psnr_plain'])} trials)",
        ),
        (
            "label counts from the sum",
            "nobody",
            "the round's label histogram",
            "all (they reveal the sum)",
            f"exact in {labels_exact:.0%} of rounds at the worst N",
        ),
        (
            "Inverting Gradients on the sum",
            "nobody",
            "a blur of N images",
            "all",
            ", ".join(
                f"N={n}: {_mean(v):.1f} dB" for n, v in sorted(result.ig.items())
            ),
        ),
        (
            "Cocktail Party (first FC layer)",
            "nobody (needs an FC first layer)",
            "individual images, up to sign and scale",
            "all",
            f"{result.cpa[big_cpa]['cpa_fraction']:.0%} of {big_cpa} (FastICA "
            f"{result.cpa[big_cpa]['fastica_fraction']:.0%})",
        ),
        (
            "Robbing the Fed (imprint layer)",
            "the server (sends a modified model)",
            "every sample alone in its bin, exactly",
            "all",
            f"{result.rtf[big_rtf]['recovered']:.0f} of {big_rtf} "
            f"(singletons {result.rtf[big_rtf]['singletons']:.0f}); through SecAgg "
            f"{result.rtf_secagg['recovered']:.0f} of {result.rtf_secagg['clients']:.0f}",  # noqa: E501
        ),
        (
            "model inconsistency",
            "the server (different models per client)",
            "the target's update, exactly",
            "all (SecAgg binds users, not models)",
            f"{inc['mismatches']:.0f} mismatches; IG {iso['ig_isolated']:.1f} dB vs "
            f"{iso['ig_honest_target']:.1f} dB on the honest sum; FC-2 exact "
            f"{iso['analytic_isolated']:.1f} dB vs {iso['analytic_honest']:.1f} dB",
        ),
        (
            "replayed unmasking",
            f"the server + t = {c['secagg_threshold']:.0f} clients",
            "one client's update, exactly",
            "SecAgg (t), LightSecAgg (U)",
            f"SecAgg t: {'yes' if c['secagg_t_recovers'] else 'no'}, t-1: "
            f"{'yes' if c['secagg_t_minus_1_recovers'] else 'no'}; LightSecAgg U: "
            f"{'yes' if c['light_U_recovers'] else 'no'}, U-1: "
            f"{'yes' if c['light_U_minus_1_recovers'] else 'no'}",
        ),
        (
            "differencing two rounds",
            "the server (picks who takes part)",
            "the left-out client's update, exactly",
            "all",
            f"{c['difference_secagg_mismatches']:.0f} / "
            f"{c['difference_lightsecagg_mismatches']:.0f} mismatches (SecAgg / LightSecAgg)",  # noqa: E501
        ),
        (
            "HE: participant's two decryptions",
            "a participant",
            "another participant's update, exactly",
            "HE (shared key)",
            f"{he['mismatches']:.0f} mismatches; IG {he['psnr_participant']:.1f} dB",
        ),
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "attack",
            "who must misbehave",
            "what it recovers",
            "works against",
            "this run",
        ],
    )


def summary_text(result: LeakageRun) -> str:
    """The numbers the page's prose quotes (means over the trials)."""
    m = {k: _mean(v) for k, v in result.masked.items()}
    iso = {k: _mean(v) for k, v in result.isolation.items()}
    inc = result.inconsistency
    ns = sorted(result.ig)
    trials = len(result.masked["psnr_plain"])
    return (
        f"Over {trials} trials (mean PSNR), Inverting Gradients scores "
        f"{m['psnr_plain']:.1f} dB on client 0's plaintext update and "
        f"{m['psnr_masked']:.1f} dB on its masked upload; an unrelated image "
        f"scores {m['psnr_unrelated']:.1f} dB. On the aggregate of N one-image "
        f"clients it scores {_mean(result.ig[ns[0]]):.1f} dB at N = {ns[0]} and "
        f"{_mean(result.ig[ns[-1]]):.1f} dB at N = {ns[-1]}. Model inconsistency "
        f"isolates the target's update ({inc['mismatches']:.0f} mismatched "
        f"integers on the ConvNet, {inc['fc_mismatches']:.0f} on FC-2's first "
        f"layer, over all trials); Inverting Gradients then scores "
        f"{iso['ig_isolated']:.1f} dB, against {iso['ig_honest_target']:.1f} dB "
        "for the same image from the honest sum, and on the FC-2 network the "
        "target's image is read off the isolated first-layer update at "
        f"{iso['analytic_isolated']:.1f} dB, against "
        f"{iso['analytic_honest']:.1f} dB for the same formula on the honest sum "
        "(a weighted mean of the clients' images)."
    )


def rows(result: LeakageRun) -> list[ResultRow]:
    """This page's numbers (no paper prints them in this setting)."""
    out = [
        ResultRow.against(
            "masked upload, IG", "psnr", _mean(result.masked["psnr_masked"]), None
        ),
        ResultRow.against(
            "plaintext update, IG", "psnr", _mean(result.masked["psnr_plain"]), None
        ),
    ]
    out += [
        ResultRow.against(f"IG on the sum of N={n}", "psnr", _mean(v), None)
        for n, v in sorted(result.ig.items())
    ]
    out += [
        ResultRow.against(
            f"label counts, N={n}", "label_accuracy", v["label_accuracy"], None
        )
        for n, v in sorted(result.labels.items())
    ]
    for m, v in sorted(result.cpa.items()):
        out.append(
            ResultRow.against(
                f"Cocktail Party, {m} samples", "success_rate", v["cpa_fraction"], None
            )
        )
        out.append(
            ResultRow.against(
                f"FastICA, {m} samples", "success_rate", v["fastica_fraction"], None
            )
        )
    for m, v in sorted(result.rtf.items()):
        out.append(
            ResultRow.against(
                f"Robbing the Fed, {m} samples",
                "success_rate",
                v["fraction"],
                None,
                note=f"expected singleton fraction {v['expected_singletons'] / m:.2f}",
            )
        )
    out.append(
        ResultRow.against(
            "model inconsistency, IG on the isolated update",
            "psnr",
            _mean(result.isolation["ig_isolated"]),
            None,
        )
    )
    out.append(
        ResultRow.against(
            "model inconsistency, FC-2 first layer read exactly",
            "psnr",
            _mean(result.isolation["analytic_isolated"]),
            None,
        )
    )
    out.append(
        ResultRow.against(
            "HE participant's difference, IG",
            "psnr",
            result.he["psnr_participant"],
            None,
        )
    )
    return out


def claims(result: LeakageRun) -> list[Claim]:
    """The claims this page checks, each on this run's numbers."""
    m, c, inc, he = result.masked, result.collusion, result.inconsistency, result.he
    iso = result.isolation
    ns = sorted(result.ig)
    out = [
        paired_claim(
            "The same client's plaintext update is inverted better than its "
            "masked upload (Inverting Gradients, same image and seed per trial).",
            SRC_MASK,
            m["psnr_plain"],
            m["psnr_masked"],
            names=("plaintext", "masked"),
        ),
        paired_claim(
            "A masked upload, inverted, is no better than an unrelated image "
            "(within 2 dB: the unrelated image's PSNR plus 2 dB beats the "
            "masked upload's).",
            SRC_MASK,
            [u + 2.0 for u in m["psnr_unrelated"]],
            m["psnr_masked"],
            names=("unrelated + 2 dB", "masked"),
        ),
        bound_claim(
            "The round's label counts are read exactly from the aggregated "
            "last-layer gradient of cross-entropy FedSGD, at every number of "
            "clients tried.",
            SRC_LABELS,
            [min(v["exact"] for v in result.labels.values())],
            above=0.99,
            what="fraction of exact rounds at the worst N",
        ),
        paired_claim(
            "Inverting Gradients on the sum loses quality as clients are added "
            f"(PSNR at N = {ns[0]} against N = {ns[-1]}, paired by trial).",
            SRC_IG,
            result.ig[ns[0]],
            result.ig[ns[-1]],
            names=(f"N = {ns[0]}", f"N = {ns[-1]}"),
        ),
        bound_claim(
            "Blind source separation of the first FC layer's summed gradient "
            f"recovers individual images from a sum of {max(result.cpa)} samples "
            f"(recovered: PSNR >= {result.params.recovered_psnr:g} dB up to sign "
            "and scale); at least a quarter of them.",
            SRC_CPA,
            [result.cpa[max(result.cpa)]["cpa_fraction"]],
            above=0.25,
            what="fraction recovered",
        ),
        bound_claim(
            "Robbing the Fed recovers exactly every sample alone in its bin, "
            "from the sum (recovered minus singleton bins, worst size).",
            SRC_RTF,
            [min(v["recovered"] - v["singletons"] for v in result.rtf.values())],
            above=-0.5,
            what="recovered minus singletons",
        ),
        bound_claim(
            "Through SecAgg, the imprint recovery still finds single images "
            "(images recovered from the decoded secure sum).",
            SRC_RTF,
            [result.rtf_secagg["recovered"]],
            above=0.5,
            what="images recovered",
        ),
        bound_claim(
            "Model inconsistency makes the secure sum equal the target's update "
            "on every parameter the others' dead model silences (mismatched "
            "integers, ConvNet and FC-2's first layer, every trial).",
            SRC_INCONSISTENCY,
            [inc["mismatches"] + inc["fc_mismatches"]],
            below=0.5,
            what="mismatches",
        ),
        paired_claim(
            "On a network whose first layer is fully connected with a bias "
            "(FC-2), the target's image is read off the isolated update "
            "exactly (x = dW_r / db_r), far better than the same formula on the "
            "honest sum (paired by trial).",
            SRC_INCONSISTENCY,
            iso["analytic_isolated"],
            iso["analytic_honest"],
            names=("isolated", "honest sum"),
        ),
        paired_claim(
            "The isolated update is inverted (Inverting Gradients, ConvNet) "
            "better than the same image from the honest sum (paired by trial).",
            SRC_INCONSISTENCY,
            iso["ig_isolated"],
            iso["ig_honest_target"],
            names=("isolated", "honest sum"),
        ),
        bound_claim(
            "The server with t colluding clients unmasks one SecAgg client "
            "exactly; with t - 1 it cannot (1 = exact recovery, 0 = none; "
            "t-recovery minus (t-1)-recovery).",
            SRC_SECAGG,
            [c.get("secagg_t_exact", 0.0) - c["secagg_t_minus_1_recovers"]],
            above=0.5,
            what="t exact minus t-1 recovers",
        ),
        bound_claim(
            "LightSecAgg: T colluders learn nothing of a user's mask, U recover "
            "the user's update exactly, U - 1 cannot (pieces leaked at T, then "
            "exactness at U minus recovery at U-1).",
            SRC_LIGHT,
            [
                c.get("light_U_exact", 0.0)
                - c["light_U_minus_1_recovers"]
                - result.light_pieces[int(c["light_T"])]
            ],
            above=0.5,
            what="score",
        ),
        bound_claim(
            "Two rounds whose client sets differ by one client give that "
            "client's update exactly (mismatched integers, SecAgg and LightSecAgg).",
            SRC_LAM,
            [
                c["difference_secagg_mismatches"]
                + c["difference_lightsecagg_mismatches"]
            ],
            below=0.5,
            what="mismatches",
        ),
        bound_claim(
            "A participant's two decryptions around another's upload hold that "
            "upload exactly, while the server's view holds no plaintext "
            "(mismatches plus plaintext found).",
            SRC_HE,
            [he["mismatches"] + he["server_sees_plaintext"]],
            below=0.5,
            what="mismatches",
        ),
    ]
    return out
