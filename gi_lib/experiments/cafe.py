"""The CAFE notebook's experiments: PSNR against batch size and parties, CAFE
against DLG in the same vertical setting."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from matplotlib.figure import Figure

from gi_lib import data, fl, plots, vertical
from gi_lib.attacks import cafe
from gi_lib.attacks.base import (
    Reconstruction,
)
from gi_lib.experiments.baselines import dlg_vertical
from gi_lib.experiments.common import (
    PAPER_NUMBERS_UNREAD,
    AttackedSample,
    attack_and_score,
    threads_text,
    uses_num_threads,
)
from gi_lib.params import (
    ExperimentParams,
    ParameterError,
    check_parameters,
    param,
    resolve_device,
)
from gi_lib.results import ResultRow

NOTEBOOK = "cafe"
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
    """Check the parameters (see :class:`CAFEParams`): batch sizes may not
    exceed the samples held; figures show at most ``num_trials`` samples."""
    params = check_parameters(values, CAFEParams, notebook=NOTEBOOK)
    for size in (params.batch_size, *params.batch_sizes):
        if size > params.num_trials:
            raise ParameterError(
                f"batch size {size} exceeds the {params.num_trials} samples held "
                "(num_trials); lower it or raise num_trials."
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
    dlg: AttackedSample
    cafe_on_dlg_batch: float


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
    common = dict(
        iterations=params.iterations,
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
                images, labels, num_parties=parties, batch_size=batch_size, **common
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
    # DLG on the first batch of the same training, same models.
    training = setup(
        images,
        labels,
        num_parties=params.num_parties,
        batch_size=params.batch_size,
        lr=params.train_lr,
        seed=params.seed,
        num_classes=info.num_classes,
        model=params.model,
    )
    observation = training.step()
    dlg = attack_and_score(
        partial(
            dlg_vertical,
            observation,
            iterations=params.dlg_iterations,
            seed=params.seed,
        ),
        images[observation.indices],
        setting="dlg",
        true_labels=observation.labels,
    )
    cafe_same = float(default.sample.score.psnr[observation.indices].mean())
    return CAFEExperiment(
        params=params,
        device=device,
        truth=images,
        by_batch=by_batch,
        by_parties=by_parties,
        dlg=dlg,
        cafe_on_dlg_batch=cafe_same,
    )


def sweep_figure(result: CAFEExperiment) -> Figure:
    """Mean PSNR against batch size and against the number of parties."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(7.5, 3.0))
    for axis, runs, key, label in (
        (axes[0], result.by_batch, "batch_size", "batch size"),
        (axes[1], result.by_parties, "num_parties", "parties"),
    ):
        axis.plot(
            [getattr(r, key) for r in runs],
            [r.mean_psnr for r in runs],
            marker="o",
            color=plots.PALETTE[0],
        )
        axis.set_xlabel(label)
        axis.set_ylabel("mean PSNR (dB)")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def examples_figure(result: CAFEExperiment) -> Figure:
    """Rows: true images, CAFE's (default setting), DLG's on its batch."""
    shown = result.params.num_shown
    default = next(
        r for r in result.by_parties if r.num_parties == result.params.num_parties
    )
    dlg = result.dlg
    count = min(shown, dlg.true_images.shape[0])
    rows = [
        [result.truth[i] for i in range(shown)],
        [default.sample.images[i] for i in range(shown)],
        [dlg.true_images[i] for i in range(count)]
        + [dlg.true_images[0]] * (shown - count),
        [dlg.images[i] for i in range(count)] + [dlg.images[0]] * (shown - count),
    ]
    return plots.image_rows(
        rows,
        [f"#{i}" for i in range(shown)],
        ["truth", "CAFE", "DLG batch truth", "DLG"],
    )


def rows(result: CAFEExperiment) -> list[ResultRow]:
    """Scorecard rows: CAFE's PSNR per setting, DLG beside CAFE."""
    dataset = result.params.dataset
    n = result.params.num_trials
    iterations = result.params.iterations
    threads = threads_text(result.params.num_threads)
    out = []
    seen = set()
    for run_ in [*result.by_batch, *result.by_parties]:
        key = (run_.batch_size, run_.num_parties)
        if key in seen:
            continue
        seen.add(key)
        experiment = f"{dataset}/vertical/B{run_.batch_size}-M{run_.num_parties}/cafe"
        out += [
            ResultRow.against(
                experiment,
                "psnr",
                run_.mean_psnr,
                None,
                f"mean over {n} samples after {iterations} steps; "
                + PAPER_NUMBERS_UNREAD,
            ),
            ResultRow.against(
                experiment,
                "seconds",
                run_.sample.seconds,
                None,
                f"{iterations} steps, {threads}; step-1 relative error "
                f"{run_.first_gradient_error:.1e}",
            ),
        ]
    batch = result.params.batch_size
    parties = result.params.num_parties
    out += [
        ResultRow.against(
            f"{dataset}/vertical/B{batch}-M{parties}/dlg",
            "psnr",
            result.dlg.psnr,
            None,
            f"one batch of {batch}, {result.params.dlg_iterations} L-BFGS steps, "
            "labels known; CAFE on the same samples: "
            f"{result.cafe_on_dlg_batch:.1f} dB",
        ),
        ResultRow.against(
            f"{dataset}/vertical/B{batch}-M{parties}/dlg",
            "seconds",
            result.dlg.seconds,
            None,
            threads,
        ),
    ]
    return out


def summary_text(result: CAFEExperiment) -> str:
    """One sentence with this run's numbers."""
    batch = ", ".join(
        f"B={r.batch_size}: {r.mean_psnr:.1f} dB" for r in result.by_batch
    )
    parties = ", ".join(
        f"M={r.num_parties}: {r.mean_psnr:.1f} dB" for r in result.by_parties
    )
    return (
        f"In this run ({result.params.profile} profile, "
        f"{result.params.num_trials} samples, {result.params.iterations} steps): "
        f"CAFE's mean PSNR by batch size {batch}; by parties {parties}. On one "
        f"batch of {result.params.batch_size}, DLG reaches {result.dlg.psnr:.1f} dB "
        f"where CAFE reaches {result.cafe_on_dlg_batch:.1f} dB on the same samples."
    )
