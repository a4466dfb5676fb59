"""GIAS: the generator and its cache, the attack's pieces, and the page's claims."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gi_lib import data, fl, generators, metrics, models
from gi_lib.attacks import build_attack
from gi_lib.attacks import gias as gias_attack
from gi_lib.experiments import gias as experiment
from gi_lib.results import DOES_NOT_HOLD, HOLDS, NOT_ENOUGH_TRIALS

CPU = torch.device("cpu")


def _tiny(tmp_path: Path, monkeypatch, **kwargs) -> generators.TrainedGenerator:
    monkeypatch.setenv("GI_CACHE_DIR", str(tmp_path))
    settings = {"epochs": 1, "seed": 0, "device": CPU, "ngf": 2, "num_images": 64}
    return generators.trained_generator("mnist", **{**settings, **kwargs})


# --- the generator ----------------------------------------------------------


def test_the_generator_has_the_gias_layout_and_crops_to_the_data():
    generator = generators.build_generator(1, ngf=4, seed=0).eval()
    out = generator(torch.randn(3, generators.LATENT_SIZE, 1, 1))
    assert out.shape == (3, 1, 32, 32) and out.abs().max() <= 1
    convs = [m for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [32, 16, 8, 4, 1]
    assert convs[-1].kernel_size == (1, 1)
    images = generators.to_images(out, 28)
    assert images.shape == (3, 1, 28, 28) and 0 <= images.min() <= images.max() <= 1
    # Padding for training inverts the crop: the middle is the image again.
    x = torch.rand(2, 1, 28, 28)
    padded = generators.to_generator_range(x)
    assert padded.shape == (2, 1, 32, 32) and padded[..., 0, 0].eq(-1).all()
    torch.testing.assert_close(generators.to_images(padded, 28), x)
    # Seeded.
    again = generators.build_generator(1, ngf=4, seed=0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            generator.state_dict().values(), again.state_dict().values(), strict=True
        )
    )


def test_the_generator_cache_is_reused(tmp_path: Path, monkeypatch):
    first = _tiny(tmp_path, monkeypatch)
    assert not first.cached and first.path.is_file()
    assert first.path.parent.name == "generators"
    assert "dcgan-ngf2" in first.path.name and "e1-s0-n64" in first.path.name

    def refuse(*_args, **_kwargs):
        raise AssertionError("trained although the cache holds the generator")

    monkeypatch.setattr(generators, "train_gan", refuse)
    second = _tiny(tmp_path, monkeypatch)
    assert second.cached and second.path == first.path
    for a, b in zip(
        first.generator.state_dict().values(),
        second.generator.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)
    # Another class subset is another generator.
    monkeypatch.undo()
    other = _tiny(tmp_path, monkeypatch, classes=(0, 1))
    assert not other.cached and other.path != first.path and other.classes == (0, 1)


def test_an_interrupted_save_leaves_no_broken_file(tmp_path: Path, monkeypatch):
    real_save = torch.save

    def interrupted(obj, handle, *args, **kwargs):
        real_save(obj, handle, *args, **kwargs)
        handle.truncate(10)  # half a file on disk, then the run is stopped
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _tiny(tmp_path, monkeypatch)
    folder = tmp_path / "generators"
    assert not any(folder.iterdir())  # neither the file nor a temporary one
    monkeypatch.setattr(torch, "save", real_save)
    trained = _tiny(tmp_path, monkeypatch)
    assert not trained.cached and trained.path.is_file()
    assert _tiny(tmp_path, monkeypatch).cached


def test_projection_fits_the_generators_own_images():
    trained = _generator()
    target = trained.sample(2, seed=5)
    start, start_psnr = generators.projection(trained, target, steps=1, restarts=1)
    fitted, psnr = generators.projection(trained, target, steps=150, restarts=2)
    assert fitted.shape == target.shape
    assert float(psnr.mean()) > float(start_psnr.mean()) + 3


def test_sample_confidence_counts_every_sample():
    classifier = models.build_model("smallconv16", data.dataset_info("mnist"), seed=0)
    images = torch.rand(12, 1, 28, 28)
    confidence = generators.sample_confidence(classifier, images, threshold=0.0)
    assert sum(confidence.histogram) == 12 and len(confidence.histogram) == 10
    assert confidence.share_confident == 1.0
    assert 0.1 <= confidence.mean_confidence <= 1.0


# --- the attack ---------------------------------------------------------------


def _generator(
    seed: int = 0, nz: int = generators.LATENT_SIZE
) -> generators.TrainedGenerator:
    """An untrained generator whose running statistics are its own outputs'
    (a train-mode pass over random codes), so its eval-mode images vary."""
    generator = generators.build_generator(1, ngf=4, seed=seed, nz=nz)
    for module in generator.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the pass
    with torch.no_grad():
        generator.train()(
            torch.randn(
                256,
                nz,
                1,
                1,
                generator=torch.Generator().manual_seed(seed),
            )
        )
    return generators.TrainedGenerator(
        generator.eval().requires_grad_(False),
        Path("none"),
        "mnist",
        28,
        None,
        0,
        None,
        0,
        False,
    )


def _observation(images: torch.Tensor, labels: torch.Tensor) -> fl.Observation:
    net = models.build_model("smallconv16", data.dataset_info("mnist"), seed=0).eval()
    return fl.observe_fedsgd(net, images, labels, num_classes=10, reveal_labels=True)


def test_batched_generator_copies_match_the_loop_and_the_generator():
    trained = _generator()
    codes = torch.randn(3, generators.LATENT_SIZE, 1, 1)
    names, weights, batched = gias_attack.generator_copies(trained.generator, 3)
    _, weights_loop, looped = gias_attack.generator_copies(
        trained.generator, 3, batched=False
    )
    assert names == [n for n, _ in trained.generator.named_parameters()]
    assert all(w.shape[0] == 3 for w in weights)
    expected = trained.generator(codes)
    torch.testing.assert_close(batched(weights, codes), expected)
    torch.testing.assert_close(looped(weights_loop, codes), expected)
    # Copies are independent: changing copy 1 changes only image 1.
    weights[0][1] += 0.1
    changed = batched(weights, codes)
    torch.testing.assert_close(changed[[0, 2]], expected[[0, 2]])
    assert not torch.allclose(changed[1], expected[1])


def test_configs_refuse_what_gias_does_not_do(mnist):
    with pytest.raises(ValueError, match="restarts=1"):
        gias_attack.GIASConfig(optim=gias_attack.parameter_adam(restarts=2))
    with pytest.raises(ValueError, match="plain Adam"):
        gias_attack.LatentConfig(optim=gias_attack.latent_adam(signed=True))
    images, labels, _ = data.sample_victims(mnist, 2, seed=0)
    with pytest.raises(ValueError, match="generator="):
        build_attack("gi_z").reconstruct(_observation(images, labels))
    wrong = generators.TrainedGenerator(
        generators.build_generator(3, ngf=2, seed=0),
        Path("x"),
        "cifar10",
        32,
        None,
        0,
        None,
        0,
        False,
    )
    with pytest.raises(ValueError, match="channel"):
        build_attack("gi_z", generator=wrong).reconstruct(_observation(images, labels))


def test_latent_search_returns_the_images_of_its_best_code(mnist):
    trained = _generator()
    images, labels, _ = data.sample_victims(mnist, 2, seed=0)
    config = gias_attack.LatentConfig(
        optim=gias_attack.latent_adam(max_iterations=5, restarts=2), generator=trained
    )
    result, code = gias_attack.latent_search(_observation(images, labels), config)
    assert code.shape == (2, generators.LATENT_SIZE, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(result.images, trained.images(code).clamp(0, 1))
    assert result.evaluations == 10 and torch.equal(result.labels, labels)


def test_gias_beats_latent_search_when_the_generator_can_represent_the_image():
    # The truth comes from the attacker's generator with its weights moved:
    # no code of the unchanged generator makes it, but GIAS's copies can
    # learn the move. Same budget: GI-z gets GIAS's parameter steps as more
    # latent steps. A 4-dim code keeps the latent search short.
    trained = _generator(nz=4)
    truth_generator = copy.deepcopy(trained.generator)
    noise = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in truth_generator.parameters():
            p.add_(0.3 * p.abs().mean() * torch.randn(p.shape, generator=noise))
    code = torch.randn(1, 4, 1, 1, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        truth = generators.to_images(truth_generator(code), 28)
    net = models.build_model("lenet", data.dataset_info("mnist"), seed=0).eval()
    observation = fl.observe_fedsgd(
        net, truth, torch.tensor([3]), num_classes=10, reveal_labels=True
    )
    latent, steps, restarts = 60, 120, 2
    giz = build_attack(
        "gi_z",
        generator=trained,
        optim=gias_attack.latent_adam(
            max_iterations=latent + steps // restarts, restarts=restarts
        ),
    ).reconstruct(observation, seed=0)
    gias = build_attack(
        "gias",
        generator=trained,
        latent_optim=gias_attack.latent_adam(max_iterations=latent, restarts=restarts),
        max_iterations=steps,
    ).reconstruct(observation, seed=0)
    assert gias.evaluations == giz.evaluations
    assert gias.loss < giz.loss / 2
    assert (
        float(metrics.psnr(gias.images, truth).mean())
        > float(metrics.psnr(giz.images, truth).mean()) + 1.0
    )


# --- the page -----------------------------------------------------------------


class _Setting(experiment.Setting):
    def __init__(self, psnrs: dict[str, list[float]], ceiling: list[float]):
        super().__init__("synthetic", ceiling=ceiling)
        self.values = psnrs
        self.arms = {arm: [] for arm in psnrs}

    def psnr(self, arm: str) -> list[float]:
        return self.values.get(arm, [])


def _result(main, hard, stress) -> SimpleNamespace:
    return SimpleNamespace(
        settings={
            experiment.MAIN: main,
            experiment.HARD: hard,
            experiment.STRESS: stress,
        }
    )


def test_claims_of_synthetic_runs_get_the_right_verdicts():
    g = experiment
    main = _Setting(
        {g.GIX: [10, 11, 12], g.GIZ: [14, 15, 16.5], g.GIAS: [20, 21, 22]}, [17, 18, 19]
    )
    hard = _Setting({g.GIX: [8, 9, 8.5], g.GIAS: [15, 16, 15]}, [17, 18, 19])
    stress = _Setting({g.GIZ_PHASE: [10, 10.5, 11], g.GIAS: [9, 9.5, 10]}, [12, 12, 12])
    verdicts = [c.verdict for c in experiment.claims(_result(main, hard, stress))]
    assert verdicts == [HOLDS] * 5 + [DOES_NOT_HOLD] * 2
    few = _Setting({g.GIX: [10], g.GIZ: [14], g.GIZ_PHASE: [12], g.GIAS: [20]}, [17])
    claims = experiment.claims(_result(few, few, few))
    assert {c.verdict for c in claims} == {NOT_ENOUGH_TRIALS}
    assert all(c.source for c in claims)


def test_rows_quote_no_paper_value(tmp_path, monkeypatch):
    g = experiment
    main = _Setting({g.GIX: [10.0], g.GIZ: [14.0], g.GIAS: [20.0]}, [17.0])
    result = SimpleNamespace(
        settings={g.MAIN: main, g.HARD: main, g.STRESS: main},
        confidence=generators.Confidence(0.9, 0.8, 0.8, (1,) * 10),
        real_confidence=generators.Confidence(0.95, 0.9, 0.8, (1,) * 10),
        params=SimpleNamespace(num_samples=10),
    )
    rows = experiment.rows(result)  # type: ignore[arg-type]
    assert rows and all(r.paper is None for r in rows)
    assert any("could not be read" in r.note for r in rows)
