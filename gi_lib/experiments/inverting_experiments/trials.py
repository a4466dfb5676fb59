"""Experiment 1 of Inverting Gradients: the trained and untrained networks,
the victims, and the table of attacks on them (and on other widths)."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import torch

from gi_lib import data, fl, metrics, models, training
from gi_lib.attacks import inverting
from gi_lib.attacks.base import OptimConfig
from gi_lib.experiments.common import AttackedSample, attack_and_score
from gi_lib.experiments.inverting_experiments.params import (
    IGParams,
    _config,
    convnet_name,
    convnet_width,
)


def mean_colour_psnr(truth: torch.Tensor, info: data.DatasetInfo) -> torch.Tensor:
    """PSNR (dB) per image of the data set's mean colour, a flat image.

    The guess of an attacker who has not seen the update: a reconstruction
    leaks something about the image only where it scores above this.
    """
    mean = torch.tensor(info.mean, dtype=truth.dtype).view(1, -1, 1, 1)
    return metrics.psnr(mean.expand_as(truth.cpu()), truth.cpu())


def trained_network(
    params: IGParams, device: torch.device, *, progress: bool
) -> training.TrainedModel:
    """``params.model`` trained on ``params.dataset`` (cached on disk).

    :func:`gi_lib.training.trained_model` trains with mini-batches of 128;
    another ``train_batch_size`` gives the short CPU runs more SGD steps for
    the same compute and is cached under its own name (``-b<size>``).
    """
    num_images = params.train_images or None
    # What names the checkpoint (trained_model's cache file) in both cases.
    identity: dict[str, Any] = dict(
        epochs=params.train_epochs,
        seed=params.seed,
        num_images=num_images,
        lr=params.train_lr,
    )
    if params.train_batch_size == 128:
        return training.trained_model(
            params.model, params.dataset, device=device, progress=progress, **identity
        )
    path = training.checkpoint_path(params.model, params.dataset, **identity)
    path = path.with_name(f"{path.stem}-b{params.train_batch_size}{path.suffix}")
    info = data.dataset_info(params.dataset)
    model = models.build_model(params.model, info, seed=params.seed)

    def fit(model: torch.nn.Module) -> dict[str, float]:
        images, labels = training.sample_split(
            params.dataset, "train", num_images, params.seed
        )
        start = time.perf_counter()
        training.train(
            model,
            images,
            labels,
            epochs=params.train_epochs,
            seed=params.seed,
            device=device,
            batch_size=params.train_batch_size,
            lr=params.train_lr,
            progress=progress,
        )
        seconds = time.perf_counter() - start
        # Scored as trained_model scores: up to 2,000 test images.
        count = 2000 if num_images is None else min(2000, num_images)
        test_images, test_labels = training.sample_split(
            params.dataset, "test", count, params.seed + 1
        )
        return {
            "test_accuracy": training.accuracy(model, test_images, test_labels, device),
            "train_seconds": seconds,
        }

    record, cached = training.load_or_train(
        path, model, fit, fields=("test_accuracy", "train_seconds")
    )
    return training.TrainedModel(
        model=model.to(device).eval(),
        path=path,
        epochs=params.train_epochs,
        test_accuracy=float(record["test_accuracy"]),
        train_seconds=float(record["train_seconds"]),
        cached=cached,
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


def _observe_one(
    net: torch.nn.Module,
    victims: tuple[torch.Tensor, torch.Tensor],
    i: int,
    info: data.DatasetInfo,
    device: torch.device,
) -> tuple[fl.Observation, torch.Tensor]:
    """The gradient of victim image ``i`` (labels known) and the image."""
    images, labels = victims
    truth = images[i : i + 1].to(device)
    observation = fl.observe_fedsgd(
        net,
        truth,
        labels[i : i + 1].to(device),
        num_classes=info.num_classes,
        reveal_labels=True,
    )
    return observation, truth


def run_table(
    params: IGParams,
    device: torch.device,
    trained: training.TrainedModel,
    victims: tuple[torch.Tensor, torch.Tensor],
    *,
    progress: bool,
) -> dict[str, list[AttackedSample]]:
    """Experiment 1: trained vs untrained, L2 + L-BFGS vs the paper's attack.

    Image ``i`` is attacked with seed ``params.seed + i`` in every cell, so
    the four cells are paired trials. The cosine attack's TV weight is
    ``tv_weight`` on the untrained network and ``trained_tv_weight`` on the
    trained one, as the official notebooks choose a larger weight for
    trained networks.

    Returns:
        ``"<network>/<loss>"`` (``untrained/cosine``) -> one record per image.
    """
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
    tv_weights = {"untrained": params.tv_weight, "trained": params.trained_tv_weight}
    table: dict[str, list[AttackedSample]] = {}
    for state, net in networks.items():
        cosine = _config(params, params.max_iterations, tv_weights[state])
        net = net.to(device).eval()
        l2_trials = table.setdefault(f"{state}/l2", [])
        cosine_trials = table.setdefault(f"{state}/cosine", [])
        for i in range(params.num_trials):
            observation, truth = _observe_one(net, victims, i, info, device)
            seed = params.seed + i
            l2_trials.append(
                attack_and_score(
                    partial(
                        inverting.reconstruct_l2_lbfgs, observation, lbfgs, seed=seed
                    ),
                    truth,
                    setting="L2 + L-BFGS",
                    index=i,
                )
            )
            cosine_trials.append(
                attack_and_score(
                    partial(
                        inverting.reconstruct,
                        observation,
                        cosine,
                        seed=seed,
                        truth=truth,
                    ),
                    truth,
                    setting="cosine",
                    index=i,
                )
            )
            if progress:
                print(
                    f"{state} #{i}: L2 {l2_trials[-1].psnr:.1f} dB, "
                    f"cosine {cosine_trials[-1].psnr:.1f} dB",
                    flush=True,
                )
    return table


def run_widths(
    params: IGParams,
    device: torch.device,
    victims: tuple[torch.Tensor, torch.Tensor],
    table: dict[str, list[AttackedSample]],
    *,
    progress: bool,
) -> dict[int, list[AttackedSample]]:
    """The paper's attack on untrained ConvNets of each of ``params.widths``.

    The table's images and seeds, the table's attack; the width of
    ``params.model`` (when it is a ConvNet) reuses the table's untrained
    cosine records, which are the same computation.

    Returns:
        Width -> one record per image, in the table's order.
    """
    info = data.dataset_info(params.dataset)
    config = _config(params, params.max_iterations)
    out: dict[int, list[AttackedSample]] = {}
    for width in sorted(params.widths):
        if width == convnet_width(params.model):
            out[width] = table["untrained/cosine"]
            continue
        net = models.build_model(convnet_name(width), info, seed=params.seed)
        net = net.to(device).eval()
        trials = out.setdefault(width, [])
        for i in range(params.num_trials):
            observation, truth = _observe_one(net, victims, i, info, device)
            trials.append(
                attack_and_score(
                    partial(
                        inverting.reconstruct,
                        observation,
                        config,
                        seed=params.seed + i,
                        truth=truth,
                    ),
                    truth,
                    setting=f"width {width}",
                    index=i,
                )
            )
            if progress:
                print(f"width {width} #{i}: {trials[-1].psnr:.1f} dB", flush=True)
    return out
