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
from gi_lib.experiments.common import AttackedSample, Score
from gi_lib.params import ParameterError
from gi_lib.results import DOES_NOT_HOLD, HOLDS, NOT_ENOUGH_TRIALS

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


def test_a_batch_of_every_sample_leaves_step_1_blind(mnist):
    # Every step then sums the same samples: one equation, repeated, for
    # every sample's dL/dH. A batch drawn from more samples pins each down.
    errors = {}
    for samples in (6, 12):
        training, images, labels = _training(mnist, samples=samples, batch=6)
        attacker = cafe.CAFE.for_model(training.model, samples, seed=0)
        attacker.config = cafe.CAFEConfig(warmup_steps=10**9)
        for _ in range(30):
            attacker.update(training.step())
        party = training.model.parties[0]
        slices = vertical.split_features(images, 2)
        hidden = party.first_fc(party.features(slices[0]))
        embeddings = [p(s) for p, s in zip(training.model.parties, slices, strict=True)]
        embeddings[0] = party.embed(torch.relu(hidden))
        loss = fl.cross_entropy(training.model.top(torch.cat(embeddings, 1)), labels)
        truth = torch.autograd.grad(loss, hidden)[0] * samples / 6
        errors[samples] = float(
            (attacker.output_gradients[0] - truth).norm() / truth.norm()
        )
    assert errors[6] > 0.5
    assert errors[12] < 1e-3


def test_step_1_needs_as_many_equations_as_samples():
    with pytest.raises(ValueError, match="at least as many"):
        cafe.CAFE(
            10,
            [(1, 28, 14)] * 2,
            hidden=8,
            feature_size=4,
            config=cafe.CAFEConfig(window=9),
        )
    assert cafe.CAFE(10, [(1, 28, 14)], hidden=8, feature_size=4).window == 20


def _parameters(**overrides):
    values = dict(
        profile="smoke",
        dataset="mnist",
        model="vertical_cnn",
        num_trials=8,
        seed=0,
        device="cpu",
        num_threads=1,
        batch_size=2,
        num_parties=2,
        batch_sizes="2,4",
        party_counts="2",
        iterations=1,
        train_lr=0.0,
        dlg_iterations=1,
        num_shown=2,
    )
    values.update(overrides)
    return values


def test_check_refuses_a_batch_of_every_sample():
    with pytest.raises(ParameterError, match="could not tell them apart"):
        experiment.check(_parameters(batch_sizes="2,8"))
    with pytest.raises(ParameterError, match="exceeds the 8 samples"):
        experiment.check(_parameters(batch_size=9))
    assert experiment.check(_parameters(batch_sizes="2,7")).batch_sizes == (2, 7)


def _run(batch_size, psnrs, parties=2):
    values = torch.tensor(psnrs, dtype=torch.float32)
    truth = torch.zeros(len(psnrs), 1, 4, 4)
    scored = Score(
        order=torch.arange(len(psnrs)),
        psnr=values,
        ssim=torch.zeros_like(values),
        mse=torch.zeros_like(values),
        lpips=None,
    )
    sample = AttackedSample("cafe", 0, truth, truth, scored, 1.0)
    return experiment.CAFERun(batch_size, parties, sample, 1e-3)


def _result(small, large, cafe_batches, dlg_batches):
    params = experiment.check(_parameters())
    dlg = [_run(2, [v, v]).sample for v in dlg_batches]
    return experiment.CAFEExperiment(
        params=params,
        device=torch.device("cpu"),
        truth=torch.zeros(8, 1, 4, 4),
        by_batch=[_run(2, small), _run(4, large)],
        by_parties=[_run(2, small)],
        dlg=dlg,
        cafe_on_dlg_batches=cafe_batches,
    )


SMALL = [40.0, 42.0, 38.0, 41.0, 39.0, 40.5, 43.0, 37.0]


def test_claims_from_a_run_that_recovers_and_beats_dlg():
    large = [v + 1.0 + 0.1 * (i % 3) for i, v in enumerate(SMALL)]
    result = _result(SMALL, large, [41.0, 39.0, 42.0], [15.0, 14.0, 16.5])
    verdicts = [c.verdict for c in experiment.claims(result)]
    assert verdicts == [HOLDS, HOLDS, HOLDS]


def test_claims_that_fail_or_cannot_be_told():
    # Recovery below the bar, DLG level with CAFE, and the larger batch 5 dB
    # worse than the smaller on every sample.
    low = [v - 20.0 for v in SMALL]
    large = [v - 5.0 for v in low]
    result = _result(low, large, [20.0, 12.0, 16.0], [15.0, 17.0, 15.5])
    claims = experiment.claims(result)
    assert [c.verdict for c in claims] == [
        DOES_NOT_HOLD,
        NOT_ENOUGH_TRIALS,
        DOES_NOT_HOLD,
    ]
    assert "claimed above 30 dB" in claims[0].evidence
    assert all(c.source.startswith("Jin et al., abstract") for c in claims)
    assert all("NF" in c.source for c in claims)


def test_fewer_than_three_dlg_batches_are_not_enough():
    result = _result(SMALL, SMALL, [41.0, 39.0], [15.0, 14.0])
    claim = experiment.claims(result)[1]
    assert claim.verdict == NOT_ENOUGH_TRIALS
    assert "3 trials are needed" in claim.evidence
