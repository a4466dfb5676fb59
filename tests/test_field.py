"""F_p arithmetic for the coded protocols, against naive Python-integer oracles."""

import os
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gi_lib.defenses._field import FIELD, FieldError, P, PrimeField

elements = st.integers(min_value=0, max_value=P - 1)


def _naive_matmul(a, b, p=P):
    return [
        [
            sum(int(a[i][k]) * int(b[k][j]) for k in range(len(b))) % p
            for j in range(len(b[0]))
        ]
        for i in range(len(a))
    ]


def _naive_dft(values, root, p=P):
    n = len(values)
    return [
        sum(int(values[k]) * pow(root, j * k, p) for k in range(n)) % p
        for j in range(n)
    ]


def _naive_lagrange(xs, ys, at, p=P):
    """The value at ``at`` of the polynomial through (xs, ys), in Python ints."""
    total = 0
    for i, (xi, yi) in enumerate(zip(xs, ys, strict=True)):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * (at - xj) % p
                den = den * (xi - xj) % p
        total = (total + yi * num * pow(den, p - 2, p)) % p
    return total


def _naive_rank(rows, p=P):
    m = [[int(v) % p for v in row] for row in rows]
    rank, cols = 0, len(m[0]) if m else 0
    for c in range(cols):
        pivot = next((r for r in range(rank, len(m)) if m[r][c]), None)
        if pivot is None:
            continue
        m[rank], m[pivot] = m[pivot], m[rank]
        inv = pow(m[rank][c], p - 2, p)
        m[rank] = [v * inv % p for v in m[rank]]
        for r in range(len(m)):
            if r != rank and m[r][c]:
                f = m[r][c]
                m[r] = [(v - f * w) % p for v, w in zip(m[r], m[rank], strict=True)]
        rank += 1
    return rank


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(elements, elements), min_size=1, max_size=20))
def test_elementwise_ops_match_python_integers(pairs):
    a = np.array([x for x, _ in pairs], dtype=np.int64)
    b = np.array([y for _, y in pairs], dtype=np.int64)
    assert FIELD.add(a, b).tolist() == [(x + y) % P for x, y in pairs]
    assert FIELD.sub(a, b).tolist() == [(x - y) % P for x, y in pairs]
    assert FIELD.mul(a, b).tolist() == [x * y % P for x, y in pairs]
    assert FIELD.neg(a).tolist() == [(-x) % P for x, _ in pairs]
    nonzero = a[a != 0]
    assert FIELD.inv(nonzero).tolist() == [pow(int(x), P - 2, P) for x in nonzero]
    assert FIELD.power(a, 12345).tolist() == [pow(x, 12345, P) for x, _ in pairs]


def test_extreme_values_do_not_overflow():
    top = np.full((3, 300), P - 1, dtype=np.int64)
    assert FIELD.mul(top[0], top[0]).tolist() == [1] * 300
    got = FIELD.matmul(top, top.T)
    assert got.tolist() == [[300 % P] * 3] * 3  # (-1)(-1) summed 300 times
    assert FIELD.sum(top, axis=1).tolist() == [(-300) % P] * 3


def test_element_reduces_any_integer():
    got = FIELD.element(np.array([-1, P, 2 * P + 5, -(P + 3)], dtype=np.int64))
    assert got.tolist() == [P - 1, 0, 5, P - 3]
    assert FIELD.element(np.array([2**64 - 1], dtype=np.uint64)).tolist() == [
        (2**64 - 1) % P
    ]


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 7, 5), (17, 140, 33), (2, 200, 9)])
def test_matmul_matches_naive(shape):
    rng = random.Random(sum(shape))
    n, k, m = shape
    a = [[rng.randrange(P) for _ in range(k)] for _ in range(n)]
    b = [[rng.randrange(P) for _ in range(m)] for _ in range(k)]
    got = FIELD.matmul(np.array(a), np.array(b))
    assert got.tolist() == _naive_matmul(a, b)


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 64])
def test_ntt_matches_naive_dft_and_inverts(n):
    rng = random.Random(n)
    values = [rng.randrange(P) for _ in range(n)]
    root = FIELD.root_of_unity(n)
    got = FIELD.ntt(np.array(values))
    assert got.tolist() == _naive_dft(values, root)
    assert FIELD.intt(got).tolist() == values


def test_ntt_along_an_axis_is_batched():
    rng = np.random.default_rng(0)
    a = rng.integers(0, P, size=(3, 8, 5))
    got = FIELD.ntt(a, axis=1)
    root = FIELD.root_of_unity(8)
    for i in range(3):
        for j in range(5):
            assert got[i, :, j].tolist() == _naive_dft(a[i, :, j].tolist(), root)
    assert np.array_equal(FIELD.intt(got, axis=1), a)


def test_ntt_with_another_primitive_root():
    root = pow(FIELD.root_of_unity(16), 3, P)  # also primitive (3 is odd)
    values = list(range(16))
    assert FIELD.ntt(np.array(values), root=root).tolist() == _naive_dft(values, root)
    with pytest.raises(FieldError, match="not a primitive"):
        FIELD.ntt(np.arange(16), root=pow(FIELD.root_of_unity(16), 2, P))


