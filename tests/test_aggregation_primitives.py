"""Primitives of the encrypted-aggregation protocols: key agreement, the
authenticated share channel, mask PRGs, fixed-point encoding, Shamir
sharing, and the harness's server view and network model."""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gi_lib.defenses import NetworkModel, PlaintextSum
from gi_lib.defenses._crypto import (
    CHANNEL_OVERHEAD,
    Channel,
    ChannelError,
    KeyPair,
    KeySource,
    agree,
    prg_field,
    prg_ring,
    session_id,
)
from gi_lib.defenses._fixedpoint import (
    FixedPoint,
    FixedPointOverflow,
    pack_bits,
    unpack_bits,
)
from gi_lib.defenses._shamir import (
    PRIME,
    NotEnoughShares,
    Shamir,
    bytes_to_pieces,
    lagrange_at_zero,
    pieces_to_bytes,
)
from gi_lib.defenses.aggregation import SERVER, Message, Transcript, client_name

SESSION = session_id("test")


# --- key material -----------------------------------------------------------


def test_seeded_key_source_is_reproducible_and_label_separated():
    a, b = KeySource(7), KeySource(7)
    assert a.deterministic and a.derive("x", 1) == b.derive("x", 1)
    assert a.derive("x", 1) != a.derive("x", 2) != a.derive("y", 1)
    assert KeySource(8).derive("x", 1) != a.derive("x", 1)
    # Labels are length-prefixed, so ("ab", "c") and ("a", "bc") differ.
    assert a.derive("ab", "c") != a.derive("a", "bc")
    assert a.child("p").derive("k") == b.child("p").derive("k")
    fresh = KeySource()
    assert not fresh.deterministic and fresh.derive("x") != fresh.derive("x")
    with pytest.raises(TypeError):
        KeySource(1.5)


def test_x25519_agreement_is_symmetric_and_purpose_bound():
    source = KeySource(1)
    alice, bob = KeyPair.generate(source, "a"), KeyPair.generate(source, "b")
    assert len(alice.public) == 32 and alice.public != bob.public
    ab = agree(alice, bob.public, session=SESSION, purpose="mask", parties=("a", "b"))
    ba = agree(bob, alice.public, session=SESSION, purpose="mask", parties=("b", "a"))
    assert ab == ba and len(ab) == 32
    other = agree(
        alice, bob.public, session=SESSION, purpose="channel", parties=("a", "b")
    )
    assert other != ab
    assert ab != agree(
        alice, bob.public, session=session_id("x"), purpose="mask", parties=("a", "b")
    )
    again = KeyPair.from_private_bytes(alice.private_bytes())
    assert again.public == alice.public
    with pytest.raises(ValueError, match="32 bytes"):
        agree(alice, b"short", session=SESSION, purpose="mask", parties=("a", "b"))


def _channels():
    source = KeySource(2)
    alice, bob = KeyPair.generate(source, "a"), KeyPair.generate(source, "b")
    key = agree(
        alice, bob.public, session=SESSION, purpose="channel", parties=("a", "b")
    )
    ends = {}
    for name, peer in (("a", "b"), ("b", "a")):
        ends[name] = Channel(name, SESSION)
        ends[name].add_peer(peer, key)
    return ends, key


def test_channel_round_trip_and_overhead():
    ends, _ = _channels()
    blob = ends["a"].seal("b", 1, b"share bytes")
    assert len(blob) == len(b"share bytes") + CHANNEL_OVERHEAD
    assert ends["b"].open("a", 1, blob) == b"share bytes"
    # Two messages of the same content differ (fresh nonce per message).
    assert ends["a"].seal("b", 1, b"x") != ends["a"].seal("b", 1, b"x")


