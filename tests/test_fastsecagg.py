"""FastSecAgg: exact sums under dropout, recovery probability under random
dropouts, the adversarial pattern that defeats it, and what the server sees.
(FastShare's privacy by rank over F_p is in tests/test_fastshare.py.)"""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gi_lib.defenses import DropoutSchedule, ProtocolAbort
from gi_lib.defenses._fastshare import FastShare
from gi_lib.defenses._field import FieldError, P
from gi_lib.defenses._protocol import pack_field, unpack_field
from gi_lib.defenses.aggregation import client_name
from gi_lib.defenses.fastsecagg import FastSecAgg, recovery_probability


def _inputs(n: int, d: int, seed: int = 0) -> list[tuple[torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(d, generator=generator) * 0.3,) for _ in range(n)]


def _expected(protocol: FastSecAgg, inputs, survivors) -> np.ndarray:
    return sum(protocol.encoding.quantise(inputs[i][0].numpy()) for i in survivors)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_exact_sum_under_random_dropouts_up_to_the_worst_case_bound(data):
    scheme = data.draw(
        st.sampled_from([FastShare(3, 4, 1, 1, 1), FastShare(3, 8, 1, 2, 2)])
    )
    n = scheme.num_shares
    d = data.draw(st.integers(1, 40), label="d")
    late = data.draw(
        st.lists(
            st.integers(0, n - 1), max_size=scheme.worst_case_dropouts, unique=True
        ),
        label="silent in round 2",
    )
    early = data.draw(st.lists(st.integers(0, n - 1), max_size=2, unique=True))
    silent = {c: 2 for c in late}
    silent.update(
        {
            c: 1
            for c in early
            if c not in silent and len(silent) < scheme.worst_case_dropouts
        }
    )
    protocol = FastSecAgg(scheme=scheme, seed=data.draw(st.integers(0, 99)))
    inputs = _inputs(n, d, seed=len(silent))
    result = protocol.run(inputs, dropouts=DropoutSchedule(silent))
    shared = tuple(c for c in range(n) if silent.get(c, 99) > 1)
    assert result.survivors == shared
    expected = _expected(protocol, inputs, shared)
    assert np.array_equal(protocol.encoding.to_signed(result.encoded), expected)


def test_ten_percent_random_dropout_at_48_clients_is_exact():
    n, d = 48, 500
    protocol = FastSecAgg(seed=1)
    scheme = protocol.scheme_for(n)
    assert (scheme.n1, scheme.n2, scheme.privacy) == (3, 16, 5)
    inputs = _inputs(n, d)
    result = protocol.run(
        inputs, dropouts=DropoutSchedule.random(n, 0.1, from_round=2, seed=4)
    )
    assert len(result.survivors) == n  # all shared; 5 answers were missing
    expected = _expected(protocol, inputs, result.survivors)
    assert np.array_equal(protocol.encoding.to_signed(result.encoded), expected)


def test_recovery_probability_falls_with_the_share_of_random_dropouts():
    scheme = FastShare.design(96)
    low = recovery_probability(scheme, 0.1, trials=200, seed=0)
    high = recovery_probability(scheme, 0.6, trials=200, seed=0)
    assert low >= 0.95 and high <= 0.2
    assert recovery_probability(scheme, 0.0, trials=5, seed=0) == 1.0


def test_an_adversarial_dropout_pattern_defeats_it():
    n, d = 24, 30
    protocol = FastSecAgg(seed=2)
    scheme = protocol.scheme_for(n)
    dropped = scheme.adversarial_dropouts()
    assert dropped.size == scheme.worst_case_dropouts + 1 < 0.3 * n
    schedule = DropoutSchedule({int(c): 2 for c in dropped})
    with pytest.raises(ProtocolAbort, match="stopping set") as stop:
        protocol.run(_inputs(n, d), dropouts=schedule)
    assert stop.value.transcript is not None
    # As many clients missing at random are usually recovered.
    assert recovery_probability(scheme, dropped.size / n, trials=200, seed=1) > 0.5


def test_the_server_sees_only_ciphertexts_and_sums_of_shares():
    n, d = 12, 40
    inputs = [(torch.full((d,), 0.2 + i / 50),) for i in range(n)]
    protocol = FastSecAgg(seed=3)
    result = protocol.run(inputs)
    for i, (update,) in enumerate(inputs):
        raw = update.numpy().astype("<f4").tobytes()
        encoded = pack_field(protocol.encoding.encode(update.numpy()))
        for party in result.transcript.parties:
            for message in result.transcript.view(party):
                assert raw[:16] not in message.payload
                assert encoded[:16] not in message.payload, (i, party, message.kind)
    kinds = {m.kind for m in result.server_view.messages}
    assert kinds == {"public key", "encrypted shares", "aggregated share"}


def test_an_aggregated_share_alone_is_uniform():
    n, d = 12, 60_000
    inputs = _inputs(n, d)
    inputs[0] = (torch.zeros(d),)
    result = FastSecAgg(seed=4).run(inputs)
    (message,) = result.server_view.from_party(client_name(0), kind="aggregated share")
    scheme = FastShare.design(n)
    values = unpack_field(message.payload, -(-d // scheme.num_secrets))
    counts = np.bincount(values * 10 // P, minlength=10)
    expected = values.size / 10
    assert float(((counts - expected) ** 2 / expected).sum()) < 35  # 9 dof


def test_bad_parameters_fail_at_setup_with_what_to_change():
    with pytest.raises(FieldError, match="no primitive 7-th root.*divide p - 1"):
        FastSecAgg().run(_inputs(7, 3))
    with pytest.raises(ValueError, match="odd part and a power of two"):
        FastSecAgg().run(_inputs(16, 3))
    with pytest.raises(ValueError, match="allows at most"):
        FastSecAgg(privacy=0.5).run(_inputs(24, 3))
    with pytest.raises(ValueError, match="must be equal"):
        FastSecAgg(scheme=FastShare(3, 4, 1, 1, 1)).run(_inputs(24, 3))
    with pytest.raises(ValueError, match="use at most"):
        FastSecAgg(frac_bits=29).run(_inputs(12, 3))
