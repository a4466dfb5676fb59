"""The DP-SGD page: DP-PCA, the accountant (the paper's example), Abadi et
al.'s MNIST network trained through opacus, and the page's claims."""

from __future__ import annotations

import math

import pytest
import torch

from gi_lib.defenses import dp_mnist, dp_pca, dpsgd
from gi_lib.experiments import dpsgd as page
from gi_lib.experiments.common import AttackedSample, Score
from gi_lib.params import ParameterError
from gi_lib.results import (
    DOES_NOT_HOLD,
    HOLDS,
    NOT_ENOUGH_TRIALS,
    NOT_TESTED,
    PAPERS_OWN,
)

# ---------------------------------------------------------------------------
# DP-PCA
# ---------------------------------------------------------------------------


def _low_rank_images(count: int = 400, rank: int = 3, seed: int = 0) -> torch.Tensor:
    """Images ``(count, 1, 8, 8)`` that lie in a ``rank``-dimensional subspace."""
    generator = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(64, rank, generator=generator))[0]
    weights = torch.randn(count, rank, generator=generator) * torch.tensor(
        [3.0, 2.0, 1.0][:rank]
    )
    return (weights @ basis.T).reshape(count, 1, 8, 8), basis


def _subspace_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frobenius distance between the projectors onto two column spaces."""
    a, b = a.to(torch.float64), b.to(torch.float64)
    return float(torch.linalg.norm(a @ a.T - b @ b.T))


def test_dp_pca_shape_and_orthonormal_columns():
    images, _ = _low_rank_images()
    projection = dp_pca.dp_pca_projection(
        images, 5, 2.0, generator=torch.Generator().manual_seed(0)
    )
    assert projection.shape == (64, 5) and projection.dtype == torch.float32
    gram = projection.T.to(torch.float64) @ projection.to(torch.float64)
    assert torch.allclose(gram, torch.eye(5, dtype=torch.float64), atol=1e-5)


def test_dp_pca_without_noise_finds_the_data_subspace():
    images, basis = _low_rank_images()
    projection = dp_pca.dp_pca_projection(images, 3, 0.0)
    assert _subspace_distance(projection, basis) < 1e-4


def test_dp_pca_noise_moves_the_subspace_more_as_sigma_grows():
    images, basis = _low_rank_images()
    distances = []
    for sigma in (0.0, 1.0, 30.0, 3000.0):
        projection = dp_pca.dp_pca_projection(
            images, 3, sigma, generator=torch.Generator().manual_seed(1)
        )
        distances.append(_subspace_distance(projection, basis))
    assert distances == sorted(distances)
    assert distances[1] < 0.5 < distances[-1]


def test_dp_pca_is_seeded():
    images, _ = _low_rank_images()

    def draw(seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return dp_pca.dp_pca_projection(images, 3, 50.0, generator=generator)

    first, again, other = draw(0), draw(0), draw(1)
    assert torch.equal(first, again)
    assert _subspace_distance(first, other) > 1e-3


def test_one_image_changes_the_covariance_by_at_most_the_sensitivity():
    images, _ = _low_rank_images(count=50)
    extra = torch.rand(1, 1, 8, 8)
    change = dp_pca.covariance(torch.cat([images, extra])) - dp_pca.covariance(images)
    assert float(torch.linalg.norm(change)) == pytest.approx(dp_pca.SENSITIVITY)


def test_dp_pca_refuses_bad_settings():
    images, _ = _low_rank_images(count=10)
    with pytest.raises(ValueError, match="dims"):
        dp_pca.dp_pca_projection(images, 65, 1.0)
    with pytest.raises(ValueError, match="noise_multiplier"):
        dp_pca.dp_pca_projection(images, 3, -1.0)
    with pytest.raises(ValueError, match="non-private PCA"):
        dp_pca.accountant_entry(0.0)


# ---------------------------------------------------------------------------
# The accountant
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("epochs", "paper"), [(100, 1.26), (400, 2.55)])
def test_moments_accountant_reproduces_the_papers_example(epochs, paper):
    steps = round(epochs / 0.01)
    setting = dict(noise_multiplier=4.0, sample_rate=0.01, steps=steps, delta=1e-5)
    moments = dpsgd.moments_accountant_epsilon(**setting)
    assert moments == pytest.approx(paper, rel=0.02)
    # opacus's conversion of the same divergences is tighter
    assert dpsgd.epsilon(**setting) < moments
    # and strong composition is far looser
    assert page.strong_composition_epsilon(**setting) > 3 * moments


def test_accountant_rows_quote_the_paper_with_source_and_label():
    result = _synthetic_result()
    accountant = [r for r in page.rows(result) if r.experiment.startswith("accountant")]
    assert {r.paper for r in accountant} == {1.26, 2.55}
    assert all(r.paper_source and r.paper_confidence == "T" for r in accountant)
    moments = [r for r in accountant if r.experiment.endswith("/moments")]
    assert all(abs(r.ours - r.paper) < 0.05 * r.paper for r in moments)


def test_the_pca_release_is_one_gaussian_mechanism_composed_with_the_steps():
    alone = dpsgd.epsilon(
        noise_multiplier=1.0, sample_rate=0.01, steps=0, delta=1e-5, pca_noise=7.0
    )
    # one Gaussian release: RDP alpha / (2 sigma^2), converted by opacus
    sgd = dpsgd.epsilon(noise_multiplier=4.0, sample_rate=0.01, steps=1000, delta=1e-5)
    both = dpsgd.epsilon(
        noise_multiplier=4.0, sample_rate=0.01, steps=1000, delta=1e-5, pca_noise=7.0
    )
    assert 0.4 < alone < 0.7
    assert max(alone, sgd) < both < alone + sgd


def test_noise_for_epsilon_spends_the_target_with_the_pca_included():
    sigma = dpsgd.noise_for_epsilon(
        2.0, sample_rate=0.01, steps=3000, delta=1e-5, pca_noise=7.0
    )
    spent = dpsgd.epsilon(
        noise_multiplier=sigma, sample_rate=0.01, steps=3000, delta=1e-5, pca_noise=7.0
    )
    assert spent <= 2.0 and spent == pytest.approx(2.0, rel=0.01)
    with pytest.raises(ValueError, match="alone"):
        dpsgd.noise_for_epsilon(
            0.5, sample_rate=0.01, steps=10, delta=1e-5, pca_noise=4.0
        )


# ---------------------------------------------------------------------------
# Abadi et al.'s MNIST network through opacus
# ---------------------------------------------------------------------------


def _toy_data(count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of 8x8 images that differ in brightness of one half."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (count,), generator=generator)
    images = torch.rand(count, 1, 8, 8, generator=generator) * 0.3
    images[labels == 1, :, :4] += 0.7
    images[labels == 0, :, 4:] += 0.7
    return images, labels


def _settings(noise: float | None, **overrides) -> dp_mnist.TrainingSettings:
    values = dict(
        noise_multiplier=noise,
        pca_noise=4.0,
        clip_norm=4.0,
        lot_size=20,
        epochs=3,
        lr=0.1,
        end_lr=0.05,
        lr_saturate_epochs=2,
        pca_dims=4,
        hidden_units=16,
        seed=0,
    )
    return dp_mnist.TrainingSettings(**(values | overrides))


def test_training_learns_caches_and_records_its_curve(tmp_path, monkeypatch):
    monkeypatch.setenv("GI_CACHE_DIR", str(tmp_path))
    images, labels = _toy_data(200)
    test_images, test_labels = _toy_data(100, seed=1)
    for noise in (None, 0.5):
        first = dp_mnist.train(
            _settings(noise), images, labels, test_images, test_labels
        )
        assert not first.cached and first.test_accuracy > 0.9
        assert first.steps == round(3 * 200 / 20) and first.sample_rate == 0.1
        assert first.curve_epochs == [1, 2, 3]
        assert first.curve_accuracy[-1] == first.test_accuracy
        again = dp_mnist.train(
            _settings(noise), images, labels, test_images, test_labels
        )
        assert again.cached and again.test_accuracy == first.test_accuracy
        for a, b in zip(
            first.model.state_dict().values(),
            again.model.state_dict().values(),
            strict=True,
        ):
            assert torch.equal(a, b)


def test_a_private_step_is_the_mean_of_clipped_example_gradients():
    """Without noise, opacus's ghost-clipped step equals clipping each
    example's whole gradient to C, summing, and dividing by the lot size."""
    settings = _settings(0.0, clip_norm=0.05, lot_size=8, lr=1.0)
    net = dp_mnist.PCANet(torch.eye(6), 5, 3, seed=0)
    start = [w.detach().clone() for w in net.head.parameters()]
    features = torch.randn(6, 6, generator=torch.Generator().manual_seed(2))
    targets = torch.tensor([0, 1, 2, 0, 1, 2])
    expected = [torch.zeros_like(w) for w in start]
    for x, y in zip(features, targets, strict=True):
        reference = dp_mnist.PCANet(torch.eye(6), 5, 3, seed=0)
        loss = torch.nn.functional.cross_entropy(reference.head(x[None]), y[None])
        grads = torch.autograd.grad(loss, list(reference.head.parameters()))
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        assert norm > 0.05  # every example is clipped
        for total, g in zip(expected, grads, strict=True):
            total += g * min(1.0, 0.05 / float(norm)) / 8  # divided by L, not 6
    _, step = dp_mnist._step_function(net, settings, torch.Generator())
    step(features, targets)
    for before, after, g in zip(start, net.head.parameters(), expected, strict=True):
        assert torch.allclose(before - after.detach(), g, atol=1e-6)


