"""A DCGAN image prior for GIAS, trained once per setting and cached.

GIAS (Jeon et al., NeurIPS 2021) searches the input of a pretrained
generator instead of pixels. Its official code uses, for 32-pixel images,
the PyTorch example DCGAN: a 100-dimensional code ``z`` through four
transposed convolutions (``4x4`` then doubling to ``32x32``, widths
``8, 4, 2, 1`` times ``ngf``), each followed by BatchNorm and ReLU, then a
``1x1`` transposed convolution to the image channels and ``tanh``. This
module builds that generator (and the matching discriminator), trains it
with the DCGAN recipe (Adam 2e-4, beta1 0.5, batch 64, binary cross-entropy,
weights drawn from N(0, 0.02)) on a data set's train split, and caches it
with the same discipline as the trained classifiers
(:func:`gi_lib.training.load_or_train`: keyed by architecture, data,
epochs and seed; atomic save; an unreadable file is set aside and the
generator trained again).

MNIST's 28-pixel digits are padded with black to 32 pixels for training, and
generated images are centre-cropped back to the data set's size
(:func:`to_images`). Generated images are in [0, 1], as every image in
``gi_lib``.

Also here, the checks of a generator that a GIAS page shows: samples, a
classifier's confidence on them (:func:`sample_confidence`), and the best
PSNR a latent search reaches when fitting images directly
(:func:`projection`): the ceiling of any attack that searches the latent
code alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gi_lib import data, metrics
from gi_lib.training import cache_file, load_or_train, sample_split

GENERATED_SIZE = 32
"""Side of the DCGAN's output (the GIAS code's 32-pixel generator)."""

LATENT_SIZE = 100
"""Length of the DCGAN's code ``z`` (the GIAS code's ``nz``)."""


class DCGANGenerator(nn.Module):
    """The GIAS code's 32-pixel DCGAN generator.

    ``z (N, nz, 1, 1)`` -> transposed convolutions to ``4, 8, 16, 32`` pixels
    with ``8, 4, 2, 1`` times ``ngf`` channels (BatchNorm and ReLU after
    each) -> a ``1x1`` transposed convolution to ``channels`` -> ``tanh``.
    Output in [-1, 1], ``(N, channels, 32, 32)``.
    """

    def __init__(self, channels: int, *, ngf: int = 64, nz: int = LATENT_SIZE):
        super().__init__()
        if channels < 1 or ngf < 1 or nz < 1:
            raise ValueError(
                f"channels, ngf and nz must be positive, got {channels}, {ngf}, {nz}."
            )
        self.nz, self.ngf, self.channels = nz, ngf, channels

        def up(c_in: int, c_out: int, first: bool = False) -> list[nn.Module]:
            conv = (
                nn.ConvTranspose2d(c_in, c_out, 4, 1, 0, bias=False)
                if first
                else nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)
            )
            return [conv, nn.BatchNorm2d(c_out), nn.ReLU(True)]

        self.main = nn.Sequential(
            *up(nz, 8 * ngf, first=True),
            *up(8 * ngf, 4 * ngf),
            *up(4 * ngf, 2 * ngf),
            *up(2 * ngf, ngf),
            nn.ConvTranspose2d(ngf, channels, 1, 1, 0, bias=False),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class DCGANDiscriminator(nn.Module):
    """The DCGAN discriminator for 32-pixel images: strided convolutions to
    ``16, 8, 4`` pixels (``1, 2, 4`` times ``ndf`` channels, LeakyReLU 0.2,
    BatchNorm after the second and third), then a ``4x4`` convolution to one
    logit per image."""

    def __init__(self, channels: int, *, ndf: int = 64) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, 2 * ndf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * ndf),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * ndf, 4 * ndf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(4 * ndf),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(4 * ndf, 1, 4, 1, 0, bias=False),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.main(images).flatten()


def _dcgan_init(model: nn.Module, generator: torch.Generator) -> None:
    """DCGAN's initialisation from ``generator``: convolutions N(0, 0.02),
    BatchNorm scales N(1, 0.02) and shifts 0."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                module.weight.copy_(
                    torch.randn(module.weight.shape, generator=generator) * 0.02
                )
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(
                    1 + torch.randn(module.weight.shape, generator=generator) * 0.02
                )
                module.bias.zero_()


def build_generator(
    channels: int, *, ngf: int, seed: int, nz: int = LATENT_SIZE
) -> DCGANGenerator:
    """A freshly initialised generator (DCGAN's init, seeded).

    One change from DCGAN's init: the last (``1x1``) layer's weights are drawn
    with standard deviation ``1 / sqrt(ngf)`` instead of 0.02, so that its
    output starts at unit scale. With 0.02 a narrow generator (``ngf`` 8-16,
    the CPU's) starts within a few hundredths of grey and Adam at 2e-4 takes
    thousands of steps to widen it (measured here: output spread 0.03 after
    200 steps), more than a CPU run has.
    """
    model = DCGANGenerator(channels, ngf=ngf, nz=nz)
    generator = torch.Generator().manual_seed(seed)
    _dcgan_init(model, generator)
    last = model.main[-2]
    with torch.no_grad():
        last.weight.copy_(
            torch.randn(last.weight.shape, generator=generator) / ngf**0.5
        )
    return model


