"""FastShare/FastRecon: exact sharing, T-privacy by rank over F_p, recovery from
random dropouts, and the adversarial dropout pattern that defeats it."""

import itertools
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gi_lib.defenses._fastshare import FastShare, RecoveryError
from gi_lib.defenses._field import FIELD, FieldError, P


def _naive_shares(fs: FastShare, x: list[int]) -> list[int]:
    """Share j = sum_k x_k w**(j k), in Python integers."""
    n = fs.num_shares
    w = FIELD.root_of_unity(n)
    return [sum(x[k] * pow(w, j * k, P) for k in range(n)) % P for j in range(n)]


def _random_sharing(fs: FastShare, blocks: int, seed: int):
    rng = np.random.default_rng(seed)
    secrets = rng.integers(0, P, size=(fs.num_secrets, blocks))
    randomness = rng.integers(0, P, size=(fs.num_random, blocks))
    return secrets, randomness, fs.share(secrets, randomness)


@pytest.mark.parametrize(
    "grid", [(2, 3, 1, 1, 1), (3, 5, 1, 1, 2), (3, 8, 1, 2, 3), (5, 4, 2, 1, 1)]
)
def test_shares_are_the_length_n_dft_of_the_padded_vector(grid):
    fs = FastShare(*grid)
    secrets, randomness, shares = _random_sharing(fs, 2, seed=sum(grid))
    for b in range(2):
        x = [0] * fs.num_shares
        for k, v in zip(fs.secret_exponents, secrets[:, b], strict=True):
            x[k] = int(v)
        for k, v in zip(fs.random_exponents, randomness[:, b], strict=True):
            x[k] = int(v)
        assert shares[:, b].tolist() == _naive_shares(fs, x)


def test_all_shares_reconstruct_and_sharing_is_linear():
    fs = FastShare.design(48)
    s1, r1, a = _random_sharing(fs, 5, seed=1)
    s2, r2, b = _random_sharing(fs, 5, seed=2)
    everyone = np.ones(fs.num_shares, dtype=bool)
    assert np.array_equal(fs.reconstruct(a, everyone), s1)
    # Shares of a sum are the sums of the shares (what the protocol relies on).
    assert np.array_equal(fs.reconstruct(FIELD.add(a, b), everyone), FIELD.add(s1, s2))


@settings(max_examples=40, deadline=None)
@given(st.randoms(use_true_random=False))
def test_every_pattern_below_the_worst_case_bound_is_recovered(rnd):
    fs = FastShare(3, 16, 1, 3, 5)
    secrets, _, shares = _random_sharing(fs, 3, seed=rnd.randrange(1000))
    dropped = rnd.sample(range(fs.num_shares), rnd.randint(0, fs.worst_case_dropouts))
    available = np.ones(fs.num_shares, dtype=bool)
    available[dropped] = False
    garbage = shares.copy()
    garbage[dropped] = 12345  # what a missing share holds must not matter
    assert not fs.stuck_erasures(available).any()
    assert np.array_equal(fs.reconstruct(garbage, available), secrets)


def test_random_dropouts_of_ten_percent_are_recovered():
    fs = FastShare.design(96)
    secrets, _, shares = _random_sharing(fs, 4, seed=3)
    rng = random.Random(0)
    for _ in range(20):
        available = np.ones(fs.num_shares, dtype=bool)
        available[rng.sample(range(fs.num_shares), 10)] = False
        assert np.array_equal(fs.reconstruct(shares, available), secrets)


def test_the_adversarial_sub_grid_defeats_recovery():
    fs = FastShare.design(96)
    _, _, shares = _random_sharing(fs, 2, seed=4)
    dropped = fs.adversarial_dropouts()
    assert dropped.size == (fs.z1 + 1) * (fs.z2 + 1) == fs.worst_case_dropouts + 1
    available = np.ones(fs.num_shares, dtype=bool)
    available[dropped] = False
    assert fs.stuck_erasures(available).sum() == dropped.size
    with pytest.raises(RecoveryError, match="stopping set"):
        fs.reconstruct(shares, available)
    # It is the support of a codeword: even full linear algebra cannot decode.
    kept = np.nonzero(available)[0]
    matrix = fs.share_matrix(fs.nonzero_exponents)[kept]
    assert FIELD.rank(matrix) < fs.nonzero_exponents.size


@pytest.mark.parametrize("grid", [(3, 5, 1, 1, 2), (5, 4, 1, 1, 2), (3, 8, 1, 2, 3)])
def test_any_t_shares_reveal_nothing_exhaustively(grid):
    fs = FastShare(*grid)
    n, t = fs.num_shares, fs.privacy
    for holders in itertools.combinations(range(n), t):
        assert not fs.leaks(list(holders)), holders
    # T + 1 shares in one row of the grid do leak.
    j = np.arange(n)
    assert fs.leaks(j[j % fs.n1 == 0][: t + 1])


def test_random_t_subsets_reveal_nothing_at_scale():
    fs = FastShare.design(96)
    rng = np.random.default_rng(5)
    for _ in range(30):
        assert not fs.leaks(rng.choice(fs.num_shares, fs.privacy, replace=False))
    # Whole columns of the grid are parity-checked but still reveal nothing.
    j = np.arange(fs.num_shares)
    columns = j[j % fs.n2 < fs.privacy // fs.n1 + 1][: fs.privacy]
    assert not fs.leaks(columns)


def test_wrong_parameters_fail_at_set_up_with_what_to_change():
    with pytest.raises(FieldError, match="divide p - 1"):
        FastShare(7, 8, 1, 1, 1)  # 56 does not divide p - 1
    with pytest.raises(ValueError, match="coprime"):
        FastShare(4, 8, 1, 1, 1)
    with pytest.raises(ValueError, match="privacy T = 7"):
        FastShare(3, 8, 1, 2, 7)
    with pytest.raises(ValueError, match="odd part and a power of two"):
        FastShare.design(64)
    with pytest.raises(FieldError, match="no primitive 21-th root"):
        FastShare.design(21)
    with pytest.raises(ValueError, match="allows at most"):
        FastShare.design(24, privacy=0.5)
    fs = FastShare(3, 8, 1, 2, 3)
    with pytest.raises(ValueError, match="secrets must have shape"):
        fs.share(np.zeros((3, 1), dtype=np.int64), np.zeros((6, 1), dtype=np.int64))
