"""The homomorphic-encryption notebook: Aono/Phong et al.'s system, its costs,
its accuracy, and what the server and the participants can invert.

Four parts, all on :mod:`gi_lib.defenses.he`:

1. **Cost of one update.** CPU seconds to encrypt, add and decrypt one flat
   update of ``n_gd`` values with the paper's LWE scheme (beside the
   paper's Table 3, one thread), packed Paillier and CKKS; the bytes of a
   ciphertext against 4 bytes per float32 value.
2. **One round on the aggregation harness** per backend: bytes each client
   sends and receives, per-party CPU seconds, and the decrypted sum against
   the plaintext fixed-point sum.
3. **Accuracy.** The paper's MNIST network (an MLP 784-128-64-10: 109,386
   parameters, the paper's MNIST ``n_gd``) trained with the paper's
   asynchronous SGD three ways on the same mini-batches: in plaintext
   (float), in fixed point without encryption, and under LWE encryption.
4. **Attacks.** One participant uploads the gradient of one private image.
   Inverting Gradients on the plaintext update (what the server would see
   without encryption); on the server's actual view, the LWE ciphertext
   decoded as if it were the message; and on what another participant gets
   by decrypting the model before and after that upload.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn
from tqdm.auto import tqdm

from gi_lib import data, fl, metrics, plots, training
from gi_lib.attacks import build_attack
from gi_lib.attacks import inverting as _inverting  # noqa: F401  (make sees the attack)
from gi_lib.defenses import _lwe, he
from gi_lib.defenses.aggregation import SERVER, PlaintextSum, UpdateLayout, client_name
from gi_lib.experiments.common import AttackedSample, attack_and_score, uses_num_threads
from gi_lib.models import Normalize
from gi_lib.params import (
    ExperimentParams,
    ParameterError,
    check_parameters,
    param,
    resolve_device,
)
from gi_lib.results import (
    DEFAULT_BANDS,
    Claim,
    PaperValue,
    ResultRow,
    bound_claim,
    paired_claim,
    untested_claim,
)

NOTEBOOK = "he"
PAPER = "Phong et al., IEEE TIFS 2018"
TABLE3 = f"{PAPER}, Table 3 (LWE-based, 1 thread)"
ABSTRACT = f"{PAPER}, abstract"

# Table 3 of the paper, LWE-based scheme (n_lwe = 3000, s = 8, p = 2^48 + 1,
# q = 2^77), one thread: n_gd -> (Enc ms, Dec ms, Add µs). Read from a
# verbatim copy of the table (confidence T, PAPER_VALUES.md §15).
PAPER_TABLE3: dict[int, tuple[float, float, float]] = {
    20000: (164.4, 143.6, 51.0),
    27882: (213.1, 194.5, 72.3),
    50000: (364.6, 354.6, 137.7),
    52650: (454.8, 412.6, 91.2),
    100000: (732.9, 666.1, 211.5),
    200000: (1395.1, 1355.0, 441.7),
    300000: (2031.6, 1996.5, 481.0),
    402250: (2797.4, 2738.0, 698.4),
}
MNIST_NGD = 109386  # the paper's MNIST gradient size (S), our MLP's parameter count
BACKEND_TITLES = {
    "lwe": "LWE (paper's scheme)",
    "paillier": "packed Paillier",
    "ckks": "CKKS (tenseal)",
    "plaintext": "plaintext (float32)",
}
# Two PSNRs within the scorecard's band for PSNR count as the same level.
PSNR_MARGIN = DEFAULT_BANDS["psnr"][1]
HARDWARE_NOTE = (
    "hardware and implementation differ (the paper: its own code on a 2017 "
    "CPU; ours: numpy on float64 BLAS), so the band is a factor of 3"
)


@dataclass(frozen=True, kw_only=True)
class HEParams(ExperimentParams):
    """The homomorphic-encryption notebook's parameters."""

    dataset: str = param("data set (the paper's MNIST)", choices=("mnist",))
    model: str = param(
        "the paper's MNIST network: an MLP 784-128-64-10", choices=("mlp",)
    )
    frac_bits: int = param("fractional bits of the fixed-point encoding", minimum=1)
    clip: float = param("values are clipped to +-clip before encoding", above=0)
    lwe_n: int = param("LWE dimension n_lwe (the paper: 3000)", minimum=16)
    lwe_block: int = param("LWE plaintext slots per ciphertext block", minimum=1)
    lwe_sizes: tuple[int, ...] = param(
        "update sizes n_gd timed with LWE (Table 3: 20000 ... 402250)",
        minimum=1,
        unique=True,
    )
    paillier_key_bits: int = param("bits of the Paillier modulus", minimum=512)
    paillier_sizes: tuple[int, ...] = param(
        "update sizes timed with packed Paillier", minimum=1, unique=True
    )
    ckks_poly_degree: int = param(
        "CKKS ring degree (4096, 8192, 16384 or 32768)", minimum=4096, maximum=32768
    )
    ckks_sizes: tuple[int, ...] = param(
        "update sizes timed with CKKS", minimum=1, unique=True
    )
    timing_repeats: int = param("timings per operation (the median is kept)", minimum=1)
    harness_clients: int = param("clients in the harness round", minimum=1)
    harness_size: int = param("values per update in the harness round", minimum=1)
    train_participants: int = param("participants of the training", minimum=1)
    train_images: int = param("MNIST training images, split among them", minimum=1)
    train_batch_size: int = param("mini-batch per upload", minimum=1)
    train_epochs: int = param("passes over the training images", minimum=1)
    train_lr: float = param("SGD step size alpha", above=0)
    test_images: int = param("MNIST test images for the accuracy", minimum=1)
    attack_iterations: int = param("Inverting Gradients' iterations", minimum=1)