def test_channel_rejects_tampered_replayed_and_misaddressed_messages():
    ends, key = _channels()
    blob = ends["a"].seal("b", 1, b"share bytes")
    for i in (0, 12, len(blob) - 1):
        flipped = bytearray(blob)
        flipped[i] ^= 1
        with pytest.raises(ChannelError, match="authentication"):
            ends["b"].open("a", 1, bytes(flipped))
    with pytest.raises(ChannelError, match="authentication"):
        ends["b"].open("a", 2, blob)  # replayed into another round
    with pytest.raises(ChannelError, match="no channel"):
        ends["b"].open("c", 1, blob)  # unknown sender
    with pytest.raises(ChannelError, match="authentication"):
        ends["a"].open("b", 1, blob)  # handed back to its sender: misaddressed
    other_session = Channel("b", session_id("other"))
    other_session.add_peer("a", key)  # same key, another session
    with pytest.raises(ChannelError, match="another round or session"):
        other_session.open("a", 1, blob)
    assert ends["b"].open("a", 1, blob) == b"share bytes"
    with pytest.raises(ChannelError, match="replayed"):
        ends["b"].open("a", 1, blob)
    with pytest.raises(ChannelError, match="shorter"):
        ends["b"].open("a", 1, b"abc")


# --- mask PRGs --------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 26, 32, 40, 64])
def test_ring_prg_is_deterministic_in_range_and_roughly_uniform(bits):
    seed = KeySource(3).derive("mask")
    values = prg_ring(seed, 20000, bits)
    assert values.dtype == (np.uint32 if bits <= 32 else np.uint64)
    assert np.array_equal(values, prg_ring(seed, 20000, bits))
    assert not np.array_equal(values, prg_ring(seed, 20000, bits, label=b"other"))
    assert int(values.max()) < 2**bits
    # The top bit and the lowest bit are fair coins (5 sigma).
    for bit in (0, bits - 1):
        ones = int(((values >> values.dtype.type(bit)) & values.dtype.type(1)).sum())
        assert abs(ones - 10000) < 5 * math.sqrt(5000)


def test_ring_prg_chi_square_over_16_buckets():
    values = prg_ring(KeySource(4).derive("m"), 160000, 32)
    counts = np.bincount((values >> np.uint32(28)).astype(np.int64), minlength=16)
    chi2 = float(((counts - 10000) ** 2 / 10000).sum())
    assert chi2 < 40.0  # 15 degrees of freedom; p ~ 5e-4


