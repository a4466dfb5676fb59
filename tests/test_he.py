"""Additively homomorphic encryption (Aono/Phong et al.): exact sums, packing
headroom, set-up errors, and a server view that never holds a plaintext."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gi_lib.defenses import _bfv, _ckks, _lwe, _paillier, he
from gi_lib.defenses._fixedpoint import FixedPointOverflow
from gi_lib.defenses._he_random import KeyStream, derive_key, gaussian_bound
from gi_lib.defenses.aggregation import SERVER, DropoutSchedule, ProtocolAbort

SMALL_LWE = _lwe.LWEParams(n=64, block=128)  # the paper's p and q, a small n


@pytest.fixture(scope="module")
def lwe() -> he.LWEBackend:
    return he.LWEBackend(max_summands=16, params=SMALL_LWE, seed=1)


@pytest.fixture(scope="module")
def paillier() -> he.PaillierBackend:
    return he.PaillierBackend(max_summands=8, key_bits=1024, seed=1)


@pytest.fixture(scope="module")
def ckks() -> he.CKKSBackend:
    return he.CKKSBackend(max_summands=8, poly_degree=4096, coeff_bits=(54, 55))


@pytest.fixture(scope="module")
def bfv() -> he.BFVBackend:
    return he.BFVBackend(max_summands=8, poly_degree=4096, plain_bits=36)


def _updates(count: int, size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=0.5, size=size) for _ in range(count)]


def _encrypted_sum(backend: he.HEBackend, updates: list[np.ndarray]):
    server = backend.public()
    total = server.from_bytes(backend.to_bytes(backend.encrypt(updates[0])))
    for update in updates[1:]:
        total = server.add(
            total, server.from_bytes(backend.to_bytes(backend.encrypt(update)))
        )
    return backend.from_bytes(server.to_bytes(total))


# ---------------------------------------------------------------------------
# The paper's LWE scheme
# ---------------------------------------------------------------------------


def test_lwe_sum_is_the_fixed_point_sum_exactly(lwe):
    updates = _updates(16, 300)
    updates[0][:5] = [8.0, -8.0, 100.0, -100.0, 0.0]  # at and beyond the clip
    total = _encrypted_sum(lwe, updates)
    assert total.count == 16
    want = sum(lwe.encode(u) for u in updates)
    assert np.array_equal(lwe.decrypt_integers(total), want)
    assert np.array_equal(lwe.decrypt(total), want / lwe.codec.scale)


def test_lwe_with_the_papers_own_parameters_decrypts_exactly():
    params = _lwe.LWEParams(block=16)  # n = 3000, s = 8, p = 2^48 + 1, q = 2^77
    scheme = _lwe.LWEScheme(params, max_summands=4, max_abs_plaintext=2**47, seed=0)
    half = (params.p - 1) // 2
    m = np.array([half, -half, 0, 1, -1, 12345678901234, -98765432109876] * 5)
    parts = [m // 4, m // 4, m // 4, m - 3 * (m // 4)]
    total = scheme.encrypt(parts[0])
    for part in parts[1:]:
        total = scheme.add(total, scheme.encrypt(part))
    assert np.array_equal(scheme.decrypt(total), m)
    blob = _lwe.to_bytes(total, params)
    assert len(blob) == _lwe.ciphertext_bytes(m.size, params)
    assert len(blob) - _lwe._HEADER.size == 3 * (3000 + 16) * 10  # 3 blocks, 10 B each
    assert np.array_equal(scheme.decrypt(_lwe.from_bytes(blob, params)), m)


def test_lwe_noise_of_the_papers_parameters_allows_many_summands():
    params = _lwe.LWEParams()
    assert params.sigma == pytest.approx(8 / np.sqrt(2 * np.pi))
    assert params.max_summands(2**46) > 10**8
    params.check(max_summands=10**6, max_abs_plaintext=2**46)


@pytest.mark.parametrize(
    ("params", "kwargs", "message"),
    [
        (_lwe.LWEParams(p=2**48), {}, "must be odd"),
        (_lwe.LWEParams(q_bits=90), {}, "q_bits must be in"),
        (_lwe.LWEParams(n=0), {}, "n must be a positive"),
        (_lwe.LWEParams(n=10**7), {}, "float64"),
        (_lwe.LWEParams(p=2**13 + 1, q_bits=60), {}, r"above 2\^36"),
        (_lwe.LWEParams(q_bits=60, p=2**40 + 1), {"max_summands": 10**4}, "noise"),
        (_lwe.LWEParams(), {"max_abs_plaintext": 2**48}, "do not fit Z_p"),
    ],
)
def test_lwe_wrong_parameters_fail_at_set_up(params, kwargs, message):
    with pytest.raises(ValueError, match=message):
        params.check(**kwargs)


def test_lwe_backend_names_the_overflowing_setting():
    with pytest.raises(FixedPointOverflow, match="clients"):
        he.LWEBackend(frac_bits=45, clip=8.0, max_summands=4, params=SMALL_LWE)


def test_lwe_refuses_more_summands_than_set_up_for(lwe):
    one = lwe.encrypt(np.zeros(10))
    total = one
    for _ in range(15):
        total = lwe.add(total, one)
    with pytest.raises(ValueError, match="more than the 16"):
        lwe.add(total, one)


def test_lwe_ciphertext_looks_nothing_like_its_plaintext(lwe):
    update = np.full(128, 0.25)
    c = lwe.encrypt(update)
    assert len(np.unique(c.c2[0, 0])) > 120  # the plaintext is one constant


def test_malformed_lwe_payload_is_rejected(lwe):
    blob = lwe.to_bytes(lwe.encrypt(np.ones(5)))
    with pytest.raises(ValueError):
        lwe.from_bytes(blob[:-1])
    with pytest.raises(ValueError):
        lwe.from_bytes(b"XXXX" + blob[4:])


# ---------------------------------------------------------------------------
# Packed Paillier
# ---------------------------------------------------------------------------


def test_paillier_packing_never_carries_between_slots_up_to_max_summands(paillier):
    prm = paillier.params
    assert prm.slot_bits == prm.value_bits + 3 and prm.slots >= 2
    size = 3 * prm.slots + 1
    high = np.full(size, 8.0)  # every slot at its largest value
    low = np.full(size, -8.0)  # and at its smallest
    mixed = np.where(np.arange(size) % 2 == 0, 8.0, -8.0)
    for parts in ([high] * 8, [low] * 8, [mixed] * 8, [high] * 4 + [low] * 4):
        total = _encrypted_sum(paillier, parts)
        want = sum(paillier.encode(p) for p in parts)
        assert np.array_equal(paillier.decrypt_integers(total), want)
    with pytest.raises(ValueError, match="headroom for 8"):
        paillier.add(total, paillier.encrypt(high))


@settings(max_examples=6, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(-8.0, 8.0), min_size=60, max_size=60), min_size=1, max_size=8
    )
)
def test_paillier_sum_is_the_fixed_point_sum_exactly(paillier, rows):
    updates = [np.asarray(r) for r in rows]
    total = _encrypted_sum(paillier, updates)
    assert np.array_equal(
        paillier.decrypt_integers(total), sum(paillier.encode(u) for u in updates)
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (_paillier.PaillierParams(key_bits=256), "at least 512"),
        (_paillier.PaillierParams(key_bits=512, value_bits=600), "does not fit"),
        (_paillier.PaillierParams(max_summands=0), "positive integer"),
    ],
)
def test_paillier_wrong_parameters_fail_at_set_up(params, message):
    with pytest.raises(ValueError, match=message):
        params.check()


def test_paillier_backend_refuses_values_wider_than_64_bits():
    with pytest.raises(ValueError, match="64"):
        he.PaillierBackend(frac_bits=62, clip=8.0, key_bits=1024)


# ---------------------------------------------------------------------------
# CKKS
# ---------------------------------------------------------------------------


def test_ckks_sum_is_within_the_tolerance_given_by_the_scale(ckks):
    updates = _updates(8, 5000, seed=3)  # two chunks of 2048 slots and a rest
    total = _encrypted_sum(ckks, updates)
    error = np.abs(ckks.decrypt(total) - np.sum(updates, axis=0)).max()
    assert 0 < error <= ckks.tolerance(8)
    assert ckks.tolerance(8) == 8 * 4096 / 2.0**40


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"poly_degree": 1000}, "poly_degree must be one of"),
        ({"poly_degree": 4096, "coeff_bits": (60, 60)}, "128-bit security"),
        ({"coeff_bits": (60,)}, "at least two primes"),
        ({"scale_bits": 55}, "holds below"),
    ],
)
def test_ckks_wrong_parameters_fail_at_set_up(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _ckks.CKKSParams(**kwargs).check()


# ---------------------------------------------------------------------------
# BFV
# ---------------------------------------------------------------------------


def test_bfv_sum_is_the_fixed_point_sum_exactly(bfv):
    updates = _updates(8, 5000, seed=4)  # two chunks of 4096 slots
    updates[0][:4] = [8.0, -8.0, 100.0, -100.0]  # at and beyond the clip
    total = _encrypted_sum(bfv, updates)
    assert total.count == 8 and len(total.chunks) == 2
    want = sum(bfv.encode(u) for u in updates)
    assert np.array_equal(bfv.decrypt_integers(total), want)
    assert np.array_equal(bfv.decrypt(total), want / bfv.codec.scale)


def test_bfv_plaintext_modulus_is_a_batching_prime():
    t = _bfv.batching_prime(4096, 36)
    assert t.bit_length() == 36 and t % (2 * 4096) == 1
    assert all(t % d for d in range(2, 2000))
    assert _bfv.batching_prime(4096, 36) == _bfv.BFVParams(4096, 36).plain_modulus


def test_bfv_refuses_a_sum_the_plaintext_modulus_cannot_hold():
    # 64 summands of clip 8 at 30 fractional bits need 2^39 > the 2^35 of t.
    with pytest.raises(ValueError, match="overflows"):
        he.BFVBackend(frac_bits=30, max_summands=64, poly_degree=4096, plain_bits=36)


def test_bfv_refuses_more_summands_than_it_was_checked_for(bfv):
    total = bfv.encrypt(np.ones(3))
    for _ in range(7):
        total = bfv.add(total, bfv.encrypt(np.ones(3)))
    with pytest.raises(ValueError, match="more than the 8"):
        bfv.add(total, bfv.encrypt(np.ones(3)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"poly_degree": 1000}, "poly_degree must be one of"),
        ({"plain_bits": 10}, "plain_bits must be"),
        ({"poly_degree": 4096, "plain_bits": 50}, "plain_bits must be"),
        ({"max_summands": 0}, "max_summands"),
    ],
)
def test_bfv_wrong_parameters_fail_at_set_up(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _bfv.BFVParams(**kwargs).check()


def test_bfv_malformed_payload_is_rejected(bfv):
    server = bfv.public()
    payload = server.to_bytes(bfv.encrypt(np.ones(5)))
    with pytest.raises(ValueError, match="BFV ciphertext"):
        server.from_bytes(payload[:10])
    with pytest.raises(ValueError, match="BFV ciphertext"):
        server.from_bytes(payload + b"x")


# ---------------------------------------------------------------------------
# The shared interface, the harness and the server's view
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["lwe", "paillier", "ckks", "bfv", "plaintext"])
def backend(request, lwe, paillier, ckks, bfv):
    if request.param == "plaintext":
        return he.PlaintextBackend(frac_bits=24)
    return {"lwe": lwe, "paillier": paillier, "ckks": ckks, "bfv": bfv}[request.param]


SHAPES = [(6, 5), (7,)]


def _torch_updates(count: int, seed: int = 0) -> list[tuple[torch.Tensor, ...]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        tuple(torch.randn(shape, generator=generator) for shape in SHAPES)
        for _ in range(count)
    ]


def _flat(update) -> np.ndarray:
    return torch.cat([t.reshape(-1) for t in update]).numpy()


def test_harness_sum_over_survivors(backend):
    updates = _torch_updates(4)
    result = he.HEAggregation(backend).run(updates, dropouts=DropoutSchedule({2: 0}))
    assert result.survivors == (0, 1, 3)
    got = np.concatenate([t.reshape(-1).numpy() for t in result.aggregate])
    flats = [_flat(updates[i]).astype(np.float64) for i in (0, 1, 3)]
    if backend.exact:
        want = sum(backend.encode(f) for f in flats) / backend.codec.scale
        assert np.array_equal(got, want)
    else:
        assert np.abs(got - sum(flats)).max() <= backend.tolerance(3)
    transcript = result.transcript
    assert transcript.bytes_sent("client 2") == 0
    kinds = {m.kind for m in transcript.view(SERVER)}
    assert kinds == {"ciphertext"}


def test_no_client_left_to_decrypt_aborts(backend):
    updates = _torch_updates(2)
    with pytest.raises(ProtocolAbort, match="no client decrypted"):
        he.HEAggregation(backend).run(updates, dropouts=DropoutSchedule({0: 1, 1: 1}))


def test_the_server_view_never_holds_a_clients_plaintext(backend):
    # Poisoned updates: distinctive values whose encodings are easy to find.
    updates = _torch_updates(3, seed=5)
    poisoned = tuple(torch.full(shape, 1.2345678) for shape in SHAPES)
    updates[1] = poisoned
    result = he.HEAggregation(backend).run(updates)
    flat = _flat(poisoned)
    needles = [
        flat.astype("<f4").tobytes()[:16],
        flat.astype("<f8").tobytes()[:16],
        he.PlaintextBackend(frac_bits=24).encode(flat).astype("<i8").tobytes()[:16],
    ]
    if backend.codec is not None:
        needles.append(backend.encode(flat).astype("<i8").tobytes()[:16])
    view = result.transcript.server_view()
    assert view.num_bytes > 0
    if backend.name == "plaintext":  # the baseline hands the server the update
        assert view.contains(needles[2])
        return
    for needle in needles:
        assert not view.contains(needle)


def test_a_malformed_ciphertext_stops_the_round(lwe):
    protocol = he.HEAggregation(lwe)
    server, clients = protocol.make_parties([np.ones(4), np.ones(4)])
    from gi_lib.defenses.aggregation import Message

    server.receive(Message(0, "client 0", SERVER, "ciphertext", b"LWE1" + bytes(10)))
    with pytest.raises(ProtocolAbort, match="malformed"):
        server.act(0)


def test_make_backend_rejects_unknown_names_and_options():
    with pytest.raises(ValueError, match="choose one of"):
        he.make_backend("rsa")
    with pytest.raises(ValueError, match="unknown options"):
        he.make_backend("plaintext", key_bits=3)


def test_operation_cost_counts_bytes(lwe):
    cost = he.operation_cost(lwe, np.zeros(200), repeats=1)
    assert cost.size == 200 and cost.plaintext_bytes == 800
    assert cost.ciphertext_bytes == _lwe.ciphertext_bytes(200, SMALL_LWE)
    assert cost.encrypt > 0 and cost.decrypt > 0 and cost.add >= 0


# ---------------------------------------------------------------------------
# The paper's asynchronous SGD, and the participants' view
# ---------------------------------------------------------------------------


def test_async_sgd_under_lwe_equals_fixed_point_plaintext_bit_for_bit(lwe):
    rng = np.random.default_rng(0)
    initial = rng.normal(size=50)
    steps = [rng.normal(scale=0.1, size=50) for _ in range(6)]

    def runner(backend):
        calls = iter(steps)
        return he.AsyncSGD(backend, initial).run(
            [0, 1, 2, 0, 1, 2], lambda i, w: next(calls) * np.tanh(w)
        )

    encrypted = runner(lwe)
    plain = runner(he.PlaintextBackend(frac_bits=24))
    assert encrypted.uploads == 6 and encrypted.order == [0, 1, 2, 0, 1, 2]
    assert np.array_equal(encrypted.weights, plain.weights)
    kinds = [m.kind for m in encrypted.transcript.view(SERVER)]
    assert kinds == ["initial model"] + ["update"] * 6


def test_a_participant_recovers_another_participants_upload_exactly(lwe):
    rng = np.random.default_rng(1)
    secret = rng.normal(scale=0.01, size=40)  # participant 1's upload
    system = he.AsyncSGD(lwe, rng.normal(size=40))
    before = system.download(0, 1)  # participant 0 decrypts W
    system.upload(1, 1, secret)  # participant 1 uploads E(update)
    after = system.download(0, 2)  # participant 0 decrypts W again
    assert np.array_equal(after - before, lwe.encode(secret) / lwe.codec.scale)


# ---------------------------------------------------------------------------
# Randomness
# ---------------------------------------------------------------------------


def test_keystream_draws_are_fresh_and_seeded_runs_repeat():
    a, b = KeyStream(derive_key(3, "x")), KeyStream(derive_key(3, "x"))
    first = a.bytes(64)
    assert first == b.bytes(64) and a.bytes(64) != first
    assert KeyStream(derive_key(None, "x")).bytes(32) != KeyStream(
        derive_key(None, "x")
    ).bytes(32)
    noise = a.rounded_gaussian((20000,), 3.19)
    assert abs(noise.std() - 3.19) < 0.1 and abs(noise.mean()) < 0.1
    assert np.abs(noise).max() <= gaussian_bound(3.19)


def test_the_ciphertext_body_read_as_a_message_is_not_the_message(lwe):
    update = np.full(200, 0.5)
    body = _lwe.body_as_plaintext(lwe.encrypt(update), lwe.params)
    assert body.shape == (200,)
    assert not np.any(body == lwe.encode(update))
    half = (lwe.params.p - 1) // 2
    assert np.abs(body).max() <= half and np.abs(body).mean() > half / 4