def check(values: Mapping[str, Any]) -> HEParams:
    """Check the parameters (see :class:`HEParams`)."""
    params = check_parameters(values, HEParams, notebook=NOTEBOOK)
    if params.ckks_poly_degree not in (4096, 8192, 16384, 32768):
        raise ParameterError(
            f"ckks_poly_degree must be 4096, 8192, 16384 or 32768, got "
            f"{params.ckks_poly_degree}."
        )
    if params.train_participants < 2:
        raise ParameterError(
            "train_participants must be at least 2: the attack needs a second "
            "participant who decrypts the model around the victim's upload."
        )
    if params.train_images < params.train_participants * params.train_batch_size:
        raise ParameterError(
            f"train_images ({params.train_images}) must give each of the "
            f"{params.train_participants} participants at least one mini-batch of "
            f"{params.train_batch_size}."
        )
    return params


def build_mlp(info: data.DatasetInfo, *, seed: int) -> nn.Module:
    """The paper's MNIST network as inferred from its 109,386 parameters:
    784-128-64-10 with ReLU (design notes A.4; the architecture is not
    confirmed in the paper), after the data set's normalisation."""
    inputs = info.channels * info.image_size * info.image_size
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            Normalize(info.mean, info.std),
            nn.Flatten(),
            nn.Linear(inputs, 128),
            nn.ReLU(),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Linear(64, info.num_classes),
        )


# ---------------------------------------------------------------------------
# The run's records
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HarnessRound:
    """One round of :class:`gi_lib.defenses.he.HEAggregation` (or the plaintext sum).

    Attributes:
        backend: the backend's name.
        clients: how many clients.
        size: values per update.
        upload_bytes: bytes one client sends.
        download_bytes: bytes one client receives (the encrypted sum).
        client_seconds: mean CPU seconds of a client (both rounds).
        server_seconds: the server's CPU seconds.
        max_error: largest |decrypted sum - plaintext fixed-point sum| (the
            float sum for CKKS and the plaintext baseline).
        tolerance: the backend's allowed error for this sum.
        server_saw: message kinds in the server's view.
    """

    backend: str
    clients: int
    size: int
    upload_bytes: int
    download_bytes: int
    client_seconds: float
    server_seconds: float
    max_error: float
    tolerance: float
    server_saw: tuple[str, ...]


@dataclass(frozen=True)
class Training:
    """The accuracy of the three trainings on the same mini-batches.

    Attributes:
        accuracy: test accuracy per training (``"plaintext"``, ``"fixed
            point"``, ``"encrypted"``).
        uploads: uploads per training.
        identical_to_fixed_point: the encrypted training's final weights equal
            the fixed-point plaintext training's bit for bit.
        max_weight_difference: largest |encrypted - float plaintext| weight.
        participant_seconds: mean CPU seconds a participant spent on
            decrypting the model and encrypting its update, per upload.
        server_seconds: mean CPU seconds the server spent per upload.
        upload_bytes, download_bytes: bytes of one upload and one download.
    """

    accuracy: dict[str, float]
    uploads: int
    identical_to_fixed_point: bool
    max_weight_difference: float
    participant_seconds: float
    server_seconds: float
    upload_bytes: int
    download_bytes: int


