"""Label restoration against the batch size: the three rules on batches
whose last-layer gradient is computed in closed form."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gi_lib.experiments.gradinversion.params import GradInversionParams
from gi_lib.labels import (
    RULES,
    distinct_ceiling,
    last_layer_gradients,
    multiset_accuracy,
    restore_labels,
)


@dataclass
class LabelPoint:
    """Per-batch multiset accuracies of the three rules at one batch size."""

    network: str
    protocol: str  # "unique" or "random"
    batch_size: int
    accuracy: dict[str, list[float]]  # rule -> per-batch accuracy (empty: n/a)
    ceiling: float  # expected best accuracy of a distinct-label rule

    def mean(self, rule: str) -> float | None:
        values = self.accuracy.get(rule, [])
        return sum(values) / len(values) if values else None


def _features(
    net: nn.Module, images: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode inputs of the last linear layer and the logits."""
    linear = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    captured: list[torch.Tensor] = []
    hook = linear.register_forward_hook(
        lambda _m, inputs, _o: captured.append(inputs[0].flatten(1))
    )
    net.eval()
    logits = []
    try:
        with torch.no_grad():
            for start in range(0, len(images), 250):
                logits.append(net(images[start : start + 250]))
    finally:
        hook.remove()
    return torch.cat(captured).double(), torch.cat(logits).double()


def label_sweep(
    network: str,
    net: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    params: GradInversionParams,
    num_classes: int,
) -> list[LabelPoint]:
    """Every rule on ``label_batches`` batches per size and protocol."""
    features, logits = _features(net, images.to(next(net.parameters()).device))
    features, logits = features.cpu(), logits.cpu()
    by_class = [torch.nonzero(labels == c).flatten() for c in range(num_classes)]
    generator = torch.Generator().manual_seed(params.seed + 77)
    points = []
    for protocol, sizes in (
        ("unique", params.unique_sizes),
        ("random", params.random_sizes),
    ):
        for k in sizes:
            accuracy: dict[str, list[float]] = {rule: [] for rule in RULES}
            for _ in range(params.label_batches):
                if protocol == "unique":
                    classes = torch.randperm(num_classes, generator=generator)[:k]
                    index = torch.stack(
                        [
                            by_class[int(c)][
                                torch.randint(
                                    len(by_class[int(c)]), (1,), generator=generator
                                )
                            ][0]
                            for c in classes
                        ]
                    )
                else:
                    index = torch.randperm(len(labels), generator=generator)[:k]
                truth = labels[index]
                weight, bias = last_layer_gradients(
                    features[index], logits[index], truth
                )
                for rule in RULES:
                    if rule != "count_aware" and k > num_classes:
                        continue
                    got = restore_labels(rule, weight, k, bias)
                    accuracy[rule].append(multiset_accuracy(got, truth))
            ceiling = 1.0 if protocol == "unique" else distinct_ceiling(k, num_classes)
            points.append(LabelPoint(network, protocol, k, accuracy, ceiling))
    return points
