"""The Flower adapter (gi_lib.integrations.flower) and the Flower page's driver.

The adapter's conversion needs no Flower; the simulation tests run only
where flwr is installed (``pip install -e .[flower]``) and are skipped
cleanly elsewhere, as the page itself is.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from gi_lib import data, fl, models
from gi_lib.experiments import flower as experiment
from gi_lib.integrations import flower
from gi_lib.results import DOES_NOT_HOLD, HOLDS, NOT_TESTED

INFO = data.dataset_info("mnist")


def _net(seed: int = 0) -> torch.nn.Module:
    return models.build_model("lenet", INFO, seed=seed)


def _one_sgd_step(net, images, labels, lr: float, steps: int = 1) -> list[np.ndarray]:
    client = copy.deepcopy(net)
    optimiser = torch.optim.SGD(client.parameters(), lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        fl.cross_entropy(client(images), labels).backward()
        optimiser.step()
    return flower.model_to_ndarrays(client)


def _batch(n: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(n, 1, 28, 28, generator=generator)
    return images, torch.arange(n) % 10


# --- the conversion (no Flower needed) -------------------------------------------


def test_one_sgd_step_gives_back_the_fedsgd_gradient() -> None:
    net = _net()
    images, labels = _batch()
    sent = flower.model_to_ndarrays(net)
    received = _one_sgd_step(net, images, labels, lr=0.1)
    observation = flower.observe(
        net,
        sent,
        received,
        num_examples=1,
        num_classes=10,
        image_shape=(1, 28, 28),
        local_lr=0.1,
    )
    reference = fl.observe_fedsgd(net, images, labels, num_classes=10)
    assert observation.update_kind == "gradient"
    assert observation.labels is None and observation.num_images == 1
    for ours, theirs in zip(observation.gradients, reference.gradients, strict=True):
        torch.testing.assert_close(ours, theirs, atol=2e-5, rtol=1e-3)
    # The attacker's model holds the weights the server sent.
    for p, s in zip(observation.model.parameters(), sent, strict=True):
        np.testing.assert_array_equal(p.detach().numpy(), s)


def test_several_local_steps_keep_the_weight_difference() -> None:
    net = _net()
    images, labels = _batch(2)
    sent = flower.model_to_ndarrays(net)
    received = _one_sgd_step(net, images, labels, lr=0.05, steps=3)
    with pytest.raises(ValueError, match="weight_difference"):
        flower.observe(
            net, sent, received, num_examples=2, num_classes=10,
            image_shape=(1, 28, 28), local_lr=0.05, local_steps=3,
        )  # fmt: skip
    observation = flower.observe(
        net, sent, received, num_examples=2, num_classes=10,
        image_shape=(1, 28, 28), local_lr=0.05, local_steps=3,
        update="weight_difference", labels=labels,
    )  # fmt: skip
    reference = fl.observe_fedavg(
        net, images, labels, num_classes=10, local_lr=0.05, local_steps=3
    )
    assert observation.update_kind == "weight_difference"
    assert observation.local_steps == 3 and observation.local_lr == 0.05
    assert torch.equal(observation.labels, labels)
    for ours, theirs in zip(observation.gradients, reference.gradients, strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-3)


def test_the_adapter_refuses_what_it_cannot_read() -> None:
    net = _net()
    sent = flower.model_to_ndarrays(net)
    common = {"num_examples": 1, "num_classes": 10, "image_shape": (1, 28, 28)}
    with pytest.raises(ValueError, match="arrays for"):
        flower.observe(net, sent, sent[:-1], local_lr=0.1, **common)
    wrong = [*sent[:-1], np.zeros(3, np.float32)]
    with pytest.raises(ValueError, match="shape"):
        flower.observe(net, sent, wrong, local_lr=0.1, **common)
    with pytest.raises(ValueError, match="local_lr"):
        flower.observe(net, sent, sent, local_lr=0.0, **common)
    with pytest.raises(ValueError, match="update"):
        flower.observe(net, sent, sent, local_lr=0.1, update="delta", **common)
    with_bn = models.build_model("convnet8", data.dataset_info("cifar10"), seed=0)
    with pytest.raises(ValueError, match="buffers"):
        flower.model_to_ndarrays(with_bn)


def test_without_flower_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(flower.importlib.util, "find_spec", lambda name: None)
    assert not flower.flower_available()
    assert flower.flower_version() is None
    with pytest.raises(flower.FlowerUnavailable, match=r"pip install -e \.\[flower\]"):
        flower.require_flower()
    with pytest.raises(flower.FlowerUnavailable):
        flower.simulate(_net(), [_batch()] * 3)


# --- the page's driver -------------------------------------------------------------

PARAMS = {
    "profile": "smoke",
    "dataset": "mnist",
    "model": "lenet",
    "num_trials": 2,
    "num_clients": 3,
    "seed": 0,
    "device": "auto",
    "num_threads": 1,
    "rounds": 1,
    "local_lr": 0.1,
    "attack": "idlg",
    "max_iterations": 2,
    "lr": 1.0,
    "success_psnr": 30.0,
    "backend": "thread",
    "num_shown": 2,
}


def test_parameters_are_checked() -> None:
    from gi_lib.params import ParameterError

    with pytest.raises(ParameterError, match="num_clients"):
        experiment.check({**PARAMS, "num_trials": 4})
    with pytest.raises(ParameterError):
        experiment.check({**PARAMS, "num_clients": 2})
    with pytest.raises(ParameterError):
        experiment.check({**PARAMS, "backend": "spark"})


def test_without_flower_the_page_runs_nothing_and_says_so(
    mnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flower, "flower_available", lambda: False)
    result = experiment.run(experiment.check(PARAMS))
    assert result.skipped == experiment.SKIP_NOTE
    rows = experiment.rows(result)
    assert rows and all(math.isnan(row.ours) for row in rows)
    assert all("pip install -e .[flower]" in row.note for row in rows)
    claims = experiment.claims(result)
    assert {claim.verdict for claim in claims} == {NOT_TESTED}
    assert "did not run" in experiment.summary_text(result)
    assert experiment.examples_figure(result).axes


def _synthetic(psnrs, aggregate_best, spread, error) -> experiment.FlowerResult:
    params = experiment.check({**PARAMS, "num_trials": len(psnrs), "num_clients": 4})
    images = torch.rand(4, 1, 28, 28)
    result = experiment.FlowerResult(
        params=params,
        images=images,
        labels=torch.arange(4),
        flower_version="1.41.0",
        backend="thread",
        seconds={"fedavg": 1.0, "secagg+": 2.0},
    )
    result.clients = [
        experiment.ClientAttack(k, p, True, images[k], images[k], 1e-7)
        for k, p in enumerate(psnrs)
    ]
    result.secagg_reply_spread = spread
    result.secagg_error = error
    result.aggregate_psnr = [aggregate_best - 1.0, aggregate_best]
    result.aggregate_reconstruction = images
    return result


def test_claims_follow_the_numbers() -> None:
    strong = _synthetic([60.0, 62.0, 61.0], 9.0, 0.0, 3e-6)
    assert [c.verdict for c in experiment.claims(strong)] == [HOLDS] * 4
    weak = _synthetic([10.0, 11.0, 12.0], 45.0, 1e-3, 0.5)
    assert [c.verdict for c in experiment.claims(weak)] == [DOES_NOT_HOLD] * 4
    rows = {(r.experiment.split("/")[-2], r.metric): r for r in experiment.rows(strong)}
    assert rows[("fedavg", "psnr")].ours == pytest.approx(61.0)
    assert rows[("secagg+", "psnr")].ours == 9.0
    assert all(r.paper is None for r in rows.values())  # no paper gives these
    assert "61.0" in experiment.summary_text(strong)


# --- a real Flower simulation (only with flwr installed) ---------------------------


@pytest.fixture(scope="module")
def flower_runs():
    pytest.importorskip("flwr", reason="Flower is an optional extra")
    pytest.importorskip("ray", reason="Flower's simulation needs Ray")
    torch.manual_seed(0)
    net = _net()
    images, labels = _batch(3)
    batches = [(images[k : k + 1], labels[k : k + 1]) for k in range(3)]
    plain = flower.simulate(net, batches, local_lr=0.1, backend="thread")
    secure = flower.simulate(net, batches, local_lr=0.1, secagg=True, backend="thread")
    return net, batches, plain, secure


def test_the_curious_strategy_keeps_each_clients_update(flower_runs) -> None:
    net, batches, plain, _ = flower_runs
    (record,) = plain.rounds
    assert sorted(r.partition for r in record.replies) == [0, 1, 2]
    for reply in record.replies:
        images, labels = batches[reply.partition]
        observation = flower.observe(
            net, record.sent, reply.parameters, num_examples=reply.num_examples,
            num_classes=10, image_shape=(1, 28, 28), local_lr=0.1,
        )  # fmt: skip
        reference = fl.observe_fedsgd(net, images, labels, num_classes=10)
        for ours, theirs in zip(
            observation.gradients, reference.gradients, strict=True
        ):
            torch.testing.assert_close(ours, theirs, atol=2e-5, rtol=1e-3)


def test_under_secagg_the_strategy_sees_only_the_aggregate(flower_runs) -> None:
    _, _, plain, secure = flower_runs
    (record,) = secure.rounds
    first = record.replies[0].parameters
    for reply in record.replies:
        for a, b in zip(reply.parameters, first, strict=True):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(record.aggregate, plain.rounds[0].aggregate, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    # what SecAgg+ leaves in the clear: num_examples and the metrics
    assert sorted(r.metrics["partition"] for r in record.replies) == [0, 1, 2]


def test_two_rounds_give_the_same_aggregate_from_run_to_run() -> None:
    # Clients finish in any order; the aggregate (and the second round's
    # model, which the page attacks) must not depend on it.
    pytest.importorskip("flwr", reason="Flower is an optional extra")
    pytest.importorskip("ray", reason="Flower's simulation needs Ray")
    images, labels = _batch(4)
    batches = [(images[k : k + 1], labels[k : k + 1]) for k in range(4)]
    runs = [
        flower.simulate(_net(), batches, rounds=2, local_lr=0.1, backend="thread")
        for _ in range(3)
    ]
    for run in runs:
        (partitions,) = {
            tuple(r.partition for r in record.replies) for record in run.rounds
        }
        assert partitions == (0, 1, 2, 3)  # recorded in partition order
    for run in runs[1:]:
        for a, b in zip(run.rounds[1].sent, runs[0].rounds[1].sent, strict=True):
            np.testing.assert_array_equal(a, b)