@dataclass
class AttackTrial:
    """One victim image, attacked from three views.

    Attributes:
        plaintext: IG on the victim's plaintext update.
        leaked: IG on the update another participant recovers.
        ciphertext: IG on the server's view (the ciphertext body decoded as
            if it were the message).
        unrelated_psnr: PSNR of an unrelated test image against the victim's.
        leak_exact: the recovered update equals the uploaded fixed-point
            update exactly.
        leak_error: largest |recovered - float update| (fixed-point error).
    """

    plaintext: AttackedSample
    leaked: AttackedSample
    ciphertext: AttackedSample
    unrelated_psnr: float
    leak_exact: bool
    leak_error: float


@dataclass
class HERun:
    """Everything the notebook shows."""

    params: HEParams
    costs: list[he.OperationCost]
    rounds: list[HarnessRound]
    training: Training
    trials: list[AttackTrial]
    setup_seconds: dict[str, float]


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


def _lwe_params(params: HEParams) -> _lwe.LWEParams:
    return _lwe.LWEParams(n=params.lwe_n, block=params.lwe_block)


def _backends(
    params: HEParams, max_summands: int
) -> tuple[dict[str, he.HEBackend], dict[str, float]]:
    """The three encrypted backends, each keyed once, and the CPU seconds
    their key generation took."""
    small = max(2, params.harness_clients)
    makers = {
        "lwe": lambda: he.LWEBackend(
            frac_bits=params.frac_bits,
            clip=params.clip,
            max_summands=max_summands,
            params=_lwe_params(params),
            seed=params.seed,
        ),
        "paillier": lambda: he.PaillierBackend(
            frac_bits=params.frac_bits,
            clip=params.clip,
            max_summands=small,
            key_bits=params.paillier_key_bits,
            seed=params.seed,
        ),
        "ckks": lambda: he.CKKSBackend(
            clip=params.clip, max_summands=small, poly_degree=params.ckks_poly_degree
        ),
    }
    backends, seconds = {}, {}
    for name, make in makers.items():
        start = time.process_time()
        backends[name] = make()
        seconds[name] = time.process_time() - start
    return backends, seconds


def _update(size: int, seed: int) -> np.ndarray:
    """A gradient-like update (normal, scale 0.01) as float32."""
    rng = np.random.default_rng(seed)
    return rng.normal(scale=0.01, size=size).astype(np.float32)


def _time_operations(
    params: HEParams, backends: Mapping[str, he.HEBackend], progress: bool
) -> list[he.OperationCost]:
    sizes = {
        "lwe": params.lwe_sizes,
        "paillier": params.paillier_sizes,
        "ckks": params.ckks_sizes,
    }
    jobs = [(name, size) for name in sizes for size in sizes[name]]
    out = []
    for name, size in tqdm(jobs, desc="Enc/Add/Dec", disable=not progress):
        update = _update(size, params.seed + size)
        out.append(
            he.operation_cost(backends[name], update, repeats=params.timing_repeats)
        )
    return out


def _harness_round(
    params: HEParams, name: str, backend: he.HEBackend | None
) -> HarnessRound:
    count, size = params.harness_clients, params.harness_size
    updates = [
        (torch.from_numpy(_update(size, params.seed + 1000 + i)),) for i in range(count)
    ]
    protocol = PlaintextSum() if backend is None else he.HEAggregation(backend)
    result = protocol.run(updates)
    transcript = result.transcript
    got = result.aggregate[0].numpy().astype(np.float64)
    flats = [u[0].numpy().astype(np.float64) for u in updates]
    if backend is None:  # the float32 sum in client order, as the server adds
        want = updates[0][0].numpy().copy()
        for u in updates[1:]:
            want = want + u[0].numpy()
    elif backend.exact:
        want = sum(backend.encode(f) for f in flats) / backend.codec.scale
    else:
        want = np.sum(flats, axis=0)
    clients = [client_name(i) for i in range(count)]
    return HarnessRound(
        backend=name,
        clients=count,
        size=size,
        upload_bytes=transcript.bytes_sent(clients[0]),
        download_bytes=transcript.bytes_received(clients[0]),
        client_seconds=float(np.mean([transcript.seconds(c) for c in clients])),
        server_seconds=transcript.seconds(SERVER),
        max_error=float(np.abs(got - want).max()),
        tolerance=0.0 if backend is None else backend.tolerance(count),
        server_saw=tuple(sorted({m.kind for m in transcript.view(SERVER)})),
    )