def to_images(generated: torch.Tensor, image_size: int) -> torch.Tensor:
    """Generator output in [-1, 1] -> images in [0, 1], centre-cropped to
    ``image_size`` pixels (MNIST's 28 from the generator's 32)."""
    side = generated.shape[-1]
    if image_size > side:
        raise ValueError(
            f"the generator makes {side}-pixel images; cannot crop to {image_size}."
        )
    margin = (side - image_size) // 2
    cropped = generated[..., margin : margin + image_size, margin : margin + image_size]
    return (cropped + 1) / 2


def to_generator_range(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] -> [-1, 1], padded with black to :data:`GENERATED_SIZE`."""
    pad = GENERATED_SIZE - images.shape[-1]
    if pad < 0 or pad % 2:
        raise ValueError(
            f"images of {images.shape[-1]} pixels cannot be padded evenly to "
            f"{GENERATED_SIZE}."
        )
    half = pad // 2
    return F.pad(images * 2 - 1, (half, half, half, half), value=-1.0)


@dataclass
class TrainedGenerator:
    """A trained (or cached) generator and where it came from.

    Attributes:
        generator: the network, in eval mode (BatchNorm on running statistics).
        path: its cache file.
        dataset: the data set it was trained on (train split).
        image_size: side of the data set's images (the crop of its output).
        classes: the classes it saw, or None for all of them.
        epochs: passes over its training images.
        num_images: training images drawn from the split, before the class filter.
        train_seconds: how long training took when it ran.
        cached: loaded rather than trained in this call.
    """

    generator: DCGANGenerator
    path: Path
    dataset: str
    image_size: int
    classes: tuple[int, ...] | None
    epochs: int
    num_images: int | None
    train_seconds: float
    cached: bool

    def images(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] for codes ``z (N, nz, 1, 1)``."""
        return to_images(self.generator(z), self.image_size)

    def sample(self, count: int, seed: int) -> torch.Tensor:
        """``count`` images from seeded standard normal codes (no gradient)."""
        device = next(self.generator.parameters()).device
        z = torch.randn(
            count,
            self.generator.nz,
            1,
            1,
            generator=torch.Generator().manual_seed(seed),
        ).to(device)
        with torch.no_grad():
            return self.images(z)


def generator_path(
    dataset: str,
    *,
    ngf: int,
    epochs: int,
    seed: int,
    num_images: int | None,
    classes: Sequence[int] | None = None,
    nz: int = LATENT_SIZE,
) -> Path:
    """The cache file of one generator: ``generators/dcgan-ngf<k>-...pt``."""
    parts = ["dcgan", f"ngf{ngf}", f"nz{nz}", dataset, f"e{epochs}", f"s{seed}"]
    parts += [f"n{num_images}"] if num_images is not None else []
    parts += ["c" + "".join(str(c) for c in classes)] if classes is not None else []
    return cache_file(parts, folder="generators")


