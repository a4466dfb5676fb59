"""R-GAP: Recursive Gradient Attack on Privacy (Zhu and Blaschko, ICLR 2021).

A closed-form attack, no optimisation. For a network of bias-free layers
``z_i = W_i x_i``, ``x_{i+1} = act_i(z_i)``, the observed weight gradient of
layer ``i`` is ``dL/dW_i = k_i x_i^T`` (a convolution: the same, summed over
output positions), where ``k_i = dL/dz_i``. Starting from the output:

1. The single-logit head with the logistic loss gives ``w . g = u dL/du``,
   a scalar equation in the logit ``u`` that the known label makes solvable;
   it yields ``u`` and ``k = dL/du``.
2. For each layer from the top down, with ``k_i`` and ``z_i`` known, the
   layer's input ``x_i`` solves one linear system: the *gradient constraints*
   ``dL/dW_i = k_i x_i^T`` and the *weight constraints* ``W_i x_i = z_i``
   (a convolution written as its equivalent matrix). Least squares gives
   ``x_i``.
3. ``z_{i-1} = act^{-1}(x_i)`` and ``k_{i-1} = (W_i^T k_i) * act'(z_{i-1})``
   (invertible activations: LeakyReLU, identity, sigmoid), and recurse.

The input of the first layer is the image. A layer whose system has fewer
independent equations than unknowns (rank deficient) cannot be solved
uniquely; the least-squares solution then has the minimum norm in the null
space, and its error propagates to every layer below. :func:`rank_analysis`
tells from the architecture alone which layers are at risk.

Threat model: the attacker sees the model and one client's gradient for one
image, and knows the label (the paper's assumption; the official code also
picks the label the model gets wrong, so that step 1 has a unique root).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from scipy.optimize import brentq
from torch import nn

from gi_lib.attacks.base import Reconstruction
from gi_lib.attacks.registry import AttackRun, register_attack
from gi_lib.fl import Observation, trainable_parameters

# h(v) = -v / (1 + e^v) has its minimum here; it is one-to-one on v < _BRANCH.
_BRANCH = 1.2784645427610738


def logistic_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean logistic loss of single logits ``(N, 1)`` for labels in {0, 1}.

    The paper's loss; the client and the attacker (and the DLG baseline in
    the R-GAP notebook) use this same function.
    """
    return F.binary_cross_entropy_with_logits(
        logits.reshape(-1), labels.reshape(-1).to(logits.dtype)
    )