class _Learner:
    """The participants' plaintext side of asynchronous SGD: load the
    decrypted weights, compute the gradient of the next mini-batch, return
    ``-alpha G``. The same object, reset, drives all three trainings, so they
    see the same mini-batches in the same order."""

    def __init__(
        self,
        params: HEParams,
        model: nn.Module,
        shards: Sequence[tuple[torch.Tensor, torch.Tensor]],
    ) -> None:
        self.params, self.model, self.shards = params, model, shards
        self.layout = UpdateLayout(tuple(tuple(p.shape) for p in model.parameters()))
        self.reset()

    def reset(self) -> None:
        self.steps = [0] * len(self.shards)

    def load(self, weights: np.ndarray) -> nn.Module:
        for p, value in zip(
            self.model.parameters(), self.layout.unflatten(weights), strict=True
        ):
            p.data.copy_(value.to(torch.float32))
        return self.model

    def __call__(self, participant: int, weights: np.ndarray) -> np.ndarray:
        images, labels = self.shards[participant]
        batch = self.params.train_batch_size
        start = batch * (self.steps[participant] % (len(labels) // batch))
        self.steps[participant] += 1
        model = self.load(weights)
        model.zero_grad()
        loss = fl.cross_entropy(
            model(images[start : start + batch]), labels[start : start + batch]
        )
        loss.backward()
        gradient = self.layout.flatten([p.grad for p in model.parameters()])
        return -self.params.train_lr * gradient.astype(np.float64)


def _schedule(params: HEParams) -> list[int]:
    per = params.train_images // params.train_participants
    steps = params.train_epochs * (per // params.train_batch_size)
    return [
        i % params.train_participants for i in range(steps * params.train_participants)
    ]


def _train(
    params: HEParams, lwe: he.HEBackend, progress: bool
) -> tuple[Training, he.AsyncSGD, _Learner]:
    info = data.dataset_info(params.dataset)
    images, labels = training.sample_split(
        params.dataset, "train", params.train_images, params.seed
    )
    per = params.train_images // params.train_participants
    shards = [
        (images[i * per : (i + 1) * per], labels[i * per : (i + 1) * per])
        for i in range(params.train_participants)
    ]
    test_x, test_y = training.sample_split(
        params.dataset, "test", params.test_images, params.seed
    )
    model = build_mlp(info, seed=params.seed)
    learner = _Learner(params, model, shards)
    initial = learner.layout.flatten(list(model.parameters())).astype(np.float64)
    order = _schedule(params)
    runs: dict[str, he.AsyncRun] = {}
    systems: dict[str, he.AsyncSGD] = {}
    setups = {
        "plaintext": he.PlaintextBackend(),
        "fixed point": he.PlaintextBackend(
            frac_bits=params.frac_bits, clip=params.clip
        ),
        "encrypted": lwe,
    }
    for name, backend in tqdm(setups.items(), desc="training", disable=not progress):
        learner.reset()
        systems[name] = he.AsyncSGD(backend, initial)
        runs[name] = systems[name].run(order, learner)
    accuracy = {
        name: training.accuracy(
            learner.load(run.weights), test_x, test_y, torch.device("cpu")
        )
        for name, run in runs.items()
    }
    encrypted = runs["encrypted"].transcript
    participants = [client_name(i) for i in range(params.train_participants)]
    uploads = runs["encrypted"].uploads
    upload = [m for m in encrypted.messages if m.kind == "update"]
    download = [m for m in encrypted.messages if m.kind == "model"]
    rounds = range(1, uploads + 1)
    result = Training(
        accuracy=accuracy,
        uploads=uploads,
        identical_to_fixed_point=bool(
            np.array_equal(runs["encrypted"].weights, runs["fixed point"].weights)
        ),
        max_weight_difference=float(
            np.abs(runs["encrypted"].weights - runs["plaintext"].weights).max()
        ),
        participant_seconds=float(
            sum(encrypted.seconds(p, round=r) for p in participants for r in rounds)
            / max(uploads, 1)
        ),
        server_seconds=float(
            sum(encrypted.seconds(SERVER, round=r) for r in rounds) / max(uploads, 1)
        ),
        upload_bytes=upload[0].num_bytes if upload else 0,
        download_bytes=download[0].num_bytes if download else 0,
    )
    learner.load(runs["encrypted"].weights)
    return result, systems["encrypted"], learner


def _invert(
    attack: Any,
    observation: fl.Observation,
    truth: torch.Tensor,
    index: int,
    setting: str,
    params: HEParams,
) -> AttackedSample:
    return attack_and_score(
        lambda: attack.reconstruct(observation, seed=params.seed),
        truth,
        setting=setting,
        index=index,
    )


def _attack(
    params: HEParams,
    system: he.AsyncSGD,
    learner: _Learner,
    lwe: he.LWEBackend,
    progress: bool,
) -> list[AttackTrial]:
    """Participant 0 uploads one image's update; participant 1 and the server look."""
    info = data.dataset_info(params.dataset)
    test = data.load_dataset(info.name)
    images, labels, _ = data.sample_victims(test, 2 * params.num_trials, params.seed)
    attack = build_attack("inverting", max_iterations=params.attack_iterations)
    lr, scale = params.train_lr, lwe.codec.scale
    trials = []
    for i in tqdm(range(params.num_trials), desc="attacks", disable=not progress):
        truth, label = images[i : i + 1], labels[i : i + 1]
        round_ = system.uploads + 1
        before = system.download(1, round_)  # the curious participant looks
        model = learner.load(before)
        observation = fl.observe_fedsgd(
            model, truth, label, num_classes=info.num_classes
        )
        update = -lr * learner.layout.flatten(observation.gradients).astype(np.float64)
        system.upload(0, round_, update)  # the victim's upload
        ciphertext = system.transcript.messages[-1].payload  # what the server holds
        after = system.download(1, round_ + 1)  # the curious participant looks again
        recovered = after - before
        sent = lwe.encode(update) / scale
        leaked = dataclasses.replace(
            observation,
            gradients=learner.layout.unflatten((recovered / -lr).astype(np.float32)),
        )
        body = _lwe.body_as_plaintext(lwe.from_bytes(ciphertext), lwe.params) / scale
        server = dataclasses.replace(
            observation,
            gradients=learner.layout.unflatten((body / -lr).astype(np.float32)),
        )

        trials.append(
            AttackTrial(
                plaintext=_invert(attack, observation, truth, i, "plaintext", params),
                leaked=_invert(attack, leaked, truth, i, "participant", params),
                ciphertext=_invert(attack, server, truth, i, "server", params),
                unrelated_psnr=float(
                    metrics.psnr(
                        images[params.num_trials + i : params.num_trials + i + 1], truth
                    )
                ),
                leak_exact=bool(np.array_equal(recovered, sent)),
                leak_error=float(np.abs(recovered - update).max()),
            )
        )
    return trials


@uses_num_threads
def run(params: HEParams, *, progress: bool = True) -> HERun:
    """Time the backends, run one harness round each, train three ways, attack."""
    resolve_device(params.device, supported=("cpu",))
    uploads = len(_schedule(params))
    backends, setup = _backends(params, max_summands=uploads + params.num_trials + 1)
    costs = _time_operations(params, backends, progress)
    rounds = [_harness_round(params, "plaintext", None)] + [
        _harness_round(params, name, backend) for name, backend in backends.items()
    ]
    lwe = backends["lwe"]
    assert isinstance(lwe, he.LWEBackend)
    training_result, system, learner = _train(params, lwe, progress)
    trials = _attack(params, system, learner, lwe, progress)
    return HERun(params, costs, rounds, training_result, trials, setup)


# ---------------------------------------------------------------------------
# What the page shows
# ---------------------------------------------------------------------------

_OPERATIONS = (
    ("Enc", "encrypt", 0, 1e-3),
    ("Dec", "decrypt", 1, 1e-3),
    ("Add", "add", 2, 1e-6),
)


def papers_parameters(params: HEParams) -> bool:
    """Whether the LWE runs used the paper's n_lwe (p, q and s are always its)."""
    return params.lwe_n == _lwe.LWEParams().n


def lwe_layout_note(params: HEParams) -> str:
    """How our LWE layout differs from the paper's, in a phrase."""
    own = "" if papers_parameters(params) else " (not the paper's 3000)"
    return (
        f"n_lwe = {params.lwe_n}{own}, s = 8, p = 2^48 + 1, q = 2^77 (held in "
        "26-bit limbs, not changed); blocks "
        f"of {params.lwe_block} slots, each with its own c1 (the paper: one block)"
    )


def rows(result: HERun) -> list[ResultRow]:
    """Table 3's timings beside ours, bytes per backend, accuracy, attack PSNRs."""
    params = result.params
    out: list[ResultRow] = []
    threads = "one CPU thread"
    for cost in result.costs:
        title = BACKEND_TITLES[cost.backend]
        paper = PAPER_TABLE3.get(cost.size) if cost.backend == "lwe" else None
        if paper is not None and not papers_parameters(params):
            paper = None
        for label, attribute, index, unit in _OPERATIONS:
            value = PaperValue(paper[index] * unit, TABLE3, "T") if paper else None
            if cost.backend == "lwe":
                note = f"{lwe_layout_note(params)}; {threads}"
                if value is not None:
                    note += f"; {HARDWARE_NOTE}"
            else:
                note = f"{threads}; the paper gives no number for this scheme"
            out.append(
                ResultRow.against(
                    f"{title}: {label}, n_gd = {cost.size}",
                    "seconds",
                    getattr(cost, attribute),
                    value,
                    note=note,
                )
            )
        out.append(
            ResultRow.against(
                f"{title}: ciphertext, n_gd = {cost.size}",
                "bytes",
                cost.ciphertext_bytes,
                None,
                note=(
                    f"{cost.expansion:.2f}x the {cost.plaintext_bytes} bytes of the "
                    "float32 update; the paper gives no byte count"
                ),
            )
        )
    train = result.training
    for name, accuracy in train.accuracy.items():
        out.append(
            ResultRow.against(
                f"MNIST MLP, asynchronous SGD, {name}",
                "test_accuracy",
                accuracy,
                None,
                note=(
                    f"{train.uploads} uploads of {params.train_batch_size} images by "
                    f"{params.train_participants} participants; {params.test_images} "
                    "test images; the paper reports no accuracy number"
                ),
            )
        )
    trials = result.trials
    views = (
        ("IG, server without HE: the plaintext update", "plaintext"),
        ("IG, another participant: the update it recovers", "leaked"),
        ("IG, server with HE: the ciphertext decoded as a message", "ciphertext"),
    )
    note = (
        f"mean over {len(trials)} MNIST images, one per upload; "
        f"{params.attack_iterations} iterations"
    )
    for view, attribute in views:
        values = [getattr(t, attribute).psnr for t in trials]
        out.append(ResultRow.against(view, "psnr", float(np.mean(values)), None, note))
    out.append(
        ResultRow.against(
            "reference: an unrelated test image",
            "psnr",
            float(np.mean([t.unrelated_psnr for t in trials])),
            None,
            f"mean over {len(trials)} pairs of MNIST test images",
        )
    )
    return out


def claims(result: HERun) -> list[Claim]:
    """The abstract's claims, judged on this run."""
    train, trials = result.training, result.trials
    gap = train.accuracy["encrypted"] - train.accuracy["plaintext"]
    accuracy = bound_claim(
        "Accuracy is kept intact: training under encryption reaches the accuracy "
        "of ordinary training on the combined data.",
        f"{ABSTRACT} (P)",
        [gap],
        above=-0.01,
        below=0.01,
        what="test accuracy under LWE minus in plaintext (one training each)",
    )
    same = "equal" if train.identical_to_fixed_point else "NOT equal"
    accuracy = dataclasses.replace(
        accuracy,
        evidence=f"{accuracy.evidence}; the encrypted model's weights are {same} to "
        "the fixed-point plaintext model's bit for bit, and differ from the float "
        f"model's by at most {train.max_weight_difference:.2g}",
    )
    plain = [t.plaintext.psnr for t in trials]
    cipher = [t.ciphertext.psnr for t in trials]
    unrelated = [t.unrelated_psnr for t in trials]
    leak = paired_claim(
        "Gradients shared in plaintext leak the participants' local data to an "
        "honest-but-curious server.",
        f"{ABSTRACT} (P: its motivation, revisiting Shokri and Shmatikov)",
        plain,
        unrelated,
        names=("IG on the plaintext update", "an unrelated image"),
        margin=PSNR_MARGIN,
    )
    server = paired_claim(
        "No information is leaked to the server: its view (ciphertexts) gives "
        "Inverting Gradients nothing to invert.",
        f"{ABSTRACT}, property (1) (recalled from the abstract; PAPER_VALUES.md "
        "§15 quotes its other two claims)",
        unrelated,
        cipher,
        names=("an unrelated image", "IG on the server's ciphertext"),
        margin=-PSNR_MARGIN,
    )
    overhead = untested_claim(
        "Encryption adds tolerable overhead to ordinary deep learning.",
        f"{ABSTRACT} (P)",
        "'tolerable' has no threshold; the rows put our Enc/Add/Dec seconds beside "
        "the paper's Table 3 and our bytes beside the plaintext's instead",
    )
    return [accuracy, leak, server, overhead]


def cost_figure(result: HERun) -> Figure:
    """Seconds per update against its size: Enc/Dec (left), Add (right)."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    papers = papers_parameters(result.params)
    sizes = sorted(PAPER_TABLE3)
    for axis, operations in (
        (left, (("Enc", "encrypt", 0), ("Dec", "decrypt", 1))),
        (right, (("Add", "add", 2),)),
    ):
        for b, backend in enumerate(("lwe", "paillier", "ckks")):
            costs = sorted(
                (c for c in result.costs if c.backend == backend), key=lambda c: c.size
            )
            if not costs:
                continue
            color = plots.PALETTE[b]
            for o, (label, attribute, _) in enumerate(operations):
                axis.plot(
                    [c.size for c in costs],
                    [getattr(c, attribute) for c in costs],
                    color=color,
                    linestyle=("-", "--")[o],
                    marker="o",
                    markersize=3,
                    label=f"{BACKEND_TITLES[backend]} {label}",
                )
        for o, (label, _, index) in enumerate(operations):
            unit = 1e-6 if label == "Add" else 1e-3
            axis.plot(
                sizes,
                [PAPER_TABLE3[s][index] * unit for s in sizes],
                color="black",
                linestyle=("-", "--")[o],
                marker="s",
                markerfacecolor="white",
                markersize=4,
                linewidth=0.8,
                label=f"paper, Table 3 {label} (1 thread)",
            )
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("values per update (n_gd)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=6)
    left.set_ylabel("CPU seconds")
    left.set_title("encrypt and decrypt one update", fontsize=9)
    right.set_title("add two ciphertexts", fontsize=9)
    if not papers:
        figure.suptitle(
            f"(LWE with n_lwe = {result.params.lwe_n}, not the paper's 3000)",
            fontsize=8,
        )
    figure.tight_layout()
    return figure


def bytes_figure(result: HERun) -> Figure:
    """Ciphertext bytes over float32 bytes, per backend and size."""
    figure, axis = plt.subplots(figsize=(5.5, 3.3))
    for b, backend in enumerate(("lwe", "paillier", "ckks")):
        costs = sorted(
            (c for c in result.costs if c.backend == backend), key=lambda c: c.size
        )
        if costs:
            axis.plot(
                [c.size for c in costs],
                [c.expansion for c in costs],
                color=plots.PALETTE[b],
                marker="o",
                markersize=3,
                label=BACKEND_TITLES[backend],
            )
    sizes = sorted({c.size for c in result.costs if c.backend == "lwe"}) or [MNIST_NGD]
    width = _lwe.LWEParams().bytes_per_element
    axis.plot(
        sizes,
        [(result.params.lwe_n + s) * width / (4 * s) for s in sizes],
        color=plots.PALETTE[0],
        linestyle=":",
        label="LWE in the paper's one-block layout (formula)",
    )
    axis.axhline(
        1.0, color="black", linewidth=0.8, linestyle="--", label="float32 plaintext"
    )
    axis.set_xscale("log")
    axis.set_ylim(bottom=0)
    axis.set_xlabel("values per update (n_gd)")
    axis.set_ylabel("bytes on the wire / plaintext bytes")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def attack_figure(result: HERun) -> Figure:
    """Per victim: the image, and IG's reconstruction from each view."""
    rows_ = [
        [
            t.plaintext.true_images[0],
            t.plaintext.images[0],
            t.leaked.images[0],
            t.ciphertext.images[0],
        ]
        for t in result.trials
    ]
    return plots.image_rows(
        rows_,
        ["private image", "server, no HE", "participant, HE", "server, HE"],
        [
            f"{t.plaintext.psnr:.0f} / {t.leaked.psnr:.0f} / {t.ciphertext.psnr:.0f} dB"
            for t in result.trials
        ],
    )


def table3_comparison(result: HERun) -> list[dict[str, Any]]:
    """Our LWE timings beside Table 3's at the sizes both have, in the
    table's own units (ms for Enc and Dec, µs for Add)."""
    if not papers_parameters(result.params):
        return []
    out = []
    band = DEFAULT_BANDS["seconds"][1]
    for cost in sorted(result.costs, key=lambda c: c.size):
        if cost.backend != "lwe" or cost.size not in PAPER_TABLE3:
            continue
        for label, attribute, index, unit in _OPERATIONS:
            paper = PAPER_TABLE3[cost.size][index]
            ours = getattr(cost, attribute) / unit
            out.append(
                {
                    "n_gd": cost.size,
                    "operation": label,
                    "unit": "µs" if label == "Add" else "ms",
                    "paper (1 thread)": paper,
                    "ours (1 thread)": round(ours, 1),
                    "ours / paper": round(ours / paper, 2),
                    f"within x{band:g}": 1 / band <= ours / paper <= band,
                }
            )
    return out


def table3_frame(result: HERun):  # noqa: ANN201 - pandas imported lazily
    """:func:`table3_comparison` as a table."""
    import pandas as pd

    return pd.DataFrame(table3_comparison(result))


def harness_frame(result: HERun):  # noqa: ANN201 - pandas imported lazily
    """One round on the harness per backend, as a table."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "backend": BACKEND_TITLES[r.backend],
                "clients": r.clients,
                "values": r.size,
                "bytes sent per client": r.upload_bytes,
                "bytes received per client": r.download_bytes,
                "client CPU s": round(r.client_seconds, 4),
                "server CPU s": round(r.server_seconds, 4),
                "max |sum - expected|": r.max_error,
                "allowed": r.tolerance,
                "server saw": ", ".join(r.server_saw),
            }
            for r in result.rounds
        ]
    )


def summary_text(result: HERun) -> str:
    """The numbers the page's prose quotes."""
    params, train, trials = result.params, result.training, result.trials
    lwe = {c.size: c for c in result.costs if c.backend == "lwe"}
    parts = []
    if lwe:
        size = max(lwe)
        cost = lwe[size]
        paper = PAPER_TABLE3.get(size)
        against = (
            f" (the paper's Table 3, one thread: {paper[0]:.0f} ms, {paper[1]:.0f} ms "
            f"and {paper[2]:.0f} µs)"
            if paper and papers_parameters(params)
            else ""
        )
        parts.append(
            f"With the paper's LWE scheme ({lwe_layout_note(params)}), one update of "
            f"{size:,} values took {1e3 * cost.encrypt:.0f} ms to encrypt, "
            f"{1e3 * cost.decrypt:.0f} ms to decrypt and {1e6 * cost.add:.0f} µs to "
            f"add on one CPU thread{against}; its ciphertext is {cost.expansion:.2f} "
            "times the float32 update."
        )
    compared = table3_comparison(result)
    if compared:
        band = DEFAULT_BANDS["seconds"][1]
        inside = [c for c in compared if 1 / band <= c["ours / paper"] <= band]
        faster = [c for c in compared if c["ours / paper"] < 1 / band]
        slower = [c for c in compared if c["ours / paper"] > band]
        sentence = (
            f"Of the {len(compared)} Table 3 values at our sizes, {len(inside)} lie "
            f"within a factor of {band:g} of ours"
        )
        if faster:
            sentence += f"; ours is more than {band:g} times faster for " + ", ".join(
                f"{c['operation']} at {c['n_gd']:,}" for c in faster
            )
        if slower:
            sentence += f"; more than {band:g} times slower for " + ", ".join(
                f"{c['operation']} at {c['n_gd']:,}" for c in slower
            )
        parts.append(sentence + ".")
    others = [c for c in result.costs if c.backend != "lwe"]
    for backend in ("paillier", "ckks"):
        mine = [c for c in others if c.backend == backend]
        if mine:
            c = max(mine, key=lambda c: c.size)
            parts.append(
                f"With {BACKEND_TITLES[backend]}: {c.size:,} values in "
                f"{c.encrypt:.3g} s to encrypt, {c.decrypt:.3g} s to decrypt, "
                f"{c.expansion:.1f} times the plaintext bytes."
            )
    acc = train.accuracy
    parts.append(
        f"Trained with {train.uploads} asynchronous uploads, the MLP reached "
        f"{100 * acc['plaintext']:.2f}% test accuracy in plaintext and "
        f"{100 * acc['encrypted']:.2f}% under LWE encryption; the encrypted model is "
        f"{'identical' if train.identical_to_fixed_point else 'NOT identical'} to "
        "the fixed-point plaintext model, bit for bit. Per upload a participant "
        f"spent {train.participant_seconds:.2f} CPU s decrypting the model and "
        f"encrypting its update, the server {1e3 * train.server_seconds:.0f} ms, and "
        f"{train.upload_bytes / 1e6:.2f} MB went each way."
    )
    if trials:
        exact = all(t.leak_exact for t in trials)
        how = "exactly (to the last fixed-point bit)" if exact else "NOT exactly"
        cipher = np.mean([t.ciphertext.psnr for t in trials])
        parts.append(
            "Inverting Gradients on one image's plaintext update reached "
            f"{np.mean([t.plaintext.psnr for t in trials]):.1f} dB; on the server's "
            f"ciphertext, decoded as a message, {cipher:.1f} dB, "
            f"against {np.mean([t.unrelated_psnr for t in trials]):.1f} dB for an "
            "unrelated test image; a participant who decrypted the model before and "
            "after that upload recovered it "
            f"{how} and "
            f"inverted it to {np.mean([t.leaked.psnr for t in trials]):.1f} dB."
        )
    return " ".join(parts)