@pytest.mark.parametrize("n", [3, 5, 15, 12, 30])
def test_dft_of_other_divisors_matches_naive(n):
    rng = random.Random(n)
    values = [rng.randrange(P) for _ in range(n)]
    got = FIELD.dft(np.array(values))
    assert got.tolist() == _naive_dft(values, FIELD.root_of_unity(n))
    assert FIELD.dft(got, inverse=True).tolist() == values


def test_roots_of_unity_have_exact_order():
    for n in (2, 3, 5, 15, 2**27, 3 * 2**10):
        w = FIELD.root_of_unity(n)
        assert pow(w, n, P) == 1
        for q in (2, 3, 5):
            if n % q == 0:
                assert pow(w, n // q, P) != 1


def test_a_field_without_the_roots_fails_with_what_to_change():
    with pytest.raises(FieldError, match=r"no primitive 7-th root.*divide p - 1"):
        FIELD.root_of_unity(7)
    with pytest.raises(FieldError, match="no primitive 2\\^28|2\\*\\*27|268435456"):
        FIELD.root_of_unity(2**28)
    small = PrimeField(2**31 - 1)  # p - 1 = 2 * 3**2 * 7 * 11 * 31 * 151 * 331
    with pytest.raises(FieldError, match=rf"p = 1 mod 16.*{P}"):
        small.ntt(np.arange(16))
    with pytest.raises(FieldError, match="power-of-two length"):
        FIELD.ntt(np.arange(6))
    with pytest.raises(FieldError, match="odd prime below 2\\*\\*31"):
        PrimeField(2**31 + 11)
    with pytest.raises(FieldError, match="odd prime"):
        PrimeField(1000)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=1, max_value=12),
    st.randoms(use_true_random=False),
)
def test_lagrange_matrix_matches_naive_interpolation(k, t, rnd):
    points = rnd.sample(range(1, 10_000), k + t)
    src, dst = points[:k], points[k:]
    ys = [rnd.randrange(P) for _ in range(k)]
    matrix = FIELD.lagrange_matrix(src, dst)
    got = FIELD.matmul(matrix, np.array(ys)[:, None])[:, 0]
    assert got.tolist() == [_naive_lagrange(src, ys, x) for x in dst]


def test_lagrange_encode_then_decode_from_any_k_points_is_mds():
    rng = random.Random(1)
    k, n = 5, 12
    alphas, betas = list(range(100, 100 + k)), list(range(1, n + 1))
    data = np.array([[rng.randrange(P) for _ in range(7)] for _ in range(k)])
    encoded = FIELD.matmul(FIELD.lagrange_matrix(alphas, betas), data)
    for _ in range(20):
        chosen = sorted(rng.sample(range(n), k))
        decoded = FIELD.matmul(
            FIELD.lagrange_matrix([betas[i] for i in chosen], alphas), encoded[chosen]
        )
        assert np.array_equal(decoded, data)
    # A target that is a source point gets that point's value.
    unit = FIELD.lagrange_matrix([3, 4, 5], [4])
    assert unit.tolist() == [[0, 1, 0]]
    with pytest.raises(FieldError, match="distinct"):
        FIELD.lagrange_matrix([1, 2, 1], [5])


def test_vandermonde_matches_powers():
    v = FIELD.vandermonde(np.array([0, 1, 2, P - 1]), 4)
    assert v.tolist() == [[pow(x, j, P) for j in range(4)] for x in (0, 1, 2, P - 1)]


@pytest.mark.parametrize("seed", range(6))
def test_rank_and_solve_match_naive(seed):
    rng = random.Random(seed)
    rows, cols, rank = rng.randint(1, 9), rng.randint(1, 9), rng.randint(0, 6)
    left = [[rng.randrange(P) for _ in range(rank)] for _ in range(rows)]
    right = [[rng.randrange(P) for _ in range(cols)] for _ in range(rank)]
    matrix = _naive_matmul(left, right) if rank else [[0] * cols for _ in range(rows)]
    assert FIELD.rank(np.array(matrix)) == _naive_rank(matrix)
    a = np.array([[rng.randrange(P) for _ in range(5)] for _ in range(5)])
    x = np.array([rng.randrange(P) for _ in range(5)])
    b = FIELD.matmul(a, x[:, None])[:, 0]
    assert FIELD.solve(a, b).tolist() == x.tolist()
    with pytest.raises(FieldError, match="singular"):
        FIELD.solve(np.ones((3, 3), dtype=np.int64), np.arange(3))


def test_uniform_rejects_above_p_and_looks_uniform():
    values = FIELD.uniform((200, 50), os.urandom)
    assert values.shape == (200, 50) and values.dtype == np.int64
    assert values.min() >= 0 and values.max() < P
    counts = np.bincount((values.reshape(-1) * 16 // P).astype(np.int64), minlength=16)
    chi2 = float(((counts - 10_000 / 16) ** 2 / (10_000 / 16)).sum())
    assert chi2 < 45  # 15 degrees of freedom; p-value ~ 1e-4

    def only_high(n: int) -> bytes:  # every other candidate is >= p: rejected
        out = bytearray()
        for i in range(n // 4):
            word = 0xFFFFFFFF if i % 2 else 7
            out += word.to_bytes(4, "little")
        return bytes(out)

    assert FIELD.uniform(5, only_high).tolist() == [7] * 5
