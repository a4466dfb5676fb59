"""Data sets and reproducible victim sampling.

Images are float tensors in [0, 1] of shape ``(C, H, W)``. Two ways to get
each data set, tried in this order:

1. a local copy laid out as ``$GI_DATA_DIR/<dataset>/<split>/<class>/<image>``
   (``torchvision.datasets.ImageFolder``), for machines without internet;
2. torchvision's own download into ``$GI_CACHE_DIR/data`` (default
   ``~/.cache/gi-book/data``).

LFW comes from the small subset that scikit-image ships (200 grey 25x25
crops: 100 faces and 100 non-faces), so it works offline; its labels are
face (0) and non-face (1), not identities. ImageNet has only the first way
(torchvision cannot download it): ``$GI_DATA_DIR/imagenet/<split>``, where
the test split may be named ``val`` as ImageNet names it; its images are
resized to 256 pixels and centre-cropped to 224, the usual evaluation crop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from gi_lib._io import file_lock
from gi_lib._registry import Registry

DATA_ENV = "GI_DATA_DIR"
CACHE_ENV = "GI_CACHE_DIR"
SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a data set."""

    name: str
    channels: int
    image_size: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


DATASETS: Registry[DatasetInfo] = Registry(
    "dataset",
    {
        "mnist": DatasetInfo("mnist", 1, 28, 10, (0.1307,), (0.3081,)),
        "cifar10": DatasetInfo(
            "cifar10", 3, 32, 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
        ),
        "cifar100": DatasetInfo(
            "cifar100", 3, 32, 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
        ),
        # iDLG resizes LFW to 32x32; the scikit-image subset is grey.
        # scikit-image's subset has two classes (face, non-face), not identities.
        "lfw": DatasetInfo("lfw", 1, 32, 2, (0.5,), (0.5,)),
        # A local copy only (see the module docstring); torchvision's statistics.
        "imagenet": DatasetInfo(
            "imagenet", 3, 224, 1000, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        ),
    },
)
LOCAL_ONLY = {"imagenet": ("val",)}
"""Data sets with no download, and the other names their test split has."""


class DataUnavailableError(RuntimeError):
    """Raised when a data set is neither copied locally nor downloadable."""


def dataset_info(name: str) -> DatasetInfo:
    """Return the :class:`DatasetInfo` of ``name`` or fail naming the choices."""
    return DATASETS.lookup(name)


def cache_dir() -> Path:
    """Cache folder for downloads and trained models."""
    default = Path.home() / ".cache" / "gi-book"
    return Path(os.environ.get(CACHE_ENV, default))


class TensorImages(Dataset):
    """A small in-memory data set of ``(image, label)`` pairs."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if len(images) != len(labels):
            raise ValueError("images and labels differ in length")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


def _local_copy(name: str, split: str) -> Path | None:
    root = os.environ.get(DATA_ENV)
    if not root:
        return None
    names = (split, *LOCAL_ONLY.get(name, ())) if split == "test" else (split,)
    for folder in (Path(root) / name / n for n in names):
        if folder.is_dir():
            return folder
    return None


def _lfw() -> Dataset:
    import torch.nn.functional as F
    from skimage import data as skdata

    # 200 crops: the first 100 are faces, the last 100 are not.
    crops = torch.as_tensor(skdata.lfw_subset(), dtype=torch.float32)
    images = F.interpolate(
        crops[:, None], size=32, mode="bilinear", align_corners=False
    )
    labels = torch.cat(
        [torch.zeros(100, dtype=torch.long), torch.ones(100, dtype=torch.long)]
    )
    return TensorImages(images.clamp(0, 1), labels)


def load_dataset(name: str, split: str = "test", *, download: bool = True) -> Dataset:
    """Load a data set as ``(image in [0, 1], label)`` pairs.

    Args:
        name: a key of :data:`DATASETS`.
        split: ``"train"`` or ``"test"`` (LFW has one split; both return it).
        download: let torchvision download when no local copy is found.

    Raises:
        DataUnavailableError: neither a local copy nor a download worked; the
            message says both ways to get the data.
    """
    info = dataset_info(name)
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
    if name == "lfw":
        return _lfw()

    from torchvision import datasets, transforms

    gray = (
        transforms.Grayscale(1)
        if info.channels == 1
        else transforms.Lambda(lambda x: x)
    )
    resize = (
        [transforms.Resize(256), transforms.CenterCrop(info.image_size)]
        if name == "imagenet"
        else []
    )
    transform = transforms.Compose([*resize, gray, transforms.ToTensor()])
    local = _local_copy(name, split)
    if local is not None:
        return datasets.ImageFolder(str(local), transform=transform)
    if name in LOCAL_ONLY:
        raise DataUnavailableError(
            f"Data set {name!r} ({split}) has no download; set {DATA_ENV} to a "
            f"folder holding {name}/{split}/<class>/<image> copies (ImageFolder "
            "layout)."
        )

    tv_class = {
        "mnist": datasets.MNIST,
        "cifar10": datasets.CIFAR10,
        "cifar100": datasets.CIFAR100,
    }
    root = cache_dir() / "data"
    try:
        # Two notebooks of `make -j N` may ask for the same data set at once:
        # one downloads and unpacks it while the other waits, then finds it.
        with file_lock(root / name):
            return tv_class[name](
                str(root),
                train=split == "train",
                transform=transforms.ToTensor(),
                download=download,
            )
    except Exception as error:  # torchvision raises several types when offline
        raise DataUnavailableError(
            f"Data set {name!r} ({split}) is not available. Either set {DATA_ENV} to a "
            f"folder holding {name}/{split}/<class>/<image> copies (ImageFolder "
            f"layout), or let torchvision download it into {root} on a machine with "
            f"internet (cause: {type(error).__name__}: {error})."
        ) from error


def sample_victims(
    dataset: Dataset, num_images: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pick ``num_images`` distinct images reproducibly.

    Returns:
        ``(images, labels, indices)``: images ``(N, C, H, W)`` in [0, 1], labels
        ``(N,)``, and the data-set indices that were chosen.
    """
    size = len(dataset)  # type: ignore[arg-type]
    if num_images < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}.")
    if num_images > size:
        raise ValueError(
            f"Asked for {num_images} victim images but the data set has only {size}; "
            f"lower num_trials (or the batch size)."
        )
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randperm(size, generator=generator)[:num_images]
    pairs = [dataset[int(i)] for i in indices]
    images = torch.stack([image for image, _ in pairs])
    labels = torch.tensor([int(label) for _, label in pairs], dtype=torch.long)
    return images, labels, indices