def test_field_prg_is_uniform_below_p_by_rejection():
    p = 2**31 + 11
    values = prg_field(KeySource(5).derive("f"), 50000, p)
    assert values.dtype == np.int64 and values.min() >= 0 and values.max() < p
    # A prime just above a power of two rejects about half the draws; the
    # values must still fill the range evenly (compare low and high halves).
    assert abs(int((values < p // 2).sum()) - 25000) < 5 * math.sqrt(12500)
    small = prg_field(KeySource(5).derive("g"), 70000, 7)
    counts = np.bincount(small, minlength=7)
    assert counts.size == 7 and np.all(np.abs(counts - 10000) < 500)


# --- fixed point ------------------------------------------------------------


def test_fixed_point_round_trip_and_exact_sums_in_the_ring_and_field():
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(5, 1000)) * 0.3
    for encoding in (
        FixedPoint(frac_bits=16, clip=1.0, bits=32),
        FixedPoint(frac_bits=16, clip=1.0, bits=26),
        FixedPoint(frac_bits=20, clip=1.0, bits=64),
        FixedPoint(frac_bits=16, clip=1.0, prime=PRIME),
    ):
        encoding.check(5)
        quantised = [encoding.quantise(x) for x in xs]
        encoded = [encoding.encode(x) for x in xs]
        if encoding.bits is not None:
            total = encoded[0].copy()
            for e in encoded[1:]:
                total = total + e  # numpy wraparound
        else:
            total = np.sum(encoded, axis=0) % PRIME
        assert np.array_equal(encoding.to_signed(total), np.sum(quantised, axis=0))
        decoded = encoding.decode(total)
        assert np.abs(decoded - np.clip(xs, -1, 1).sum(0)).max() <= 5 * 2.0**-17
    clipped = FixedPoint(frac_bits=4, clip=0.5, bits=16).decode(
        FixedPoint(frac_bits=4, clip=0.5, bits=16).encode(np.array([3.0, -3.0, 0.26]))
    )
    assert np.array_equal(clipped, [0.5, -0.5, 0.25])


def test_overflow_is_caught_at_setup_with_what_to_change():
    encoding = FixedPoint(frac_bits=24, clip=8.0, bits=32)
    with pytest.raises(FixedPointOverflow) as info:
        encoding.check(100)
    text = str(info.value)
    for piece in (
        "100 clients",
        "+-8",
        "24 fractional bits",
        "at most",
        "ring of at least",
    ):
        assert piece in text
    assert encoding.max_clients() == 15
    encoding.check(15)
    with pytest.raises(FixedPointOverflow, match="prime above"):
        FixedPoint(frac_bits=30, clip=1.0, prime=PRIME).check(3)
    with pytest.raises(ValueError, match="exactly one"):
        FixedPoint(frac_bits=4, clip=1.0)
    with pytest.raises(ValueError, match="NaN"):
        FixedPoint(frac_bits=4, clip=1.0, bits=32).encode(np.array([np.nan]))


@pytest.mark.parametrize("bits", [1, 7, 16, 26, 31, 32, 45, 64])
def test_bit_packing_round_trips_with_exact_sizes(bits):
    values = prg_ring(KeySource(6).derive("p"), 1001, bits)
    payload = pack_bits(values, bits)
    assert len(payload) == math.ceil(1001 * bits / 8)
    assert np.array_equal(unpack_bits(payload, 1001, bits), values)
    with pytest.raises(ValueError, match="expected"):
        unpack_bits(payload + b"\0", 1001, bits)


# --- Shamir -----------------------------------------------------------------


def _naive_interpolate_at_zero(points, values, p):
    total = 0
    for i, (xi, yi) in enumerate(zip(points, values, strict=True)):
        term = yi
        for j, xj in enumerate(points):
            if j != i:
                term = term * xj * pow(xj - xi, -1, p) % p
        total = (total + term) % p
    return total


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 12),
    data=st.data(),
)
def test_any_t_shares_reconstruct(n, data):
    t = data.draw(st.integers(1, n))
    scheme = Shamir(t, n)
    secrets = np.array(
        data.draw(st.lists(st.integers(0, PRIME - 1), min_size=1, max_size=4))
    )
    shares = scheme.share(secrets, KeySource(n * 100 + t).derive("s"))
    assert shares.shape == (n, secrets.size)
    subset = sorted(data.draw(st.permutations(range(n)))[:t])
    points = [i + 1 for i in subset]
    got = scheme.reconstruct(points, shares[subset])
    assert np.array_equal(got, secrets)
    # The oracle: naive Lagrange in Python integers.
    for k in range(secrets.size):
        column = [int(v) for v in shares[subset, k]]
        assert _naive_interpolate_at_zero(points, column, PRIME) == secrets[k]


def test_fewer_than_t_shares_refuse_to_reconstruct():
    scheme = Shamir(3, 5)
    shares = scheme.share(np.array([42]), KeySource(0).derive("s"))
    with pytest.raises(NotEnoughShares, match="at least 3"):
        scheme.reconstruct([1, 2], shares[:2])


