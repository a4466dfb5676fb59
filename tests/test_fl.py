"""What a client trains on and sends (ClientStep) and what the server sees
(Observation): BatchNorm statistics as side information, the observation of an
aggregate, and fl's independence from the defenses package."""

import ast
import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gi_lib import batchnorm, data, fl, models
from gi_lib.defenses import DPSGD, Combined, GradientPruning, MixUp, NoDefense

INFO = data.dataset_info("cifar10")
ROOT = Path(__file__).resolve().parents[1]


def _batch(count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    return images, labels


def _tensors(observation: fl.Observation) -> list[torch.Tensor]:
    """Every tensor the attacker holds."""
    out = list(observation.gradients)
    out += list(observation.model.parameters()) + list(observation.model.buffers())
    if observation.labels is not None:
        out.append(observation.labels)
    if observation.bn_statistics is not None:
        out += list(observation.bn_statistics.means)
        out += list(observation.bn_statistics.variances)
    return out


# --- fl does not depend on gi_lib.defenses ----------------------------------


def test_importing_fl_imports_nothing_from_defenses():
    code = (
        "import sys, gi_lib.fl; "
        "print(gi_lib.fl.__file__); "
        "print(sorted(m for m in sys.modules if m.startswith('gi_lib.defenses')))"
    )
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=ROOT,
    )
    path, loaded = result.stdout.strip().splitlines()
    assert Path(path).resolve() == ROOT / "gi_lib" / "fl.py"
    assert loaded == "[]"