def test_large_noise_costs_accuracy(tmp_path, monkeypatch):
    monkeypatch.setenv("GI_CACHE_DIR", str(tmp_path))
    images, labels = _toy_data(200)
    test_images, test_labels = _toy_data(100, seed=1)
    quiet = dp_mnist.train(_settings(0.3), images, labels, test_images, test_labels)
    loud = dp_mnist.train(_settings(300.0), images, labels, test_images, test_labels)
    assert loud.test_accuracy < quiet.test_accuracy


def test_training_settings_are_checked():
    with pytest.raises(ValueError, match="pca_noise"):
        _settings(1.0, pca_noise=0.0)
    with pytest.raises(ValueError, match="lot_size"):
        _settings(1.0, lot_size=0)
    images, labels = _toy_data(10)
    with pytest.raises(ValueError, match="exceeds"):
        dp_mnist.train(_settings(1.0), images, labels, images, labels)


def test_learning_rate_schedule_is_the_papers():
    settings = _settings(None, lr=0.1, end_lr=0.052, lr_saturate_epochs=10)
    assert settings.lr_at(0) == 0.1
    assert settings.lr_at(5) == pytest.approx(0.076)
    assert settings.lr_at(10) == settings.lr_at(50) == pytest.approx(0.052)


# ---------------------------------------------------------------------------
# The page: parameters, rows and claims on a synthetic result
# ---------------------------------------------------------------------------

