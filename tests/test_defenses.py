"""Plaintext defenses: what each one sends, and that each one hurts an attack."""

import pytest
import torch

from gi_lib import data, fl, metrics, models
from gi_lib.attacks import dlg
from gi_lib.attacks.base import OptimConfig
from gi_lib.defenses import (
    DPSGD,
    Combined,
    GradientPruning,
    InstaHide,
    MixUp,
    NoDefense,
    dpsgd,
)
from gi_lib.defenses.mixup import private_heavy_alpha
from gi_lib.defenses.pruning import prune_gradient
from gi_lib.defenses.utility import cache_path, train_with_defense
from gi_lib.experiments import instahide as instahide_page
from gi_lib.experiments import pruning as pruning_page
from gi_lib.params import ParameterError
from gi_lib.training import sample_split

INFO = data.dataset_info("cifar10")


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.5, 0.9, 0.99, 1.0])
def test_pruning_zeroes_that_share_of_each_layer(ratio):
    net = models.build_model("lenet", INFO, seed=0)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    gradients = fl.fedsgd_gradient(net, images, torch.tensor([1, 2]))
    pruned = GradientPruning(ratio).transform_gradients(gradients)
    for before, after in zip(gradients, pruned, strict=True):
        assert int((before == 0).sum()) == 0  # no natural zeros to confuse the count
        assert int((after == 0).sum()) == round(ratio * before.numel())
        kept = after != 0
        assert torch.equal(after[kept], before[kept])
        if bool(kept.any()) and bool((~kept).any()):  # survivors are the largest
            assert before[kept].abs().min() >= before[~kept].abs().max()


def test_pruning_rejects_a_ratio_outside_zero_one():
    with pytest.raises(ValueError, match="ratio"):
        GradientPruning(1.5)
    with pytest.raises(ValueError, match="ratio"):
        prune_gradient(torch.ones(3), -0.1)


def _victims(cifar10, count=20):
    images, labels, _ = data.sample_victims(cifar10, count, seed=0)
    return images, labels


def test_dpsgd_gradient_is_clipped_per_sample_mean_plus_noise(cifar10):
    images, labels = _victims(cifar10, 4)
    images = images.double()  # float32 GroupNorm on flat patches is ill-conditioned
    net = dpsgd.private_model(models.build_model("convnet8", INFO, seed=0)).double()
    clip = 0.5
    reference = []
    for i in range(4):  # per-sample reference: one gradient at a time, clipped
        g = fl.fedsgd_gradient(net, images[i : i + 1], labels[i : i + 1])
        norm = torch.sqrt(sum((t**2).sum() for t in g))
        reference.append([t * min(1.0, clip / (float(norm) + 1e-6)) for t in g])
    expected = [sum(r[j] for r in reference) / 4 for j in range(len(reference[0]))]
    noiseless = DPSGD(clip_norm=clip, noise_multiplier=0.0).client_gradients(
        net, images, labels
    )
    for got, want in zip(noiseless, expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-8)
    sigma = 2.0
    noised = DPSGD(clip_norm=clip, noise_multiplier=sigma, seed=1).client_gradients(
        net, images, labels
    )
    residual = torch.cat(
        [(n - e).flatten() for n, e in zip(noised, expected, strict=True)]
    )
    # The added noise is N(0, (sigma * C)^2) per coordinate, divided by the batch.
    assert abs(float(residual.std()) - sigma * clip / 4) < 0.02 * sigma * clip / 4
    assert abs(float(residual.mean())) < 0.01


def test_dpsgd_epsilon_is_opacus_accountant():
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    for _ in range(500):
        accountant.step(noise_multiplier=1.1, sample_rate=0.01)
    ours = dpsgd.epsilon(noise_multiplier=1.1, sample_rate=0.01, steps=500, delta=1e-5)
    # opacus's own orders and a few larger ones (dpsgd.ALPHAS)
    reference = accountant.get_epsilon(delta=1e-5, alphas=list(dpsgd.ALPHAS))
    assert ours == pytest.approx(reference)
    assert ours <= accountant.get_epsilon(delta=1e-5)
    sigma = dpsgd.noise_for_epsilon(2.0, sample_rate=0.01, steps=500, delta=1e-5)
    spent = dpsgd.epsilon(
        noise_multiplier=sigma, sample_rate=0.01, steps=500, delta=1e-5
    )
    assert spent <= 2.0 and spent == pytest.approx(2.0, rel=0.05)


