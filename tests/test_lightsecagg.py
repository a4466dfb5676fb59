"""LightSecAgg: exact sums under dropout, clean aborts below U, T-privacy of the
encoded masks by rank over F_p, one-shot decoding from any U, uniform masked
uploads and no plaintext in any transcript."""

import dataclasses
import itertools
import random

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gi_lib.defenses import DropoutSchedule, ProtocolAbort
from gi_lib.defenses._field import FIELD, P
from gi_lib.defenses._fixedpoint import FixedPointOverflow
from gi_lib.defenses._protocol import pack_field, unpack_field
from gi_lib.defenses.aggregation import SERVER, client_name
from gi_lib.defenses.lightsecagg import LightSecAgg, MaskCode, default_parameters


def _inputs(n: int, d: int, seed: int = 0) -> list[tuple[torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(d, generator=generator) * 0.3,) for _ in range(n)]


def _expected(protocol: LightSecAgg, inputs, survivors) -> np.ndarray:
    return sum(protocol.encoding.quantise(inputs[i][0].numpy()) for i in survivors)


class _Capturing(LightSecAgg):
    """Keeps the parties of its last run, for inspection after it."""

    def make_parties(self, inputs):
        self.parties = super().make_parties(inputs)
        return self.parties


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_exact_sum_of_the_survivors_under_random_dropouts(data):
    n = data.draw(st.integers(2, 8), label="n")
    u = data.draw(st.integers(1, n), label="U")
    t = data.draw(st.integers(0, u - 1), label="T")
    d = data.draw(st.integers(1, 12), label="d")
    silent = data.draw(
        st.dictionaries(st.integers(0, n - 1), st.integers(0, 4), max_size=n),
        label="silent_from",
    )
    protocol = LightSecAgg(privacy=t, target=u, seed=data.draw(st.integers(0, 99)))
    inputs = _inputs(n, d, seed=len(silent))

    def alive(r):
        return {c for c in range(n) if silent.get(c, 99) > r}

    u1 = alive(3)  # sent a masked input (they also advertised and shared)
    ok = all(len(alive(r)) >= u for r in (0, 1, 3)) and len(u1 & alive(4)) >= u
    schedule = DropoutSchedule(silent)
    if not ok:
        with pytest.raises(ProtocolAbort, match=r"fewer than U = \d+") as stop:
            protocol.run(inputs, dropouts=schedule)
        assert stop.value.transcript is not None  # what was sent before it stopped
        return
    result = protocol.run(inputs, dropouts=schedule)
    assert result.survivors == tuple(sorted(u1))
    expected = _expected(protocol, inputs, result.survivors)
    assert np.array_equal(protocol.encoding.to_signed(result.encoded), expected)
    decoded = protocol.encoding.decode(result.encoded).astype(np.float32)
    assert np.array_equal(result.aggregate[0].numpy(), decoded)


def test_thirty_percent_dropout_after_masking_is_exact_and_decodes_once():
    n, d = 20, 300
    protocol = LightSecAgg.for_dropout(n, 0.3, seed=3)
    assert (protocol.privacy, protocol.target) == (7, 14)
    inputs = _inputs(n, d)
    schedule = DropoutSchedule.random(n, 0.3, from_round=3, seed=1)
    result = protocol.run(inputs, dropouts=schedule)
    assert len(result.survivors) == 14
    expected = _expected(protocol, inputs, result.survivors)
    assert np.array_equal(protocol.encoding.to_signed(result.encoded), expected)
    # One aggregated encoded mask per survivor: the server's recovery input does
    # not grow with the number of dropped users.
    view = result.server_view
    assert len(view.of_kind("aggregated mask")) == 14


def test_fewer_than_u_answers_stop_cleanly():
    n, d = 8, 50
    protocol = LightSecAgg(privacy=3, target=6)
    inputs = _inputs(n, d)
    # Seven send a masked input, but only five answer the last round.
    schedule = DropoutSchedule({0: 3, 1: 4, 2: 4})
    with pytest.raises(ProtocolAbort, match="only 5 aggregated encoded masks"):
        protocol.run(inputs, dropouts=schedule)


def test_any_t_encoded_masks_of_one_user_are_independent_of_its_mask():
    n, u, t = 8, 5, 3
    code = MaskCode(n, u, t, size=10)
    matrix = code.encoding_matrix  # encoded = matrix @ [mask pieces; noise]
    data, noise = matrix[:, : u - t], matrix[:, u - t :]
    for holders in itertools.combinations(range(n), t):
        rows = list(holders)
        # The noise block is invertible on any T rows: it is a one-time pad.
        assert FIELD.rank(noise[rows]) == t
    for holders in itertools.combinations(range(n), t + 1):
        rows = list(holders)
        both = np.concatenate([noise[rows], data[rows]], axis=1)
        assert FIELD.rank(both) > FIELD.rank(noise[rows])  # T + 1 leak


def test_zero_padding_instead_of_noise_would_leak():
    # The flaw found in public code (FedML's mask_encoding): T padding pieces
    # of zeros. Then a single encoded mask is a known combination of the
    # mask's pieces, and with U - T = 1 it is the mask itself, scaled.
    code = MaskCode(6, 3, 2, size=4)
    mask = FIELD.uniform(4, random.Random(0).randbytes)
    zeros = np.zeros((2, code.piece_length), dtype=np.int64)
    encoded = code.encode(mask, zeros)
    scale = code.encoding_matrix[0, 0]
    assert np.array_equal(encoded[0], FIELD.mul(mask, scale))