PAGE_VALUES = dict(
    profile="smoke",
    dataset="mnist",
    model="pca_mlp",
    num_trials=3,
    seed=0,
    device="cpu",
    num_threads=1,
    attack="dlg",
    attack_model="lenet",
    max_iterations=1,
    num_shown=1,
    target_epsilons="0.5,2,8",
    pca_noise="16,7,4",
    train_images=1000,
    test_images=1000,
    train_epochs=2,
    lot_size=100,
    clip_norm=4.0,
    lr=0.1,
    end_lr=0.052,
    lr_saturate_epochs=10,
    pca_dims=60,
    hidden_units=100,
    delta=1e-5,
    noise_multipliers="0.01",
)


def test_page_parameters_pair_each_epsilon_with_a_pca_noise():
    assert page.check(PAGE_VALUES).pca_noise == (16.0, 7.0, 4.0)
    with pytest.raises(ParameterError, match="one sigma_p per target"):
        page.check(PAGE_VALUES | {"pca_noise": "16,7"})
    with pytest.raises(ParameterError, match="lot_size"):
        page.check(PAGE_VALUES | {"lot_size": 2000})


def _run(accuracy: float, noise: float, epochs: int = 2) -> dp_mnist.PrivateRun:
    settings = _settings(noise, epochs=epochs, lot_size=100)
    model = dp_mnist.PCANet(torch.eye(4), 8, 10, seed=0)
    return dp_mnist.PrivateRun(
        model=model,
        settings=settings,
        num_images=1000,
        steps=20,
        sample_rate=0.1,
        test_accuracy=accuracy,
        curve_epochs=[1, 2],
        curve_accuracy=[accuracy - 0.01, accuracy],
        train_seconds=1.0,
        cached=False,
    )


