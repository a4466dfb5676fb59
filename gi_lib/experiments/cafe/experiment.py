"""The CAFE page's parameters and run: the vertical-FL setup, CAFE's attack
over the sweep of parties and batch sizes, and DLG on the same batches."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from gi_lib import data, fl, vertical
from gi_lib.attacks import cafe
from gi_lib.attacks.base import Reconstruction
from gi_lib.experiments.baselines import dlg_vertical
from gi_lib.experiments.common import AttackedSample, attack_and_score, uses_num_threads
from gi_lib.params import (
    ExperimentParams,
    ParameterError,
    check_parameters,
    param,
    resolve_device,
)

NOTEBOOK = "cafe"
DLG_BATCHES = 3
"""Batches DLG attacks, the first ones of the page's training: the paired
trials of CAFE against DLG, as few as a verdict takes."""
DEVICES = ("cpu",)
"""Where CAFE runs: the attack keeps its per-sample state in CPU tensors
(:class:`gi_lib.attacks.cafe.CAFE`), and the vertical training stays beside it."""


@dataclass(frozen=True, kw_only=True)
class CAFEParams(ExperimentParams):
    """The CAFE notebook's parameters."""

    model: str = param(
        "the parties' and the server's models (gi_lib.vertical.VERTICAL_MODELS)",
        choices=vertical.vertical_model_names,
    )
    device: str = param(
        "where to compute: CAFE runs on the CPU (auto: the CPU)",
        choices=("auto", *DEVICES),
    )
    batch_size: int = param("samples per training step", minimum=1)
    num_parties: int = param("parties splitting each image", minimum=1)
    batch_sizes: tuple[int, ...] = param("batch sizes swept", minimum=1)
    party_counts: tuple[int, ...] = param("numbers of parties swept", minimum=1)
    iterations: int = param("training steps CAFE runs alongside", minimum=1)
    train_lr: float = param("SGD step of the vertical training", minimum=0)
    dlg_iterations: int = param("L-BFGS steps of the DLG baseline", minimum=1)
    num_shown: int = param("reconstructions shown", minimum=1)


def check(values: Mapping[str, Any]) -> CAFEParams:
    """Check the parameters (see :class:`CAFEParams`): every batch is a proper
    subset of the samples held; figures show at most ``num_trials`` samples.

    A batch of all ``num_trials`` samples is refused, not run: every step
    would then hold the same samples, step 1's bias-gradient equations would
    all be the same sum, and CAFE could not tell one sample from another (the
    paper draws its batches of 40 from 800 samples).
    """
    params = check_parameters(values, CAFEParams, notebook=NOTEBOOK)
    for size in (params.batch_size, *params.batch_sizes):
        if size > params.num_trials:
            raise ParameterError(
                f"batch size {size} exceeds the {params.num_trials} samples held "
                "(num_trials); lower it or raise num_trials."
            )
        if size == params.num_trials:
            raise ParameterError(
                f"batch size {size} is all {size} samples held (num_trials): "
                "every step would batch the same samples, and CAFE's step 1 "
                "could not tell them apart (the paper draws batches of 40 from "
                "800 samples); lower it or raise num_trials."
            )
    return dataclasses.replace(
        params, num_shown=min(params.num_shown, params.num_trials)
    )


@dataclass
class CAFERun:
    """One CAFE run: its setting, its record and step 1's final error.

    Attributes:
        batch_size: samples per training step.
        num_parties: parties splitting each image.
        sample: every sample's reconstruction, scored in sample order (the
            server knows which reconstruction is which sample).
        first_gradient_error: step 1's relative error of each party's
            recovered ``dL/dH`` at the final model, averaged over parties.
    """

    batch_size: int
    num_parties: int
    sample: AttackedSample
    first_gradient_error: float

    @property
    def mean_psnr(self) -> float:
        """Mean PSNR over all samples."""
        return self.sample.psnr


def setup(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_parties: int,
    batch_size: int,
    lr: float,
    seed: int,
    num_classes: int,
    model: str = "vertical_cnn",
) -> vertical.VerticalTraining:
    """The vertical training the attack watches: ``model`` from
    :data:`gi_lib.vertical.VERTICAL_MODELS`, seeded by ``seed``."""
    shapes = [tuple(s.shape[1:]) for s in vertical.split_features(images, num_parties)]
    return vertical.VerticalTraining(
        vertical.build_vertical_model(model, shapes, num_classes, seed=seed),
        images,
        labels,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
    )


