"""A cached trainer: each (model, data set, epochs, seed) is trained once.

Inverting Gradients attacks trained as well as untrained networks. Training
follows the official code's "conservative" recipe: SGD with Nesterov momentum
0.9, learning rate 0.1, weight decay 5e-4, batch 128, random crops (padding 4)
and horizontal flips, and a tenfold learning-rate cut at epochs 44, 75 and 105
of 120. For shorter runs those cuts are scaled to the same fractions of the run
(the official code keeps them at fixed epochs, so its 10-epoch runs never
decay). The trained weights are written atomically to
``cache_dir()/models/<model>-<dataset>-e<epochs>-s<seed>[-n<images>][-lr<lr>].pt`` and
loaded from there on every later call. Notebooks run in parallel
(``make -j N book``) share the cache safely: a lock file beside each cache
file lets one process train while the others wait for its result.

The cache itself (:func:`cache_file`, :func:`load_or_train`) and the seeded
data splits (:func:`sample_split`) serve every cached trainer, the defended
one of :mod:`gi_lib.defenses.utility` too. A cache file that cannot be loaded
(truncated, corrupt, or for another architecture) is moved aside with a
warning and the model is trained again.
"""

from __future__ import annotations

import copy
import functools
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from gi_lib import data, models
from gi_lib._io import atomic_write, file_lock
from gi_lib.fl import cross_entropy

PAPER_EPOCHS = 120
PAPER_MILESTONES = (44, 75, 105)


@dataclass
class TrainedModel:
    """A trained model and where it came from.

    Attributes:
        model: the network, in eval mode.
        path: its cache file.
        epochs: training epochs.
        test_accuracy: accuracy on up to 2,000 test images (at most as many
            as the training images).
        train_seconds: how long training took when it ran.
        cached: whether it was loaded rather than trained in this call.
    """

    model: nn.Module
    path: Path
    epochs: int
    test_accuracy: float
    train_seconds: float
    cached: bool


def cache_file(parts: Sequence[str], *, folder: str = "models") -> Path:
    """The cache file of one trained model: its key's parts joined by ``-``.

    Args:
        parts: everything that decides what is trained (model, data set,
            settings), each already formatted, e.g. ``["lenet", "mnist", "e5"]``.
        folder: under :func:`gi_lib.data.cache_dir`.

    Returns:
        ``cache_dir()/<folder>/<part>-<part>-....pt``.
    """
    return data.cache_dir() / folder / ("-".join(parts) + ".pt")


def checkpoint_path(
    name: str,
    dataset: str,
    *,
    epochs: int,
    seed: int,
    num_images: int | None,
    lr: float = 0.1,
) -> Path:
    """The cache file of one model trained by :func:`trained_model`."""
    parts = [name, dataset, f"e{epochs}", f"s{seed}"]
    parts += [f"n{num_images}"] if num_images is not None else []
    parts += [f"lr{lr:g}"] if lr != 0.1 else []
    return cache_file(parts)


