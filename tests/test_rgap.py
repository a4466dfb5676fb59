"""R-GAP: closed-form recovery on full-rank networks, rank-analysis verdicts."""

import pytest
import torch

from gi_lib import data, metrics, models
from gi_lib.attacks import rgap

MNIST = data.dataset_info("mnist")
# Two convolutions on MNIST: the first with CNN6's first layer, the second
# either wide enough to be full rank (36) or too narrow (4).
FULL_RANK = ((12, 4, 2, 2), (36, 3, 2, 1))
DEFICIENT = ((12, 4, 2, 2), (4, 3, 2, 1))
EXACT_PSNR = 60.0  # dB; float64 solves land far above this


def _net(convs, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.RGAPNet(MNIST, convs)


def _attack(net, truth, **config):
    observation = rgap.observe(net, truth, rgap.wrong_labels(net, truth))
    return rgap.reconstruct(observation, rgap.RGAPConfig(**config))


def test_full_rank_network_recovers_a_real_image_exactly(mnist):
    truth, _, _ = data.sample_victims(mnist, 1, seed=3)
    result = _attack(_net(FULL_RANK), truth, numerical_rank=True)
    assert float(metrics.psnr(result.images, truth)) > EXACT_PSNR
    assert all(layer.deficiency == 0 for layer in result.layers)
    # Closed form: no optimisation loop ran.
    assert result.history == [] and result.evaluations == 0


def test_rank_analysis_verdicts():
    full = rgap.rank_analysis(_net(FULL_RANK), (1, 28, 28))
    deficient = rgap.rank_analysis(_net(DEFICIENT), (1, 28, 28))
    assert rgap.rank_deficiency_index(full) == 0
    assert [c.deficiency > 0 for c in deficient] == [False, True, False]
    # The paper's CNN6 is fully determined; CNN6-d's second convolution is not.
    cifar = data.dataset_info("cifar10")
    cnn6 = rgap.rank_analysis(models.build_model("cnn6", cifar, seed=0), (3, 32, 32))
    cnn6d = rgap.rank_analysis(models.build_model("cnn6d", cifar, seed=0), (3, 32, 32))
    assert rgap.rank_deficiency_index(cnn6) == 0
    assert [c.index for c in cnn6d if c.deficiency > 0] == [1]


def test_rank_deficient_network_fails_as_predicted(mnist):
    truth, _, _ = data.sample_victims(mnist, 1, seed=3)
    result = _attack(_net(DEFICIENT), truth, numerical_rank=True)
    counted = rgap.rank_analysis(_net(DEFICIENT), (1, 28, 28))
    measured = result.layers[1].deficiency
    assert measured is not None and measured >= counted[1].deficiency > 0
    assert float(metrics.psnr(result.images, truth)) < 30.0


def test_conv_matrix_and_normal_equations_match_the_convolution():
    conv = torch.nn.Conv2d(2, 3, 3, stride=2, padding=1, bias=False).double()
    shape = (2, 7, 7)
    x = torch.rand(1, *shape, dtype=torch.float64)
    z = conv(x).detach()
    matrix = rgap.conv_matrix(conv, shape)
    assert torch.allclose(matrix @ x.flatten(), z.flatten())
    k = torch.randn_like(z)
    weight_gradient = torch.nn.grad.conv2d_weight(
        x, conv.weight.shape, k, stride=2, padding=1
    )
    k_matrix, target = rgap.conv_gradient_system(conv, shape, k, weight_gradient)
    assert torch.allclose(k_matrix @ x.flatten(), target)
    weight_eq, gradient_eq = rgap.conv_normal_equations(
        conv, shape, z, k, weight_gradient
    )
    assert torch.allclose(weight_eq.gram, matrix.T @ matrix)
    assert torch.allclose(gradient_eq.gram, k_matrix.T @ k_matrix)
    assert torch.allclose(gradient_eq.rhs, k_matrix.T @ target)


def test_both_solvers_agree(mnist):
    truth, _, _ = data.sample_victims(mnist, 1, seed=4)
    net = _net(((4, 4, 2, 2),), seed=1)  # small, so SVD-based gelsd is quick
    normal = _attack(net, truth, solver="normal")
    lstsq = _attack(net, truth, solver="lstsq")
    assert torch.allclose(normal.raw_images, lstsq.raw_images, atol=1e-4)


@pytest.mark.parametrize("label", [0, 1])
def test_logit_equation_inverts(label):
    for logit in (-3.0, -0.5, 0.7, 2.0):
        sign = 2 * label - 1
        if sign * logit > 1.27:
            continue  # outside the one-to-one branch
        dloss = -sign / (1 + torch.exp(torch.tensor(sign * logit))).item()
        u, k = rgap.solve_logit(logit * dloss, label)
        assert u == pytest.approx(logit, abs=1e-6) and k == pytest.approx(dloss)


def test_activations_invert():
    outputs = torch.randn(50)
    leaky = torch.nn.LeakyReLU(0.2)
    assert torch.allclose(leaky(rgap.invert_activation(leaky, outputs)), outputs)
    with pytest.raises(ValueError, match="invertible"):
        rgap.invert_activation(torch.nn.ReLU(), outputs)


def test_rejects_batches_and_missing_labels(mnist):
    truth, _, _ = data.sample_victims(mnist, 2, seed=0)
    net = _net(FULL_RANK)
    observation = rgap.observe(net, truth, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="one image"):
        rgap.reconstruct(observation)


def test_swept_networks_are_seeded():
    from gi_lib.experiments.rgap import swept_network

    cifar = data.dataset_info("cifar10")
    first = swept_network(cifar, width=20, stride=3, seed=5)
    second = swept_network(cifar, width=20, stride=3, seed=5)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)
