"""GradInversion: label rules, BN_exact from sent buffers, priors, group
consensus and a small attack."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
from torch import nn

from gi_lib import data, fl, metrics, models
from gi_lib.attacks import build_attack
from gi_lib.attacks import gradinversion as gi
from gi_lib.attacks.priors import PRIORS, PriorContext
from gi_lib.batchnorm import batch_statistics, recording
from gi_lib.labels import (
    count_aware_labels,
    distinct_ceiling,
    last_layer_gradients,
    multiset_accuracy,
    restore_labels,
    row_min_labels,
    row_sum_labels,
)


def _brute_force(scores: torch.Tensor, k: int) -> set[int]:
    """The k-subset of classes with the smallest total score, by enumeration."""
    best = min(
        itertools.combinations(range(len(scores)), k),
        key=lambda subset: float(sum(scores[c] for c in subset)),
    )
    return set(best)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_row_min_and_row_sum_match_a_brute_force_reference(k: int) -> None:
    generator = torch.Generator().manual_seed(k)
    for _ in range(20):
        gradient = torch.randn(7, 5, generator=generator, dtype=torch.float64)
        row_min = set(row_min_labels(gradient, k).tolist())
        row_sum = set(row_sum_labels(gradient, k).tolist())
        minima = [min(float(v) for v in row) for row in gradient]
        sums = [sum(float(v) for v in row) for row in gradient]
        assert row_min == _brute_force(torch.tensor(minima), k)
        assert row_sum == _brute_force(torch.tensor(sums), k)


def test_rules_refuse_more_distinct_labels_than_classes() -> None:
    with pytest.raises(ValueError, match="distinct"):
        row_min_labels(torch.zeros(3, 4), 4)
    with pytest.raises(ValueError, match="rule"):
        restore_labels("nope", torch.zeros(3, 4), 2)
    with pytest.raises(ValueError, match="bias"):
        restore_labels("count_aware", torch.zeros(3, 4), 2)


class _ReLUNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(12, 16), nn.ReLU())
        self.fc = nn.Linear(16, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


def test_restored_labels_are_exact_on_unique_label_batches_of_a_relu_net() -> None:
    torch.manual_seed(0)
    net = _ReLUNet()
    for trial in range(30):
        k = 1 + trial % 6
        labels = torch.randperm(6)[:k]
        x = torch.randn(k, 12)
        loss = fl.cross_entropy(net(x), labels)
        weight_grad, bias_grad = torch.autograd.grad(loss, [net.fc.weight, net.fc.bias])
        for rule in ("row_min", "count_aware"):
            got = restore_labels(rule, weight_grad, k, bias_grad)
            assert sorted(got.tolist()) == sorted(labels.tolist()), rule
        # The closed form the label sweep uses is the autograd gradient.
        features = net.body(x).detach()
        w, b = last_layer_gradients(features, net.fc(features).detach(), labels)
        assert torch.allclose(w.float(), weight_grad, atol=1e-6)
        assert torch.allclose(b.float(), bias_grad, atol=1e-6)


def test_count_aware_rule_counts_repeats_when_it_knows_the_softmax() -> None:
    torch.manual_seed(1)
    net = _ReLUNet()
    labels = torch.tensor([0, 0, 0, 2, 5, 5])
    x = torch.randn(6, 12)
    logits = net(x)
    loss = fl.cross_entropy(logits, labels)
    weight_grad, bias_grad = torch.autograd.grad(loss, [net.fc.weight, net.fc.bias])
    q = torch.softmax(logits.detach(), -1).mean(0)
    got = count_aware_labels(weight_grad, 6, bias_grad, mean_softmax=q)
    assert got.tolist() == [0, 0, 0, 2, 5, 5]
    # Distinct-label rules cannot exceed the number of distinct classes.
    assert multiset_accuracy(row_min_labels(weight_grad, 3), labels) <= 0.5


def test_multiset_accuracy_and_the_distinct_ceiling() -> None:
    assert multiset_accuracy([1, 1, 2], [1, 2, 2]) == pytest.approx(2 / 3)
    assert multiset_accuracy([3, 2, 1], [1, 2, 3]) == 1.0
    assert distinct_ceiling(1, 10) == pytest.approx(1.0)
    assert distinct_ceiling(8, 10) == pytest.approx(10 * (1 - 0.9**8) / 8)
    # Monte Carlo check of the ceiling.
    generator = torch.Generator().manual_seed(0)
    draws = torch.randint(0, 10, (20000, 8), generator=generator)
    distinct = torch.tensor([len(set(row.tolist())) for row in draws]).double()
    assert float(distinct.mean()) / 8 == pytest.approx(
        distinct_ceiling(8, 10), abs=0.01
    )


def _small_bn_net(seed: int = 0) -> tuple[nn.Module, data.DatasetInfo]:
    info = data.dataset_info("cifar10")
    return models.build_model("smallconv16", info, seed=seed), info


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_bn_exact_recovers_the_batch_statistics_from_sent_buffers(
    momentum: float | None,
) -> None:
    net, _info = _small_bn_net()
    net = net.double()
    generator = torch.Generator().manual_seed(0)
    for layer in net.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.momentum = momentum
            # Non-trivial running buffers, as after some training.
            layer.running_mean.uniform_(-1, 1, generator=generator)
            layer.running_var.uniform_(0.5, 2, generator=generator)
            layer.num_batches_tracked.fill_(4)
    images = torch.rand(3, 3, 32, 32, generator=generator, dtype=torch.float64)
    sent = gi.sent_bn_buffers(net, images)
    recovered = gi.bn_exact_from_buffers(net, sent, 3, (3, 32, 32))
    truth = batch_statistics(net, images)
    for got, want in zip(recovered.means, truth.means, strict=True):
        assert torch.allclose(got, want, atol=1e-10, rtol=1e-9)
    for got, want in zip(recovered.variances, truth.variances, strict=True):
        assert torch.allclose(got, want, atol=1e-10, rtol=1e-9)
    # Without the unbiased -> biased correction the variances would be off.
    n = 3 * 32 * 32
    assert not torch.allclose(
        recovered.variances[0] * n / (n - 1), truth.variances[0], rtol=1e-6
    )


def test_the_bn_prior_is_zero_at_the_true_batch() -> None:
    net, _info = _small_bn_net()
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    target = batch_statistics(net, images)
    client = net.train()
    with recording(client) as records:
        client(images)
    context = PriorContext(bn_records=records, bn_target=target)
    value = PRIORS["bn_statistics"](images, context, first_multiplier=10.0)
    assert float(value.detach()) == pytest.approx(0.0, abs=1e-5)


def test_group_consensus_of_identical_seeds_is_the_seed() -> None:
    seed = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    seeds = seed.expand(4, -1, -1, -1, -1).clone()
    for registration in ("mean", "translation"):
        assert torch.allclose(gi.consensus(seeds, registration), seed, atol=1e-6)


def test_translation_registration_undoes_a_shift_and_a_flip() -> None:
    image = torch.rand(3, 10, 10, generator=torch.Generator().manual_seed(2))
    moved = torch.roll(image, shifts=(1, -2), dims=(-2, -1)).flip(-1)
    assert torch.allclose(gi.register_to(moved, image, 3), image)


def test_config_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="bn_target"):
        gi.GradInversionConfig(bn_target="exact")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="registration"):
        gi.GroupConfig(registration="flow")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seeds"):
        gi.GroupConfig(seeds=0)


def _unique_batch(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels, _ = data.sample_victims(data.load_dataset("cifar10"), 60, 3)
    chosen: dict[int, int] = {}
    for i, label in enumerate(labels.tolist()):
        chosen.setdefault(label, i)
    index = list(chosen.values())[:count]
    return images[index], labels[index]


def test_attack_reaches_a_psnr_bound_on_a_small_real_problem() -> None:
    # Two CIFAR-10 test images with distinct labels, average-pooled to 8x8
    # pixels (small enough for a few hundred steps), and the untrained
    # three-layer BatchNorm ConvNet built for that size.
    torch.manual_seed(0)
    info = dataclasses.replace(data.dataset_info("cifar10"), image_size=8)
    net = models.build_model("smallconv16", info, seed=0)
    images, labels = _unique_batch(2)
    images = torch.nn.functional.avg_pool2d(images, 4)
    observation = fl.observe_fedsgd(
        net, images, labels, num_classes=info.num_classes, model_mode="train"
    )
    observation = gi.with_sent_buffers(observation, gi.sent_bn_buffers(net, images))
    grey_psnr = float(metrics.psnr(torch.full_like(images, 0.5), images).mean())
    attack = build_attack(
        "gradinversion",
        max_iterations=200,
        warmup_iterations=10,
        gradient_weight=1.0,
        group=gi.GroupConfig(seeds=2, every=20, registration="translation"),
    )
    out = attack.reconstruct(observation, seed=0, truth=images)
    assert isinstance(out, gi.GradInversionReconstruction)
    assert out.seeds.shape == (2, *images.shape)
    assert len(out.seed_losses) == 2 and out.best_seed in (0, 1)
    assert sorted(out.labels.tolist()) == sorted(labels.tolist())
    matched = out.images[metrics.best_matching(out.images, images)]
    psnr = float(metrics.psnr(matched, images).mean())
    assert psnr > max(grey_psnr + 1.5, 13.0)
    assert out.history[-1]["psnr"] > out.history[0]["psnr"]
    # BN_approx needs no batch statistics in the observation.
    plain = dataclasses.replace(observation, bn_statistics=None)
    with pytest.raises(ValueError, match="BN_exact"):
        build_attack("gradinversion", max_iterations=1).reconstruct(plain)
    build_attack("gradinversion", max_iterations=2, bn_target="running").reconstruct(
        plain
    )


def test_registration_moves_counts_the_images_it_shifts() -> None:
    image = torch.rand(1, 3, 10, 10, generator=torch.Generator().manual_seed(4))
    aligned = torch.stack([image, image])
    assert gi.registration_moves(aligned, 2) == 0.0
    shifted = torch.stack([image, torch.roll(image, 2, dims=-1), image, image])
    assert 0 < gi.registration_moves(shifted, 2) <= 1
