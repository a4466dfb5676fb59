"""Inverting Gradients: the attack, FedAvg unrolling, models and the trainer."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gi_lib import data, fl, metrics, models, training
from gi_lib.attacks import build_attack, inverting
from gi_lib.attacks.base import (
    OptimConfig,
    Problem,
    fixed_labels,
    infer_labels,
    lr_milestones,
    optimize,
    pixel_space,
)
from gi_lib.experiments import inverting_experiments
from gi_lib.experiments import inverting_gradients as experiment
from gi_lib.experiments.common import score
from gi_lib.params import ParameterError

INFO = data.dataset_info("cifar10")
MODEL = "convnet16"
# A fixed budget of signed-Adam steps (one loss evaluation each).
STEPS = 80
PSNR_BOUND = 11.0  # dB; the random start scores about 9.8 dB on this image


def _budget(steps: int = STEPS, **overrides) -> inverting.InvertingConfig:
    # The paper's loop (signed Adam, lr 0.1, step cuts, box) on a small budget.
    settings = {"max_iterations": steps, "tv_weight": 1e-4, **overrides}
    return build_attack("inverting", **settings).config


def _victim(cifar10, count: int = 1, seed: int = 0):
    images, labels, _ = data.sample_victims(cifar10, count, seed)
    return images, labels


def _net(seed: int = 0) -> torch.nn.Module:
    return models.build_model(MODEL, INFO, seed=seed).eval()


def _psnr(result, truth) -> float:
    return float(metrics.psnr(result.images, truth).mean())


@pytest.fixture(scope="module")
def cosine_run(cifar10):
    truth, labels = _victim(cifar10)
    observation = fl.observe_fedsgd(
        _net(), truth, labels, num_classes=10, reveal_labels=True
    )
    result = inverting.reconstruct(observation, _budget(), seed=0)
    return observation, truth, result


def test_untrained_convnet_reaches_the_stated_psnr(cosine_run):
    _, truth, result = cosine_run
    assert _psnr(result, truth) > PSNR_BOUND
    assert result.evaluations == STEPS and not result.diverged


def test_cosine_beats_l2_lbfgs_on_the_same_budget(cosine_run):
    observation, truth, result = cosine_run
    # DLG's attack with the same number of loss evaluations (20 per L-BFGS step).
    lbfgs = OptimConfig(
        optimizer="lbfgs", lr=1.0, max_iterations=STEPS // 20, on_divergence="stop"
    )
    baseline = inverting.reconstruct_l2_lbfgs(observation, lbfgs, seed=0)
    assert baseline.evaluations <= STEPS
    assert _psnr(result, truth) > _psnr(baseline, truth) + 0.5


def test_cosine_beats_l2_with_the_same_optimizer(cosine_run):
    observation, truth, result = cosine_run
    l2 = inverting.reconstruct(observation, _budget(cost="l2"), seed=0)
    assert _psnr(result, truth) > _psnr(l2, truth)


def test_fedavg_attack_beats_one_that_ignores_the_local_steps(cifar10):
    truth, labels = _victim(cifar10, seed=3)
    observation = fl.observe_fedavg(
        _net(),
        truth,
        labels,
        num_classes=10,
        local_lr=0.5,
        local_steps=3,
        reveal_labels=True,
    )
    config = _budget(40)
    unrolled = inverting.reconstruct(observation, config, seed=0)
    ignoring = inverting.reconstruct(
        inverting_experiments.as_gradient(observation), config, seed=0
    )
    assert _psnr(unrolled, truth) > _psnr(ignoring, truth) + 0.3


def test_batched_restarts_equal_sequential_ones(cifar10):
    truth, labels = _victim(cifar10, 2)
    observation = fl.observe_fedsgd(
        _net(), truth, labels, num_classes=10, reveal_labels=True
    )
    batched = inverting.reconstruct(
        observation, _budget(4, restarts=3, batched_restarts=True), seed=1
    )
    sequential = inverting.reconstruct(
        observation, _budget(4, restarts=3, batched_restarts=False), seed=1
    )
    assert batched.restart == sequential.restart
    assert batched.loss == pytest.approx(sequential.loss, rel=1e-4)
    assert torch.allclose(batched.images, sequential.images, atol=1e-4)


def test_the_returned_restart_is_the_one_with_the_lowest_final_loss():
    # A toy problem whose restarts start at known distances from the optimum:
    # each restart run alone gives its final loss; run together, the loop
    # must return the lowest of them (restart 1, which starts closest).
    starts = (3.0, 1.0, 2.0)
    target = torch.zeros(1, 1, 2, 2)

    def problem(first: int) -> Problem:
        def objective(variables):
            matching = ((variables[0] - target) ** 2).sum()
            return matching, matching

        return Problem(
            objective=objective,
            init=lambda r: [torch.full_like(target, starts[first + r])],
            labels=fixed_labels(torch.zeros(1, dtype=torch.long)),
            space=pixel_space(torch.device("cpu")),
            description="toy",
        )

    config = OptimConfig(optimizer="adam", lr=0.1, max_iterations=3, restarts=3)
    together = optimize(problem(0), config)
    alone = [
        optimize(problem(r), dataclasses.replace(config, restarts=1)).loss
        for r in range(3)
    ]
    assert alone[1] < alone[2] < alone[0]
    assert together.restart == 1
    assert together.loss == pytest.approx(alone[1])


def test_images_stay_in_the_box(cifar10):
    truth, labels = _victim(cifar10)
    observation = fl.observe_fedsgd(
        _net(), truth, labels, num_classes=10, reveal_labels=True
    )
    result = inverting.reconstruct(observation, _budget(3, restarts=3), seed=2)
    assert result.images.min() >= 0 and result.images.max() <= 1


def test_layer_choice_and_the_truth_do_not_leak(cifar10):
    truth, labels = _victim(cifar10)
    observation = fl.observe_fedsgd(
        _net(), truth, labels, num_classes=10, reveal_labels=True
    )
    config = _budget(3, layers=(0, 1))
    blind = inverting.reconstruct(observation, config, seed=0)
    watched = inverting.reconstruct(observation, config, seed=0, truth=truth)
    assert torch.equal(blind.images, watched.images)
    assert "psnr" in watched.history[-1]
    with pytest.raises(ValueError, match="layers"):
        inverting.reconstruct(observation, _budget(1, layers=(999,)), seed=0)


def test_labels_are_inferred_from_a_gradient_and_from_a_fedavg_update(cifar10):
    truth, labels = inverting_experiments.distinct_label_victims(cifar10, 4, seed=0)
    net = _net()
    gradient = fl.observe_fedsgd(net, truth, labels, num_classes=10)
    update = fl.observe_fedavg(
        net, truth, labels, num_classes=10, local_lr=1e-3, local_steps=2
    )
    for observation in (gradient, update):
        inferred = infer_labels(observation)
        assert metrics.label_accuracy(inferred, labels) == 1.0


def test_batch_matching_recovers_the_permutation(cifar10):
    truth, _ = _victim(cifar10, 5)
    order = torch.tensor([3, 0, 4, 1, 2])
    shuffled = truth[order] + 0.01 * torch.randn_like(truth)
    matched = metrics.best_matching(shuffled, truth)
    assert torch.equal(order[matched], torch.arange(5))


def test_fedavg_with_one_step_is_minus_lr_times_the_gradient(cifar10):
    truth, labels = _victim(cifar10, 2)
    net = _net()
    update = fl.observe_fedavg(
        net, truth, labels, num_classes=10, local_lr=0.1, local_steps=1
    )
    gradient = fl.fedsgd_gradient(net, truth, labels)
    for u, g in zip(update.gradients, gradient, strict=True):
        assert torch.allclose(u, -0.1 * g, atol=1e-6)
    assert update.update_kind == "weight_difference" and update.local_steps == 1


def test_local_schedule_cycles_minibatches():
    parts = fl.local_schedule(4, 3, 2)
    assert parts == [slice(0, 2), slice(2, 4), slice(0, 2)]
    with pytest.raises(ValueError):
        fl.local_schedule(4, 1, 5)


@pytest.mark.parametrize("name", ["convnet", "resnet18", "resnet20-4", "resnet32-10"])
def test_paper_models_build_and_run(name):
    net = models.build_model(name, INFO, seed=0).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_convnet_has_eight_convolutions_and_its_width():
    net = models.build_model("convnet32", INFO, seed=0)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 8 and convs[0].out_channels == 32
    assert net.fc.in_features == 36 * 32


def test_lr_milestones_follow_the_code():
    assert lr_milestones(4800) == [1799, 2999, 4203]
    assert lr_milestones(24000) == [8998, 14999, 21015]


def test_trainer_caches_and_reuses(tmp_path, monkeypatch, cifar10):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))
    kwargs = dict(epochs=1, seed=0, device=torch.device("cpu"), num_images=64)
    first = training.trained_model("convnet8", "cifar10", **kwargs)
    second = training.trained_model("convnet8", "cifar10", **kwargs)
    assert not first.cached and second.cached and first.path == second.path
    assert first.path.is_file() and first.path.parent.name == "models"
    for a, b in zip(
        first.model.state_dict().values(),
        second.model.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)


def test_lpips_is_none_without_its_weights(monkeypatch):
    monkeypatch.setattr(metrics, "lpips_weights_present", lambda network="": False)
    images = torch.rand(2, 3, 32, 32)
    assert metrics.lpips(images, images) is None
    assert score(images, images).lpips is None


@pytest.mark.skipif(
    not metrics.lpips_weights_present(), reason="LPIPS's backbone weights are absent"
)
def test_lpips_scores_each_image_and_knows_the_truth():
    truth = torch.rand(2, 3, 32, 32)
    values = metrics.lpips(truth, truth)
    assert values is not None and values.shape == (2,)
    assert float(values.max()) < 1e-3
    assert float(metrics.lpips(torch.rand(2, 3, 32, 32), truth).min()) > 0.05


def test_notebook_parameters_are_checked():
    good = {
        "profile": "cpu",
        "dataset": "cifar10",
        "model": "convnet16",
        "num_trials": 1,
        "seed": 0,
        "device": "cpu",
        "num_threads": 1,
        "max_iterations": 1,
        "lr": 0.1,
        "tv_weight": 1e-4,
        "trained_tv_weight": 1e-2,
        "restarts": 1,
        "compile_step": False,
        "lbfgs_iterations": 1,
        "train_epochs": 1,
        "train_images": 0,
        "train_lr": 0.1,
        "train_batch_size": 32,
        "widths": "16,32",
        "fedavg_epochs": "1,2",
        "fedavg_images": "1",
        "fedavg_lrs": "0.1",
        "fedavg_batch_size": 0,
        "fedavg_iterations": 1,
        "batch_sizes": "1,2",
        "batch_iterations": 1,
        "num_shown": 3,
    }
    params = experiment.check(good)
    assert params.num_shown == 1
    assert params.fedavg_epochs == (1, 2) and params.fedavg_lrs == (0.1,)
    assert params.batch_sizes == (1, 2)
    with pytest.raises(ParameterError, match="batch_sizes"):
        experiment.check({**good, "batch_sizes": "1,12"})
    with pytest.raises(ParameterError, match="fedavg_lrs"):
        experiment.check({**good, "fedavg_lrs": "fast"})
    assert params.widths == (16, 32)
    with pytest.raises(ParameterError, match="width 12"):
        experiment.check({**good, "widths": "12"})


# ---------------------------------------------------------------------------
# The claims: synthetic PSNRs -> verdicts
# ---------------------------------------------------------------------------


def _trials(n: int = 4, **changes) -> experiment.ClaimTrials:
    """PSNRs of ``n`` paired trials in which every effect of the paper shows."""
    step = [0.3 * i for i in range(n)]  # image-to-image spread, shared by pairs
    values = {
        "table": {
            "untrained/cosine": [20 + s for s in step],
            "untrained/l2": [15 + s + 0.2 * (i % 2) for i, s in enumerate(step)],
            "trained/cosine": [17 + s for s in step],
            "trained/l2": [11 + s + 0.2 * (i % 2) for i, s in enumerate(step)],
        },
        "mean_colour": [12 + s for s in step],
        "widths": {16: [16 + s for s in step], 32: [20 + s for s in step]},
        "fedavg": [18 + s for s in step],
        "fedavg_mean_colour": [12 + s for s in step],
        "fedavg_steps": 3,
        "batch": (4, 14.0, 12.0),
    }
    return experiment.ClaimTrials(**{**values, **changes})


def _verdicts(claims) -> list[str]:
    return [c.verdict for c in claims]


def test_claims_hold_where_every_paired_difference_is_clearly_positive():
    claims = experiment.judge(_trials())
    # table (4 claims), one width pair, FedAvg, and the batch (one trial)
    assert _verdicts(claims) == ["holds"] * 6 + ["not enough trials"]
    assert all(c.source.startswith("Geiping et al.") for c in claims)
    assert "16" in claims[4].claim and "32" in claims[4].claim
    assert "3 local steps" in claims[5].claim
    assert "paired difference" in claims[0].evidence


def test_claims_fail_when_the_baseline_wins_on_every_image():
    t = _trials()
    swapped = {
        **t.table,
        "trained/cosine": t.table["trained/l2"],
        "trained/l2": t.table["trained/cosine"],
    }
    widths = {16: t.widths[32], 32: t.widths[16]}
    claims = experiment.judge(_trials(table=swapped, widths=widths))
    assert claims[0].verdict == "does not hold"  # L2 beats cosine, trained
    assert claims[4].verdict == "does not hold"  # the narrow net leaks more


def test_claims_with_fewer_than_three_trials_have_no_verdict():
    claims = experiment.judge(_trials(n=2))
    assert set(_verdicts(claims)) == {"not enough trials"}
    assert all("3 trials are needed" in c.evidence for c in claims)


def test_claims_a_run_cannot_test_say_why():
    claims = experiment.judge(
        _trials(widths={32: [20.0] * 4}, fedavg_steps=1, batch=None)
    )
    untested = [c for c in claims if c.verdict == "not tested"]
    assert len(untested) == 3
    assert "one width" in untested[0].evidence
    assert "more than one local step" in untested[1].evidence
    assert "no batch" in untested[2].evidence


def test_mean_colour_is_the_flat_guess():
    info = data.dataset_info("cifar10")
    flat = torch.tensor(info.mean).view(1, 3, 1, 1).expand(2, 3, 32, 32).clone()
    flat[1] += 0.1  # off by 0.1 everywhere: MSE 0.01, 20 dB
    psnr = inverting_experiments.mean_colour_psnr(flat, info)
    assert psnr[1] == pytest.approx(20.0, abs=1e-3)
    assert psnr[0] > 60


def test_convnet_names_and_widths():
    assert inverting_experiments.convnet_width("convnet") == 64
    assert inverting_experiments.convnet_width("convnet16") == 16
    assert inverting_experiments.convnet_width("resnet18") is None
    assert inverting_experiments.convnet_name(32) == "convnet32"
    with pytest.raises(ParameterError):
        inverting_experiments.convnet_name(12)


def test_fedavg_trials_use_the_setting_with_the_most_local_steps():
    settings = [
        {"epochs": 1, "images": 4, "lr": 0.1},
        {"epochs": 3, "images": 1, "lr": 0.1},
        {"epochs": 1, "images": 8, "lr": 0.1},
    ]
    # whole-batch steps: 1, 3, 1; mini-batches of 2: 2, 3, 4
    assert inverting_experiments.most_steps(settings, 0) == 1
    assert inverting_experiments.most_steps(settings, 2) == 2


def _record(truth: torch.Tensor, noise: float, index: int = 0):
    """A scored record whose reconstruction is the truth plus flat noise."""
    from gi_lib.attacks.base import Reconstruction
    from gi_lib.experiments.common import AttackedSample

    generator = torch.Generator().manual_seed(index)
    images = (truth + noise * torch.randn(truth.shape, generator=generator)).clamp(0, 1)
    reconstruction = Reconstruction(
        images=images, labels=torch.zeros(len(truth), dtype=torch.long), loss=0.0
    )
    return AttackedSample.scored(reconstruction, truth, seconds=0.0, index=index)


def _synthetic_run(cifar10, noise: dict[str, float], n: int = 3):
    """An IGRun built from noisy copies of real images (no attack runs)."""
    params = experiment.check(
        {
            "profile": "cpu",
            "dataset": "cifar10",
            "model": "convnet32",
            "num_trials": n,
            "seed": 0,
            "device": "cpu",
            "num_threads": 1,
            "max_iterations": 10,
            "lr": 0.1,
            "tv_weight": 1e-4,
            "trained_tv_weight": 1e-2,
            "restarts": 1,
            "compile_step": False,
            "lbfgs_iterations": 1,
            "train_epochs": 1,
            "train_images": 100,
            "train_lr": 0.005,
            "train_batch_size": 32,
            "widths": "16,32",
            "fedavg_epochs": "1,2",
            "fedavg_images": "1",
            "fedavg_lrs": "0.01",
            "fedavg_batch_size": 0,
            "fedavg_iterations": 1,
            "batch_sizes": "1,2",
            "batch_iterations": 1,
            "num_shown": 2,
        }
    )
    images, _ = _victim(cifar10, n)
    one = [images[i : i + 1] for i in range(n)]

    def trials(key: str) -> list:
        return [_record(t, noise[key], i) for i, t in enumerate(one)]

    table = {k: trials(k) for k in experiment.TABLE_LABELS}
    settings = [
        ({"epochs": 1, "images": 1, "lr": 0.01, "steps": 1}, trials("fedavg")[0]),
        ({"epochs": 2, "images": 1, "lr": 0.01, "steps": 2}, trials("fedavg")[0]),
    ]
    fedavg = inverting_experiments.FedAvgRun(
        settings=settings,
        ignoring_steps=trials("fedavg")[0],
        trials=trials("fedavg"),
        trial_setting=settings[1][0],
    )
    trained = training.TrainedModel(
        model=_net(),
        path=None,
        epochs=1,
        test_accuracy=0.3,
        train_seconds=0.0,
        cached=True,
    )
    return inverting_experiments.IGRun(
        params=params,
        device=torch.device("cpu"),
        trained=trained,
        table=table,
        widths={16: trials("width16"), 32: table["untrained/cosine"]},
        fedavg=fedavg,
        batches={1: trials("fedavg")[0], 2: _record(images[:2], 0.3)},
        batch_label_accuracy={1: 1.0, 2: 1.0},
        imagenet_note="no ImageNet",
        imagenet=None,
        seconds={},
    )


def test_a_synthetic_run_gives_rows_claims_and_prose(cifar10):
    # Less noise is a better reconstruction: every effect of the paper shows.
    noise = {
        "untrained/cosine": 0.02,
        "untrained/l2": 0.1,
        "trained/cosine": 0.05,
        "trained/l2": 0.3,
        "width16": 0.1,
        "fedavg": 0.05,
    }
    result = _synthetic_run(cifar10, noise)
    rows = experiment.rows(result)
    # No row quotes a paper number: Table 1's cells are not available (NF).
    assert all(r.paper is None and r.paper_source is None for r in rows)
    names = {r.experiment for r in rows}
    assert "cifar10/mean-colour/bs1" in names
    assert "cifar10/convnet16/untrained/cosine/bs1" in names
    assert "cifar10/convnet32/fedavg/ep2-n1-lr0.01/trials" in names
    claims = experiment.claims(result)
    assert [c.verdict for c in claims][:6] == ["holds"] * 6
    assert claims[-1].verdict == "not enough trials"  # one batch
    text = experiment.verdicts_text(result, claims)
    assert text.startswith("Of the 7 claims checked in this run, 6 hold")
    assert "test accuracy 0.30" in text
    assert "width 16" not in experiment.summary_text(result)  # widths as "16: .."
    assert "16: " in experiment.summary_text(result)
