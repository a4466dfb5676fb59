"""Differentially private PCA (Abadi et al., CCS 2016, Sec. 4 and 5.2).

Abadi et al. project MNIST's 784 pixels onto 60 principal directions before
the network, and compute those directions privately: every training image is
scaled to unit L2 norm, the sum of outer products ``A = sum_i x_i x_i^T`` is
formed, Gaussian noise of standard deviation ``sigma_p`` is added to each of
its entries, the result is made symmetric again, and its top eigenvectors are
the projection. Adding or removing one image changes ``A`` by ``x x^T``,
whose Frobenius norm is ``|x|^2 = 1``, so this is the Gaussian mechanism with
sensitivity 1 and noise multiplier ``sigma_p``; symmetrising and the
eigendecomposition are post-processing. Its privacy cost is one Gaussian
release at sampling rate 1, which :func:`gi_lib.defenses.dpsgd.epsilon`
composes with DP-SGD's steps in opacus's accountant (:func:`accountant_entry`).

The settings follow the authors' code (``dp_pca.py`` in
tensorflow/models' ``differential_privacy``: unit-norm rows, noise on every
entry of the full matrix, symmetrised by averaging with its transpose); the
code here is our own.
"""

from __future__ import annotations

import torch

SENSITIVITY = 1.0
"""L2 sensitivity of ``sum_i x_i x_i^T`` when every ``x_i`` has unit norm."""


def covariance(images: torch.Tensor) -> torch.Tensor:
    """``sum_i x_i x_i^T`` of the images scaled to unit L2 norm, ``(D, D)``.

    Args:
        images: ``(N, ...)``; each image is flattened to ``D`` values. An
            all-zero image contributes nothing.
    """
    flat = images.reshape(len(images), -1).to(torch.float64)
    norms = flat.norm(dim=1, keepdim=True)
    unit = flat / norms.clamp_min(torch.finfo(torch.float64).tiny)
    return unit.T @ unit


def dp_pca_projection(
    images: torch.Tensor,
    dims: int,
    noise_multiplier: float,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The top ``dims`` principal directions, computed with Gaussian noise.

    Args:
        images: the private training images ``(N, ...)``, flattened to ``D``
            values each.
        dims: the projection's dimension (Abadi et al.: 60), at most ``D``.
        noise_multiplier: ``sigma_p``, the noise's standard deviation on each
            entry of the (unit-sensitivity) matrix; 0 gives the exact,
            non-private PCA.
        generator: seeds the noise.

    Returns:
        ``(D, dims)`` float32, orthonormal columns, ordered by decreasing
        eigenvalue of the noised matrix; a flattened image ``x`` projects to
        ``x @ projection``.

    Raises:
        ValueError: ``dims`` is not in ``[1, D]`` or ``noise_multiplier < 0``.
    """
    size = images[0].numel() if len(images) else 0
    if not 1 <= dims <= size:
        raise ValueError(f"dims must be in [1, {size}] (pixels per image), got {dims}.")
    if noise_multiplier < 0:
        raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier}.")
    matrix = covariance(images)
    if noise_multiplier > 0:
        noise = torch.randn(matrix.shape, generator=generator, dtype=torch.float64)
        matrix = matrix + noise * noise_multiplier * SENSITIVITY
        matrix = 0.5 * (matrix + matrix.T)
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    order = torch.argsort(eigenvalues, descending=True)[:dims]
    return eigenvectors[:, order].to(torch.float32).contiguous()


def accountant_entry(noise_multiplier: float) -> tuple[float, float, int]:
    """The PCA's release as an entry of opacus's accountant history:
    ``(noise_multiplier, sample_rate=1, steps=1)``, one Gaussian release
    over the whole training set."""
    if noise_multiplier <= 0:
        raise ValueError(
            "a non-private PCA (noise_multiplier 0) has no finite privacy cost."
        )
    return (float(noise_multiplier), 1.0, 1)