def train_gan(
    generator: DCGANGenerator,
    images: torch.Tensor,
    *,
    epochs: int,
    seed: int,
    device: torch.device,
    batch_size: int = 64,
    lr: float = 2e-4,
) -> DCGANGenerator:
    """Train ``generator`` in place against a fresh DCGAN discriminator.

    Args:
        generator: the generator (initialised by :func:`build_generator`).
        images: training images in [0, 1], ``(N, C, H, W)`` with ``H <= 32``.
        epochs: passes over the images.
        seed: discriminator initialisation, batch order and codes.
        device: where to train.
        batch_size: images per step (DCGAN's 64).
        lr: Adam's step size for both networks (DCGAN's 2e-4, beta1 0.5).

    Returns:
        The generator, in eval mode.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    if len(images) < 1:
        raise ValueError("the GAN needs at least one training image.")
    torch_generator = torch.Generator().manual_seed(seed)
    discriminator = DCGANDiscriminator(generator.channels, ndf=generator.ngf)
    _dcgan_init(discriminator, torch_generator)
    generator.to(device).train()
    discriminator.to(device).train()
    real_data = to_generator_range(images)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        order = torch.randperm(len(real_data), generator=torch_generator)
        for start in range(0, len(order), batch_size):
            real = real_data[order[start : start + batch_size]].to(device)
            n = real.shape[0]
            z = torch.randn(n, generator.nz, 1, 1, generator=torch_generator)
            fake = generator(z.to(device))
            ones = torch.ones(n, device=device)
            zeros = torch.zeros(n, device=device)
            opt_d.zero_grad()
            loss_d = bce(discriminator(real), ones) + bce(
                discriminator(fake.detach()), zeros
            )
            loss_d.backward()
            opt_d.step()
            opt_g.zero_grad()
            loss_g = bce(discriminator(fake), ones)
            loss_g.backward()
            opt_g.step()
    return generator.eval()


def trained_generator(
    dataset: str,
    *,
    epochs: int,
    seed: int,
    device: torch.device,
    ngf: int = 64,
    num_images: int | None = None,
    classes: Sequence[int] | None = None,
) -> TrainedGenerator:
    """Return a DCGAN trained on ``dataset``'s train split, training it only once.

    Args:
        dataset: a data set of at most 32-pixel images (MNIST, CIFAR-10).
        epochs: passes over the training images.
        seed: initialisation, image draw, order and codes.
        device: where to train and where the generator is returned.
        ngf: generator width (the GIAS code's 64; smaller on a CPU).
        num_images: draw this many training images first (all when None).
        classes: then keep only these classes (all when None): the stress
            test's generator that never saw the attacked classes.
    """
    info = data.dataset_info(dataset)
    if info.image_size > GENERATED_SIZE:
        raise ValueError(
            f"the DCGAN makes {GENERATED_SIZE}-pixel images; {dataset} has "
            f"{info.image_size}."
        )
    kept = tuple(sorted(set(classes))) if classes is not None else None
    if kept is not None and (not kept or kept[0] < 0 or kept[-1] >= info.num_classes):
        raise ValueError(
            f"classes must be a non-empty subset of 0..{info.num_classes - 1}, "
            f"got {classes}."
        )
    path = generator_path(
        dataset,
        ngf=ngf,
        epochs=epochs,
        seed=seed,
        num_images=num_images,
        classes=kept,
    )
    generator = build_generator(info.channels, ngf=ngf, seed=seed)

    def fit(model: nn.Module) -> dict[str, float]:
        images, labels = sample_split(dataset, "train", num_images, seed)
        if kept is not None:
            images = images[torch.isin(labels, torch.tensor(kept))]
        start = time.perf_counter()
        train_gan(model, images, epochs=epochs, seed=seed, device=device)  # type: ignore[arg-type]
        return {
            "train_seconds": time.perf_counter() - start,
            "train_images": float(len(images)),
        }

    record, cached = load_or_train(
        path, generator, fit, fields=("train_seconds", "train_images")
    )
    generator.requires_grad_(False)
    return TrainedGenerator(
        generator=generator.to(device).eval(),
        path=path,
        dataset=dataset,
        image_size=info.image_size,
        classes=kept,
        epochs=epochs,
        num_images=num_images,
        train_seconds=float(record["train_seconds"]),
        cached=cached,
    )


@dataclass(frozen=True)
class Confidence:
    """A classifier's view of generated samples.

    Attributes:
        mean_confidence: mean top-class probability.
        share_confident: share of samples with top probability >= ``threshold``.
        threshold: the confidence level counted.
        histogram: predicted-class counts, one per class.
    """

    mean_confidence: float
    share_confident: float
    threshold: float
    histogram: tuple[int, ...]


def sample_confidence(
    classifier: nn.Module, images: torch.Tensor, *, threshold: float = 0.8
) -> Confidence:
    """How confidently a (trained) classifier labels generated ``images``."""
    classifier.eval()
    with torch.no_grad():
        probs = torch.softmax(classifier(images), dim=1).cpu()
    top, predicted = probs.max(dim=1)
    histogram = torch.bincount(predicted, minlength=probs.shape[1])
    return Confidence(
        mean_confidence=float(top.mean()),
        share_confident=float((top >= threshold).float().mean()),
        threshold=threshold,
        histogram=tuple(int(c) for c in histogram),
    )


def projection(
    trained: TrainedGenerator,
    images: torch.Tensor,
    *,
    steps: int,
    restarts: int,
    lr: float = 3e-2,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit the code to each image directly: the ceiling of a latent-only attack.

    Each image gets ``restarts`` codes from a standard normal, each moved by
    Adam (``lr``, cut tenfold at 3/8, 5/8 and 7/8 of ``steps``, as GIAS's
    latent search) on the mean squared pixel error; the best code per image
    is kept. The attack never sees the image; this is what the prior could
    give at best, with the truth in hand.

    Returns:
        ``(fitted images, PSNR per image)``, on the CPU.
    """
    device = next(trained.generator.parameters()).device
    truth = images.to(device)
    n = truth.shape[0]
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(restarts, n, trained.generator.nz, 1, 1, generator=generator)
    z = z.to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    milestones = [int(steps // f) for f in (2.667, 1.6, 1.142)]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, 0.1)
    target = truth.expand(restarts, *truth.shape)
    for _ in range(steps):
        optimizer.zero_grad()
        fitted = trained.images(z.flatten(0, 1)).view_as(target)
        ((fitted - target) ** 2).mean(dim=(2, 3, 4)).sum().backward()
        optimizer.step()
        scheduler.step()
    with torch.no_grad():
        fitted = trained.images(z.flatten(0, 1)).view_as(target).clamp(0, 1)
        errors = ((fitted - target) ** 2).mean(dim=(2, 3, 4))  # (restarts, n)
        best = errors.argmin(dim=0)
        chosen = fitted[best, torch.arange(n, device=device)].cpu()
    return chosen, metrics.psnr(chosen, images.cpu())