def test_t_minus_1_shares_are_independent_of_the_secret():
    # Over a small field, enumerate every polynomial: the multiset of the
    # first t - 1 shares is the same for every secret (perfect secrecy), and
    # every candidate secret is consistent with any observed t - 1 shares.
    p, t, n = 7, 3, 4
    scheme = Shamir(t, n, prime=p)
    distributions = []
    for secret in range(p):
        seen: dict[tuple[int, ...], int] = {}
        for coefficients in itertools.product(range(p), repeat=t - 1):
            shares = tuple(
                (secret + sum(c * x ** (k + 1) for k, c in enumerate(coefficients))) % p
                for x in range(1, t)
            )
            seen[shares] = seen.get(shares, 0) + 1
        distributions.append(seen)
    assert all(d == distributions[0] for d in distributions)
    assert set(distributions[0].values()) == {1} and len(distributions[0]) == p ** (
        t - 1
    )
    # Our sampler's shares lie in this distribution, and t of them still work.
    shares = scheme.share(np.array([5]), KeySource(1).derive("s"))
    assert scheme.reconstruct([1, 2, 4], shares[[0, 1, 3]])[0] == 5


def test_byte_secrets_split_into_31_bit_pieces():
    secret = KeySource(9).derive("key")
    pieces = bytes_to_pieces(secret)
    assert pieces.size == 9 and pieces.max() < 2**31 < PRIME
    assert pieces_to_bytes(pieces, 32) == secret
    scheme = Shamir(4, 6)
    shares = scheme.share(pieces, KeySource(9).derive("coef"))
    assert (
        pieces_to_bytes(scheme.reconstruct([6, 2, 3, 5], shares[[5, 1, 2, 4]]), 32)
        == secret
    )


def test_shamir_rejects_bad_parameters():
    with pytest.raises(ValueError, match="threshold must be between 1 and"):
        Shamir(6, 5)
    with pytest.raises(ValueError, match="prime"):
        Shamir(2, 5, prime=2**31)
    with pytest.raises(ValueError, match="larger prime"):
        Shamir(2, 7, prime=7)
    with pytest.raises(ValueError, match="distinct"):
        lagrange_at_zero((1, 1), PRIME)


# --- harness extensions -----------------------------------------------------


def test_server_view_and_network_model():
    updates = [(torch.arange(10, dtype=torch.float32) + i,) for i in range(3)]
    result = PlaintextSum().run(updates)
    view = result.server_view
    assert view.num_bytes == 3 * 40 and len(view.of_kind("update")) == 3
    assert view.contains(updates[1][0].numpy().astype("<f4").tobytes())
    assert not view.contains(b"\x01\x02\x03\x04\x05\x06\x07\x08" * 3)
    assert view.from_party(client_name(2))[0].sender == client_name(2)
    assert result.encoded is None
    transcript = Transcript(("only",))
    transcript.record(Message(0, client_name(0), SERVER, "x", b"\0" * 1000))
    transcript.record(Message(0, client_name(1), SERVER, "x", b"\0" * 500))
    transcript.record(Message(0, SERVER, client_name(0), "y", b"\0" * 2000))
    transcript.add_seconds(client_name(0), 0, 0.1)
    transcript.add_seconds(client_name(1), 0, 0.3)
    transcript.add_seconds(SERVER, 0, 0.2)
    model = NetworkModel(client_bandwidth=8000.0, server_bandwidth=None, latency=0.01)
    phases = model.round_phases(transcript, 0)
    # Slowest client: 0.1 + 1 s of upload (client 0) vs 0.3 + 0.5 s.
    assert phases["client compute"] == pytest.approx(0.1)
    assert phases["upload"] == pytest.approx(1.0 + 0.01)
    assert phases["server compute"] == pytest.approx(0.2)
    assert phases["download"] == pytest.approx(2.0 + 0.01)
    assert model.total_seconds(transcript) == pytest.approx(3.32)
    assert transcript.round_name(0) == "only" and transcript.round_name(3) == "round 3"
    assert transcript.client_seconds() == {client_name(0): 0.1, client_name(1): 0.3}
    assert transcript.mean_client_seconds() == pytest.approx(0.2)
    assert transcript.total_bytes() == 3500 and transcript.bytes_by_kind() == {
        "x": 1500,
        "y": 2000,
    }
    with pytest.raises(ValueError, match="bandwidth"):
        NetworkModel(client_bandwidth=0)