def test_dpsgd_needs_a_model_without_batchnorm(cifar10):
    images, labels = _victims(cifar10, 2)
    net = models.build_model("convnet8", INFO, seed=0)
    with pytest.raises(ValueError, match="BatchNorm"):
        DPSGD(clip_norm=1, noise_multiplier=1).client_gradients(net, images, labels)


def test_mixup_outputs_are_the_stated_mixtures(cifar10):
    images, labels = _victims(cifar10)
    pool = (images[4:], labels[4:])
    defense = MixUp(4, alpha=[3, 1, 1, 1], upper=0.65, pool=pool, seed=3)
    mixed, targets, encoding = defense.encode_with_key(images[:4], labels[:4], 10)
    assert encoding.mask is None
    lam = encoding.coefficients
    torch.testing.assert_close(lam.sum(1), torch.ones(4))
    assert float(lam.max()) <= 0.65 and float(lam.min()) >= 0
    for i in range(4):
        want = lam[i, 0] * images[i]
        label = lam[i, 0] * torch.nn.functional.one_hot(labels[i], 10).float()
        for j in range(3):
            p = encoding.partners[i, j]
            want = want + lam[i, j + 1] * pool[0][p]
            label = label + lam[i, j + 1] * torch.nn.functional.one_hot(pool[1][p], 10)
        torch.testing.assert_close(mixed[i], want)
        torch.testing.assert_close(targets[i], label)
    # Another batch gets fresh coefficients; the same seed repeats them, and
    # encode is encode_with_key without the key.
    _, _, fresh = defense.encode_with_key(images[:4], labels[:4], 10)
    assert not torch.equal(fresh.coefficients, lam)
    again = MixUp(4, alpha=[3, 1, 1, 1], upper=0.65, pool=pool, seed=3)
    again_mixed, again_targets = again.encode(images[:4], labels[:4], 10)
    assert torch.equal(again_mixed, mixed) and torch.equal(again_targets, targets)
    assert not hasattr(again, "last")  # no hidden record of the last batch


def test_classic_mixup_weights_follow_beta_one():
    weights = MixUp(2, alpha=1.0, seed=0).sample_coefficients(4000)[:, 0]
    # Beta(1, 1) is uniform: mean 1/2, variance 1/12.
    assert float(weights.mean()) == pytest.approx(0.5, abs=0.02)
    assert float(weights.var()) == pytest.approx(1 / 12, abs=0.01)


def test_instahide_is_a_signed_mixup_with_a_private_mask(cifar10):
    images, labels = _victims(cifar10)
    pool = (images[4:], labels[4:])
    mean = INFO.mean
    defense = InstaHide(4, pool=pool, center=mean, seed=5)
    encoded, targets, encoding = defense.encode_with_key(images[:4], labels[:4], 10)
    assert encoding.mask is not None
    mask = encoding.mask
    assert set(mask.unique().tolist()) == {-1.0, 1.0}
    assert 0.45 < float((mask > 0).float().mean()) < 0.55
    mixed = encoding.coefficients[:, 0].view(-1, 1, 1, 1) * images[:4]
    for j in range(3):
        weight = encoding.coefficients[:, j + 1].view(-1, 1, 1, 1)
        mixed = mixed + weight * pool[0][encoding.partners[:, j]]
    center = torch.tensor(mean).view(-1, 1, 1)
    torch.testing.assert_close(encoded, center + mask * (mixed - center))
    assert float(encoding.coefficients.max()) <= 0.65
    torch.testing.assert_close(targets.sum(1), torch.ones(4))
    # encode gives the same encoding (same seed), without the key.
    again = InstaHide(4, pool=pool, center=mean, seed=5)
    assert torch.equal(again.encode(images[:4], labels[:4], 10)[0], encoded)


def test_instahide_weights_the_private_image_most_by_default():
    # Dirichlet(3, 1, 1, 1): the private image's expected share is 3/6, each
    # partner's 1/6; the bound 0.65 rejects the draws where the private share
    # is largest, which moves about 0.07 from it to the partners.
    defense = InstaHide(4, seed=0)
    assert defense.alpha == private_heavy_alpha(4) == (3.0, 1.0, 1.0, 1.0)
    shares = defense.sample_coefficients(4000).mean(0)
    assert 0.40 < float(shares[0]) < 0.46
    assert all(0.17 < float(share) < 0.21 for share in shares[1:])


