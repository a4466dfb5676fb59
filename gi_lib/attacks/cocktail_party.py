"""Cocktail Party Attack (Kariyappa, Guo, Wang, Dai, Wang, Pasupathy, Cheng,
Wunsch, Kang, Liu; ICML 2023), and FastICA as its baseline.

The gradient of a fully connected first layer ``W`` (``h x d``) over a batch
(or the sum of many clients' batches) of ``M`` inputs is
``dW = sum_b delta_b x_b^T / M``: every row is a linear mixture of the ``M``
input images. Recovering them is blind source separation, and its
ambiguities are those of ICA: each image comes back up to sign and scale.

Steps (our implementation, after the paper and its public code):

1. centre the rows of ``dW`` over the pixels and whiten them to ``M``
   components (``Z``, ``M x d``, by SVD);
2. find an unmixing matrix ``U`` (``M x M``) so that the rows of ``U Z``
   are non-Gaussian (negentropy, logcosh contrast), mutually decorrelated
   (a penalty ``exp(T |cos(u_i, u_j)|)`` on pairs of rows of ``U``) and
   smooth as images (total variation);
3. each row of ``U Z`` is one image, rescaled to [0, 1].

The paper's official code computes the negentropy term and then sets it to
zero, so its running objective is decorrelation plus TV; ``negentropy_weight``
switches it on as the paper describes it. FastICA (scikit-learn) solves the
same whitened problem by fixed-point iterations without the image prior.

The unmixing matrix is optimised by the shared loop of
:mod:`gi_lib.attacks.base` (Adam): the problem's variable is ``U``, its
``render`` step turns ``U`` into images (the normalised rows of ``U`` times
``Z``, rescaled to [0, 1], in pixel space), its matching loss is the
separation criterion (decorrelation, minus negentropy when switched on),
which also chooses between restarts, and total variation is its prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gi_lib.attacks.base import (
    OptimConfig,
    Problem,
    Reconstruction,
    attack_generator,
    fixed_labels,
    optimize,
    pixel_space,
)
from gi_lib.attacks.priors import Prior, add_priors
from gi_lib.attacks.registry import AttackRun, register_attack
from gi_lib.fl import Observation, trainable_parameters


def fc_network(
    image_shape: tuple[int, int, int], hidden: int, num_classes: int, *, seed: int
) -> nn.Sequential:
    """The attacked FC-2 network: flatten, ``Linear(d, hidden)``, ReLU,
    ``Linear(hidden, num_classes)`` (the paper's FC-2 on CIFAR-10 has 512
    hidden units)."""
    if hidden < 1:
        raise ValueError(f"hidden must be at least 1, got {hidden}.")
    torch.manual_seed(seed)
    d = int(np.prod(image_shape))
    return nn.Sequential(
        nn.Flatten(), nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
    )


def first_linear_gradient(observation: Observation) -> torch.Tensor:
    """The weight gradient of the model's first linear layer (``h x d``)."""
    linears = [m for m in observation.model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the Cocktail Party Attack needs a fully connected layer.")
    first = linears[0].weight
    for k, p in enumerate(trainable_parameters(observation.model)):
        if p is first:
            gradient = observation.gradients[k].detach().double().cpu()
            d = int(np.prod(observation.image_shape))
            if gradient.shape[1] != d:
                raise ValueError(
                    f"the first linear layer reads {gradient.shape[1]} values, not "
                    f"the {d} pixels of an image; the attack needs the image "
                    "itself to enter a fully connected layer."
                )
            return gradient
    raise ValueError("the first linear layer's weight is not trainable.")


def whiten(gradient: torch.Tensor, components: int) -> torch.Tensor:
    """Rows centred over the pixels, whitened to ``components`` rows of unit
    variance (``components x d``)."""
    rows = gradient.shape[0]
    if components > rows:
        raise ValueError(
            f"the layer has {rows} rows (hidden units) but {components} images were "
            "summed; blind source separation needs at least as many mixtures as "
            "sources."
        )
    centred = gradient - gradient.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    return vh[:components] * np.sqrt(gradient.shape[1])


def _as_images(sources: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    low = sources.min(dim=1, keepdim=True).values
    high = sources.max(dim=1, keepdim=True).values
    scaled = (sources - low) / (high - low).clamp(min=1e-12)
    return scaled.view(sources.shape[0], *shape).float()


GAUSSIAN_LOGCOSH = 0.3745672075
"""E[log cosh(nu)] for a standard normal nu (the negentropy reference)."""


def _negentropy(sources: torch.Tensor, a: float = 1.0) -> torch.Tensor:
    """Sum over sources of the logcosh negentropy approximation
    ``(E[log cosh(a y)] / a - E[log cosh(a nu)] / a)^2`` of the standardised
    sources (``a = 1``)."""
    standard = (sources - sources.mean(1, keepdim=True)) / sources.std(
        1, keepdim=True
    ).clamp(min=1e-12)
    gauss = torch.tensor(GAUSSIAN_LOGCOSH, dtype=sources.dtype)
    contrast = torch.log(torch.cosh(a * standard)).mean(1) / a
    return ((contrast - gauss / a) ** 2).sum()


@dataclass(frozen=True)
class CocktailPartyConfig:
    """The attack's settings (ours, tuned on one CIFAR-10 batch of 8; the
    official code's weights were not re-read). The default objective is
    the official code's running one: decorrelation plus TV.

    Attributes:
        iterations: Adam steps on the unmixing matrix (the shared loop's
            ``max_iterations``).
        lr: Adam's step size.
        decorrelation_weight: weight of the decorrelation penalty.
        temperature: T in ``exp(T |cos|)``.
        tv_weight: weight of the total variation of the images.
        negentropy_weight: weight of the negentropy term (0 in the official
            code's running objective).
        restarts: random orthogonal starts of the unmixing matrix; the one
            with the lowest separation loss (without TV) is returned.
    """

    iterations: int = 500
    lr: float = 0.02
    decorrelation_weight: float = 0.1
    temperature: float = 10.0
    tv_weight: float = 1.0
    negentropy_weight: float = 0.0
    restarts: int = 1

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {self.iterations}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}.")
        if self.restarts < 1:
            raise ValueError(f"restarts must be at least 1, got {self.restarts}.")
        for name in ("decorrelation_weight", "tv_weight", "negentropy_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")

    def loop_config(self) -> OptimConfig:
        """The shared loop's settings: plain Adam on the unmixing matrix."""
        return OptimConfig(
            optimizer="adam",
            lr=self.lr,
            max_iterations=self.iterations,
            restarts=self.restarts,
            monitor_every=0,
        )


def unmixing_problem(
    z: torch.Tensor,
    shape: tuple[int, ...],
    config: CocktailPartyConfig,
    *,
    seed: int,
) -> Problem:
    """The Cocktail Party Attack as the shared loop's :class:`Problem`.

    Variables: the unmixing matrix ``U`` (``M x M``), started at a random
    orthogonal matrix (restart ``r`` draws from ``attack_generator(seed, r)``).
    Render: the rows of ``U`` normalised to unit length, times ``Z``, each row
    rescaled to [0, 1] as an image in pixel space. Matching (what selects the
    restart): ``decorrelation_weight * mean exp(T |cos(u_i, u_j)|)`` over
    pairs of rows, minus ``negentropy_weight`` times the sources' negentropy.
    Prior: total variation of the standardised sources, ``tv_weight``.
    """
    m = z.shape[0]
    off_diagonal = ~torch.eye(m, dtype=torch.bool, device=z.device)
    priors = (Prior("tv", config.tv_weight),)

    def sources_of(variables: list[torch.Tensor]) -> torch.Tensor:
        (unmixing,) = variables
        return (unmixing / unmixing.norm(dim=1, keepdim=True)) @ z

    def objective(variables: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        (unmixing,) = variables
        rows = unmixing / unmixing.norm(dim=1, keepdim=True)
        sources = rows @ z
        matching = torch.zeros((), dtype=z.dtype, device=z.device)
        if m > 1:
            cosine = (rows @ rows.T)[off_diagonal].abs()
            matching = (
                config.decorrelation_weight
                * torch.exp(config.temperature * cosine).mean()
            )
        if config.negentropy_weight:
            matching = matching - config.negentropy_weight * _negentropy(sources)
        standard = (sources / sources.std(1, keepdim=True)).view(m, *shape)
        return matching, add_priors(matching, priors, standard)

    def init(restart: int) -> list[torch.Tensor]:
        generator = attack_generator(seed, restart, z.device)
        draw = torch.randn(m, m, generator=generator, dtype=z.dtype, device=z.device)
        return [torch.linalg.qr(draw)[0]]

    return Problem(
        objective=objective,
        init=init,
        labels=fixed_labels(torch.zeros(m, dtype=torch.long)),
        space=pixel_space(z.device),
        description="Cocktail Party",
        render=lambda variables: _as_images(sources_of(variables), shape),
    )


@register_attack("cocktail_party", config=CocktailPartyConfig)
def reconstruct(run: AttackRun[CocktailPartyConfig]) -> Reconstruction:
    """Cocktail Party Attack (ICML 2023): unmix the first FC layer's summed gradient.

    Blind source separation: the ``observation.num_images`` images mixed in the
    first FC layer's gradient, each up to sign and scale (rescaled to [0, 1]).
    ``truth`` is not used: a source's PSNR is only meaningful up to sign and
    scale.
    """
    observation, config = run.observation, run.config
    z = whiten(first_linear_gradient(observation), int(observation.num_images))
    problem = unmixing_problem(z, observation.image_shape, config, seed=run.seed)
    result = optimize(problem, config.loop_config())
    result.images = result.images.to(observation.device)
    return result


@dataclass(frozen=True)
class FastICAConfig:
    """scikit-learn FastICA's settings (``logcosh`` contrast)."""

    max_iter: int = 1000
    tol: float = 1e-4


@register_attack("fastica", config=FastICAConfig)
def fastica(run: AttackRun[FastICAConfig]) -> Reconstruction:
    """FastICA on the first FC layer's summed gradient (the Cocktail Party baseline).

    scikit-learn's FastICA: the ``observation.num_images`` sources, rescaled
    to [0, 1].
    """
    observation, config = run.observation, run.config
    from sklearn.decomposition import FastICA

    m = int(observation.num_images)
    gradient = first_linear_gradient(observation)
    if m > gradient.shape[0]:
        raise ValueError(
            f"{m} images but only {gradient.shape[0]} hidden units: FastICA needs "
            "at least as many mixtures as sources."
        )
    centred = (gradient - gradient.mean(dim=1, keepdim=True)).numpy()
    ica = FastICA(
        n_components=m,
        whiten="unit-variance",
        max_iter=config.max_iter,
        tol=config.tol,
        random_state=run.seed,
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: scored anyway
        sources = ica.fit_transform(centred.T).T  # (m, d)
    images = _as_images(
        torch.from_numpy(np.ascontiguousarray(sources)), observation.image_shape
    )
    return Reconstruction(
        images=images.to(observation.device),
        labels=torch.zeros(m, dtype=torch.long),
        loss=0.0,
    )


def affine_psnr(source: torch.Tensor, truth: torch.Tensor) -> float:
    """PSNR of ``a * source + c`` against ``truth``, with the least-squares
    ``a`` (sign included) and ``c``: the image up to the sign and scale that
    blind source separation cannot fix."""
    s = source.reshape(-1).double()
    t = truth.reshape(-1).double()
    design = torch.stack([s, torch.ones_like(s)], dim=1)
    coef = torch.linalg.lstsq(design, t[:, None]).solution
    fitted = (design @ coef).squeeze(1).clamp(0, 1)
    mse = float(((fitted - t) ** 2).mean())
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


def matched_psnr(images: torch.Tensor, truth: torch.Tensor) -> list[float]:
    """One-to-one matching of recovered images to the truth (Hungarian, on
    :func:`affine_psnr`); returns, per true image, its match's PSNR."""
    from scipy.optimize import linear_sum_assignment

    table = np.array([[affine_psnr(r, t) for t in truth.cpu()] for r in images.cpu()])
    rows, cols = linear_sum_assignment(-table)
    out = [0.0] * truth.shape[0]
    for r, c in zip(rows, cols, strict=True):
        out[c] = float(table[r, c])
    return out
