"""Attack properties on real CIFAR-10 images with DLG's LeNet."""

import pytest
import torch
import torch.nn.functional as F

from gi_lib import data, fl, metrics, models
from gi_lib.attacks import attack_entry, attack_names, build_attack, dlg, idlg
from gi_lib.attacks.base import (
    AttackDiverged,
    OptimConfig,
    Problem,
    cosine_distance,
    optimize,
    pixel_space,
)
from gi_lib.attacks.priors import total_variation
from gi_lib.experiments.single_image import idlg_label_accuracy, run_trials

INFO = data.dataset_info("cifar10")
# A fixed step budget: 100 L-BFGS iterations of at most 20 evaluations each.
BUDGET = OptimConfig(optimizer="lbfgs", lr=1.0, max_iterations=100)
PSNR_BOUND = 30.0


def _observe(
    cifar10, index: int = 0, seed: int = 0
) -> tuple[fl.Observation, torch.Tensor, torch.Tensor]:
    images, labels, _ = data.sample_victims(cifar10, index + 1, seed=seed)
    truth, label = images[index : index + 1], labels[index : index + 1]
    net = models.build_model("lenet", INFO, seed=seed + index)
    return fl.observe_fedsgd(net, truth, label, num_classes=10), truth, label


def test_dlg_recovers_a_cifar10_image_and_label(cifar10):
    observation, truth, label = _observe(cifar10)
    result = dlg.reconstruct(observation, dlg.DLGConfig(BUDGET), seed=0)
    assert float(metrics.psnr(result.images, truth)) > PSNR_BOUND
    assert torch.equal(result.labels, label)


def test_idlg_recovers_a_cifar10_image(cifar10):
    observation, truth, label = _observe(cifar10)
    result = idlg.reconstruct(observation, idlg.IDLGConfig(BUDGET), seed=0)
    assert float(metrics.psnr(result.images, truth)) > PSNR_BOUND
    assert torch.equal(result.labels, label)


def test_an_untouched_dummy_is_far_from_the_image(cifar10):
    # Guards the bound above: noise alone scores far below it.
    observation, truth, _ = _observe(cifar10)
    config = OptimConfig(
        optimizer="lbfgs", lr=1.0, max_iterations=1, lbfgs_inner_steps=1
    )
    result = dlg.reconstruct(observation, dlg.DLGConfig(config), seed=0)
    assert float(metrics.psnr(result.images, truth)) < 15.0


def test_idlg_labels_are_right_on_many_images():
    accuracy, checked = idlg_label_accuracy(
        "cifar10", model="lenet", num_images=200, seed=5, device=torch.device("cpu")
    )
    assert accuracy == 1.0 and checked == 200


def test_same_seed_gives_the_same_numbers_twice(cifar10):
    kwargs = dict(
        model="lenet",
        num_trials=2,
        seed=11,
        device=torch.device("cpu"),
        optim=OptimConfig(max_iterations=5),
        progress=False,
    )
    first = run_trials("cifar10", ("dlg", "idlg"), **kwargs)
    second = run_trials("cifar10", ("dlg", "idlg"), **kwargs)
    assert [t.psnr for t in first] == [t.psnr for t in second]
    assert all(
        torch.equal(a.images, b.images) for a, b in zip(first, second, strict=True)
    )
    assert all(
        torch.equal(a.labels, b.labels) for a, b in zip(first, second, strict=True)
    )


def test_attack_never_reads_the_truth(cifar10):
    # Passing the truth only adds PSNR to the history; the result is identical.
    observation, truth, _ = _observe(cifar10)
    config = dlg.DLGConfig(OptimConfig(max_iterations=3))
    blind = dlg.reconstruct(observation, config, seed=1)
    watched = dlg.reconstruct(observation, config, seed=1, truth=truth)
    assert torch.equal(blind.images, watched.images)
    assert "psnr" in watched.history[-1] and "psnr" not in blind.history[-1]