@torch.no_grad()
def wrong_labels(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The labels the model currently gets wrong (1 where the logit is <= 0).

    The official code trains on these, so that ``y u < 0`` and the logit
    equation of step 1 has a single root (a correctly classified image with a
    confident logit has two).
    """
    return (model(images).reshape(-1) <= 0).long()


def observe(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> Observation:
    """One client's FedSGD gradient under the logistic loss, labels revealed.

    As :func:`gi_lib.fl.observe_fedsgd`, with the paper's loss instead of
    cross-entropy (the networks have a single logit).
    """
    client = copy.deepcopy(model).eval()
    loss = logistic_loss(client(images), labels)
    gradients = torch.autograd.grad(loss, trainable_parameters(client))
    return Observation(
        model=copy.deepcopy(client),
        gradients=tuple(g.detach().clone() for g in gradients),
        num_images=images.shape[0],
        image_shape=tuple(images.shape[1:]),  # type: ignore[arg-type]
        num_classes=2,
        labels=labels.detach().clone(),
    )


# --- activations ------------------------------------------------------------


def invert_activation(act: nn.Module, outputs: torch.Tensor) -> torch.Tensor:
    """The pre-activation that produced ``outputs`` (invertible activations only)."""
    if isinstance(act, nn.Identity):
        return outputs
    if isinstance(act, nn.LeakyReLU):
        return torch.where(outputs < 0, outputs / act.negative_slope, outputs)
    if isinstance(act, nn.Sigmoid):
        return torch.logit(outputs.clamp(1e-12, 1 - 1e-12))
    raise ValueError(
        "R-GAP needs an invertible activation (LeakyReLU, Identity, Sigmoid), "
        f"got {act}."
    )


def activation_derivative(act: nn.Module, outputs: torch.Tensor) -> torch.Tensor:
    """The activation's derivative at the pre-activation, read from ``outputs``."""
    if isinstance(act, nn.Identity):
        return torch.ones_like(outputs)
    if isinstance(act, nn.LeakyReLU):
        # LeakyReLU keeps the sign, so the output tells which branch was taken.
        slope = torch.full_like(outputs, act.negative_slope)
        return torch.where(outputs < 0, slope, torch.ones_like(outputs))
    if isinstance(act, nn.Sigmoid):
        return outputs * (1 - outputs)
    raise ValueError(f"No derivative for activation {act}.")


def solve_logit(product: float, label: int) -> tuple[float, float]:
    """Step 1: the logit ``u`` and ``dL/du`` from ``w . g = u dL/du``.

    With ``y = 2 label - 1`` and ``v = y u``, the logistic loss gives
    ``u dL/du = -v / (1 + e^v)``. That is one-to-one for ``v < 1.28``; for a
    product in ``(-0.28, 0)`` (a confidently right prediction) the root on
    that branch is taken and the other is missed; below ``-0.28`` no root
    exists and the branch point is returned.
    """
    sign = 2 * int(label) - 1

    def h(v: float) -> float:
        return -v / (1 + math.exp(v)) - product

    if product > 0:
        v = brentq(h, -(product + 40.0), 0.0)
    elif product == 0:
        v = 0.0
    elif h(_BRANCH) < 0:
        v = brentq(h, 0.0, _BRANCH)
    else:
        v = _BRANCH
    return v * sign, -sign / (1 + math.exp(v))


# --- convolutions as matrices ----------------------------------------------


def _check_conv(conv: nn.Conv2d) -> None:
    if conv.groups != 1 or conv.padding_mode != "zeros" or conv.dilation != (1, 1):
        raise ValueError("R-GAP handles plain convolutions (groups 1, zero padding).")
    if isinstance(conv.padding, str):
        raise ValueError("give the convolution's padding as numbers.")


def patch_index(conv: nn.Conv2d, in_shape: tuple[int, int, int]) -> torch.Tensor:
    """Which input entry each (patch entry, output position) reads.

    Returns ``(C k_h k_w, L)`` indices into the flattened unpadded input, -1
    where the patch reads zero padding (``L`` output positions).
    """
    _check_conv(conv)
    ids = torch.arange(1, math.prod(in_shape) + 1, dtype=torch.float64)
    columns = F.unfold(
        ids.reshape(1, *in_shape),
        kernel_size=conv.kernel_size,
        padding=conv.padding,  # type: ignore[arg-type]
        stride=conv.stride,
    )[0]
    return columns.round().long() - 1


def conv_matrix(conv: nn.Conv2d, in_shape: tuple[int, int, int]) -> torch.Tensor:
    """The convolution as a dense matrix ``(F L, C H W)`` (float64).

    ``conv_matrix(conv, s) @ x.flatten()`` equals ``conv(x).flatten()``.
    """
    index = patch_index(conv, in_shape)
    filters = conv.weight.shape[0]
    weight = conv.weight.detach().reshape(filters, -1).double().cpu()
    q, pos = (index >= 0).nonzero(as_tuple=True)
    length = index.shape[1]
    rows = torch.arange(filters)[:, None] * length + pos[None, :]
    columns = index[q, pos][None, :].expand(filters, -1)
    matrix = torch.zeros(filters * length, math.prod(in_shape), dtype=torch.float64)
    matrix.index_put_(
        (rows.reshape(-1), columns.reshape(-1)),
        weight[:, q].reshape(-1),
        accumulate=True,
    )
    return matrix


def conv_gradient_system(
    conv: nn.Conv2d,
    in_shape: tuple[int, int, int],
    upstream: torch.Tensor,
    weight_gradient: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient constraints of a convolution as ``(K, b)`` with ``K x = b``.

    ``dL/dW[f, q] = sum_l k[f, l] x[patch(q, l)]``: for each patch entry ``q``
    the ``F`` equations share the ``(F, L)`` matrix ``k``. Only ``rank(k) <=
    min(F, L)`` of them are independent, so each group is replaced by the
    equivalent ``rank(k)`` rows of ``k``'s SVD (same least-squares solution),
    which keeps the system small.
    """
    index = patch_index(conv, in_shape)
    filters, length = conv.out_channels, index.shape[1]
    k = upstream.reshape(filters, length).double().cpu()
    g = weight_gradient.reshape(filters, -1).double().cpu()
    u, s, vh = torch.linalg.svd(k, full_matrices=False)
    rank = int((s > s.max() * 1e-12).sum()) if s.numel() and s.max() > 0 else 0
    compressed = s[:rank, None] * vh[:rank]  # (rank, L)
    targets = u[:, :rank].T @ g  # (rank, C kh kw)
    q, pos = (index >= 0).nonzero(as_tuple=True)
    rows = q[None, :] * rank + torch.arange(rank)[:, None]
    columns = index[q, pos][None, :].expand(rank, -1)
    matrix = torch.zeros(
        index.shape[0] * rank, math.prod(in_shape), dtype=torch.float64
    )
    matrix.index_put_(
        (rows.reshape(-1), columns.reshape(-1)),
        compressed[:, pos].reshape(-1),
        accumulate=True,
    )
    return matrix, targets.T.reshape(-1)


# --- rank analysis -----------------------------------------------------------


@dataclass(frozen=True)
class LayerCount:
    """One layer of :func:`rank_analysis`, counted from the architecture alone.

    Attributes:
        index: position in the network, 0 for the layer that reads the image.
        kind: ``"conv"`` or ``"linear"``.
        input_shape: shape of the layer's input (its unknowns).
        unknowns: entries of the input.
        weight_constraints: ``W x = z`` equations that can be independent:
            the outputs (at most the rank of ``W``).
        gradient_constraints: gradient equations that can be independent: a
            convolution's ``C k_h k_w`` patch entries times ``min(F, L)`` (the
            rank of the upstream ``(F, L)`` matrix ``k``); a linear layer's
            rank-one gradient pins all of its input.
        shared: identities that tie gradient equations to weight equations,
            so they add nothing: ``sum_q W[f, q] dL/dW[f', q] = sum_l k[f', l]
            z[f, l]`` holds for every filter ``f`` and each of the
            ``min(F, L)`` independent rows ``f'`` of ``k`` (linear layers:
            ``min(outputs, inputs)`` of them).
    """

    index: int
    kind: str
    input_shape: tuple[int, ...]
    unknowns: int
    weight_constraints: int
    gradient_constraints: int
    shared: int

    @property
    def constraints(self) -> int:
        """An upper bound on the rank of the layer's coefficient matrix."""
        return self.weight_constraints + self.gradient_constraints - self.shared

    @property
    def deficiency(self) -> int:
        """Unknowns that no count of equations can pin down (0: fully determined)."""
        return max(0, self.unknowns - self.constraints)


