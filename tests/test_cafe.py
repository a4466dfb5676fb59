"""CAFE in vertical FL: step 1 is exact, it beats DLG on a large batch, and the
server's view holds no party features."""

import dataclasses
import math

import pytest
import torch

from gi_lib import data, fl, metrics, vertical
from gi_lib.attacks import cafe
from gi_lib.experiments import cafe as experiment
from gi_lib.experiments.baselines import dlg_vertical

CAFE_PSNR = 30.0  # dB, every sample of the training set
DLG_CEILING = 20.0  # dB, DLG on one batch of the same size


def _training(mnist, *, samples: int, batch: int, parties: int = 2, seed: int = 0):
    images, labels, _ = data.sample_victims(mnist, samples, seed=seed)
    training = experiment.setup(
        images,
        labels,
        num_parties=parties,
        batch_size=batch,
        lr=0.0,
        seed=seed,
        num_classes=10,
    )
    return training, images, labels


def test_step1_recovers_the_first_layer_gradients(mnist):
    training, images, labels = _training(mnist, samples=12, batch=6)
    attacker = cafe.CAFE.for_model(training.model, training.num_samples, seed=0)
    attacker.config = cafe.CAFEConfig(warmup_steps=10**9)  # steps 1 and 2 only
    for _ in range(40):
        attacker.update(training.step())
    model = training.model
    slices = vertical.split_features(images, 2)
    for m, party in enumerate(model.parties):
        hidden = party.first_fc(party.features(slices[m]))
        embeddings = [p(s) for p, s in zip(model.parties, slices, strict=True)]
        embeddings[m] = party.embed(torch.relu(hidden))
        loss = fl.cross_entropy(model.top(torch.cat(embeddings, 1)), labels)
        # The batch loss is a mean over 6 samples, this one over all 12.
        truth = torch.autograd.grad(loss, hidden)[0] * 12 / 6
        error = (attacker.output_gradients[m] - truth).norm() / truth.norm()
        assert error < 1e-3
        features = party.features(slices[m]).detach()
        error = (attacker.first_inputs[m] - features).norm() / features.norm()
        assert error < 1e-2


def test_cafe_recovers_a_batch_that_dlg_cannot(mnist):
    # DLG gets one step's gradient of a batch of 20; CAFE sees the same batch
    # size over 150 steps of training on 40 samples.
    samples, batch = 40, 20
    run = experiment.run_cafe(
        *data.sample_victims(mnist, samples, seed=1)[:2],
        num_parties=2,
        batch_size=batch,
        iterations=150,
        lr=0.0,
        seed=1,
        num_classes=10,
    )
    assert float(run.sample.score.psnr.min()) > CAFE_PSNR
    training, images, _ = _training(mnist, samples=samples, batch=batch, seed=1)
    observation = training.step()
    dummy = dlg_vertical(observation, iterations=30, seed=1).images
    truth = images[observation.indices]
    order = metrics.best_matching(dummy, truth)
    assert float(metrics.psnr(dummy[order], truth).mean()) < DLG_CEILING


def test_the_server_view_holds_no_features(mnist):
    training, images, _ = _training(mnist, samples=10, batch=5)
    observations = [training.step() for _ in range(60)]
    names = {f.name for f in dataclasses.fields(vertical.VerticalObservation)}
    assert names == {
        "step",
        "indices",
        "labels",
        "model",
        "top_gradients",
        "party_gradients",
        "embeddings",
    }
    held = [
        [
            o.indices,
            o.labels,
            *o.embeddings,
            *o.top_gradients,
            *(g for p in o.party_gradients for g in p),
            *o.model.state_dict().values(),
        ]
        for o in observations
    ]
    before = [[t.clone() for t in tensors] for tensors in held]
    # Poison the parties' private features once training is over: nothing the
    # server holds refers to them (NaN would show, and NaN != NaN), and an
    # attack that only reads what the server saw is unaffected.
    for party in training._parties:
        party._Party__features.fill_(math.nan)
    for tensors, copies in zip(held, before, strict=True):
        assert all(torch.equal(t, c) for t, c in zip(tensors, copies, strict=True))
    attacker = cafe.CAFE.for_model(training.model, training.num_samples, seed=0)
    for observation in observations:
        attacker.update(observation)
    assert torch.isfinite(attacker.images()).all()
    assert float(metrics.psnr(attacker.images(), images).mean()) > 20.0


def test_batch_larger_than_the_set_is_rejected(mnist):
    with pytest.raises(ValueError, match="batch_size"):
        _training(mnist, samples=4, batch=5)


def test_a_seeded_vertical_model_is_repeatable_and_leaves_torch_alone(mnist):
    images, _, _ = data.sample_victims(mnist, 4, seed=0)
    shapes = [s.shape[1:] for s in vertical.split_features(images, 2)]
    state = torch.random.get_rng_state()
    first = vertical.VerticalModel(shapes, 10, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = vertical.VerticalModel(shapes, 10, seed=3)
    other = vertical.VerticalModel(shapes, 10, seed=4)
    for a, b, c in zip(
        first.parameters(), second.parameters(), other.parameters(), strict=True
    ):
        assert torch.equal(a, b)
        assert not torch.equal(a, c)
    # The same weights as drawn right after torch.manual_seed(3), as the
    # CAFE driver draws its models.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        drawn = vertical.VerticalModel(shapes, 10)
    for a, b in zip(first.parameters(), drawn.parameters(), strict=True):
        assert torch.equal(a, b)