def _trial(psnr: float, index: int) -> AttackedSample:
    """A trial on an image whose all-black guess scores 10 dB."""
    image = torch.zeros(1, 1, 10, 10)
    image[..., :1, :] = 1.0  # mean square 0.1
    score = Score(
        order=torch.zeros(1, dtype=torch.long),
        psnr=torch.tensor([psnr]),
        ssim=torch.zeros(1),
        mse=torch.zeros(1),
        lpips=None,
    )
    return AttackedSample(
        setting="", index=index, true_images=image, images=image, score=score, seconds=0
    )


def _synthetic_result(
    accuracies: tuple[float, float, float] = (0.91, 0.955, 0.972),
    non_private: float = 0.983,
    psnr_none: tuple[float, ...] = (60.0, 70.0, 80.0),
    psnr_noised: tuple[float, ...] = (5.0, 4.0, 6.0),
) -> page.DPSGDRun:
    params = page.check(PAGE_VALUES)
    noise = {"eps=0.5": 10.0, "eps=2": 2.0, "eps=8": 0.8}
    private = {
        name: _run(acc, noise[name])
        for name, acc in zip(noise, accuracies, strict=True)
    }
    return page.DPSGDRun(
        params=params,
        device=torch.device("cpu"),
        non_private=_run(non_private, None),  # type: ignore[arg-type]
        private=private,
        noise=noise,
        epsilons={"eps=0.5": [0.3, 0.5], "eps=2": [1.2, 2.0], "eps=8": [5.0, 8.0]},
        accountant=[page.accountant_check(e) for e in (100, 400)],
        trials={
            "none": [_trial(v, i) for i, v in enumerate(psnr_none)],
            "sigma=0.01": [_trial(v, i) for i, v in enumerate(psnr_noised)],
        },
        test_count=10000,
    )


def test_claims_hold_on_a_result_like_the_papers():
    claims = page.claims(_synthetic_result())
    verdicts = [c.verdict for c in claims]
    # three accuracy claims, the gap, the accountant, CIFAR, the ablation, DLG
    assert verdicts == [HOLDS] * 5 + [NOT_TESTED] * 2 + [HOLDS]
    assert all(c.source for c in claims)


def test_claims_fail_where_the_run_falls_short():
    result = _synthetic_result(accuracies=(0.80, 0.89, 0.91), non_private=0.96)
    verdicts = [c.verdict for c in page.claims(result)]
    assert verdicts[:4] == [DOES_NOT_HOLD] * 4


def test_dlg_claim_compares_with_an_all_black_guess():
    result = _synthetic_result()
    assert page.blank_psnr(result.trials["none"]) == pytest.approx([10.0] * 3)
    spread = _synthetic_result(psnr_noised=(3.0, 15.0, 4.0))
    assert page.claims(spread)[-1].verdict == NOT_ENOUGH_TRIALS
    recovered = _synthetic_result(psnr_noised=(30.0, 31.0, 29.0))
    assert page.claims(recovered)[-1].verdict == DOES_NOT_HOLD
    assert "all-black image scores 10.0 dB" in page.claims(result)[-1].evidence


def test_accuracy_rows_quote_the_papers_mnist_values():
    rows = {
        r.experiment: r
        for r in page.rows(_synthetic_result())
        if r.metric == "test_accuracy"
    }
    expected = {
        "mnist/pca_mlp/non-private": 0.983,
        "mnist/pca_mlp/eps=0.5": 0.90,
        "mnist/pca_mlp/eps=2": 0.95,
        "mnist/pca_mlp/eps=8": 0.97,
    }
    assert {k: r.paper for k, r in rows.items()} == expected
    assert all(
        r.paper_confidence in PAPERS_OWN and r.paper_source for r in rows.values()
    )


def test_the_figures_and_text_build_from_a_result():
    result = _synthetic_result()
    figure = page.tradeoff_figure(result)
    assert figure.axes[0].get_xscale() == "log"
    text = page.summary_text(result)
    assert "95%" in text and "non-private" in text
    assert "1.26" in page.accountant_text(result)
    assert math.isfinite(page.spent(result, "eps=2"))