def input_shapes(
    model: nn.Module, image_shape: tuple[int, ...]
) -> list[tuple[int, ...]]:
    """Shape (without batch) of each block's input, input to output."""
    shapes: list[tuple[int, ...]] = []
    out = torch.zeros(1, *image_shape)
    with torch.no_grad():
        for block in _blocks(model):
            if isinstance(block.layer, nn.Linear):
                out = out.flatten(1)
            shapes.append(tuple(out.shape[1:]))
            out = block(out)
    return shapes


def _blocks(model: nn.Module) -> list[nn.Module]:
    body = getattr(model, "body", None)
    if body is None or not all(hasattr(b, "layer") and hasattr(b, "act") for b in body):
        raise ValueError(
            "R-GAP needs a gi_lib.models.RGAPNet-like model: `body` of blocks with "
            "`layer` (bias-free Conv2d or Linear) and `act`."
        )
    for block in body:
        if block.layer.bias is not None:
            raise ValueError("R-GAP's closed form assumes layers without bias.")
    return list(body)


def rank_analysis(model: nn.Module, image_shape: tuple[int, ...]) -> list[LayerCount]:
    """Count unknowns and constraints per layer (the paper's rank analysis).

    A layer with ``deficiency > 0`` has fewer possible equations than
    unknowns: R-GAP cannot recover its input uniquely, whatever the weights.
    ``deficiency == 0`` is necessary, not sufficient: equations can still be
    dependent, which :func:`reconstruct` measures as the numerical rank.
    """
    counts = []
    for index, (block, shape) in enumerate(
        zip(_blocks(model), input_shapes(model, image_shape), strict=True)
    ):
        layer = block.layer
        unknowns = math.prod(shape)
        if isinstance(layer, nn.Conv2d):
            positions = patch_index(layer, shape).shape[1]  # type: ignore[arg-type]
            filters = layer.out_channels
            patch = unknowns // math.prod(shape[1:]) * math.prod(layer.kernel_size)
            rows = min(filters, positions)
            weight, gradient, shared = filters * positions, patch * rows, filters * rows
            kind = "conv"
        else:
            weight = min(layer.out_features, unknowns)
            gradient, shared = unknowns, weight
            kind = "linear"
        counts.append(
            LayerCount(index, kind, shape, unknowns, weight, gradient, shared)
        )
    return counts


