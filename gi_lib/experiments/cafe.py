"""The CAFE notebook's experiments: PSNR against batch size and parties, CAFE
against DLG in the same vertical setting."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from matplotlib.figure import Figure

from gi_lib import data, fl, metrics, plots, vertical
from gi_lib.attacks import cafe
from gi_lib.attacks.base import (
    OptimConfig,
    Problem,
    attack_generator,
    l2_gradient_distance,
    optimize,
    pixel_space,
)
from gi_lib.experiments.common import threads_text, uses_num_threads
from gi_lib.params import (
    ExperimentParams,
    ParameterError,
    check_parameters,
    param,
    resolve_device,
)
from gi_lib.results import ResultRow

NOTEBOOK = "cafe"
VERTICAL_MODELS = ("vertical_cnn",)
DEVICES = ("cpu",)
"""Where CAFE runs: the attack keeps its per-sample state in CPU tensors
(:class:`gi_lib.attacks.cafe.CAFE`), and the vertical training stays beside it."""


@dataclass(frozen=True, kw_only=True)
class CAFEParams(ExperimentParams):
    """The CAFE notebook's parameters."""

    model: str = param(
        "parties' bottom models (gi_lib.vertical.VerticalModel) and a linear top",
        choices=VERTICAL_MODELS,
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


NO_PAPER_NUMBER = (
    "no paper value: the paper's tables could not be read from the sources "
    "available here, so none is cited"
)


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
    """One CAFE run: its setting, reconstruction and per-sample PSNR."""

    batch_size: int
    num_parties: int
    psnr: torch.Tensor  # (N,)
    images: torch.Tensor
    first_gradient_error: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def mean_psnr(self) -> float:
        return float(self.psnr.mean())


def setup(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_parties: int,
    batch_size: int,
    lr: float,
    seed: int,
    num_classes: int,
) -> vertical.VerticalTraining:
    """The vertical training the attack watches (models seeded by ``seed``)."""
    shapes = [tuple(s.shape[1:]) for s in vertical.split_features(images, num_parties)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = vertical.VerticalModel(shapes, num_classes)
    return vertical.VerticalTraining(
        model, images, labels, batch_size=batch_size, lr=lr, seed=seed
    )


def attacker_for(training: vertical.VerticalTraining, seed: int) -> cafe.CAFE:
    """A CAFE attacker sized from public knowledge: the models and sample count."""
    model = training.model
    first = model.parties[0].first_fc
    return cafe.CAFE(
        training.num_samples,
        model.slice_shapes,
        hidden=first.out_features,
        feature_size=first.in_features,
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
    )
    attacker = attacker_for(training, seed)
    start = time.perf_counter()
    history = []
    for step in range(iterations):
        losses = attacker.update(training.step())
        if step % 10 == 0 or step == iterations - 1:
            history.append({"iteration": float(step), **losses})
    seconds = time.perf_counter() - start
    reconstruction = attacker.images()
    # Step 1's recovered dL/dH against the truth at the final model.
    observation = training.step()
    model = observation.model
    slices = vertical.split_features(images, num_parties)
    errors = []
    for m, party in enumerate(model.parties):
        inputs = slices[m].clone()
        hidden = party.first_fc(party.features(inputs))
        embeddings = [p(s) for p, s in zip(model.parties, slices, strict=True)]
        embeddings[m] = party.embed(torch.relu(hidden))
        loss = fl.cross_entropy(model.top(torch.cat(embeddings, 1)), labels)
        truth = torch.autograd.grad(loss, hidden)[0] * images.shape[0] / batch_size
        errors.append(
            float((attacker.output_gradients[m] - truth).norm() / truth.norm())
        )
    return CAFERun(
        batch_size=batch_size,
        num_parties=num_parties,
        psnr=metrics.psnr(reconstruction, images),
        images=reconstruction,
        first_gradient_error=sum(errors) / len(errors),
        seconds=seconds,
        history=history,
    )


def dlg_vertical(
    observation: vertical.VerticalObservation,
    *,
    iterations: int,
    seed: int,
) -> torch.Tensor:
    """DLG on one observed batch in the vertical setting, labels known.

    Dummy features for every party at once, L-BFGS on the squared L2 distance
    between all observed gradients (top and every party's) and the dummy's.
    """
    model = observation.model
    observed = list(observation.top_gradients) + [
        g for p in observation.party_gradients for g in p
    ]
    shapes = model.slice_shapes
    batch = observation.indices.numel()
    width = sum(s[2] for s in shapes)

    def objective(variables: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        top, parties = vertical.vertical_gradients(
            model,
            vertical.split_features(variables[0], len(shapes)),
            observation.labels,
        )
        simulated = list(top) + [g for p in parties for g in p]
        matching = l2_gradient_distance(simulated, observed)
        return matching, matching

    def init(restart: int) -> list[torch.Tensor]:
        generator = attack_generator(seed, restart, torch.device("cpu"))
        shape = (batch, shapes[0][0], shapes[0][1], width)
        return [torch.rand(shape, generator=generator)]

    problem = Problem(
        objective=objective,
        init=init,
        labels=lambda _variables: observation.labels,
        space=pixel_space(torch.device("cpu")),
        description="DLG",
    )
    config = OptimConfig(
        optimizer="lbfgs",
        lr=1.0,
        max_iterations=iterations,
        box_constraint=True,
        on_divergence="stop",
    )
    return optimize(problem, config).images


@dataclass
class CAFEExperiment:
    """Everything the notebook shows."""

    params: CAFEParams
    device: torch.device
    truth: torch.Tensor
    by_batch: list[CAFERun]
    by_parties: list[CAFERun]
    dlg_psnr: float
    dlg_images: torch.Tensor
    dlg_truth: torch.Tensor
    dlg_seconds: float
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
                    f"in {runs[key].seconds:.0f} s",
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
    )
    observation = training.step()
    start = time.perf_counter()
    dlg_images = dlg_vertical(
        observation, iterations=params.dlg_iterations, seed=params.seed
    )
    dlg_seconds = time.perf_counter() - start
    dlg_truth = images[observation.indices]
    order = metrics.best_matching(dlg_images, dlg_truth)
    dlg_psnr = float(metrics.psnr(dlg_images[order], dlg_truth).mean())
    cafe_same = float(default.psnr[observation.indices].mean())
    return CAFEExperiment(
        params=params,
        device=device,
        truth=images,
        by_batch=by_batch,
        by_parties=by_parties,
        dlg_psnr=dlg_psnr,
        dlg_images=dlg_images[order],
        dlg_truth=dlg_truth,
        dlg_seconds=dlg_seconds,
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
    count = min(shown, result.dlg_truth.shape[0])
    rows = [
        [result.truth[i] for i in range(shown)],
        [default.images[i] for i in range(shown)],
        [result.dlg_truth[i] for i in range(count)]
        + [result.dlg_truth[0]] * (shown - count),
        [result.dlg_images[i] for i in range(count)]
        + [result.dlg_images[0]] * (shown - count),
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
                f"mean over {n} samples after {iterations} steps; {NO_PAPER_NUMBER}",
            ),
            ResultRow.against(
                experiment,
                "seconds",
                run_.seconds,
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
            result.dlg_psnr,
            None,
            f"one batch of {batch}, {result.params.dlg_iterations} L-BFGS steps, "
            "labels known; CAFE on the same samples: "
            f"{result.cafe_on_dlg_batch:.1f} dB",
        ),
        ResultRow.against(
            f"{dataset}/vertical/B{batch}-M{parties}/dlg",
            "seconds",
            result.dlg_seconds,
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
        f"batch of {result.params.batch_size}, DLG reaches {result.dlg_psnr:.1f} dB "
        f"where CAFE reaches {result.cafe_on_dlg_batch:.1f} dB on the same samples."
    )
