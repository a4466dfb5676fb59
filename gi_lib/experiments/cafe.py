"""The CAFE notebook's experiments: PSNR against batch size and parties, CAFE
against DLG in the same vertical setting, and the paper's claims checked."""

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
    mean,
    mean_of,
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
from gi_lib.results import (
    Claim,
    ResultRow,
    bound_claim,
    paired_claim,
    untested_claim,
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
    # DLG on each of the first batches of the same training (same models, same
    # batches as the default run saw first), from that step's gradients alone.
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
    """Rows: true images, CAFE's (default setting), DLG's first batch."""
    shown = result.params.num_shown
    default = result.default
    dlg = result.dlg[0]
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
    batches = len(result.dlg)
    out += [
        ResultRow.against(
            f"{dataset}/vertical/B{batch}-M{parties}/dlg",
            "psnr",
            mean_of(result.dlg, "psnr"),
            None,
            f"mean over the first {batches} batch(es) of {batch}, each alone, "
            f"{result.params.dlg_iterations} L-BFGS steps, labels known; CAFE on "
            f"the same samples: {mean(result.cafe_on_dlg_batches):.1f} dB; "
            + PAPER_NUMBERS_UNREAD,
        ),
        ResultRow.against(
            f"{dataset}/vertical/B{batch}-M{parties}/dlg",
            "seconds",
            mean_of(result.dlg, "seconds"),
            None,
            f"per batch, {threads}",
        ),
    ]
    return out


RECOVERED_PSNR = 30.0
"""dB: the level above which this page counts a sample as recovered. The
paper's PSNR tables could not be read (PAPER_VALUES.md, section 7: NF), so
this is the page's own bar: at 30 dB the mean squared error is 1e-3 of the
pixel range squared, and an MNIST digit is indistinguishable from its
reconstruction by eye."""

BATCH_MARGIN = 2.0
"""dB: how far the PSNR may fall from the smallest to the largest batch and
still count as "holding" as the batch grows (the book's PSNR band around a
paper's value, :data:`gi_lib.results.DEFAULT_BANDS`)."""

_NF = "its PSNR tables could not be read (PAPER_VALUES.md, section 7: NF)"


def claims(result: CAFEExperiment) -> list[Claim]:
    """The paper's claims, judged on this run.

    - CAFE recovers the data: the per-sample PSNRs of the run at the largest
      batch swept must clear :data:`RECOVERED_PSNR` (the t-interval of their
      mean, :func:`gi_lib.results.bound_claim`).
    - CAFE beats DLG: paired per batch, DLG on each of the first
      :data:`DLG_BATCHES` batches against CAFE's PSNR on the same samples
      (three batches at least for a verdict).
    - A larger batch does not protect: paired per sample, the largest batch
      swept against the smallest, at the same number of steps, judged
      against a margin of :data:`BATCH_MARGIN`.
    """
    p = result.params
    largest = max(result.by_batch, key=lambda r: r.batch_size)
    smallest = min(result.by_batch, key=lambda r: r.batch_size)
    out = [
        bound_claim(
            f"CAFE recovers the training samples in vertical FL: batches of "
            f"{largest.batch_size} drawn from {p.num_trials} samples, "
            f"{largest.num_parties} parties, mean PSNR above {RECOVERED_PSNR:g} dB",
            'Jin et al., abstract ("large-batch data leakage attack with '
            f"improved data recovery quality\"); {_NF}, so the bar is the page's",
            [float(v) for v in largest.sample.score.psnr],
            above=RECOVERED_PSNR,
            unit="dB",
            what=f"per-sample PSNR after {p.iterations} steps (one training run)",
        ),
        paired_claim(
            f"CAFE recovers batches DLG cannot: on each of the first "
            f"{len(result.dlg)} batch(es) of {p.batch_size}, CAFE's PSNR beats "
            "DLG's from that batch's gradients",
            'Jin et al., abstract ("Comparing to existing data leakage '
            'attacks ... improved data recovery quality"); the CAFE-vs-DLG '
            "table could not be read (PAPER_VALUES.md, section 7: NF)",
            result.cafe_on_dlg_batches,
            [d.psnr for d in result.dlg],
            names=("CAFE", "DLG"),
        ),
    ]
    if largest.batch_size > smallest.batch_size:
        out.append(
            paired_claim(
                "A larger batch does not protect against CAFE: at the same "
                f"number of training steps, batches of {largest.batch_size} leave "
                f"the PSNR no more than {BATCH_MARGIN:g} dB below batches of "
                f"{smallest.batch_size}",
                'Jin et al., abstract ("Increasing batch size to complicate '
                "data recovery is often viewed as a promising defense strategy "
                f'... we revisit this defense premise"); {_NF}',
                [float(v) for v in largest.sample.score.psnr],
                [float(v) for v in smallest.sample.score.psnr],
                names=(f"batch {largest.batch_size}", f"batch {smallest.batch_size}"),
                margin=-BATCH_MARGIN,
            )
        )
    else:
        out.append(
            untested_claim(
                "A larger batch does not protect against CAFE",
                f"Jin et al., abstract; {_NF}",
                "this profile sweeps a single batch size",
            )
        )
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
        f"CAFE's mean PSNR by batch size {batch}; by parties {parties}. On the "
        f"first {len(result.dlg)} batch(es) of {result.params.batch_size}, DLG "
        f"reaches {mean_of(result.dlg, 'psnr'):.1f} dB on average where CAFE "
        f"reaches {mean(result.cafe_on_dlg_batches):.1f} dB on the same samples."
    )
