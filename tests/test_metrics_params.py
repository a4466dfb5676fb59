import pytest
import torch

from gi_lib import metrics
from gi_lib.params import (
    Param,
    ParameterError,
    check_parameters,
    common_parameters,
    new_names,
)


def test_psnr_mse_ssim_values():
    truth = torch.full((2, 3, 8, 8), 0.5)
    noisy = truth.clone()
    noisy[1] += 0.1
    assert metrics.mse(noisy, truth).tolist() == pytest.approx([0.0, 0.01], abs=1e-7)
    assert float(metrics.psnr(noisy, truth)[1]) == pytest.approx(20.0, abs=1e-3)
    ssim = metrics.ssim(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    assert ssim.shape == (2,) and float(ssim.max()) < 0.5
    same = torch.rand(2, 1, 16, 16)
    assert metrics.ssim(same, same).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)


def test_label_accuracy_compares_multisets():
    assert metrics.label_accuracy(torch.tensor([3]), torch.tensor([3])) == 1.0
    assert metrics.label_accuracy(
        torch.tensor([1, 2, 2]), torch.tensor([2, 1, 3])
    ) == pytest.approx(2 / 3)


def test_best_matching_undoes_a_shuffle():
    generator = torch.Generator().manual_seed(0)
    truth = torch.rand(6, 3, 8, 8, generator=generator)
    permutation = torch.tensor([4, 0, 5, 2, 1, 3])
    shuffled = truth[permutation] + 0.01 * torch.randn(6, 3, 8, 8, generator=generator)
    order = metrics.best_matching(shuffled, truth)
    assert torch.equal(permutation[order], torch.arange(6))


SPEC = {
    **common_parameters(multiple_datasets=True),
    "max_iterations": Param(int, minimum=1),
}
GOOD = dict(
    profile="cpu",
    dataset="mnist,cifar10",
    model="lenet",
    num_trials=2,
    seed=0,
    device="auto",
    max_iterations=10,
)


def test_good_parameters_pass():
    assert check_parameters(GOOD, SPEC, notebook="dlg") == GOOD


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            {"max_iteration": 3},
            "(?s)no parameter named 'max_iteration'.*max_iterations",
        ),
        ({"max_iterations": "10"}, "must be of type int"),
        ({"max_iterations": -5}, "too small"),
        ({"num_trials": True}, "must be of type int"),
        ({"dataset": "mnist,imagenet"}, "unknown value 'imagenet'.*cifar10"),
        ({"device": "tpu"}, "cuda"),
        ({"model": "resnet1000"}, "lenet"),
    ],
)
def test_bad_parameters_say_what_to_change(change, match):
    with pytest.raises(ParameterError, match=match):
        check_parameters({**GOOD, **change}, SPEC, notebook="dlg")


def test_new_names_sees_injected_parameters():
    namespace = {"In": [], "torch": torch}
    baseline = set(namespace)
    namespace.update(seed=1, typo_name=2, _private=3)
    assert new_names(namespace, baseline) == {"seed": 1, "typo_name": 2}