def test_u_minus_one_aggregated_masks_fail_and_any_u_succeed():
    n, u, t, d = 9, 6, 3, 40
    code = MaskCode(n, u, t, size=d)
    rng = random.Random(2)
    masks = [FIELD.uniform(d, rng.randbytes) for _ in range(4)]
    noise = [FIELD.uniform((t, code.piece_length), rng.randbytes) for _ in range(4)]
    aggregated = FIELD.sum(
        np.stack([code.encode(z, r) for z, r in zip(masks, noise, strict=True)])
    )
    total = FIELD.sum(np.stack(masks))
    for users in itertools.combinations(range(n), u):
        assert np.array_equal(code.decode(users, aggregated[list(users)]), total)
    few = [0, 2, 4, 5, 8]
    with pytest.raises(ValueError, match="needs U = 6 encoded masks, got 5"):
        code.decode(few, aggregated[few])
    # And U - 1 values determine nothing: a (U - 1) x U system has a free line.
    assert FIELD.rank(code.encoding_matrix[few]) == u - 1


def test_clients_draw_uniform_noise_pieces_not_zeros():
    n, d = 6, 200
    protocol = _Capturing(privacy=2, target=4, seed=5)
    protocol.run(_inputs(n, d))
    _, clients = protocol.parties
    code = protocol.code(n, d)
    # Everything user 0 sent, as its peers hold it: decode all U pieces.
    encoded = np.stack([c._held[0] for c in clients])
    pieces = FIELD.matmul(
        FIELD.lagrange_matrix(code.betas[: code.target], code.alphas),
        encoded[: code.target],
    )
    noise = pieces[code.num_pieces :]
    assert noise.shape == (2, code.piece_length)
    assert np.count_nonzero(noise) == noise.size and noise.max() > P // 2


def test_a_masked_upload_alone_is_uniform_over_the_field():
    n, d = 4, 40_000
    inputs = _inputs(n, d)
    inputs[1] = (torch.zeros(d),)  # even an all-zero update
    result = LightSecAgg(privacy=1, target=3, seed=7).run(inputs)
    (upload,) = result.server_view.from_party(client_name(1), kind="masked input")
    values = unpack_field(upload.payload, d)
    counts = np.bincount(values * 20 // P, minlength=20)
    chi2 = float(((counts - d / 20) ** 2 / (d / 20)).sum())
    assert chi2 < 50  # 19 degrees of freedom; p-value ~ 1e-4


def test_no_transcript_holds_another_clients_plaintext():
    n, d = 5, 64
    inputs = [(torch.full((d,), 0.123 + i / 100),) for i in range(n)]
    protocol = LightSecAgg(privacy=2, target=3, seed=9)
    result = protocol.run(inputs)
    for i, (update,) in enumerate(inputs):
        raw = update.numpy().astype("<f4").tobytes()
        encoded = pack_field(protocol.encoding.encode(update.numpy()))
        for party in result.transcript.parties:
            for message in result.transcript.view(party):
                assert raw[:16] not in message.payload
                assert encoded[:16] not in message.payload, (i, party, message.kind)
    assert result.server_view.num_bytes > 0 and SERVER in result.transcript.parties


class _Tampering(_Capturing):
    """Its server flips one bit of the first encoded mask relayed to client 2."""

    def make_parties(self, inputs):
        server, clients = super().make_parties(inputs)
        act = server.act

        def tampered(round_):
            out = act(round_)
            if round_ != 1:
                return out
            return [_flip(m, 20) if m.receiver == client_name(2) else m for m in out]

        server.act = tampered
        return server, clients


def _flip(message, offset):
    payload = bytearray(message.payload)
    payload[offset] ^= 1
    return dataclasses.replace(message, payload=bytes(payload))


def test_a_tampered_encoded_mask_is_rejected_and_its_holder_refuses():
    protocol = _Tampering(privacy=1, target=3, seed=11)
    inputs = _inputs(5, 20)
    result = protocol.run(inputs)  # four honest answers are still >= U = 3
    client = protocol.parties[1][2]
    assert any("failed authentication" in r for r in client.rejected)
    assert "lacks" in client.refused
    expected = _expected(protocol, inputs, result.survivors)
    assert np.array_equal(protocol.encoding.to_signed(result.encoded), expected)


def test_bad_parameters_fail_at_setup_with_what_to_change():
    inputs = _inputs(4, 3)
    with pytest.raises(ValueError, match="0 <= T < U <= N.*lower T or raise U"):
        LightSecAgg(privacy=3, target=3).run(inputs)
    with pytest.raises(ValueError, match="U = 5, N = 4"):
        LightSecAgg(privacy=1, target=5).run(inputs)
    with pytest.raises(FixedPointOverflow, match="use at most"):
        LightSecAgg(privacy=1, target=2, frac_bits=29, clip=1.0).run(inputs)
    assert default_parameters(100, 0.1) == (45, 90)
    assert default_parameters(100, 0.5) == (25, 50)
    with pytest.raises(ValueError, match="dropout"):
        default_parameters(10, 1.0)
