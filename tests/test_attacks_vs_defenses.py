"""The evaluation notebook's library: the BatchNorm-prior attack and the runner."""

import copy

import pytest
import torch

from gi_lib import batchnorm, data, fl, models
from gi_lib.attacks import bn_prior, build_attack
from gi_lib.attacks.base import cosine_distance
from gi_lib.defenses import Combined, GradientPruning, InstaHide, MixUp, NoDefense
from gi_lib.experiments import attacks_vs_defenses as experiment
from gi_lib.experiments import evaluation
from gi_lib.experiments.common import AttackedSample, score
from gi_lib.params import ParameterError
from gi_lib.results import DOES_NOT_HOLD, HOLDS, NOT_ENOUGH_TRIALS

INFO = data.dataset_info("cifar10")


def _batch(cifar10, count=2):
    images, labels, _ = data.sample_victims(cifar10, count, seed=0)
    return images, labels


def test_batch_statistics_are_what_train_mode_normalises_with(cifar10):
    images, _ = _batch(cifar10, 4)
    net = models.build_model("convnet8", INFO, seed=0)
    before = copy.deepcopy(net.state_dict())
    stats = batchnorm.batch_statistics(net, images)
    first = net.features[1](net.features[0](images))  # Normalize, then conv
    assert torch.allclose(stats.means[0], first.mean((0, 2, 3)), atol=1e-6)
    assert torch.allclose(
        stats.variances[0], first.var((0, 2, 3), unbiased=False), atol=1e-6
    )
    for name, value in net.state_dict().items():  # running stats untouched
        assert torch.equal(value, before[name])


def test_simulated_client_matches_the_client_at_the_truth(cifar10):
    images, labels = _batch(cifar10, 3)
    net = models.build_model("convnet8", INFO, seed=0)
    observation = fl.observe_fedsgd(
        net, images, labels, num_classes=10, reveal_labels=True, model_mode="train"
    )
    records: list = []
    client = bn_prior.simulated_client(observation.model, records)
    parameters = fl.trainable_parameters(client)
    simulated = torch.autograd.grad(
        fl.cross_entropy(client(images), labels), parameters
    )
    assert len(records) == len(batchnorm.bn_layers(net))
    assert float(cosine_distance(simulated, observation.gradients)) < 1e-5


def test_attack_needs_a_train_mode_gradient(cifar10):
    images, labels = _batch(cifar10, 1)
    net = models.build_model("convnet8", INFO, seed=0)
    observation = fl.observe_fedsgd(net, images, labels, num_classes=10)
    with pytest.raises(ValueError, match="train mode"):
        bn_prior.reconstruct(observation)


def test_attack_reconstructs_and_knowing_the_statistics_helps(cifar10):
    # Regression: normalising with the known statistics while differentiating
    # through the dummy batch's made the images saturate (about 5 dB).
    # On the shallow BatchNorm network of the cpu profile, 400 steps reach
    # about 19 dB with the batch's statistics and about 15 dB with the
    # model's running statistics (an unrelated image scores about 10 dB).
    images, labels = _batch(cifar10, 1)
    net = models.build_model("smallconv16", INFO, seed=0)

    def curve(exact):
        attack = build_attack(
            "bn_prior",
            bn_target="observed" if exact else "running",
            max_iterations=400,
            tv_weight=0.1 if exact else 0.05,
            bn_statistics_weight=0.005 if exact else 0.001,
        )
        seen = fl.observe_fedsgd(
            net,
            images,
            labels,
            num_classes=10,
            reveal_labels=True,
            model_mode="train",
            reveal_bn_statistics=exact,
        )
        result = attack.reconstruct(seen, seed=0, truth=images)
        return [h["psnr"] for h in result.history if "psnr" in h]

    known = curve(True)
    unknown = curve(False)
    assert known[-1] > 17.0
    assert known[-1] > known[0] + 5.0
    assert known[-1] > unknown[-1] + 1.0


def test_strong_defenses_lower_the_evaluation_attacks_psnr(cifar10):
    # Same private image, same attack seed, strong-assumption attacker; a
    # strong setting of each defense of the evaluation's table.
    images, labels, _ = data.sample_victims(cifar10, 13, seed=0)
    private, private_labels = images[:1], labels[:1]
    pool = (images[1:], labels[1:])
    net = models.build_model("smallconv16", INFO, seed=0)
    config = build_attack(
        "bn_prior", max_iterations=400, tv_weight=0.1, bn_statistics_weight=0.005
    ).config

    def attacked(defense):
        return evaluation.attack_batch(
            net,
            private,
            private_labels,
            defense,
            num_classes=10,
            bn_known=True,
            labels_known=True,
            config=config,
            seed=0,
        ).psnr

    undefended = attacked(NoDefense(seed=0))
    assert undefended > 17.0
    defended = {
        "pruning 0.99": GradientPruning(0.99, seed=0),
        "MixUp k=6": MixUp(6, alpha=(1.0,) * 6, upper=0.3, pool=pool, seed=0),
        "Intra-InstaHide k=4": InstaHide(
            4, upper=0.65, pool=pool, center=INFO.mean, seed=0
        ),
    }
    for name, defense in defended.items():
        assert attacked(defense) < undefended - 2.0, name


