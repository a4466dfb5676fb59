"""The aggregation-protocol harness and its plaintext baseline: exact sums,
dropouts, real byte counts, and a server view that holds what it leaks."""

import numpy as np
import pytest
import torch

from gi_lib import data, fl, models
from gi_lib.defenses import (
    AggregationProtocol,
    DropoutSchedule,
    Message,
    PlaintextSum,
    ProtocolAbort,
)
from gi_lib.defenses.aggregation import SERVER, Party, ServerParty, client_name

SHAPES = [(3, 4), (5,), (2, 1, 3)]
NUM_VALUES = 12 + 5 + 6


def _updates(count: int, seed: int = 0) -> list[tuple[torch.Tensor, ...]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        tuple(torch.randn(shape, generator=generator) for shape in SHAPES)
        for _ in range(count)
    ]


def _flat(update: tuple[torch.Tensor, ...]) -> np.ndarray:
    return torch.cat([t.reshape(-1) for t in update]).numpy()


def test_plaintext_sum_is_fl_aggregate_bit_for_bit():
    updates = _updates(5)
    result = PlaintextSum().run(updates)
    assert result.survivors == (0, 1, 2, 3, 4) and result.num_clients == 5
    for got, want in zip(result.aggregate, fl.aggregate(updates), strict=True):
        assert got.shape == want.shape and torch.equal(got, want)


def test_a_dropped_client_is_left_out_and_sends_nothing():
    updates = _updates(5)
    result = PlaintextSum().run(updates, dropouts=DropoutSchedule({1: 0, 3: 0}))
    assert result.survivors == (0, 2, 4)
    survivors = [updates[i] for i in (0, 2, 4)]
    for got, want in zip(result.aggregate, fl.aggregate(survivors), strict=True):
        assert torch.equal(got, want)
    transcript = result.transcript
    assert transcript.bytes_sent(client_name(1)) == 0
    assert transcript.seconds(client_name(1)) == 0.0
    assert all(m.sender != client_name(3) for m in transcript.messages)


def test_bytes_are_four_per_value_per_sending_client():
    updates = _updates(4)
    transcript = (
        PlaintextSum().run(updates, dropouts=DropoutSchedule({2: 0})).transcript
    )
    for i in (0, 1, 3):
        assert transcript.bytes_sent(client_name(i)) == 4 * NUM_VALUES
        assert transcript.bytes_sent(client_name(i), round=0) == 4 * NUM_VALUES
        assert transcript.seconds(client_name(i)) >= 0.0
    assert transcript.bytes_received(SERVER) == 3 * 4 * NUM_VALUES
    assert transcript.bytes_sent(SERVER) == 0
    assert transcript.seconds(SERVER, round=0) >= 0.0
    assert set(transcript.parties) == {SERVER, *(client_name(i) for i in (0, 1, 3))}


def test_the_servers_view_holds_every_individual_update():
    # What plaintext aggregation leaks (encrypted protocols must not).
    updates = _updates(3)
    transcript = PlaintextSum().run(updates).transcript
    view = transcript.view(SERVER)
    assert [m.sender for m in view] == [client_name(i) for i in range(3)]
    for message, update in zip(view, updates, strict=True):
        assert isinstance(message.payload, bytes) and message.kind == "update"
        decoded = np.frombuffer(message.payload, dtype="<f4")
        assert np.array_equal(decoded, _flat(update))
    # Clients receive nothing from the plaintext baseline.
    assert all(transcript.view(client_name(i)) == () for i in range(3))


def test_everyone_dropping_aborts_with_a_clear_error():
    with pytest.raises(ProtocolAbort, match="no client sent"):
        PlaintextSum().run(_updates(2), dropouts=DropoutSchedule({0: 0, 1: 0}))


def test_bad_updates_and_schedules_are_rejected_before_running():
    updates = _updates(3)
    with pytest.raises(ValueError, match="at least one"):
        PlaintextSum().run([])
    with pytest.raises(ValueError, match="client 2's tensor 0 has shape"):
        PlaintextSum().run([*updates[:2], (torch.zeros(4, 3), *updates[2][1:])])
    with pytest.raises(ValueError, match="only 3 clients"):
        PlaintextSum().run(updates, dropouts=DropoutSchedule({3: 0}))
    with pytest.raises(ValueError, match="rounds 0 to 0"):
        PlaintextSum().run(updates, dropouts=DropoutSchedule({0: 1}))
    with pytest.raises(ValueError, match="rounds are numbered"):
        DropoutSchedule({0: -1})
    with pytest.raises(ValueError, match="clients are numbered"):
        DropoutSchedule({-1: 0})


def test_random_dropout_schedule_is_seeded():
    schedule = DropoutSchedule.random(10, 0.3, from_round=1, seed=4)
    assert len(schedule.silent_from) == 3
    assert set(schedule.silent_from.values()) == {1}
    assert schedule == DropoutSchedule.random(10, 0.3, from_round=1, seed=4)
    dropped = next(iter(schedule.silent_from))
    assert schedule.is_active(dropped, 0) and not schedule.is_active(dropped, 1)
    with pytest.raises(ValueError, match="fraction"):
        DropoutSchedule.random(10, 1.5, seed=0)


def test_protocol_output_gives_the_observation_of_the_aggregate():
    # How a protocol page attacks what the server decoded: clients send their
    # share of the weighted mean; the protocol's sum is the FedSGD aggregate.
    info = data.dataset_info("cifar10")
    net = models.build_model("lenet", info, seed=0)
    generator = torch.Generator().manual_seed(0)
    batches = [
        (torch.rand(n, 3, 32, 32, generator=generator), torch.tensor([n] * n))
        for n in (1, 3)
    ]
    steps = [fl.client_fedsgd(net, x, y, num_classes=10) for x, y in batches]
    total = sum(s.num_images for s in steps)
    shares = [tuple(s.num_images / total * g for g in s.gradients) for s in steps]
    result = PlaintextSum().run(shares)
    observed = fl.observe_round(net, steps, gradients=result.aggregate)
    plain = fl.observe_aggregate(net, batches, num_classes=10)
    assert observed.num_images == 4 and observed.num_clients == 2
    for got, want in zip(observed.gradients, plain.gradients, strict=True):
        assert torch.equal(got, want)


class _Forger(Party):
    def act(self, round: int) -> list[Message]:
        return [Message(round, client_name(0), SERVER, "update", b"\0" * 4)]


class _Idle(ServerParty):
    def act(self, round: int) -> list[Message]:
        self.take_inbox()
        return []

    def output(self) -> tuple[np.ndarray, tuple[int, ...]]:
        return np.zeros(NUM_VALUES, dtype=np.float32), ()


class _ForgingProtocol(AggregationProtocol):
    def make_parties(self, inputs):
        return _Idle(), [_Forger(client_name(i)) for i in range(len(inputs))]


def test_the_harness_rejects_forged_and_misaddressed_messages():
    with pytest.raises(ValueError, match="client 1 sent a message as client 0"):
        _ForgingProtocol().run(_updates(2))
    party = _Forger(client_name(0))
    with pytest.raises(ValueError, match="addressed to server"):
        party.receive(Message(0, client_name(1), SERVER, "update", b""))
