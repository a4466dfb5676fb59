"""Experiments 3 and 4 of Inverting Gradients (batch size, ImageNet) and the
whole run (:func:`run_all`, :class:`IGRun`)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from functools import partial

import torch

from gi_lib import data, fl, metrics, models, training
from gi_lib.attacks import inverting
from gi_lib.attacks.base import infer_labels
from gi_lib.experiments.common import AttackedSample, attack_and_score
from gi_lib.experiments.inverting_experiments.fedavg import FedAvgRun, run_fedavg
from gi_lib.experiments.inverting_experiments.params import IGParams, _config
from gi_lib.experiments.inverting_experiments.trials import (
    distinct_label_victims,
    run_table,
    run_widths,
    trained_network,
)


def run_batches(
    params: IGParams, device: torch.device, dataset: torch.utils.data.Dataset
) -> tuple[dict[int, AttackedSample], dict[int, float]]:
    """Experiment 3: one update of ``b`` images for each batch size ``b``.

    Returns:
        The record per batch size, and the share of labels iDLG's rule
        reads off each update (the attack itself is given the labels).
    """
    info = data.dataset_info(params.dataset)
    net = models.build_model(params.model, info, seed=params.seed).to(device)
    config = _config(params, params.batch_iterations)
    out: dict[int, AttackedSample] = {}
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
        out[size] = attack_and_score(
            partial(inverting.reconstruct, observation, config, seed=params.seed),
            truth,
            setting=f"{size} images",
            true_labels=labels,
        )
    return out, label_accuracy


def run_imagenet(
    params: IGParams, device: torch.device
) -> tuple[str, AttackedSample | None]:
    """Experiment 4: one 224x224 image on an untrained ResNet-18, if available.

    Returns:
        A note for the page, and the record (None without a local ImageNet).
    """
    try:
        images = data.load_dataset("imagenet")
    except data.DataUnavailableError:
        return (
            f"No ImageNet folder was found (set {data.DATA_ENV} to a folder holding "
            "`imagenet/<split>/<class>/<image>`), so the ImageNet example is "
            "skipped.",
            None,
        )
    info = data.dataset_info("imagenet")
    truth, labels, _ = data.sample_victims(images, 1, params.seed)
    truth = truth.to(device)
    net = models.build_model("resnet18", info, seed=params.seed).to(device).eval()
    observation = fl.observe_fedsgd(
        net,
        truth,
        labels.to(device),
        num_classes=info.num_classes,
        reveal_labels=True,
    )
    config = _config(params, params.batch_iterations)
    attacked = attack_and_score(
        partial(inverting.reconstruct, observation, config, seed=params.seed),
        truth,
        setting="imagenet",
    )
    return (
        f"One image from {images.root} attacked on an untrained ResNet-18 with "  # type: ignore[attr-defined]
        "3x3 stem (not torchvision's ImageNet ResNet-18, whose pretrained weights "
        "cannot be downloaded here).",
        attacked,
    )


@dataclass
class IGRun:
    """Everything the notebook shows.

    Attributes:
        params: the run's parameters.
        device: where it ran.
        trained: the trained network of experiment 1.
        table: experiment 1, ``"<network>/<loss>"`` -> one record per image.
        widths: the untrained cosine attack per ConvNet width, on the table's
            images (width -> one record per image).
        fedavg: experiment 2.
        batches: experiment 3, batch size -> record.
        batch_label_accuracy: batch size -> share of labels read off the update.
        imagenet_note: what experiment 4 did (or why it was skipped).
        imagenet: experiment 4's record, if it ran.
        seconds: wall time per part.
    """

    params: IGParams
    device: torch.device
    trained: training.TrainedModel
    table: dict[str, list[AttackedSample]]
    widths: dict[int, list[AttackedSample]]
    fedavg: FedAvgRun
    batches: dict[int, AttackedSample]
    batch_label_accuracy: dict[int, float]
    imagenet_note: str
    imagenet: AttackedSample | None
    seconds: dict[str, float]


def run_all(params: IGParams, device: torch.device, *, progress: bool) -> IGRun:
    """Train the network of experiment 1, then run the four experiments.

    The caller sets the CPU threads (the notebook's ``run``).
    """
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    trained = trained_network(params, device, progress=progress)
    seconds["training"] = time.perf_counter() - start
    dataset = data.load_dataset(params.dataset)
    victims = data.sample_victims(dataset, params.num_trials, params.seed)[:2]
    start = time.perf_counter()
    table = run_table(params, device, trained, victims, progress=progress)
    seconds["table"] = time.perf_counter() - start
    start = time.perf_counter()
    widths = run_widths(params, device, victims, table, progress=progress)
    seconds["widths"] = time.perf_counter() - start
    start = time.perf_counter()
    fedavg = run_fedavg(params, device, dataset, progress=progress)
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
        widths=widths,
        fedavg=fedavg,
        batches=batches,
        batch_label_accuracy=label_accuracy,
        imagenet_note=note,
        imagenet=imagenet,
        seconds=seconds,
    )