def test_client_step_keeps_the_encoded_batch_and_the_attacker_its_statistics(
    cifar10,
):
    images, labels = _batch(cifar10, 2)
    pool = _batch(cifar10, 12)
    net = models.build_model("convnet8", INFO, seed=0)
    mixup = MixUp(4, alpha=(3, 1, 1, 1), upper=0.65, pool=pool, seed=0)
    step = fl.client_fedsgd(
        net,
        images,
        labels,
        num_classes=10,
        model_mode="train",
        defense=Combined([mixup, GradientPruning(0.9)]),
    )
    assert step.encoded and not torch.equal(step.images, images)
    observation = fl.observe_round(net, [step], reveal_bn_statistics=True)
    zeros = sum(int((g == 0).sum()) for g in observation.gradients)
    total = sum(g.numel() for g in observation.gradients)
    assert zeros >= 0.85 * total  # pruned
    # The strong attacker's statistics are those of the mixed batch, not of
    # the private one.
    sent = batchnorm.batch_statistics(net, step.images)
    private = batchnorm.batch_statistics(net, images)
    assert torch.equal(observation.bn_statistics.means[0], sent.means[0])
    assert not torch.allclose(observation.bn_statistics.means[0], private.means[0])


def _params(**overrides):
    values = dict(
        profile="smoke",
        dataset="cifar10",
        model="convnet8",
        num_trials=1,
        seed=0,
        device="cpu",
        num_threads=1,
        batch_size=2,
        max_iterations=60,
        lr=0.1,
        tv_weight=0.1,
        bn_weight=0.005,
        realistic_tv_weight=0.05,
        realistic_bn_weight=0.001,
        ratios="0.9",
        k=4,
        upper=0.65,
        combined_ratio=0.9,
        combined_k=6,
        attack_epoch=1,
        checkpoints="0,1",
        train_epochs=1,
        train_images=128,
        train_lr=0.05,
        train_batch_size=32,
        num_shown=1,
    )
    values.update(overrides)
    return values


def test_check_rejects_bad_values():
    with pytest.raises(ParameterError, match="no parameter named"):
        experiment.check(_params(ratio="0.5"))
    with pytest.raises(ParameterError, match="ratios"):
        experiment.check(_params(ratios="0.5,2"))
    with pytest.raises(ParameterError, match="checkpoints"):
        experiment.check(_params(checkpoints="a"))
    with pytest.raises(ParameterError, match="upper"):
        experiment.check(_params(upper=0.15, combined_k=6, k=4))


def test_check_sorts_the_checkpoints_and_drops_repeats():
    params = experiment.check(_params(checkpoints="5,0,1,1"))
    assert params.checkpoints == (0, 1, 5)


def test_settings_follow_the_paper_table():
    names = list(evaluation.defense_settings(experiment.check(_params())))
    assert names == [
        "none",
        "prune 0.9",
        "MixUp k=4",
        "Intra-InstaHide k=4",
        "prune 0.9 + MixUp k=6",
        "prune 0.9 + Intra-InstaHide k=6",
    ]


def test_run_produces_every_table_figure_and_row(tmp_path, monkeypatch, cifar10):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))
    params = experiment.check(_params(max_iterations=2))
    result = experiment.run(params, progress=False)
    assert set(result.assumptions) == set(evaluation.ASSUMPTIONS)
    assert sorted(result.course) == [0, 1]
    # the undefended strong-assumption attack is shared, not rerun
    assert result.assumptions["BN known, labels known"][0] is result.defenses["none"][0]
    frame = experiment.table_frame(result)
    assert len(frame) == len(result.defenses)
    for figure in (
        experiment.examples_figure,
        experiment.assumptions_figure,
        experiment.course_figure,
        experiment.tradeoff_figure,
    ):
        figure(result)
    rows = experiment.rows(result)
    metrics = {r.metric for r in rows}
    assert {"psnr", "ssim", "test_accuracy"} <= metrics
    assert all(r.paper is None for r in rows)
    assert "with no defense" in experiment.summary_text(result)
    assert len(result.unrelated_psnr) == 1
    claims = experiment.claims(result)
    assert claims and all(c.source for c in claims)
    # one batch: every paired finding lacks trials
    assert {c.verdict for c in claims} == {NOT_ENOUGH_TRIALS}
    assert any(r.experiment.endswith("unrelated-image") for r in rows)


