"""The Inverting Gradients notebook's experiments.

1. Trained vs untrained network, L2 + L-BFGS (DLG-style) vs cosine + signed
   Adam + TV (the paper's attack), mean PSNR over victim images.
2. FedAvg: PSNR as the client's local epochs, number of local images and
   local learning rate vary (one factor at a time around a base setting),
   plus the same base update attacked as if it were a gradient.
3. Batch size: reconstruction quality as images per update grow.
4. An ImageNet-size example when ``$GI_DATA_DIR/imagenet`` exists.

Every attack here knows the labels (all of the paper's experiments pass the
true labels); BatchNorm is in eval mode throughout.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from gi_lib import data, fl, metrics, models, plots, training
from gi_lib.attacks import inverting
from gi_lib.attacks.base import OptimConfig, Reconstruction, infer_labels
from gi_lib.experiments.common import uses_num_threads
from gi_lib.params import (
    ExperimentParams,
    ParameterError,
    check_parameters,
    param,
    resolve_device,
)
from gi_lib.results import ResultRow

NOTEBOOK = "inverting_gradients"


@dataclass(frozen=True, kw_only=True)
class IGParams(ExperimentParams):
    """The Inverting Gradients notebook's parameters."""

    max_iterations: int = param(
        "signed-Adam steps per attack (paper code: 4,800-24,000)", minimum=1
    )
    lr: float = param("Adam step size, normalised space (0.1)", minimum=1e-6)
    tv_weight: float = param("total-variation weight", minimum=0)
    restarts: int = param("restarts per attack, best by loss", minimum=1)
    lbfgs_iterations: int = param(
        "L-BFGS steps of the L2 baseline (20 evaluations each)", minimum=1
    )
    train_epochs: int = param("epochs for the trained network", minimum=1)
    train_images: int = param("training images (0: all)", minimum=0)
    train_lr: float = param("training learning rate (paper: 0.1)", minimum=1e-6)
    fedavg_epochs: tuple[int, ...] = param("local epochs; first is base", minimum=1)
    fedavg_images: tuple[int, ...] = param("local image counts", minimum=1)
    fedavg_lrs: tuple[float, ...] = param("local learning rates", above=0)
    fedavg_batch_size: int = param(
        "local mini-batch size (0: the whole local batch)", minimum=0
    )
    fedavg_iterations: int = param("attack steps per FedAvg attack", minimum=1)
    batch_sizes: tuple[int, ...] = param("images per update", minimum=1)
    batch_iterations: int = param("attack steps per batch attack", minimum=1)
    num_shown: int = param("victim images shown in the figure", minimum=1)


UNVERIFIED = (
    "the paper's value could not be verified from its text here, so none is shown"
)
PAPER_SETTING = (
    "paper: ResNet and LeNet on the first 100 CIFAR-10 validation images, "
    "4,800-24,000 steps"
)


def check(values: Mapping[str, Any]) -> IGParams:
    """Check the notebook's parameters (see :class:`IGParams`): batches hold
    at most one image per class; figures show at most ``num_trials`` images."""
    params = check_parameters(values, IGParams, notebook=NOTEBOOK)
    info = data.dataset_info(params.dataset)
    if max(params.batch_sizes) > info.num_classes:
        raise ParameterError(
            f"batch_sizes go up to {max(params.batch_sizes)}, but victims are drawn "
            f"with distinct labels and {params.dataset} has {info.num_classes} "
            "classes."
        )
    return dataclasses.replace(
        params, num_shown=min(params.num_shown, params.num_trials)
    )


@dataclass
class Attacked:
    """One attack on one update and its score."""

    setting: str
    true_images: torch.Tensor
    images: torch.Tensor
    psnr: float
    ssim: float
    lpips: float | None
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def _score(
    setting: str, result: Reconstruction, truth: torch.Tensor, seconds: float
) -> Attacked:
    images = result.images.detach().cpu()
    truth = truth.detach().cpu()
    if images.shape[0] > 1:
        images = images[metrics.best_matching(images, truth)]
    score = metrics.lpips(images, truth)
    return Attacked(
        setting=setting,
        true_images=truth,
        images=images,
        psnr=float(metrics.psnr(images, truth).mean()),
        ssim=float(metrics.ssim(images, truth).mean()),
        lpips=None if score is None else float(score.mean()),
        seconds=seconds,
        history=result.history,
    )


def _config(params: IGParams, iterations: int) -> inverting.InvertingConfig:
    return inverting.tv_config(
        tv_weight=params.tv_weight,
        lr=params.lr,
        max_iterations=iterations,
        restarts=params.restarts,
        on_divergence="stop",
    )