def rank_deficiency_index(counts: list[LayerCount]) -> int:
    """Sum of the layers' counted deficiencies: 0 for a network R-GAP can break."""
    return sum(c.deficiency for c in counts)


# --- the attack ----------------------------------------------------------------


@dataclass(frozen=True)
class RGAPConfig:
    """R-GAP's settings (there is nothing to tune in the closed form itself).

    Attributes:
        solver: how the least-squares normal equations ``A^T A x = A^T b`` are
            solved: ``"normal"`` by Cholesky with a tiny ridge (fast; the
            ridge picks the minimum-norm solution of a rank-deficient layer),
            ``"lstsq"`` by ``torch.linalg.lstsq`` (SVD-based gelsd, the LAPACK
            routine numpy's lstsq in the official code calls).
        ridge: the ridge, relative to the mean diagonal of the normal matrix.
        numerical_rank: also compute each layer's numerical rank (costs one
            eigenvalue decomposition per layer).
        rank_rtol: singular values below ``rank_rtol`` times the largest count
            as zero.
    """

    solver: Literal["normal", "lstsq"] = "normal"
    ridge: float = 1e-11
    numerical_rank: bool = False
    rank_rtol: float = 1e-6


@dataclass
class LayerSolve:
    """How one layer's linear system went.

    Attributes:
        index: the layer (0 reads the image).
        unknowns: entries of the layer's input.
        equations: rows of the coefficient matrix (weight equations plus one
            gradient equation per weight-gradient entry).
        rank: numerical rank of that matrix (None unless asked for).
        residual: ``|A x - b| / |b|`` of the solution.
    """

    index: int
    unknowns: int
    equations: int
    rank: int | None
    residual: float

    @property
    def deficiency(self) -> int | None:
        return None if self.rank is None else self.unknowns - self.rank


@dataclass
class RGAPReconstruction(Reconstruction):
    """R-GAP's result.

    ``images`` is the solution clamped to [0, 1], ``raw_images`` the solution
    itself, ``layers`` the per-layer solves (input layer first), and ``loss``
    the relative residual of the input layer's system; ``history`` stays
    empty: nothing is iterated.
    """

    raw_images: torch.Tensor | None = None
    layers: list[LayerSolve] = field(default_factory=list)


@dataclass
class _Normal:
    """One block of equations ``A x = b`` as ``(A^T A, A^T b, |b|^2)``."""

    gram: torch.Tensor
    rhs: torch.Tensor
    target_sq: float