def _nan_after(steps: int) -> Problem:
    count = {"n": 0}

    def objective(variables):
        count["n"] += 1
        value = (variables[0] ** 2).sum()
        value = value * float("nan") if count["n"] > steps else value
        return value, value

    return Problem(
        objective=objective,
        init=lambda _restart: [torch.ones(1, 1, 4, 4)],
        labels=lambda _variables: torch.zeros(1, dtype=torch.long),
        space=pixel_space(torch.device("cpu")),
    )


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_divergence_stops_with_a_clear_message(optimizer):
    config = OptimConfig(optimizer=optimizer, lr=0.1, max_iterations=10)
    # L-BFGS evaluates its closure up to 20 times in a step: it meets the NaN
    # within its first step.
    where = "iteration 3" if optimizer == "adam" else "iteration 1"
    with pytest.raises(AttackDiverged, match=f"{where}.*Lower the learning rate"):
        optimize(_nan_after(2), config)


def test_divergence_can_keep_the_last_finite_iterate():
    config = OptimConfig(
        optimizer="adam", lr=0.1, max_iterations=10, on_divergence="stop"
    )
    run = optimize(_nan_after(2), config)
    assert run.diverged and torch.isfinite(run.images).all() and len(run.history) == 2


def test_signed_steps_and_batching_need_adam():
    with pytest.raises(ValueError, match="adam"):
        OptimConfig(optimizer="lbfgs", signed=True)


def test_every_attack_is_reachable_by_name_with_one_contract():
    names = attack_names()
    assert {"dlg", "idlg", "inverting", "bn_prior", "rgap", "cafe"} <= set(names)
    for name in names:
        attack = build_attack(name)
        assert isinstance(attack.config, attack_entry(name).config_type)


def test_unknown_attacks_and_settings_name_the_choices():
    with pytest.raises(ValueError, match="choose one of.*dlg"):
        build_attack("nope")
    with pytest.raises(ValueError, match="no setting 'lrr'.*max_iterations"):
        build_attack("inverting", lrr=0.1)
    with pytest.raises(ValueError, match="takes a DLGConfig"):
        build_attack("dlg", config=OptimConfig())


def test_overrides_reach_the_loop_and_the_priors():
    attack = build_attack("inverting", max_iterations=7, tv_weight=0.5)
    assert attack.config.optim.max_iterations == 7
    assert attack.config.optim.signed  # the paper's loop settings are kept
    assert [(p.name, p.weight) for p in attack.config.priors] == [("tv", 0.5)]


def test_bad_optimizer_settings_are_rejected():
    with pytest.raises(ValueError, match="max_iterations"):
        OptimConfig(max_iterations=-1)
    with pytest.raises(ValueError, match="optimizer"):
        OptimConfig(optimizer="sgd")  # type: ignore[arg-type]


def test_cosine_distance_is_one_minus_torchs_cosine_of_the_flat_updates():
    generator = torch.Generator().manual_seed(0)
    shapes = [(6, 3, 5, 5), (6,), (10, 84)]
    simulated = [torch.randn(s, generator=generator) for s in shapes]
    observed = [torch.randn(s, generator=generator) for s in shapes]
    flat_s = torch.cat([t.flatten() for t in simulated])
    flat_o = torch.cat([t.flatten() for t in observed])
    reference = 1 - F.cosine_similarity(flat_s, flat_o, dim=0)
    torch.testing.assert_close(cosine_distance(simulated, observed), reference)
    # Parallel updates are at distance 0 whatever their scale, opposite ones at 2.
    scaled = [3 * t for t in observed]
    assert float(cosine_distance(scaled, observed)) == pytest.approx(0, abs=1e-6)
    negated = [-t for t in observed]
    assert float(cosine_distance(negated, observed)) == pytest.approx(2, abs=1e-6)


def test_total_variation_is_the_mean_absolute_neighbour_difference():
    images = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(1))
    n, c, h, w = images.shape
    across = sum(
        abs(float(images[i, k, y, x + 1] - images[i, k, y, x]))
        for i in range(n)
        for k in range(c)
        for y in range(h)
        for x in range(w - 1)
    ) / (n * c * h * (w - 1))
    down = sum(
        abs(float(images[i, k, y + 1, x] - images[i, k, y, x]))
        for i in range(n)
        for k in range(c)
        for y in range(h - 1)
        for x in range(w)
    ) / (n * c * (h - 1) * w)
    assert float(total_variation(images)) == pytest.approx(across + down, rel=1e-5)
    assert float(total_variation(torch.full((1, 1, 4, 4), 0.3))) == 0.0
