"""Abadi et al.'s MNIST experiment (CCS 2016, Sec. 5.2): DP-PCA, then DP-SGD.

The network: the image's 784 pixels projected onto 60 principal directions
(computed privately by :mod:`gi_lib.defenses.dp_pca`), one hidden layer of
1,000 ReLU units and a softmax layer, without biases, weights drawn from a
normal distribution of standard deviation ``1/sqrt(fan_in)`` truncated at two
standard deviations (the authors' code). Training: lots drawn by Poisson
sampling with rate ``q = lot_size / N`` (opacus's sampler, which its
accountant assumes), each example's gradient clipped to total L2 norm
``clip_norm`` over both weight matrices (the paper's Algorithm 1; the
authors' code clips each matrix to the bound separately), Gaussian noise of
standard deviation ``noise_multiplier * clip_norm`` added to the sum, which is
divided by the expected lot size; plain SGD, the learning rate decreasing
linearly from ``lr`` to ``end_lr`` over ``lr_saturate_epochs`` epochs, then
fixed. Clipping and noise are opacus's (its fast "ghost" clipping, which
computes each example's gradient norm without forming the gradient; exact
for these layers). The non-private run uses the exact PCA and the same
lots and learning rates without clipping or noise.

Each run is cached (:func:`gi_lib.training.load_or_train`) under a name made
of every setting, with its test accuracy after selected epochs (the
accuracy-epsilon curve).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from opacus.grad_sample import GradSampleModuleFastGradientClipping
from opacus.optimizers import DPOptimizerFastGradientClipping
from opacus.utils.fast_gradient_clipping_utils import DPLossFastGradientClipping
from opacus.utils.uniform_sampler import UniformWithReplacementSampler
from torch import nn
from tqdm import tqdm

from gi_lib.defenses import dp_pca
from gi_lib.training import cache_file, load_or_train


class PCANet(nn.Module):
    """A fixed linear projection, then ``hidden`` ReLU units and the logits.

    Args:
        projection: ``(D, k)``, applied to the flattened image (a buffer,
            never trained).
        hidden_units: width of the hidden layer.
        num_classes: outputs.
        seed: seeds the weights.
    """

    def __init__(
        self,
        projection: torch.Tensor,
        hidden_units: int,
        num_classes: int,
        *,
        seed: int,
    ) -> None:
        super().__init__()
        if projection.ndim != 2:
            raise ValueError(
                f"projection must be (D, k), got {tuple(projection.shape)}."
            )
        self.register_buffer("projection", projection.clone())
        dims = projection.shape[1]
        self.head = nn.Sequential(
            nn.Linear(dims, hidden_units, bias=False),
            nn.ReLU(),
            nn.Linear(hidden_units, num_classes, bias=False),
        )
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for layer in (self.head[0], self.head[2]):
                std = 1 / math.sqrt(layer.in_features)
                weight = torch.randn(layer.weight.shape, generator=generator) * std
                # truncated at two standard deviations, redrawn like
                # tf.truncated_normal would (by resampling the tails)
                while bool((outside := weight.abs() > 2 * std).any()):
                    fresh = torch.randn(int(outside.sum()), generator=generator) * std
                    weight[outside] = fresh
                layer.weight.copy_(weight)

    def project(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, k)`` features of ``(N, ...)`` images."""
        return images.reshape(len(images), -1) @ self.projection

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.project(images))


