"""What a defense costs in accuracy: train with it, test on clean images.

:func:`train_with_defense` runs federated SGD as one client per mini-batch:
every step encodes the batch and computes the update with the defense's
:meth:`~gi_lib.defenses.base.Defense.client_gradients` (the code path the
attacker observes), then the server applies it with SGD and momentum. Test
accuracy is measured on clean test images (MixUp and InstaHide encode only
training data). Results are cached under ``cache_dir()/models/defended/``, in a
file named by the model, data set, the defense's
:meth:`~gi_lib.defenses.base.Defense.cache_key` and the training settings, so
notebooks that share a setting train it once.

The training loop is its own (the general trainer of :mod:`gi_lib.training`
knows no defenses, and this one has no data augmentation, which short CPU
runs do not need); the cache and the data splits are the general trainer's
(:func:`~gi_lib.training.load_or_train`, :func:`~gi_lib.training.sample_split`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from gi_lib import data, models
from gi_lib.defenses.base import Defense
from gi_lib.training import accuracy, cache_file, load_or_train, sample_split


@dataclass
class DefendedModel:
    """A model trained under a defense, and its utility.

    Attributes:
        model: the trained network, in eval mode.
        defense: the defense's label (:meth:`Defense.describe`).
        test_accuracy: accuracy on up to ``test_images`` clean test images.
        steps: optimiser steps taken (for DP-SGD's accountant).
        sample_rate: batch size over training set size.
        train_seconds: training time when it ran.
        cached: loaded from the cache rather than trained now.
    """

    model: nn.Module
    defense: str
    test_accuracy: float
    steps: int
    sample_rate: float
    train_seconds: float
    cached: bool


def cache_path(
    model: str,
    dataset: str,
    defense: Defense,
    *,
    epochs: int,
    seed: int,
    num_images: int,
    lr: float,
    batch_size: int,
) -> Path:
    """The cache file of one defended training run."""
    parts = [model, dataset, defense.cache_key(), f"e{epochs}", f"s{seed}"]
    parts += [f"n{num_images}", f"lr{lr:g}", f"b{batch_size}"]
    return cache_file(parts, folder="models/defended")


def train_with_defense(
    model: str,
    dataset: str,
    defense: Defense,
    *,
    epochs: int,
    seed: int,
    device: torch.device,
    num_images: int = 5000,
    test_images: int = 2000,
    lr: float = 0.05,
    batch_size: int = 64,
    prepare: Callable[[nn.Module], nn.Module] | None = None,
    progress: bool = False,
) -> DefendedModel:
    """Train ``model`` on ``num_images`` training images with ``defense``.

    Args:
        model: a name from :mod:`gi_lib.models`.
        dataset: data set name; its ``train`` split is used.
        defense: applied on every step (``NoDefense()`` for the baseline).
        epochs: passes over the training images.
        seed: initialisation and batch order (the defense has its own seed).
        device: where to train.
        num_images: training images (a seeded sample).
        test_images: clean test images for the accuracy.
        lr: SGD step size (momentum 0.9, no weight decay).
        batch_size: images per step.
        prepare: transforms the freshly built model before training (DP-SGD's
            :func:`~gi_lib.defenses.dpsgd.private_model`).
        progress: show a progress bar.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    info = data.dataset_info(dataset)
    net = models.build_model(model, info, seed=seed)
    if prepare is not None:
        net = prepare(net)
    path = cache_path(
        model,
        dataset,
        defense,
        epochs=epochs,
        seed=seed,
        num_images=num_images,
        lr=lr,
        batch_size=batch_size,
    )

    def fit(net: nn.Module) -> dict[str, float]:
        images, labels = sample_split(dataset, "train", num_images, seed)
        count = len(labels)
        generator = torch.Generator().manual_seed(seed)
        net.to(device).train()
        optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
        parameters = [p for p in net.parameters() if p.requires_grad]
        steps = 0
        start = time.perf_counter()
        for _ in tqdm(range(epochs), desc=defense.describe(), disable=not progress):
            order = torch.randperm(count, generator=generator)
            for first in range(0, count - batch_size + 1, batch_size):
                index = order[first : first + batch_size]
                batch, targets = defense.encode(
                    images[index].to(device),
                    labels[index].to(device),
                    info.num_classes,
                )
                update = defense.client_gradients(net, batch, targets)
                for parameter, gradient in zip(parameters, update, strict=True):
                    parameter.grad = gradient.to(parameter)
                optimizer.step()
                steps += 1
        seconds = time.perf_counter() - start
        test_x, test_y = sample_split(dataset, "test", test_images, seed + 1)
        return {
            "test_accuracy": accuracy(net, test_x, test_y, device),
            "steps": steps,
            "sample_rate": batch_size / count,
            "train_seconds": seconds,
        }

    record, cached = load_or_train(
        path,
        net,
        fit,
        fields=("test_accuracy", "steps", "sample_rate", "train_seconds"),
    )
    return DefendedModel(
        model=net.to(device).eval(),
        defense=defense.describe(),
        test_accuracy=float(record["test_accuracy"]),
        steps=int(record["steps"]),
        sample_rate=float(record["sample_rate"]),
        train_seconds=float(record["train_seconds"]),
        cached=cached,
    )
