"""Image and label metrics on the [0, 1] scale.

SSIM and PSNR come from torchmetrics; the one-to-one matching of a
reconstructed batch to the true batch uses scipy's assignment solver.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from scipy.optimize import linear_sum_assignment
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)


def _check_pair(reconstruction: torch.Tensor, truth: torch.Tensor) -> None:
    if reconstruction.shape != truth.shape or reconstruction.ndim != 4:
        raise ValueError(
            "reconstruction and truth must both be (N, C, H, W) of the same shape, got "
            f"{tuple(reconstruction.shape)} and {tuple(truth.shape)}."
        )


def mse(reconstruction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error, shape ``(N,)``."""
    _check_pair(reconstruction, truth)
    return ((reconstruction.clamp(0, 1) - truth) ** 2).flatten(1).mean(1)


def psnr(reconstruction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for data range 1, shape ``(N,)``.

    The reconstruction is clamped to [0, 1] first, as an image would be shown.
    """
    return _per_image(peak_signal_noise_ratio, reconstruction, truth, dim=(1, 2, 3))


def ssim(reconstruction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (Gaussian window 11, sigma 1.5), shape ``(N,)``."""
    return _per_image(structural_similarity_index_measure, reconstruction, truth)


def _per_image(
    metric: Callable[..., torch.Tensor],
    reconstruction: torch.Tensor,
    truth: torch.Tensor,
    **options: Any,
) -> torch.Tensor:
    """A torchmetrics image metric per image, the reconstruction clamped to
    [0, 1], for data range 1."""
    _check_pair(reconstruction, truth)
    return metric(
        reconstruction.detach().clamp(0, 1).float(),
        truth.float(),
        data_range=1.0,
        reduction="none",
        **options,
    )


def label_accuracy(predicted: torch.Tensor, truth: torch.Tensor) -> float:
    """Fraction of labels recovered, comparing label multisets when unordered.

    For a batch, reconstructed images come in no particular order, so labels
    are compared as multisets (sorted); for one image this is plain equality.
    """
    if predicted.shape != truth.shape:
        raise ValueError(
            f"label shapes differ: {tuple(predicted.shape)} vs {tuple(truth.shape)}"
        )
    common = Counter(predicted.flatten().tolist()) & Counter(truth.flatten().tolist())
    return sum(common.values()) / max(truth.numel(), 1)


def best_matching(reconstruction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Order of reconstructed images that best matches the true batch.

    Solves a one-to-one assignment maximising total PSNR, so each true image is
    scored against exactly one reconstruction (never each against its best).

    Returns:
        ``order`` with ``reconstruction[order][i]`` matched to ``truth[i]``.
    """
    _check_pair(reconstruction, truth)
    num = truth.shape[0]
    rec = reconstruction.detach().clamp(0, 1).flatten(1).float()
    tru = truth.detach().flatten(1).float()
    errors = torch.cdist(tru, rec) ** 2 / tru.shape[1]  # (truth, reconstruction) MSE
    score = -10 * torch.log10(errors.clamp_min(1e-12))
    rows, cols = linear_sum_assignment(score.cpu().numpy(), maximize=True)
    order = torch.empty(num, dtype=torch.long)
    order[torch.as_tensor(rows)] = torch.as_tensor(cols, dtype=torch.long)
    return order


LPIPS_NETWORK = "alex"


def lpips_weights_present(network: str = LPIPS_NETWORK) -> bool:
    """Whether LPIPS can run offline: torchmetrics ships LPIPS's linear heads,
    but the backbone's ImageNet weights come from torchvision's download cache
    (``torch.hub.get_dir()/checkpoints``)."""
    import torch.hub

    prefixes = {"alex": "alexnet-", "vgg": "vgg16-", "squeeze": "squeezenet1_1-"}
    folder = os.path.join(torch.hub.get_dir(), "checkpoints")
    if network not in prefixes or not os.path.isdir(folder):
        return False
    return any(name.startswith(prefixes[network]) for name in os.listdir(folder))


def lpips(
    reconstruction: torch.Tensor, truth: torch.Tensor, network: str = LPIPS_NETWORK
) -> torch.Tensor | None:
    """Per-image LPIPS (lower is closer), or ``None`` without local weights.

    Machines without internet cannot fetch the backbone's weights, so LPIPS is
    optional: callers leave it out of their tables (with a note) on ``None``.
    Grey images are repeated to three channels.
    """
    _check_pair(reconstruction, truth)
    if not lpips_weights_present(network):
        return None
    from torchmetrics.functional.image import (
        learned_perceptual_image_patch_similarity,
    )

    def rgb(images: torch.Tensor) -> torch.Tensor:
        images = images.detach().clamp(0, 1).float()
        return images.repeat(1, 3, 1, 1) if images.shape[1] == 1 else images

    rec, tru = rgb(reconstruction), rgb(truth)
    return torch.stack(
        [
            learned_perceptual_image_patch_similarity(
                rec[i : i + 1], tru[i : i + 1], net_type=network, normalize=True
            )
            for i in range(rec.shape[0])
        ]
    )
