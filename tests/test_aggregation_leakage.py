"""The attacks on what encrypted aggregation reveals, on small real problems."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gi_lib import data, fl, models
from gi_lib.attacks import (
    build_attack,
    cocktail_party,
    collusion,
    imprint,
    inconsistency,
    sum_labels,
)
from gi_lib.defenses.lightsecagg import LightSecAgg
from gi_lib.defenses.secagg import SecAgg
from gi_lib.experiments import aggregation_leakage as experiment


@pytest.fixture(scope="module")
def cifar() -> tuple[torch.Tensor, torch.Tensor]:
    images, labels, _ = data.sample_victims(data.load_dataset("cifar10"), 16, 0)
    return images, labels


def _clients(images: torch.Tensor, labels: torch.Tensor, n: int) -> list:
    return [(images[i : i + 1], labels[i : i + 1]) for i in range(n)]


def test_label_counts_of_the_sum_are_exact(cifar) -> None:
    images, labels = cifar
    info = data.dataset_info("cifar10")
    torch.manual_seed(0)
    net = models.build_model("smallconv16", info, seed=0)
    for n in (1, 5, 16):
        obs = fl.observe_aggregate(net, _clients(images, labels, n), num_classes=10)
        answer = build_attack("sum_labels").reconstruct(obs)
        assert torch.equal(answer.counts, sum_labels.true_counts(labels[:n], 10))
        assert answer.labels.numel() == n


def test_round_counts_keep_the_total() -> None:
    counts = sum_labels.round_counts(torch.tensor([1.6, 0.7, -0.2, 0.9]), 3)
    assert counts.tolist() == [2, 0, 0, 1] or int(counts.sum()) == 3
    assert int(counts.sum()) == 3 and bool((counts >= 0).all())


def test_imprint_recovers_a_lone_image_to_numerical_precision(cifar) -> None:
    images, labels = cifar
    info = data.dataset_info("cifar10")
    base = models.build_model("smallconv16", info, seed=0)
    net = imprint.imprinted(base, (3, 32, 32), 32, mean=0.47, std=0.12)
    obs = fl.observe_aggregate(net, _clients(images, labels, 1), num_classes=10)
    rec = build_attack("robbing_the_fed").reconstruct(obs)
    assert rec.images.shape[0] == 1
    assert float((rec.images[0] - images[0]).abs().max()) < 1e-4
    # In a sum of several clients, every sample alone in its bin comes back.
    obs = fl.observe_aggregate(net, _clients(images, labels, 8), num_classes=10)
    rec = build_attack("robbing_the_fed").reconstruct(obs)
    bins = torch.bucketize(images[:8].flatten(1).mean(1), net.block.cuts) - 1
    for i, b in enumerate(bins.tolist()):
        if int((bins == b).sum()) == 1:
            error = min(float((r - images[i]).abs().max()) for r in rec.images)
            assert error < 1e-4
    assert imprint.expected_singletons(1, 4) == 1.0
    assert imprint.expected_singletons(2, 2) == pytest.approx(1.0)


def _updates(n: int, seed: int = 0) -> list[tuple[torch.Tensor, ...]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(6, 5, generator=generator) * 0.1,
            torch.randn(7, generator=generator) * 0.1,
        )
        for _ in range(n)
    ]


def test_secagg_collusion_threshold_both_ways() -> None:
    n, t = 7, 5
    updates = _updates(n)
    protocol = SecAgg(seed=3, threshold=t)
    replay = collusion.replay_unmasking(
        protocol, updates, target=0, colluders=range(1, 1 + t)
    )
    assert replay.succeeded
    assert np.array_equal(
        collusion.signed(protocol, replay.recovered),
        collusion.quantised(protocol, updates[0]),
    )
    replay = collusion.replay_unmasking(
        protocol, updates, target=0, colluders=range(1, t)
    )
    assert not replay.succeeded and "threshold" in replay.abort
    with pytest.raises(ValueError, match="other than the target"):
        collusion.replay_unmasking(protocol, updates, target=0, colluders=[0, 1])


def test_lightsecagg_colluders_past_t_learn_and_u_recover() -> None:
    n = 7
    updates = _updates(n, 1)
    protocol = LightSecAgg(privacy=2, target=4, seed=2)
    code = protocol.code(n, 42)
    leaked = [
        collusion.lightsecagg_leaked_pieces(code, range(1, 1 + c)) for c in range(n)
    ]
    assert leaked == [0, 0, 0, 1, 2, 2, 2]  # nothing up to T = 2, all U - T at U
    assert collusion.replay_unmasking(
        protocol, updates, target=0, colluders=range(1, 5)
    ).succeeded
    assert not collusion.replay_unmasking(
        protocol, updates, target=0, colluders=range(1, 4)
    ).succeeded


def test_differencing_two_rounds_isolates_the_update_exactly() -> None:
    updates = _updates(5, 2)
    for protocol in (SecAgg(seed=1), LightSecAgg(privacy=1, target=3, seed=1)):
        diff = collusion.difference_rounds(protocol, updates, isolated=2)
        assert np.array_equal(
            collusion.signed(protocol, diff.recovered),
            collusion.quantised(protocol, updates[2]),
        )


def test_cocktail_party_recovers_most_of_a_small_batch(cifar) -> None:
    images, labels = cifar
    net = cocktail_party.fc_network((3, 32, 32), 256, 10, seed=0)
    obs = fl.observe_aggregate(net, _clients(images, labels, 8), num_classes=10)
    rec = build_attack("cocktail_party").reconstruct(obs, seed=0)
    values = cocktail_party.matched_psnr(rec.images, images[:8])
    assert np.mean([v >= 20.0 for v in values]) >= 0.5
    with pytest.raises(ValueError, match="at least as many mixtures"):
        small = cocktail_party.fc_network((3, 32, 32), 4, 10, seed=0)
        obs = fl.observe_aggregate(small, _clients(images, labels, 8), num_classes=10)
        build_attack("cocktail_party").reconstruct(obs)


def test_cocktail_party_runs_on_the_shared_loop(cifar) -> None:
    images, labels = cifar
    net = cocktail_party.fc_network((3, 32, 32), 32, 10, seed=0)
    obs = fl.observe_aggregate(net, _clients(images, labels, 4), num_classes=10)
    attack = build_attack("cocktail_party", iterations=20, restarts=2)
    rec = attack.reconstruct(obs, seed=0)
    (unmixing,) = rec.variables  # the loop's variable is the unmixing matrix
    assert unmixing.shape == (4, 4)
    assert rec.images.shape == (4, 3, 32, 32)
    assert len([h for h in rec.history if h["iteration"] > 0]) == 20
    assert rec.evaluations == 40 and rec.restart in (0, 1)
    # The returned images are the rendered normalised rows times Z.
    z = cocktail_party.whiten(cocktail_party.first_linear_gradient(obs), 4)
    problem = cocktail_party.unmixing_problem(
        z, (3, 32, 32), cocktail_party.CocktailPartyConfig(), seed=0
    )
    torch.testing.assert_close(rec.images, problem.render([unmixing]))
    with pytest.raises(ValueError, match="restarts"):
        cocktail_party.CocktailPartyConfig(restarts=0)


def test_model_inconsistency_leaves_the_target_alone_in_the_sum(cifar) -> None:
    images, labels = cifar
    info = data.dataset_info("cifar10")
    net = models.build_model("smallconv16", info, seed=0)
    bad = inconsistency.suppressing_model(net)
    target = fl.client_fedsgd(net, images[:1], labels[:1], num_classes=10)
    others = [
        fl.client_fedsgd(bad, images[i : i + 1], labels[i : i + 1], num_classes=10)
        for i in range(1, 4)
    ]
    total = fl.aggregate([s.gradients for s in [target, *others]])
    silent = inconsistency.silent_parameters(bad, (3, 32, 32))
    assert len(silent) == len(total) - 1  # all but the classifier's bias
    for k in silent:
        assert torch.equal(total[k], target.gradients[k])


def _synthetic(**changes) -> experiment.LeakageRun:
    params = experiment.check(
        dict(
            profile="smoke",
            dataset="cifar10",
            model="smallconv16",
            num_trials=3,
            seed=0,
            device="cpu",
            num_threads=1,
            max_iterations=2,
            tv_weight=0.1,
            client_counts="1,4",
            label_client_counts="1,4",
            label_trials=1,
            cpa_sizes="4,8",
            cpa_hidden=16,
            cpa_iterations=2,
            recovered_psnr=20.0,
            imprint_sizes="1,8",
            num_bins=16,
            exact_psnr=40.0,
            secure_clients=4,
            he_backend="plaintext",
        )
    )
    result = experiment.LeakageRun(params=params, device="cpu")
    result.masked = {
        "psnr_plain": [25.0, 22.0, 19.0],
        "psnr_masked": [9.0, 8.5, 9.2],
        "psnr_unrelated": [9.5, 10.0, 9.1],
    }
    result.labels = {1: {"exact": 1.0, "label_accuracy": 1.0}}
    result.ig = {1: [25.0, 22.0, 19.0], 4: [12.0, 12.5, 11.0]}
    result.cpa = {
        8: {
            "cpa_fraction": 0.75,
            "cpa_psnr": 24,
            "fastica_fraction": 0.5,
            "fastica_psnr": 20,
        }
    }
    result.rtf = {
        8: {
            "recovered": 3,
            "singletons": 3,
            "expected_singletons": 5.1,
            "fraction": 0.375,
        }
    }
    result.rtf_secagg = {"clients": 4, "recovered": 2, "best_psnr": 60}
    result.inconsistency = {"mismatches": 0, "fc_mismatches": 0}
    result.isolation = {
        "ig_isolated": [25.0, 22.0, 19.0],
        "ig_honest_target": [12.0, 13.0, 11.5],
        "ig_honest_sum": [12.0, 12.5, 11.0],
        "analytic_isolated": [80.0, 82.0, 79.0],
        "analytic_honest": [13.0, 12.0, 14.0],
    }
    result.collusion = {
        "secagg_threshold": 3,
        "secagg_t_recovers": 1,
        "secagg_t_exact": 1,
        "secagg_t_minus_1_recovers": 0,
        "light_T": 1,
        "light_U": 2,
        "light_U_recovers": 1,
        "light_U_exact": 1,
        "light_U_minus_1_recovers": 0,
        "difference_secagg_mismatches": 0,
        "difference_lightsecagg_mismatches": 0,
    }
    result.light_pieces = {0: 0, 1: 0, 2: 1, 3: 1}
    result.he = {"mismatches": 0, "server_sees_plaintext": 0, "psnr_participant": 25.0}
    for key, value in changes.items():
        getattr(result, key).update(value)
    return result


def test_claims_of_a_synthetic_run() -> None:
    claims = experiment.claims(_synthetic())
    assert len(claims) >= 10
    assert all(c.verdict == "holds" for c in claims), [
        (c.claim, c.verdict) for c in claims if c.verdict != "holds"
    ]
    broken = experiment.claims(
        _synthetic(
            collusion={"secagg_t_minus_1_recovers": 1}, ig={4: [30.0, 28.0, 27.0]}
        )
    )
    verdicts = {c.claim: c.verdict for c in broken}
    falls = [v for k, v in verdicts.items() if k.startswith("Inverting Gradients on")]
    assert falls == ["does not hold"]
    assert "does not hold" in [v for k, v in verdicts.items() if "colluding" in k]
    # One trial cannot judge a paired claim.
    single = _synthetic()
    single.masked = {k: v[:1] for k, v in single.masked.items()}
    plain = [c for c in experiment.claims(single) if "plaintext" in c.claim]
    assert plain[0].verdict == "not enough trials"
    rows = experiment.rows(_synthetic())
    assert rows and all(r.paper is None for r in rows)
    table = experiment.leak_table(_synthetic())
    assert list(table.columns)[:2] == ["attack", "who must misbehave"]


def test_new_attacks_are_registered() -> None:
    for name in ("sum_labels", "cocktail_party", "fastica", "robbing_the_fed"):
        assert build_attack(name).name == name


def test_first_fc_layer_gives_a_lone_image_exactly(cifar) -> None:
    images, labels = cifar
    net = cocktail_party.fc_network((3, 32, 32), 16, 10, seed=0)
    step = fl.client_fedsgd(net, images[:1], labels[:1], num_classes=10)
    x = experiment._analytic_first_layer(
        step.gradients[0], step.gradients[1], (3, 32, 32)
    )
    assert float((x - images[0]).abs().max()) < 1e-4
    # On a sum of clients the same formula gives a mixture, not the image.
    steps = [
        fl.client_fedsgd(net, images[i : i + 1], labels[i : i + 1], num_classes=10)
        for i in range(4)
    ]
    total = fl.aggregate([s.gradients for s in steps])
    mixed = experiment._analytic_first_layer(total[0], total[1], (3, 32, 32))
    assert float((mixed - images[0]).abs().max()) > 1e-2