@dataclass(frozen=True)
class TrainingSettings:
    """What one run of Abadi et al.'s MNIST network is trained with.

    Attributes:
        noise_multiplier: DP-SGD's ``sigma``; ``None`` trains without clipping,
            noise or a private PCA.
        pca_noise: the DP-PCA's ``sigma_p`` (ignored without ``noise_multiplier``).
        clip_norm: the per-example bound ``C`` on the whole gradient.
        lot_size: expected lot size ``L``.
        epochs: passes, ``steps = round(epochs * N / L)``.
        lr, end_lr, lr_saturate_epochs: the step size's linear schedule.
        pca_dims, hidden_units: the network.
        seed: weights, PCA noise, lots and gradient noise.
    """

    noise_multiplier: float | None
    pca_noise: float
    clip_norm: float
    lot_size: int
    epochs: int
    lr: float
    end_lr: float
    lr_saturate_epochs: float
    pca_dims: int
    hidden_units: int
    seed: int

    def __post_init__(self) -> None:
        if self.noise_multiplier is not None and self.noise_multiplier < 0:
            raise ValueError(
                f"noise_multiplier must be >= 0, got {self.noise_multiplier}."
            )
        if self.noise_multiplier is not None and self.pca_noise <= 0:
            raise ValueError(
                "a private run needs pca_noise > 0 (the DP-PCA's sigma_p)."
            )
        for name in ("clip_norm", "lr", "end_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        for name in ("lot_size", "epochs", "pca_dims", "hidden_units"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")

    @property
    def private(self) -> bool:
        return self.noise_multiplier is not None

    def lr_at(self, epoch: float) -> float:
        """The step size after ``epoch`` (fractional) epochs."""
        if self.lr_saturate_epochs <= 0:
            return self.end_lr
        done = min(epoch / self.lr_saturate_epochs, 1.0)
        return self.lr + (self.end_lr - self.lr) * done

    def key(self, num_images: int, num_test: int) -> list[str]:
        """The cache file's name parts (``num_images`` training images, the
        accuracies measured on ``num_test`` test images)."""
        privacy = (
            f"s{self.noise_multiplier:.6g}-p{self.pca_noise:g}-c{self.clip_norm:g}"
            if self.private
            else "nonprivate"
        )
        return [
            "pcanet",
            f"k{self.pca_dims}",
            f"h{self.hidden_units}",
            privacy,
            f"L{self.lot_size}",
            f"e{self.epochs}",
            f"lr{self.lr:g}-{self.end_lr:g}-{self.lr_saturate_epochs:g}",
            f"n{num_images}",
            f"t{num_test}",
            f"s{self.seed}",
        ]


@dataclass
class PrivateRun:
    """One trained network and its curve.

    Attributes:
        model: the network, in eval mode.
        settings: what it was trained with.
        num_images: training images ``N``.
        steps: lots trained on.
        sample_rate: ``q = L / N``.
        test_accuracy: accuracy on the test images after the last epoch.
        curve_epochs, curve_accuracy: test accuracy after these epochs.
        train_seconds: training time when it ran.
        cached: loaded rather than trained in this call.
    """

    model: PCANet
    settings: TrainingSettings
    num_images: int
    steps: int
    sample_rate: float
    test_accuracy: float
    curve_epochs: list[int]
    curve_accuracy: list[float]
    train_seconds: float
    cached: bool

    def steps_after(self, epoch: int) -> int:
        """Lots trained on after ``epoch`` epochs."""
        return round(epoch * self.num_images / self.settings.lot_size)


def curve_epochs(epochs: int, points: int = 12) -> list[int]:
    """About ``points`` epochs, spread evenly up to the last, at which the
    curve's test accuracy is measured."""
    every = max(1, math.ceil(epochs / points))
    return sorted({*range(every, epochs + 1, every), epochs})


