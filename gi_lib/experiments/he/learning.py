"""Parts 3 and 4 of the HE page: the paper's MLP trained in plaintext, in
fixed point and under LWE, and the attacks on what the server and another
participant see."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from gi_lib import data, fl, metrics, training
from gi_lib.attacks import build_attack
from gi_lib.attacks import inverting as _inverting  # noqa: F401  (make sees the attack)
from gi_lib.defenses import _lwe, he
from gi_lib.defenses.aggregation import SERVER, UpdateLayout, client_name
from gi_lib.experiments.common import AttackedSample, attack_and_score
from gi_lib.experiments.he.params import HEParams
from gi_lib.models import Normalize


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