def conv_normal_equations(
    conv: nn.Conv2d,
    in_shape: tuple[int, int, int],
    outputs: torch.Tensor,
    upstream: torch.Tensor,
    weight_gradient: torch.Tensor,
) -> tuple[_Normal, _Normal]:
    """A convolution's weight and gradient constraints as normal equations.

    The same equations as :func:`conv_matrix` and :func:`conv_gradient_system`,
    assembled patch by patch: ``W^T W`` adds ``w^T w`` once per output
    position, ``K^T K`` adds ``k^T k`` once per patch entry. This costs far
    less than forming ``K`` (tens of thousands of rows) and multiplying it out.
    """
    index = patch_index(conv, in_shape)
    n = math.prod(in_shape)
    filters, length = conv.out_channels, index.shape[1]
    w = conv.weight.detach().reshape(filters, -1).double().cpu()  # (F, Q)
    z = outputs.reshape(filters, length).double()
    k = upstream.reshape(filters, length).double()
    g = weight_gradient.reshape(filters, -1).double().cpu()  # (F, Q)
    # Padding reads are zero: send them to a spare row/column n, dropped below.
    padded = torch.where(index >= 0, index, torch.full_like(index, n))

    def assemble(
        cross: torch.Tensor, sites: torch.Tensor, loads: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # sites (S, P): input entry read by site s at slot p; cross (P, P); loads (S, P)
        gram = torch.zeros(n + 1, n + 1, dtype=torch.float64)
        rows = sites[:, :, None].expand(-1, -1, sites.shape[1])
        cols = sites[:, None, :].expand(-1, sites.shape[1], -1)
        gram.index_put_(
            (rows.reshape(-1), cols.reshape(-1)),
            cross.expand(sites.shape[0], -1, -1).reshape(-1),
            accumulate=True,
        )
        rhs = torch.zeros(n + 1, dtype=torch.float64)
        rhs.index_add_(0, sites.reshape(-1), loads.reshape(-1))
        return gram[:n, :n], rhs[:n]

    # Weight rows (f, l): sum_q w[f, q] x[index[q, l]] = z[f, l].
    weight_gram, weight_rhs = assemble(w.T @ w, padded.T, (w.T @ z).T)
    # Gradient rows (f, q): sum_l k[f, l] x[index[q, l]] = g[f, q].
    gradient_gram, gradient_rhs = assemble(k.T @ k, padded, (k.T @ g).T)
    return (
        _Normal(weight_gram, weight_rhs, float((z * z).sum())),
        _Normal(gradient_gram, gradient_rhs, float((g * g).sum())),
    )


def _solve(
    blocks: list[_Normal], config: RGAPConfig
) -> tuple[torch.Tensor, int | None, float]:
    """Least squares over blocks of equations, each scaled to unit Frobenius norm.

    Scaling keeps the weight and the (much smaller) gradient equations on one
    footing; in the noiseless case both hold exactly and the scale does not
    move the solution.
    """
    n = blocks[0].gram.shape[0]
    gram = torch.zeros(n, n, dtype=torch.float64)
    rhs = torch.zeros(n, dtype=torch.float64)
    target_sq = 0.0
    for block in blocks:
        scale = float(block.gram.diagonal().sum())  # |A|_F^2
        if scale > 0:
            gram += block.gram / scale
            rhs += block.rhs / scale
            target_sq += block.target_sq / scale
    rank = None
    if config.numerical_rank:
        # eigenvalues of A^T A are the squared singular values of A.
        rank = int(
            torch.linalg.matrix_rank(gram, hermitian=True, rtol=config.rank_rtol**2)
        )
    if config.solver == "lstsq":
        x = torch.linalg.lstsq(gram, rhs[:, None], driver="gelsd").solution[:, 0]
    else:
        regularised = gram.clone()
        regularised.diagonal().add_(config.ridge * float(gram.diagonal().mean()))
        factor = torch.linalg.cholesky(regularised)
        x = torch.cholesky_solve(rhs[:, None], factor)[:, 0]
    # |A x - b|^2 = x^T A^T A x - 2 x^T A^T b + |b|^2
    squared = float(x @ gram @ x - 2 * x @ rhs + target_sq)
    residual = math.sqrt(max(squared, 0.0) / target_sq) if target_sq > 0 else 0.0
    return x, rank, residual


@register_attack("rgap", config=RGAPConfig)
def reconstruct(run: AttackRun[RGAPConfig]) -> RGAPReconstruction:
    """R-GAP: closed-form recursive solve, layer by layer (logistic loss).

    Recovers the client's image from one image's gradient under the logistic
    loss on an :class:`gi_lib.models.RGAPNet` (see :func:`observe`), with the
    label. Nothing is random or iterated: ``seed`` and ``truth`` are not used.

    Raises:
        ValueError: a batch of more than one image, no label, a layer with a
            bias, or an activation without an inverse.
    """
    observation, config = run.observation, run.config
    if observation.num_images != 1:
        raise ValueError("R-GAP reconstructs one image per gradient (num_images=1).")
    if observation.labels is None:
        raise ValueError("R-GAP assumes the label is known; observe it with labels.")
    model = observation.model
    blocks = _blocks(model)
    shapes = input_shapes(model, observation.image_shape)
    gradients = [g.detach().double().cpu() for g in observation.gradients]
    if len(gradients) != len(blocks):
        raise ValueError("expected one weight gradient per layer (no biases).")
    head = blocks[-1].layer
    if not isinstance(head, nn.Linear) or head.out_features != 1:
        raise ValueError("R-GAP's head is a single-logit linear layer.")

    product = float((gradients[-1] * head.weight.detach().double().cpu()).sum())
    logit, dloss = solve_logit(product, int(observation.labels.reshape(-1)[0]))
    upstream = torch.tensor([dloss], dtype=torch.float64)  # k = dL/dz
    outputs = torch.tensor([logit], dtype=torch.float64)  # z
    solves: list[LayerSolve] = []
    x = outputs
    for index in range(len(blocks) - 1, -1, -1):
        layer, shape = blocks[index].layer, shapes[index]
        weight = layer.weight.detach().double().cpu()
        if isinstance(layer, nn.Conv2d):
            systems = list(
                conv_normal_equations(
                    layer,
                    shape,  # type: ignore[arg-type]
                    outputs,
                    upstream,
                    gradients[index],
                )
            )
            equations = upstream.numel() + gradients[index].numel()
        else:
            # The gradient rows k x^T = G: |k|^2 x = G^T k in normal form.
            identity = torch.eye(weight.shape[1], dtype=torch.float64)
            systems = [
                _Normal(
                    weight.T @ weight, weight.T @ outputs, float(outputs @ outputs)
                ),
                _Normal(
                    float(upstream @ upstream) * identity,
                    gradients[index].T @ upstream,
                    float((gradients[index] ** 2).sum()),
                ),
            ]
            equations = weight.shape[0] + gradients[index].numel()
        x, rank, residual = _solve(systems, config)
        solves.append(LayerSolve(index, x.numel(), equations, rank, residual))
        if index == 0:
            break
        below = blocks[index - 1].act
        if isinstance(layer, nn.Conv2d):
            back = torch.nn.grad.conv2d_input(
                (1, *shape),
                weight,
                upstream.reshape(1, layer.out_channels, -1).reshape(
                    1, layer.out_channels, *_out_side(layer, shape)
                ),
                stride=layer.stride,
                padding=layer.padding,
            ).reshape(-1)
        else:
            back = weight.T @ upstream.reshape(-1)
        upstream = back * activation_derivative(below, x)
        outputs = invert_activation(below, x)

    raw = x.reshape(1, *observation.image_shape).float()
    labels = observation.labels.reshape(-1)[:1].clone()
    return RGAPReconstruction(
        images=raw.clamp(0, 1),
        labels=labels,
        loss=solves[-1].residual,
        raw_images=raw,
        layers=solves[::-1],
    )


def _out_side(conv: nn.Conv2d, shape: tuple[int, ...]) -> tuple[int, int]:
    h, w = shape[1], shape[2]
    (kh, kw), (sh, sw) = conv.kernel_size, conv.stride
    ph, pw = conv.padding  # type: ignore[misc]
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