@functools.lru_cache(maxsize=8)
def sample_split(
    dataset: str, split: str, count: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` seeded images and labels of a split (all of it when None).

    At most the split's size. Cached: a notebook trains several models on the
    same images, and reading thousands of image files dominates short runs.
    Callers index these tensors and must never write to them.
    """
    images = data.load_dataset(dataset, split)
    size = len(images)  # type: ignore[arg-type]
    x, y, _ = data.sample_victims(
        images, size if count is None else min(count, size), seed
    )
    return x, y


def _read(path: Path, model: nn.Module, fields: Sequence[str]) -> dict[str, float]:
    """Load a cache file's weights into ``model`` (strictly) and its record."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["state_dict"])  # strict: every key must match
    return {field: checkpoint[field] for field in fields}


def load_or_train(
    path: Path,
    model: nn.Module,
    train: Callable[[nn.Module], Mapping[str, float]],
    *,
    fields: Sequence[str],
) -> tuple[dict[str, float], bool]:
    """Load ``model``'s weights from ``path``, or train it and save them.

    Safe to call from several processes at once (``make -j N book``): the
    whole load-or-train runs under :func:`gi_lib._io.file_lock` on ``path``,
    so a second caller waits for the first to finish training and then loads
    its file, and the file itself is written atomically, so no reader ever
    sees half of it.

    A file that cannot be loaded (truncated or corrupt, weights that do not
    fit ``model``, or a record without ``fields``) is renamed to
    ``<name>.corrupt`` with a warning that names it, and the model is trained
    from its initial weights as if there had been no file.

    Args:
        path: the cache file (see :func:`cache_file`).
        model: freshly built (seeded) model; loaded or trained in place.
        train: trains the model in place and returns the record to keep with
            the weights (test accuracy, seconds, ...); called only on a miss.
        fields: the record's names, read back from a cached file.

    Returns:
        The record and whether it came from the cache.
    """
    with file_lock(path):
        if path.exists():
            initial = copy.deepcopy(model.state_dict())
            try:
                return _read(path, model, fields), True
            except Exception as error:  # any unreadable file: retrain
                model.load_state_dict(initial)  # a failed load may copy some weights
                aside = path.with_name(f"{path.name}.corrupt")
                os.replace(path, aside)
                reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
                warnings.warn(
                    f"The cached model {path} could not be loaded ({reason}); it was "
                    f"moved to {aside} and the model is trained again.",
                    RuntimeWarning,
                    stacklevel=3,
                )
        record = dict(train(model))
        state = {key: value.cpu() for key, value in model.state_dict().items()}
        atomic_write(
            path, lambda handle: torch.save({"state_dict": state, **record}, handle)
        )
    return record, False


def _augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 4-pixel-padded crops and horizontal flips, one draw per image."""
    n, _, h, w = images.shape
    padded = nn.functional.pad(images, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (n,), generator=generator)
    dy = torch.randint(0, 9, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.empty_like(images)
    for i in range(n):
        crop = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


def accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, device: torch.device
) -> float:
    """Top-1 accuracy of ``model`` in eval mode."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(labels), 500):
            batch = images[start : start + 500].to(device)
            predicted = model(batch).argmax(1).cpu()
            correct += int((predicted == labels[start : start + 500]).sum())
    return correct / max(len(labels), 1)


def train(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    seed: int,
    device: torch.device,
    batch_size: int = 128,
    lr: float = 0.1,
    progress: bool = False,
) -> nn.Module:
    """Train ``model`` in place with the official recipe (see the module doc)."""
    generator = torch.Generator().manual_seed(seed)
    model.to(device).train()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    milestones = [max(1, round(m * epochs / PAPER_EPOCHS)) for m in PAPER_MILESTONES]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    for _ in tqdm(range(epochs), desc="training", disable=not progress):
        order = torch.randperm(len(labels), generator=generator)
        augmented = _augment(images, generator)
        for start in range(0, len(labels), batch_size):
            index = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = cross_entropy(
                model(augmented[index].to(device)), labels[index].to(device)
            )
            loss.backward()
            optimizer.step()
        scheduler.step()
    return model.eval()


def trained_model(
    name: str,
    dataset: str,
    *,
    epochs: int,
    seed: int,
    device: torch.device,
    num_images: int | None = None,
    lr: float = 0.1,
    progress: bool = False,
) -> TrainedModel:
    """Return model ``name`` trained on ``dataset``, training it only once.

    Args:
        name: a name from :mod:`gi_lib.models`.
        dataset: a data set name; its ``train`` split is used.
        epochs: passes over the training images.
        seed: initialisation, order and augmentation.
        device: where to train and where the model is returned.
        num_images: train on this many training images (all when None).
        lr: initial learning rate (the paper's 0.1; short CPU runs may need less).
        progress: show a progress bar.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    path = checkpoint_path(
        name, dataset, epochs=epochs, seed=seed, num_images=num_images, lr=lr
    )
    info = data.dataset_info(dataset)
    model = models.build_model(name, info, seed=seed)

    def fit(model: nn.Module) -> dict[str, float]:
        images, labels = sample_split(dataset, "train", num_images, seed)
        start = time.perf_counter()
        train(
            model,
            images,
            labels,
            epochs=epochs,
            seed=seed,
            device=device,
            lr=lr,
            progress=progress,
        )
        seconds = time.perf_counter() - start
        # Scored on up to 2,000 test images (fewer for a small training run).
        test_count = 2000 if num_images is None else min(2000, num_images)
        test_images, test_labels = sample_split(dataset, "test", test_count, seed + 1)
        return {
            "test_accuracy": accuracy(model, test_images, test_labels, device),
            "train_seconds": seconds,
        }

    record, cached = load_or_train(
        path, model, fit, fields=("test_accuracy", "train_seconds")
    )
    return TrainedModel(
        model=model.to(device).eval(),
        path=path,
        epochs=epochs,
        test_accuracy=float(record["test_accuracy"]),
        train_seconds=float(record["train_seconds"]),
        cached=cached,
    )
