"""The merged loop reproduces the attacks' outputs from before the merge.

Each case ran on fixed seeds with the three separate loops at commit 073fe25
(DLG/iDLG's ``base.optimize``, Inverting Gradients' ``_search`` and the
BatchNorm-prior attack's own loop); the PSNRs below are those runs' outputs.
The merged loop must give the same PSNR within 0.1 dB.
"""

import pytest
import torch

from gi_lib import data, fl, metrics, models
from gi_lib.attacks import OptimConfig, build_attack

TOLERANCE_DB = 0.1
INFO = data.dataset_info("cifar10")


def _psnr(images: torch.Tensor, truth: torch.Tensor) -> float:
    if images.shape[0] > 1:
        images = images[metrics.best_matching(images, truth)]
    return float(metrics.psnr(images, truth).mean())


@pytest.fixture(scope="module")
def victims(cifar10):
    return data.sample_victims(cifar10, 4, seed=3)[:2]


def _lbfgs(iterations: int) -> OptimConfig:
    return OptimConfig(
        optimizer="lbfgs", lr=1.0, max_iterations=iterations, on_divergence="stop"
    )


@pytest.mark.parametrize(("name", "expected"), [("dlg", 5.6808), ("idlg", 25.0527)])
def test_dlg_and_idlg_are_unchanged(cifar10, name, expected):
    images, labels, _ = data.sample_victims(cifar10, 1, seed=0)
    net = models.build_model("lenet", INFO, seed=0)
    observation = fl.observe_fedsgd(net, images, labels, num_classes=10)
    attack = build_attack(name, optim=_lbfgs(60))
    result = attack.reconstruct(observation, seed=1)
    assert _psnr(result.images, images) == pytest.approx(expected, abs=TOLERANCE_DB)


def test_inverting_gradients_with_batched_restarts_is_unchanged(victims):
    images, labels = victims
    net = models.build_model("convnet16", INFO, seed=3)
    observation = fl.observe_fedsgd(
        net, images[:2], labels[:2], num_classes=10, reveal_labels=True
    )
    attack = build_attack("inverting", max_iterations=60, restarts=2, tv_weight=1e-4)
    result = attack.reconstruct(observation, seed=2, truth=images[:2])
    assert result.restart == 0
    assert _psnr(result.images, images[:2]) == pytest.approx(9.5915, abs=TOLERANCE_DB)


def test_inverting_gradients_on_fedavg_is_unchanged(victims):
    images, labels = victims
    net = models.build_model("convnet16", INFO, seed=3)
    observation = fl.observe_fedavg(
        net,
        images[:2],
        labels[:2],
        num_classes=10,
        local_lr=1e-2,
        local_steps=2,
        local_batch_size=1,
    )
    attack = build_attack("inverting", max_iterations=40, tv_weight=1e-4)
    result = attack.reconstruct(observation, seed=2)
    assert _psnr(result.images, images[:2]) == pytest.approx(8.8442, abs=TOLERANCE_DB)


def test_the_l2_lbfgs_baseline_is_unchanged(victims):
    images, labels = victims
    net = models.build_model("convnet16", INFO, seed=3)
    observation = fl.observe_fedsgd(net, images[:1], labels[:1], num_classes=10)
    result = build_attack("l2_lbfgs", config=_lbfgs(10)).reconstruct(
        observation, seed=2
    )
    assert _psnr(result.images, images[:1]) == pytest.approx(14.0654, abs=TOLERANCE_DB)


@pytest.mark.parametrize(
    ("target", "expected"), [("observed", 9.8508), ("running", 9.0207)]
)
def test_the_bn_prior_attack_is_unchanged(victims, target, expected):
    images, labels = victims
    net = models.build_model("smallconv16", INFO, seed=3)
    observation = fl.observe_fedsgd(
        net,
        images[:2],
        labels[:2],
        num_classes=10,
        reveal_labels=True,
        model_mode="train",
        reveal_bn_statistics=target == "observed",
    )
    attack = build_attack(
        "bn_prior",
        bn_target=target,
        max_iterations=60,
        tv_weight=0.1,
        bn_statistics_weight=0.005,
    )
    result = attack.reconstruct(observation, seed=4)
    assert _psnr(result.images, images[:2]) == pytest.approx(expected, abs=TOLERANCE_DB)