def test_fl_source_names_no_defenses_module_even_for_type_checking():
    tree = ast.parse((ROOT / "gi_lib" / "fl.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        assert not any("defenses" in name for name in names), names


def test_every_defense_is_a_client_defense():
    for defense in [
        NoDefense(),
        GradientPruning(0.5),
        MixUp(2),
        DPSGD(clip_norm=1.0, noise_multiplier=1.0),
        Combined([MixUp(2), GradientPruning(0.5)]),
    ]:
        assert isinstance(defense, fl.ClientDefense), defense
    assert not isinstance(object(), fl.ClientDefense)


# --- ClientStep: what the client trained on and sent -------------------------


def test_client_step_holds_the_encoded_batch_and_what_was_sent():
    images, labels = _batch(4)
    pool = _batch(8, seed=1)
    net = models.build_model("lenet", INFO, seed=0)
    step = fl.client_fedsgd(
        net, images, labels, num_classes=10, defense=MixUp(4, pool=pool, seed=3)
    )
    # Same seed, same encoding: the step holds the mixed batch, not the private one.
    mixed, targets, _ = MixUp(4, pool=pool, seed=3).encode_with_key(images, labels, 10)
    assert step.encoded and step.num_images == 4
    assert torch.equal(step.images, mixed) and torch.equal(step.targets, targets)
    expected = fl.fedsgd_gradient(net, mixed, targets)
    for got, want in zip(step.gradients, expected, strict=True):
        torch.testing.assert_close(got, want)
    plain = fl.client_fedsgd(net, images, labels, num_classes=10)
    assert not plain.encoded and torch.equal(plain.images, images)
    # The step is a snapshot: changing the caller's batch later changes nothing.
    images.fill_(0.5)
    assert not torch.equal(plain.images, images)


def test_observe_fedsgd_is_client_step_then_observe_round():
    images, labels = _batch(3)
    net = models.build_model("lenet", INFO, seed=0)
    direct = fl.observe_fedsgd(net, images, labels, num_classes=10, reveal_labels=True)
    step = fl.client_fedsgd(net, images, labels, num_classes=10)
    observed = fl.observe_round(net, [step], reveal_labels=True)
    for a, b, c in zip(
        direct.gradients, observed.gradients, step.gradients, strict=True
    ):
        assert torch.equal(a, b) and torch.equal(b, c)
        assert b.data_ptr() != c.data_ptr()  # the attacker's copy, not the client's
    assert torch.equal(direct.labels, labels) and direct.num_clients == 1
    assert direct.bn_statistics is None
    assert not any(
        isinstance(v, torch.Tensor) and v.shape == images.shape
        for v in vars(direct).values()
    )


def test_client_rejects_mismatched_labels_and_unknown_mode():
    images, labels = _batch(3)
    net = models.build_model("lenet", INFO, seed=0)
    with pytest.raises(ValueError, match="one entry per image"):
        fl.client_fedsgd(net, images, labels[:2], num_classes=10)
    with pytest.raises(ValueError, match="model_mode"):
        fl.client_fedsgd(net, images, labels, num_classes=10, model_mode="test")


# --- BatchNorm statistics as side information --------------------------------


def test_revealed_statistics_are_what_the_clients_train_mode_forward_used():
    images, labels = _batch(4)
    pool = _batch(8, seed=1)
    net = models.build_model("convnet8", INFO, seed=0)
    before = copy.deepcopy(net.state_dict())
    step = fl.client_fedsgd(
        net,
        images,
        labels,
        num_classes=10,
        model_mode="train",
        defense=MixUp(4, pool=pool, seed=0),
    )
    observation = fl.observe_round(net, [step], reveal_bn_statistics=True)
    stats = observation.bn_statistics
    assert stats is not None and len(stats.means) == len(batchnorm.bn_layers(net))
    # Replay the client's train-mode forward on the batch it trained on: every
    # BatchNorm output is its input normalised with the revealed statistics.
    client = copy.deepcopy(net).train()
    seen: list[tuple[torch.Tensor, torch.Tensor, torch.nn.Module]] = []
    hooks = [
        layer.register_forward_hook(lambda m, i, o: seen.append((i[0], o, m)))
        for layer in batchnorm.bn_layers(client)
    ]
    with torch.no_grad():
        client(step.images)
    for hook in hooks:
        hook.remove()
    for (inputs, outputs, layer), mean, var in zip(
        seen, stats.means, stats.variances, strict=True
    ):
        normalised = F.batch_norm(
            inputs, mean, var, layer.weight, layer.bias, training=False, eps=layer.eps
        )
        torch.testing.assert_close(normalised, outputs, atol=1e-5, rtol=1e-5)
    # ... and not the private batch's statistics.
    private = batchnorm.batch_statistics(net, images)
    assert not torch.allclose(stats.means[0], private.means[0])
    # The server's model is untouched, and the attacker's copy has its
    # running statistics (not ones a train-mode pass moved).
    for name, value in net.state_dict().items():
        assert torch.equal(value, before[name]), name
    for name, value in observation.model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert observation.model.training


def test_statistics_are_revealed_only_in_train_mode_and_for_one_client():
    images, labels = _batch(2)
    net = models.build_model("convnet8", INFO, seed=0)
    with pytest.raises(ValueError, match="model_mode='train'"):
        fl.observe_fedsgd(
            net, images, labels, num_classes=10, reveal_bn_statistics=True
        )
    step = fl.client_fedsgd(net, images, labels, num_classes=10)
    with pytest.raises(ValueError, match="running statistics"):
        fl.observe_round(net, [step], reveal_bn_statistics=True)
    train = fl.client_fedsgd(net, images, labels, num_classes=10, model_mode="train")
    with pytest.raises(ValueError, match="2 clients"):
        fl.observe_round(net, [train, train], reveal_bn_statistics=True)


def test_observation_and_attack_are_unaffected_by_poisoned_client_data():
    images, labels = _batch(2)
    net = models.build_model("smallconv16", INFO, seed=0)
    step = fl.client_fedsgd(net, images, labels, num_classes=10, model_mode="train")
    observation = fl.observe_round(
        net, [step], reveal_labels=True, reveal_bn_statistics=True
    )
    snapshot = copy.deepcopy(_tensors(observation))
    # Poison everything the client holds once it has sent its update: an
    # observation and an attack that use only what was sent are unaffected.
    images.fill_(float("nan"))
    step.images.fill_(float("nan"))
    for gradient in step.gradients:
        gradient.fill_(float("nan"))
    for got, want in zip(_tensors(observation), snapshot, strict=True):
        assert torch.equal(got, want)
        assert not got.is_floating_point() or bool(torch.isfinite(got).all())
    # A few steps of gradient matching with the BatchNorm prior, built only
    # from the observation (the attacks' own API is tested elsewhere).
    dummy = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    dummy.requires_grad_(True)
    optimizer = torch.optim.Adam([dummy], lr=0.1)
    attacker = observation.model
    stats = observation.bn_statistics
    for _ in range(3):
        optimizer.zero_grad()
        with batchnorm.recording(attacker) as records:
            logits = attacker(dummy)
        simulated = torch.autograd.grad(
            fl.cross_entropy(logits, observation.labels),
            fl.trainable_parameters(attacker),
            create_graph=True,
        )
        loss = sum(
            ((a - b) ** 2).sum()
            for a, b in zip(simulated, observation.gradients, strict=True)
        )
        loss = loss + sum(
            (m - tm).norm() + (v - tv).norm()
            for (m, v), tm, tv in zip(
                records, stats.means, stats.variances, strict=True
            )
        )
        loss.backward()
        optimizer.step()
    assert bool(torch.isfinite(loss)) and bool(torch.isfinite(dummy).all())


# --- aggregation -------------------------------------------------------------


def _updates(count: int, seed: int = 0) -> list[tuple[torch.Tensor, ...]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(3, 4, generator=generator), torch.randn(5, generator=generator))
        for _ in range(count)
    ]


def test_aggregate_is_the_weighted_sum():
    updates = _updates(3)
    total = fl.aggregate(updates)
    weighted = fl.aggregate(updates, weights=[0.5, 2.0, -1.0])
    for j in range(2):
        torch.testing.assert_close(
            total[j], updates[0][j] + updates[1][j] + updates[2][j]
        )
        torch.testing.assert_close(
            weighted[j], 0.5 * updates[0][j] + 2.0 * updates[1][j] - updates[2][j]
        )
    assert torch.equal(fl.aggregate(updates[:1])[0], updates[0][0])


def test_aggregate_rejects_bad_input():
    updates = _updates(2)
    with pytest.raises(ValueError, match="at least one"):
        fl.aggregate([])
    with pytest.raises(ValueError, match="client 1's tensor 1 has shape"):
        fl.aggregate([updates[0], (updates[1][0], torch.zeros(6))])
    with pytest.raises(ValueError, match="client 1's update has 1 tensors"):
        fl.aggregate([updates[0], updates[1][:1]])
    with pytest.raises(ValueError, match="one weight per client"):
        fl.aggregate(updates, weights=[1.0])


def test_aggregate_observation_is_the_union_batchs_gradient_in_eval_mode():
    batches = [_batch(n, seed=n) for n in (1, 2, 3)]
    union = (
        torch.cat([b[0] for b in batches]),
        torch.cat([b[1] for b in batches]),
    )
    net = models.build_model("convnet8", INFO, seed=0)
    observation = fl.observe_aggregate(net, batches, num_classes=10, reveal_labels=True)
    assert observation.num_images == 6 and observation.num_clients == 3
    assert torch.equal(observation.labels, union[1])
    expected = fl.fedsgd_gradient(copy.deepcopy(net).eval(), *union)
    for got, want in zip(observation.gradients, expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-4)
    # In train mode every client normalises with its own batch: the mean of
    # their gradients is not the union batch's train-mode gradient.
    train = fl.observe_aggregate(net, batches, num_classes=10, model_mode="train")
    union_train = fl.fedsgd_gradient(copy.deepcopy(net).train(), *union)
    assert not all(
        torch.allclose(a, b, atol=1e-6, rtol=1e-4)
        for a, b in zip(train.gradients, union_train, strict=True)
    )


def test_aggregate_observation_can_take_the_servers_decoded_sum():
    batches = [_batch(2, seed=s) for s in range(2)]
    net = models.build_model("lenet", INFO, seed=0)
    steps = [fl.client_fedsgd(net, x, y, num_classes=10) for x, y in batches]
    decoded = tuple(torch.zeros_like(g) for g in steps[0].gradients)
    observation = fl.observe_round(net, steps, gradients=decoded)
    assert all(torch.equal(g, torch.zeros_like(g)) for g in observation.gradients)
    with pytest.raises(ValueError, match="shapes"):
        fl.observe_round(net, steps, gradients=decoded[:-1])
    with pytest.raises(ValueError, match="at least one client"):
        fl.observe_aggregate(net, [], num_classes=10)