def test_cross_dataset_instahide_labels_carry_only_private_weight(cifar10):
    images, labels = _victims(cifar10)
    public = torch.rand(10, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    defense = InstaHide(
        4, pool=(images[4:], labels[4:]), public=public, public_count=2, seed=0
    )
    _, targets, encoding = defense.encode_with_key(images[:4], labels[:4], 10)
    private = encoding.coefficients[:, :2].sum(1)
    torch.testing.assert_close(targets.sum(1), private)
    assert bool((encoding.partners[:, 2:] < 0).all())


def test_combined_defense_encodes_then_prunes(cifar10):
    images, labels = _victims(cifar10)
    net = models.build_model("lenet", INFO, seed=0)
    both = Combined([InstaHide(4, pool=(images[4:], labels[4:])), GradientPruning(0.9)])
    observation = fl.observe_fedsgd(
        net, images[:2], labels[:2], num_classes=10, defense=both, reveal_labels=True
    )
    for g in observation.gradients:
        assert int((g == 0).sum()) == round(0.9 * g.numel())
    assert observation.labels.shape == (2, 10)  # the mixed labels the client used
    with pytest.raises(ValueError, match="DP-SGD"):
        Combined([DPSGD(clip_norm=1, noise_multiplier=1)])


def test_training_with_a_defense_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("GI_CACHE_DIR", str(tmp_path))
    kwargs = dict(
        epochs=1, seed=0, device=torch.device("cpu"), num_images=64, test_images=64
    )
    first = train_with_defense("lenet", "mnist", GradientPruning(0.5), **kwargs)
    second = train_with_defense("lenet", "mnist", GradientPruning(0.5), **kwargs)
    assert not first.cached and second.cached
    assert second.test_accuracy == first.test_accuracy and first.steps == 1


def test_cache_paths_tell_apart_every_setting_of_a_defense():
    def path(defense):
        return cache_path(
            "lenet",
            "mnist",
            defense,
            epochs=1,
            seed=0,
            num_images=64,
            lr=0.05,
            batch_size=32,
        )

    public = torch.rand(8, 3, 4, 4)
    same = [
        MixUp(4, upper=0.65),
        MixUp(4, upper=0.65),
    ]
    assert path(same[0]) == path(same[1])
    variants = [
        MixUp(4, upper=0.65),
        MixUp(4, upper=0.9),
        MixUp(4, alpha=(3, 1, 1, 1), upper=0.65),
        MixUp(4, upper=0.65, seed=1),
        InstaHide(4),
        InstaHide(4, center=(0.5, 0.5, 0.5)),
        InstaHide(4, public=public, public_count=2),
        InstaHide(4, public=public[:4], public_count=2),
        Combined([MixUp(4, upper=0.65), GradientPruning(0.9)]),
        Combined([MixUp(4, upper=0.9), GradientPruning(0.9)]),
    ]
    assert len({path(d) for d in variants}) == len(variants)


# One image and seed for every defense: DLG recovers it undefended (> 30 dB).
ATTACK = dlg.DLGConfig(OptimConfig(max_iterations=100, on_divergence="stop"))


@pytest.fixture(scope="module")
def attacked(cifar10):
    images, labels, _ = data.sample_victims(cifar10, 20, seed=0)
    net = models.build_model("lenet", INFO, seed=0)

    def psnr_under(defense) -> float:
        observation = fl.observe_fedsgd(
            net, images[:1], labels[:1], num_classes=10, defense=defense
        )
        result = dlg.reconstruct(observation, ATTACK, seed=0)
        return float(metrics.psnr(result.images, images[:1])[0])

    return psnr_under, (images[1:], labels[1:])


def test_undefended_attack_succeeds(attacked):
    psnr_under, _ = attacked
    assert psnr_under(NoDefense()) > 30.0


@pytest.mark.parametrize("name", ["pruning", "dpsgd", "mixup", "instahide"])
def test_a_strong_defense_lowers_the_attack_psnr(attacked, name):
    psnr_under, pool = attacked
    defense = {
        "pruning": lambda: GradientPruning(0.9),
        "dpsgd": lambda: DPSGD(clip_norm=1.0, noise_multiplier=1.0),
        "mixup": lambda: MixUp(4, alpha=[3, 1, 1, 1], upper=0.65, pool=pool),
        "instahide": lambda: InstaHide(4, pool=pool, center=INFO.mean),
    }[name]()
    assert psnr_under(defense) < 20.0


def _instahide_params(**overrides):
    values = dict(
        profile="smoke",
        dataset="cifar10",
        model="lenet",
        num_trials=1,
        seed=3,
        device="cpu",
        num_threads=1,
        attacks="dlg",
        attack_model="lenet",
        attack_epochs=1,
        max_iterations=2,
        inverting_iterations=2,
        train_epochs=1,
        train_images=64,
        train_lr=0.05,
        batch_size=32,
        num_shown=1,
        k=4,
        upper=0.65,
        public_images=16,
    )
    values.update(overrides)
    return instahide_page.check(values)


def test_public_stand_in_is_disjoint_from_the_training_images(cifar10):
    params = _instahide_params()
    public = instahide_page.public_set(params)
    assert public is not None and public.shape == (16, 3, 32, 32)
    train, _ = sample_split("cifar10", "train", 64, params.seed)
    flat = train.flatten(1)
    for image in public.flatten(1):
        assert not (flat == image).all(1).any()
    assert instahide_page.public_set(_instahide_params(public_images=0)) is None
    with pytest.raises(ParameterError, match="public_images"):
        instahide_page.public_set(_instahide_params(public_images=10**6))


def test_instahide_page_trains_and_attacks_cross_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("GI_CACHE_DIR", str(tmp_path))
    result = instahide_page.run(_instahide_params(), progress=False)
    assert "Cross-InstaHide k=4" in result.utility
    assert "Cross-InstaHide k=4" in result.trials
    sent = result.trials["Cross-InstaHide k=4"][0].sent_images
    assert sent is not None
    rows = instahide_page.rows(result)
    assert any("Cross-InstaHide" in r.experiment for r in rows)


def test_a_defense_page_runs_every_attack_it_is_given_on_the_same_updates():
    # The pruning page with DLG and Inverting Gradients: one Adam step per
    # iteration for IG (DLG's L-BFGS spends up to 20 evaluations per step),
    # the same private image under every ratio and attack, each attack with
    # its own budget, and the attack named in the rows.
    values = dict(
        profile="smoke",
        dataset="cifar10",
        model="lenet",
        num_trials=1,
        seed=0,
        device="cpu",
        num_threads=1,
        max_iterations=3,
        inverting_iterations=4,
        num_shown=1,
        ratios="0,0.9",
        success_psnr=30.0,
    )
    result = pruning_page.run(
        pruning_page.check({**values, "attacks": "dlg,inverting"}), progress=False
    )
    assert result.attacks == ("dlg", "inverting")
    assert result.trials is result.by_attack["dlg"]
    inverted = result.by_attack["inverting"]
    assert set(inverted) == {"0%", "90%"}
    for trials in inverted.values():
        (trial,) = trials
        assert trial.evaluations == 4
        assert torch.isfinite(trial.score.psnr).all()
        assert torch.equal(trial.true_images, inverted["0%"][0].true_images)
    dlg_trial = result.by_attack["dlg"]["0%"][0]
    assert dlg_trial.evaluations > 4
    assert torch.equal(dlg_trial.true_images, inverted["0%"][0].true_images)
    assert not torch.equal(dlg_trial.images, inverted["0%"][0].images)
    rows = pruning_page.rows(result)
    notes = {r.experiment: r.note for r in rows if r.metric == "psnr"}
    assert notes["cifar10/lenet/prune0.9/inverting"].startswith("Inverting Gradients")
    assert notes["cifar10/lenet/prune0.9/dlg"].startswith("DLG")
    # One attack alone runs too, and the figures take either.
    alone = pruning_page.run(
        pruning_page.check({**values, "attacks": "inverting"}), progress=False
    )
    assert alone.attacks == ("inverting",)
    assert torch.equal(
        alone.by_attack["inverting"]["90%"][0].images, inverted["90%"][0].images
    )
    pruning_page.psnr_figure(result)
    pruning_page.examples_figure(result)