def _accuracy(model: PCANet, features: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        predicted = model.head(features).argmax(1)
    return float((predicted == labels).float().mean())


def cache_path(settings: TrainingSettings, num_images: int, num_test: int) -> Path:
    """The cache file of one run."""
    return cache_file(settings.key(num_images, num_test), folder="models/dp_mnist")


def lot_schedule(count: int, lot_size: int, epochs: float) -> tuple[float, int]:
    """Lots of expected size ``lot_size`` drawn by Poisson sampling from
    ``count`` images for ``epochs`` epochs: the sampling rate ``L / N`` and
    the number of steps ``round(epochs N / L)``.

    Raises:
        ValueError: the lot is larger than the training set.
    """
    if lot_size > count:
        raise ValueError(f"lot_size {lot_size} exceeds the {count} training images.")
    return lot_size / count, round(epochs * count / lot_size)


def train(
    settings: TrainingSettings,
    images: torch.Tensor,
    labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    num_classes: int = 10,
    progress: bool = False,
) -> PrivateRun:
    """Train Abadi et al.'s MNIST network once (cached) with ``settings``.

    Args:
        settings: the run's settings.
        images, labels: the private training set ``(N, ...)``, ``(N,)``.
        test_images, test_labels: the clean test set.
        num_classes: outputs.
        progress: show a progress bar.
    """
    count = len(labels)
    sample_rate, steps = lot_schedule(count, settings.lot_size, settings.epochs)
    generator = torch.Generator().manual_seed(settings.seed)
    pca_noise = settings.pca_noise if settings.private else 0.0
    projection = dp_pca.dp_pca_projection(
        images, settings.pca_dims, pca_noise, generator=generator
    )
    model = PCANet(projection, settings.hidden_units, num_classes, seed=settings.seed)
    marks = curve_epochs(settings.epochs)

    def fit(net: nn.Module) -> dict[str, object]:
        assert isinstance(net, PCANet)
        features = net.project(images).detach()
        test_features = net.project(test_images).detach()
        sampler = UniformWithReplacementSampler(
            num_samples=count, sample_rate=sample_rate, generator=generator, steps=steps
        )
        optimizer, step = _step_function(net, settings, generator)
        curve: list[float] = []
        start = time.perf_counter()
        done = 0
        lots = iter(sampler)
        for epoch in tqdm(marks, desc="dp-sgd", disable=not progress):
            for _ in range(round(epoch * count / settings.lot_size) - done):
                for group in optimizer.param_groups:
                    group["lr"] = settings.lr_at(done / (count / settings.lot_size))
                index = torch.as_tensor(next(lots), dtype=torch.long)
                step(features[index], labels[index])
                done += 1
            curve.append(_accuracy(net, test_features, test_labels))
            net.head.train()
        seconds = time.perf_counter() - start
        return {
            "test_accuracy": curve[-1],
            "curve_epochs": torch.tensor(marks),
            "curve_accuracy": torch.tensor(curve, dtype=torch.float64),
            "steps": done,
            "train_seconds": seconds,
        }

    record, cached = load_or_train(
        cache_path(settings, count, len(test_labels)),
        model,
        fit,  # type: ignore[arg-type]
        fields=(
            "test_accuracy",
            "curve_epochs",
            "curve_accuracy",
            "steps",
            "train_seconds",
        ),
    )
    return PrivateRun(
        model=model.eval(),
        settings=settings,
        num_images=count,
        steps=int(record["steps"]),
        sample_rate=sample_rate,
        test_accuracy=float(record["test_accuracy"]),
        curve_epochs=[int(e) for e in record["curve_epochs"]],  # type: ignore[attr-defined]
        curve_accuracy=[float(a) for a in record["curve_accuracy"]],  # type: ignore[attr-defined]
        train_seconds=float(record["train_seconds"]),
        cached=cached,
    )


def _step_function(net: PCANet, settings: TrainingSettings, generator: torch.Generator):
    """The optimiser and one training step on a lot of projected features:
    opacus's clipped, noised step for a private run, plain SGD otherwise."""
    loss = nn.CrossEntropyLoss()
    sgd = torch.optim.SGD(net.head.parameters(), lr=settings.lr)
    if not settings.private:

        def plain(features: torch.Tensor, targets: torch.Tensor) -> None:
            sgd.zero_grad()
            loss(net.head(features), targets).backward()
            sgd.step()

        return sgd, plain
    module = GradSampleModuleFastGradientClipping(
        net.head,
        max_grad_norm=settings.clip_norm,
        use_ghost_clipping=True,
        loss_reduction="mean",
    )
    optimizer = DPOptimizerFastGradientClipping(
        sgd,
        noise_multiplier=settings.noise_multiplier,  # type: ignore[arg-type]
        max_grad_norm=settings.clip_norm,
        expected_batch_size=settings.lot_size,
        loss_reduction="mean",
        generator=generator,
    )
    criterion = DPLossFastGradientClipping(
        module, optimizer, loss, loss_reduction="mean"
    )

    def private(features: torch.Tensor, targets: torch.Tensor) -> None:
        optimizer.zero_grad()
        with warnings.catch_warnings():
            # opacus's hooks fire on the features, which need no gradient.
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            criterion(module(features), targets).backward()
        optimizer.step()

    return optimizer, private
