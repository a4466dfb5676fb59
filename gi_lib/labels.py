"""Batch label restoration from the last linear layer's gradient.

With cross-entropy averaged over a batch of ``K`` images, the last linear
layer ``logits = W a + b`` has the gradients

    dL/dW = (1/K) sum_k (p_k - y_k) a_k^T,    dL/db = (1/K) sum_k (p_k - y_k),

where ``p_k`` is image ``k``'s softmax, ``y_k`` its one-hot label and
``a_k >= 0`` its penultimate features (after a ReLU, average pool or sigmoid).
Row ``c`` of ``dL/dW`` gets a negative contribution ``(p_kc - 1) a_k`` from
each image of class ``c`` and only non-negative ones ``p_jc a_j`` from the
others, so a class absent from the batch has a row without negative entries.

Three rules read the labels off these gradients (weight layout
``[classes, features]``, as PyTorch stores it):

- :func:`row_min_labels`: GradInversion's rule (Yin et al., CVPR 2021,
  Eqns 7-8): the ``K`` classes whose rows have the most negative *minimum*
  entry;
- :func:`row_sum_labels`: iDLG's single-image sign rule extended to a batch
  by taking the ``K`` most negative row *sums*, the baseline of the paper's
  Table 1 (and :func:`gi_lib.attacks.base.infer_labels_from_last_layer`);
- :func:`count_aware_labels`: a rule of this book, not of the paper, for
  batches with repeated labels: the present classes are those whose row has
  a negative entry, and the ``K`` slots are shared among them in proportion
  to the count each bias-gradient entry implies (``n_c = K (q_c - db_c)``,
  with ``q_c`` an estimate of the batch's mean softmax, uniform by default),
  with at least one slot per present class.

The first two return ``K`` *distinct* classes, so on a batch with ``d < K``
distinct classes they score at most ``d / K`` (:func:`distinct_ceiling` is
that ceiling's expectation for uniformly random labels), and they cannot run
when ``K`` exceeds the number of classes.

Accuracy is the multiset overlap (:func:`multiset_accuracy`): the number of
predicted labels that can be paired with equal true labels, divided by ``K``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import torch

LabelRule = Callable[..., torch.Tensor]


def _check(weight_gradient: torch.Tensor, num_images: int, *, distinct: bool) -> None:
    if weight_gradient.ndim != 2:
        raise ValueError(
            "expected the 2-D weight gradient [classes, features] of the last "
            f"linear layer, got shape {tuple(weight_gradient.shape)}."
        )
    if not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f"num_images must be a positive integer, got {num_images!r}.")
    classes = weight_gradient.shape[0]
    if distinct and num_images > classes:
        raise ValueError(
            f"this rule returns {num_images} distinct labels but there are only "
            f"{classes} classes; use count_aware_labels for batches larger than "
            "the number of classes."
        )


def row_min_labels(weight_gradient: torch.Tensor, num_images: int) -> torch.Tensor:
    """GradInversion's rule: the ``num_images`` classes whose weight-gradient
    rows have the most negative minimum entry, most negative first.

    Assumes distinct labels in the batch (Yin et al. Sec. 3.2).
    """
    _check(weight_gradient, num_images, distinct=True)
    return torch.argsort(weight_gradient.amin(dim=-1), stable=True)[:num_images]


def row_sum_labels(weight_gradient: torch.Tensor, num_images: int) -> torch.Tensor:
    """iDLG's rule extended to a batch: the ``num_images`` classes with the
    most negative row sums, most negative first (GradInversion's baseline)."""
    _check(weight_gradient, num_images, distinct=True)
    return torch.argsort(weight_gradient.sum(dim=-1), stable=True)[:num_images]


def count_aware_labels(
    weight_gradient: torch.Tensor,
    num_images: int,
    bias_gradient: torch.Tensor,
    *,
    mean_softmax: torch.Tensor | None = None,
) -> torch.Tensor:
    """A count-aware rule for batches with repeated labels (this book's, not
    the paper's): which classes are present from the signs of the weight
    gradient, how often from the bias gradient.

    1. Present classes: rows with a negative entry (at most ``num_images`` of
       them, the most negative minima first; at least the most negative one).
    2. Counts: ``n_c = K (q_c - db_c)`` (exact when ``q`` is the batch's mean
       softmax, since ``db = q - counts / K``); every present class gets one
       slot, and the remaining ``K - d`` slots go to the present classes by
       largest ``n_c - 1`` then largest remainder.

    Args:
        weight_gradient: ``dL/dW`` of the last linear layer, ``[C, F]``.
        num_images: the batch size ``K``.
        bias_gradient: ``dL/db`` of the last linear layer, ``[C]``.
        mean_softmax: the attacker's estimate ``q`` of the batch's mean
            softmax (uniform ``1/C`` when None).

    Returns:
        ``num_images`` labels (with repeats), sorted by class.
    """
    _check(weight_gradient, num_images, distinct=False)
    classes = weight_gradient.shape[0]
    if bias_gradient.shape != (classes,):
        raise ValueError(
            f"bias_gradient must have shape ({classes},), got "
            f"{tuple(bias_gradient.shape)}; count_aware_labels needs the last "
            "layer's bias gradient."
        )
    q = (
        torch.full((classes,), 1.0 / classes, dtype=torch.float64)
        if mean_softmax is None
        else mean_softmax.detach().double().cpu()
    )
    minima = weight_gradient.detach().amin(dim=-1).double().cpu()
    order = torch.argsort(minima, stable=True)
    present = [int(c) for c in order if minima[c] < 0][:num_images]
    if not present:
        present = [int(order[0])]
    estimate = num_images * (q - bias_gradient.detach().double().cpu())
    counts = dict.fromkeys(present, 1)
    extra = [max(float(estimate[c]) - 1.0, 0.0) for c in present]
    left = num_images - len(present)
    if left > 0:
        total = sum(extra)
        shares = (
            [e / total * left for e in extra]
            if total > 0
            else [left / len(present)] * len(present)
        )
        floors = [int(s) for s in shares]
        for c, f in zip(present, floors, strict=True):
            counts[c] += f
        remainders = sorted(
            range(len(present)),
            key=lambda i: (-(shares[i] - floors[i]), -extra[i]),
        )
        for i in remainders[: left - sum(floors)]:
            counts[present[i]] += 1
    labels = [c for c in sorted(counts) for _ in range(counts[c])]
    return torch.tensor(labels, dtype=torch.long)


RULES: dict[str, str] = {
    "row_min": "row-min (Yin et al.)",
    "row_sum": "row-sum (iDLG, extended)",
    "count_aware": "count-aware (ours)",
}


def restore_labels(
    rule: str,
    weight_gradient: torch.Tensor,
    num_images: int,
    bias_gradient: torch.Tensor | None = None,
) -> torch.Tensor:
    """The labels rule ``rule`` (a key of :data:`RULES`) reads off the gradients.

    ``row_min`` and ``row_sum`` need ``num_images <= classes``;
    ``count_aware`` needs ``bias_gradient``.
    """
    if rule == "row_min":
        return row_min_labels(weight_gradient, num_images)
    if rule == "row_sum":
        return row_sum_labels(weight_gradient, num_images)
    if rule == "count_aware":
        if bias_gradient is None:
            raise ValueError(
                "the count-aware rule needs the last layer's bias gradient."
            )
        return count_aware_labels(weight_gradient, num_images, bias_gradient)
    raise ValueError(f"Unknown label rule {rule!r}; choose one of {', '.join(RULES)}.")


def multiset_accuracy(
    predicted: Sequence[int] | torch.Tensor, truth: Sequence[int] | torch.Tensor
) -> float:
    """Multiset overlap of predicted and true labels over the batch size:
    ``sum_c min(#pred_c, #true_c) / K``. Order does not matter."""
    p = Counter(int(x) for x in predicted)
    t = Counter(int(x) for x in truth)
    size = sum(t.values())
    if size == 0:
        raise ValueError("the true batch is empty.")
    return sum(min(count, p[c]) for c, count in t.items()) / size


def distinct_ceiling(num_images: int, num_classes: int) -> float:
    """Expected best multiset accuracy of a rule that returns distinct labels,
    on a batch of ``num_images`` uniformly random labels from ``num_classes``:
    ``E[d] / K`` with ``E[d] = C (1 - (1 - 1/C)^K)`` distinct classes."""
    if num_images < 1 or num_classes < 1:
        raise ValueError("num_images and num_classes must be positive.")
    expected = num_classes * (1 - (1 - 1 / num_classes) ** num_images)
    return expected / num_images


def last_layer_gradients(
    features: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dL/dW, dL/db)`` of the mean cross-entropy for a last linear layer
    that maps ``features`` ``[K, F]`` to ``logits`` ``[K, C]``, in closed form.

    Exact when the features do not depend on the batch (BatchNorm in eval
    mode), so many batches can be scored from one feature pass.
    """
    probs = torch.softmax(logits.double(), dim=-1)
    onehot = torch.nn.functional.one_hot(labels, logits.shape[-1]).double()
    delta = (probs - onehot) / labels.shape[0]
    return delta.T @ features.double(), delta.sum(dim=0)