def _attacked(value):
    # A record whose reconstruction scores ``value`` dB: uniform error e with
    # 10 log10(1 / e^2) = value.
    truth = torch.zeros(1, 3, 32, 32)
    image = torch.full_like(truth, 10 ** (-value / 20))
    sample = AttackedSample("", 0, truth, image, score(image, truth), 0.0)
    assert sample.psnr == pytest.approx(value, abs=1e-3)
    return sample


def _fake_run(psnrs, assumptions, course):
    """A run whose batch ``i`` scores ``values[i]`` dB in each setting."""
    params = experiment.check(_params(ratios="0.5,0.99"))
    return evaluation.EvaluationRun(
        params=params,
        device=torch.device("cpu"),
        utility={},
        defenses={n: [_attacked(v) for v in vs] for n, vs in psnrs.items()},
        assumptions={n: [_attacked(v) for v in vs] for n, vs in assumptions.items()},
        course={e: [_attacked(v) for v in vs] for e, vs in course.items()},
        unrelated_psnr=[10.0] * len(psnrs["none"]),
    )


def _settings(shift=0.0):
    """Three batches per setting; ``none`` varies by batch, the others follow
    it at a fixed offset plus a little batch-to-batch noise."""
    none = [22.0, 24.0, 20.0]
    noise = [0.0, 0.3, -0.2]

    def at(offset):
        return [v + offset + e for v, e in zip(none, noise, strict=True)]

    psnrs = {
        "none": none,
        "prune 0.5": at(-0.5 + shift),
        "prune 0.99": at(-10.0),
        "MixUp k=4": at(-9.0),
        "Intra-InstaHide k=4": at(-11.0),
        "prune 0.9 + MixUp k=6": at(-10.0),
        "prune 0.9 + Intra-InstaHide k=6": at(-10.5),
    }
    assumptions = {
        "BN known, labels known": none,
        "BN known, labels unknown": at(-1.0),
        "BN unknown, labels known": at(-4.0),
        "BN unknown, labels unknown": at(-5.0),
    }
    return psnrs, assumptions


def _verdicts(run):
    return [c.verdict for c in experiment.claims(run)]


def test_claims_are_judged_on_paired_batches():
    psnrs, assumptions = _settings()
    course = {0: [23.0, 25.0, 21.0], 3: [19.0, 21.2, 16.8]}
    # BN, labels, course, pruning high, pruning moderate, MixUp, InstaHide
    assert _verdicts(_fake_run(psnrs, assumptions, course)) == [
        HOLDS,
        HOLDS,
        HOLDS,
        HOLDS,
        HOLDS,
        HOLDS,
        DOES_NOT_HOLD,  # pruning + InstaHide is 0.5 dB above InstaHide alone
    ]
    # A moderate ratio that already takes 5 dB off contradicts "pruning needs
    # a high ratio"; later checkpoints that are easier contradict "the attack
    # weakens as the model trains".
    psnrs, assumptions = _settings(shift=-4.5)
    verdicts = _verdicts(_fake_run(psnrs, assumptions, {0: course[3], 3: course[0]}))
    assert verdicts[2] == DOES_NOT_HOLD
    assert verdicts[4] == DOES_NOT_HOLD


def test_two_batches_are_not_enough_whatever_the_means():
    psnrs, assumptions = _settings()
    two = {n: v[:2] for n, v in psnrs.items()}
    run = _fake_run(two, {n: v[:2] for n, v in assumptions.items()}, {0: [23, 25]})
    claims = experiment.claims(run)
    assert {c.verdict for c in claims} == {NOT_ENOUGH_TRIALS}
    assert all("3 trials are needed" in c.evidence for c in claims)


def test_a_difference_within_the_spread_is_not_enough():
    psnrs, assumptions = _settings()
    # MixUp alone and combined swap order from batch to batch.
    psnrs["MixUp k=4"] = [12.0, 16.0, 11.0]
    psnrs["prune 0.9 + MixUp k=6"] = [13.0, 13.0, 12.0]
    verdicts = _verdicts(_fake_run(psnrs, assumptions, {0: [23.0, 25.0, 21.0]}))
    assert verdicts[4] == NOT_ENOUGH_TRIALS  # no course claim with one checkpoint


def test_every_claim_cites_where_the_paper_or_its_authors_say_it():
    psnrs, assumptions = _settings()
    claims = experiment.claims(
        _fake_run(psnrs, assumptions, {0: [23.0, 25.0, 21.0], 3: [1.0, 2.0, 3.0]})
    )
    sources = [c.source for c in claims]
    assert all(s.startswith(("Huang et al.", "Y. Huang")) for s in sources)
    assert "issue #1" in sources[2]
    # the unread tables are cited as such, never with a number
    assert all("NF" in s for s in sources if "Table" in s or "table" in s)