def distinct_label_victims(
    dataset: torch.utils.data.Dataset, num_images: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``num_images`` images with distinct labels, as the paper's batches."""
    pool, labels, _ = data.sample_victims(
        dataset, min(len(dataset), 40 * num_images), seed
    )  # type: ignore[arg-type]
    chosen: list[int] = []
    seen: set[int] = set()
    for i, label in enumerate(labels.tolist()):
        if label not in seen:
            seen.add(label)
            chosen.append(i)
        if len(chosen) == num_images:
            break
    if len(chosen) < num_images:
        raise ValueError(f"could not find {num_images} distinct labels")
    index = torch.tensor(chosen)
    return pool[index], labels[index]


@dataclass
class IGRun:
    """Everything the notebook shows."""

    params: IGParams
    device: torch.device
    trained: training.TrainedModel
    table: dict[str, list[Attacked]]  # "untrained/cosine" -> trials
    fedavg: list[tuple[dict[str, float], Attacked]]
    fedavg_ignoring_steps: Attacked
    batches: dict[int, Attacked]
    batch_label_accuracy: dict[int, float]
    imagenet_note: str
    imagenet: Attacked | None
    seconds: dict[str, float]


def run_table(
    params: IGParams,
    device: torch.device,
    trained: training.TrainedModel,
    victims: tuple[torch.Tensor, torch.Tensor],
    *,
    progress: bool,
) -> dict[str, list[Attacked]]:
    """Experiment 1: trained vs untrained, L2 + L-BFGS vs the paper's attack."""
    info = data.dataset_info(params.dataset)
    networks = {
        "untrained": models.build_model(params.model, info, seed=params.seed),
        "trained": trained.model,
    }
    lbfgs = OptimConfig(
        optimizer="lbfgs",
        lr=1.0,
        max_iterations=params.lbfgs_iterations,
        on_divergence="stop",
    )
    table: dict[str, list[Attacked]] = {}
    images, labels = victims
    for state, net in networks.items():
        net = net.to(device).eval()
        for i in range(params.num_trials):
            truth = images[i : i + 1].to(device)
            observation = fl.observe_fedsgd(
                net,
                truth,
                labels[i : i + 1].to(device),
                num_classes=info.num_classes,
                reveal_labels=True,
            )
            seed = params.seed + i
            start = time.perf_counter()
            result = inverting.reconstruct_l2_lbfgs(observation, lbfgs, seed=seed)
            table.setdefault(f"{state}/l2", []).append(
                _score("L2 + L-BFGS", result, truth, time.perf_counter() - start)
            )
            start = time.perf_counter()
            config = _config(params, params.max_iterations)
            result = inverting.reconstruct(observation, config, seed=seed, truth=truth)
            table.setdefault(f"{state}/cosine", []).append(
                _score("cosine", result, truth, time.perf_counter() - start)
            )
            if progress:
                print(
                    f"{state} #{i}: L2 {table[f'{state}/l2'][-1].psnr:.1f} dB, "
                    f"cosine {table[f'{state}/cosine'][-1].psnr:.1f} dB",
                    flush=True,
                )
    return table


def fedavg_settings(params: IGParams) -> list[dict[str, float]]:
    """The base setting, then one factor changed at a time."""
    epochs, images, lrs = params.fedavg_epochs, params.fedavg_images, params.fedavg_lrs
    base = {"epochs": epochs[0], "images": images[0], "lr": lrs[0]}
    settings = [dict(base)]
    settings += [{**base, "epochs": e} for e in epochs[1:]]
    settings += [{**base, "images": n} for n in images[1:]]
    settings += [{**base, "lr": lr} for lr in lrs[1:]]
    return settings


def _local_steps(setting: dict[str, float], batch_size: int) -> tuple[int, int | None]:
    images = int(setting["images"])
    size = images if batch_size == 0 else min(batch_size, images)
    return int(setting["epochs"]) * (images // size), size


def run_fedavg(
    params: IGParams, device: torch.device, dataset: torch.utils.data.Dataset
) -> tuple[list[tuple[dict[str, float], Attacked]], Attacked]:
    """Experiment 2: FedAvg updates on an untrained network."""
    info = data.dataset_info(params.dataset)
    net = models.build_model(params.model, info, seed=params.seed).to(device)
    config = _config(params, params.fedavg_iterations)
    out = []
    base_observation = None
    base_truth = None
    for setting in fedavg_settings(params):
        truth, labels = distinct_label_victims(
            dataset, int(setting["images"]), params.seed + 1
        )
        truth = truth.to(device)
        steps, size = _local_steps(setting, params.fedavg_batch_size)
        observation = fl.observe_fedavg(
            net,
            truth,
            labels.to(device),
            num_classes=info.num_classes,
            local_lr=setting["lr"],
            local_steps=steps,
            local_batch_size=size,
            reveal_labels=True,
        )
        start = time.perf_counter()
        result = inverting.reconstruct(observation, config, seed=params.seed)
        label = (
            f"{int(setting['epochs'])} ep, {int(setting['images'])} img, "
            f"lr {setting['lr']:g}"
        )
        out.append(
            (
                {**setting, "steps": steps},
                _score(label, result, truth, time.perf_counter() - start),
            )
        )
        if base_observation is None:
            base_observation, base_truth = observation, truth
    assert base_observation is not None and base_truth is not None
    start = time.perf_counter()
    result = inverting.reconstruct(
        as_gradient(base_observation), config, seed=params.seed
    )
    ignoring = _score(
        "ignoring local steps", result, base_truth, time.perf_counter() - start
    )
    return out, ignoring


def as_gradient(observation: fl.Observation) -> fl.Observation:
    """A FedAvg update read as if it were one gradient (``-update``).

    The attack that ignores the local steps: it matches the (sign-flipped)
    weight difference with one simulated gradient on the whole batch.
    """
    return dataclasses.replace(
        observation,
        gradients=tuple(-u for u in observation.gradients),
        update_kind="gradient",
        local_lr=None,
        local_steps=None,
        local_batch_size=None,
    )


def run_batches(
    params: IGParams, device: torch.device, dataset: torch.utils.data.Dataset
) -> tuple[dict[int, Attacked], dict[int, float]]:
    """Experiment 3: one update of ``b`` images for each batch size ``b``."""
    info = data.dataset_info(params.dataset)
    net = models.build_model(params.model, info, seed=params.seed).to(device)
    config = _config(params, params.batch_iterations)
    out: dict[int, Attacked] = {}
    label_accuracy: dict[int, float] = {}
    for size in params.batch_sizes:
        truth, labels = distinct_label_victims(dataset, size, params.seed + 2)
        truth, labels = truth.to(device), labels.to(device)
        observation = fl.observe_fedsgd(
            net, truth, labels, num_classes=info.num_classes, reveal_labels=True
        )
        blind = dataclasses.replace(observation, labels=None)
        label_accuracy[size] = metrics.label_accuracy(
            infer_labels(blind).cpu(), labels.cpu()
        )
        start = time.perf_counter()
        result = inverting.reconstruct(observation, config, seed=params.seed)
        out[size] = _score(f"{size} images", result, truth, time.perf_counter() - start)
    return out, label_accuracy


IMAGENET_INFO = data.DatasetInfo(
    "imagenet", 3, 224, 1000, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
)


def imagenet_folder() -> Path | None:
    """``$GI_DATA_DIR/imagenet`` when it exists."""
    root = os.environ.get(data.DATA_ENV)
    folder = Path(root) / "imagenet" if root else None
    return folder if folder is not None and folder.is_dir() else None


def run_imagenet(params: IGParams, device: torch.device) -> tuple[str, Attacked | None]:
    """Experiment 4: one 224x224 image on an untrained ResNet-18, if available."""
    folder = imagenet_folder()
    if folder is None:
        return (
            "No ImageNet folder was found (set GI_DATA_DIR to a folder holding "
            "imagenet/<split>/<class>/<image>), so the ImageNet example is skipped.",
            None,
        )
    from torchvision import datasets, transforms

    split = folder / "val" if (folder / "val").is_dir() else folder
    images = datasets.ImageFolder(
        str(split),
        transform=transforms.Compose(
            [transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()]
        ),
    )
    truth, labels, _ = data.sample_victims(images, 1, params.seed)
    net = models.CifarResNet(IMAGENET_INFO, (2, 2, 2, 2), 64).to(device).eval()
    observation = fl.observe_fedsgd(
        net,
        truth.to(device),
        labels.to(device),
        num_classes=IMAGENET_INFO.num_classes,
        reveal_labels=True,
    )
    start = time.perf_counter()
    result = inverting.reconstruct(
        observation, _config(params, params.batch_iterations), seed=params.seed
    )
    attacked = _score("imagenet", result, truth.to(device), time.perf_counter() - start)
    return (
        f"One image from {split} attacked on an untrained ResNet-18 with 3x3 stem "
        "(not torchvision's ImageNet ResNet-18, whose pretrained weights cannot be "
        "downloaded here).",
        attacked,
    )


@uses_num_threads
def run(params: IGParams, *, progress: bool = True) -> IGRun:
    """Run all four experiments (on ``params.num_threads`` CPU threads)."""
    device = resolve_device(params.device)
    return _run(params, device, progress=progress)


def _run(params: IGParams, device: torch.device, *, progress: bool) -> IGRun:
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    trained = training.trained_model(
        params.model,
        params.dataset,
        epochs=params.train_epochs,
        seed=params.seed,
        device=device,
        num_images=params.train_images or None,
        lr=params.train_lr,
        progress=progress,
    )
    seconds["training"] = time.perf_counter() - start
    dataset = data.load_dataset(params.dataset)
    victims = data.sample_victims(dataset, params.num_trials, params.seed)[:2]
    start = time.perf_counter()
    table = run_table(params, device, trained, victims, progress=progress)
    seconds["table"] = time.perf_counter() - start
    start = time.perf_counter()
    fedavg, ignoring = run_fedavg(params, device, dataset)
    seconds["fedavg"] = time.perf_counter() - start
    start = time.perf_counter()
    batches, label_accuracy = run_batches(params, device, dataset)
    seconds["batches"] = time.perf_counter() - start
    note, imagenet = run_imagenet(params, device)
    return IGRun(
        params=params,
        device=device,
        trained=trained,
        table=table,
        fedavg=fedavg,
        fedavg_ignoring_steps=ignoring,
        batches=batches,
        batch_label_accuracy=label_accuracy,
        imagenet_note=note,
        imagenet=imagenet,
        seconds=seconds,
    )


def _mean(values: list[float]) -> float:
    return float(torch.tensor(values).mean())


TABLE_LABELS = {
    "untrained/l2": "untrained, L2 + L-BFGS",
    "untrained/cosine": "untrained, cosine (ours)",
    "trained/l2": "trained, L2 + L-BFGS",
    "trained/cosine": "trained, cosine (ours)",
}


def examples_figure(result: IGRun) -> Figure:
    """Rows: victim images; columns: the truth and each network/loss pair."""
    keys = [k for k in TABLE_LABELS if k in result.table]
    rows = []
    for i in range(result.params.num_shown):
        first = result.table[keys[0]][i]
        rows.append(
            [first.true_images[0]] + [result.table[k][i].images[0] for k in keys]
        )
    columns = ["truth"] + [TABLE_LABELS[k] for k in keys]
    titles = [f"#{i}" for i in range(len(rows))]
    return plots.image_rows(rows, columns, titles, cell_size=1.4)


def table_frame(result: IGRun):  # noqa: ANN201 - pandas imported lazily
    """Experiment 1 as a table: mean PSNR (and SSIM) per network and loss."""
    import pandas as pd

    records = []
    for key in TABLE_LABELS:
        trials = result.table[key]
        state, loss = key.split("/")
        records.append(
            {
                "network": state,
                "attack": "L2 + L-BFGS"
                if loss == "l2"
                else "cosine + signed Adam + TV",
                "mean PSNR (dB)": round(_mean([t.psnr for t in trials]), 2),
                "mean SSIM": round(_mean([t.ssim for t in trials]), 3),
                "images": len(trials),
            }
        )
    return pd.DataFrame(records)


def fedavg_frame(result: IGRun):  # noqa: ANN201
    """Experiment 2 as a table, one row per client setting."""
    import pandas as pd

    records = [
        {
            "local epochs": int(s["epochs"]),
            "local images": int(s["images"]),
            "local lr": s["lr"],
            "local steps": int(s["steps"]),
            "PSNR (dB)": round(a.psnr, 2),
        }
        for s, a in result.fedavg
    ]
    return pd.DataFrame(records)


def fedavg_figure(result: IGRun) -> Figure:
    """Truth and reconstruction for each FedAvg setting (first image of each)."""
    rows = [[a.true_images[0], a.images[0]] for _, a in result.fedavg]
    rows.append(
        [
            result.fedavg_ignoring_steps.true_images[0],
            result.fedavg_ignoring_steps.images[0],
        ]
    )
    titles = [a.setting for _, a in result.fedavg] + ["base, steps ignored"]
    return plots.image_rows(rows, ["truth", "reconstruction"], titles, cell_size=1.3)


def batch_figure(result: IGRun) -> Figure:
    """Each batch size's reconstructions (matched to the truth) over the truth."""
    largest = max(result.batches)
    rows = []
    titles = []
    for size, attacked in result.batches.items():
        blank = torch.ones_like(attacked.true_images[0])
        rows.append(list(attacked.images) + [blank] * (largest - size))
        titles.append(f"{size}: ours")
    truth = result.batches[largest].true_images
    rows.append(list(truth))
    titles.append(f"{largest}: truth")
    return plots.image_rows(rows, [f"{j + 1}" for j in range(largest)], titles)


def batch_curve(result: IGRun) -> Figure:
    """Mean PSNR against batch size."""
    points = [(float(s), a.psnr) for s, a in result.batches.items()]
    return plots.curves(
        {"cosine + signed Adam + TV": points},
        xlabel="images per update",
        ylabel="mean PSNR (dB), matched",
    )


def rows(result: IGRun) -> list[ResultRow]:
    """Scorecard rows for all experiments."""
    p = result.params
    base = f"{p.dataset}/{p.model}"
    checkpoint = (
        f"trained {result.trained.epochs} epochs, "
        f"test accuracy {result.trained.test_accuracy:.2f}"
    )
    out: list[ResultRow] = []
    for key, trials in result.table.items():
        state, loss = key.split("/")
        network = checkpoint if state == "trained" else "untrained"
        note = (
            f"mean over {len(trials)} images; {network}; {UNVERIFIED} ({PAPER_SETTING})"
        )
        experiment = f"{base}/{state}/{loss}/bs1"
        out.append(
            ResultRow.against(
                experiment, "psnr", _mean([t.psnr for t in trials]), None, note
            )
        )
        out.append(
            ResultRow.against(
                experiment,
                "ssim",
                _mean([t.ssim for t in trials]),
                None,
                f"mean over {len(trials)} images",
            )
        )
        lpips_values = [t.lpips for t in trials if t.lpips is not None]
        if lpips_values:
            out.append(
                ResultRow.against(
                    experiment,
                    "lpips",
                    _mean(lpips_values),
                    None,
                    f"mean over {len(trials)} images",
                )
            )
    for setting, attacked in result.fedavg:
        experiment = (
            f"{base}/fedavg/ep{int(setting['epochs'])}-n{int(setting['images'])}"
            f"-lr{setting['lr']:g}"
        )
        out.append(
            ResultRow.against(
                experiment,
                "psnr",
                attacked.psnr,
                None,
                f"{int(setting['steps'])} local steps, untrained; {UNVERIFIED}",
            )
        )
    first = result.fedavg[0][0]
    out.append(
        ResultRow.against(
            f"{base}/fedavg/ep{int(first['epochs'])}-n{int(first['images'])}"
            f"-lr{first['lr']:g}/ignoring-steps",
            "psnr",
            result.fedavg_ignoring_steps.psnr,
            None,
            "the base update attacked as one gradient (local steps ignored)",
        )
    )
    for size, attacked in result.batches.items():
        experiment = f"{base}/untrained/cosine/batch{size}"
        out.append(
            ResultRow.against(
                experiment,
                "psnr",
                attacked.psnr,
                None,
                f"one batch, distinct labels, matched one-to-one; {UNVERIFIED}",
            )
        )
        out.append(
            ResultRow.against(
                experiment,
                "label_accuracy",
                result.batch_label_accuracy[size],
                None,
                "labels read off the last layer (the attack used the true ones)",
            )
        )
    if result.imagenet is not None:
        out.append(
            ResultRow.against(
                "imagenet/resnet18/untrained/cosine/bs1",
                "psnr",
                result.imagenet.psnr,
                None,
                result.imagenet_note,
            )
        )
    out.append(
        ResultRow.against(
            f"{base}/trained",
            "test_accuracy",
            result.trained.test_accuracy,
            None,
            f"{result.trained.epochs} epochs; the paper trains 120 epochs",
        )
    )
    return out


def summary_text(result: IGRun) -> str:
    """The run's headline numbers, for the page's prose."""
    t = {k: _mean([a.psnr for a in v]) for k, v in result.table.items()}
    ignoring = result.fedavg_ignoring_steps.psnr
    unrolled = result.fedavg[0][1].psnr
    sizes = ", ".join(f"{s}: {a.psnr:.1f} dB" for s, a in result.batches.items())
    return (
        f"In this run ({result.params.profile} profile, {result.params.model}): "
        "on the untrained network the cosine attack reaches "
        f"{t['untrained/cosine']:.1f} dB "
        f"against {t['untrained/l2']:.1f} dB for L2 + L-BFGS; on the trained network "
        f"(test accuracy {result.trained.test_accuracy:.2f}) "
        f"{t['trained/cosine']:.1f} dB "
        f"against {t['trained/l2']:.1f} dB. Unrolling the FedAvg steps gives "
        f"{unrolled:.1f} dB on the base setting, ignoring them {ignoring:.1f} dB. "
        f"By batch size: {sizes}."
    )