def run_cafe(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_parties: int,
    batch_size: int,
    iterations: int,
    lr: float,
    seed: int,
    num_classes: int,
    model: str = "vertical_cnn",
) -> CAFERun:
    """Train vertically for ``iterations`` steps with CAFE watching."""
    training = setup(
        images,
        labels,
        num_parties=num_parties,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        num_classes=num_classes,
        model=model,
    )
    attacker = cafe.CAFE.for_model(training.model, training.num_samples, seed=seed)
    start = time.perf_counter()
    history = []
    for step in range(iterations):
        losses = attacker.update(training.step())
        if step % 10 == 0 or step == iterations - 1:
            history.append({"iteration": float(step), **losses})
    seconds = time.perf_counter() - start
    reconstruction = Reconstruction(
        images=attacker.images(),
        labels=labels,  # the server holds every sample's label
        loss=history[-1]["step3"],
        history=history,
        evaluations=iterations,
    )
    # Step 1's recovered dL/dH against the truth at the final model.
    final = training.step().model
    slices = vertical.split_features(images, num_parties)
    errors = []
    for m, party in enumerate(final.parties):
        inputs = slices[m].clone()
        hidden = party.first_fc(party.features(inputs))
        embeddings = [p(s) for p, s in zip(final.parties, slices, strict=True)]
        embeddings[m] = party.embed(torch.relu(hidden))
        loss = fl.cross_entropy(final.top(torch.cat(embeddings, 1)), labels)
        truth = torch.autograd.grad(loss, hidden)[0] * images.shape[0] / batch_size
        errors.append(
            float((attacker.output_gradients[m] - truth).norm() / truth.norm())
        )
    return CAFERun(
        batch_size=batch_size,
        num_parties=num_parties,
        sample=AttackedSample.scored(
            reconstruction,
            images,
            seconds=seconds,
            setting="cafe",
            true_labels=labels,
            match=False,
        ),
        first_gradient_error=sum(errors) / len(errors),
    )


@dataclass
class CAFEExperiment:
    """Everything the notebook shows."""

    params: CAFEParams
    device: torch.device
    truth: torch.Tensor
    by_batch: list[CAFERun]
    by_parties: list[CAFERun]
    dlg: list[AttackedSample]
    cafe_on_dlg_batches: list[float]

    @property
    def default(self) -> CAFERun:
        """The run at the page's own ``batch_size`` and ``num_parties``."""
        p = self.params
        return next(
            r
            for r in [*self.by_parties, *self.by_batch]
            if (r.batch_size, r.num_parties) == (p.batch_size, p.num_parties)
        )


@uses_num_threads
def run(params: CAFEParams, *, progress: bool = True) -> CAFEExperiment:
    """The sweeps over batch size and parties, and the DLG comparison (on the
    CPU: :data:`DEVICES`)."""
    device = resolve_device(params.device, supported=DEVICES)
    return _run(params, device, progress)


def _run(params: CAFEParams, device: torch.device, progress: bool) -> CAFEExperiment:
    info = data.dataset_info(params.dataset)
    images, labels, _ = data.sample_victims(
        data.load_dataset(params.dataset, "train"),
        params.num_trials,
        params.seed,
    )
    # What every run's vertical training shares (:func:`setup`'s arguments
    # but the batch size and the parties).
    training_settings: dict[str, Any] = dict(
        lr=params.train_lr,
        seed=params.seed,
        num_classes=info.num_classes,
        model=params.model,
    )
    runs: dict[tuple[int, int], CAFERun] = {}

    def get(batch_size: int, parties: int) -> CAFERun:
        key = (batch_size, parties)
        if key not in runs:
            runs[key] = run_cafe(
                images,
                labels,
                num_parties=parties,
                batch_size=batch_size,
                iterations=params.iterations,
                **training_settings,
            )
            if progress:
                print(
                    f"CAFE B={batch_size} M={parties}: {runs[key].mean_psnr:.1f} dB "
                    f"in {runs[key].sample.seconds:.0f} s",
                    flush=True,
                )
        return runs[key]

    by_batch = [get(b, params.num_parties) for b in params.batch_sizes]
    by_parties = [get(params.batch_size, m) for m in params.party_counts]
    default = get(params.batch_size, params.num_parties)
    # DLG on each of the first batches of the same training (same models, same
    # batches as the default run saw first), from that step's gradients alone.
    training = setup(
        images,
        labels,
        num_parties=params.num_parties,
        batch_size=params.batch_size,
        **training_settings,
    )
    dlg, cafe_same = [], []
    for index in range(DLG_BATCHES):
        observation = training.step()
        dlg.append(
            attack_and_score(
                partial(
                    dlg_vertical,
                    observation,
                    iterations=params.dlg_iterations,
                    seed=params.seed + index,
                ),
                images[observation.indices],
                setting="dlg",
                index=index,
                true_labels=observation.labels,
            )
        )
        cafe_same.append(float(default.sample.score.psnr[observation.indices].mean()))
        if progress:
            print(
                f"DLG batch {index}: {dlg[-1].psnr:.1f} dB (CAFE on the same "
                f"samples {cafe_same[-1]:.1f} dB) in {dlg[-1].seconds:.0f} s",
                flush=True,
            )
    return CAFEExperiment(
        params=params,
        device=device,
        truth=images,
        by_batch=by_batch,
        by_parties=by_parties,
        dlg=dlg,
        cafe_on_dlg_batches=cafe_same,
    )
