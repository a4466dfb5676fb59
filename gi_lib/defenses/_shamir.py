"""Shamir t-of-n secret sharing over a prime field, vectorised with numpy.

A secret s in F_p is the constant term of a random polynomial f of degree
t - 1; share i is f(i) for i = 1..n. Any t shares give f, hence s, by
Lagrange interpolation at 0; any t - 1 shares are uniformly distributed
whatever s is (for every candidate secret there is exactly one polynomial
through it and the t - 1 shares), so they reveal nothing.

Secrets that are byte strings (keys, seeds) are cut into 31-bit pieces and
each piece is shared over p = 2^31 + 11, as Google's production secure
aggregation does (the design is read from its documentation, the code is
ours). All pieces of all secrets are shared in one numpy evaluation: a
Horner loop over the t coefficients, each step an (n, k) multiply-add
reduced mod p, whose products stay below 2^63.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from gi_lib.defenses._crypto import prg_field

PRIME = 2**31 + 11
"""The default field: the smallest prime above 2^31, so 31-bit pieces fit."""
PIECE_BITS = 31
"""Bits per piece of a byte secret."""


class NotEnoughShares(ValueError):
    """Fewer shares than the threshold were given to reconstruct."""


def _is_probable_prime(n: int) -> bool:
    if n < 2:
        return False
    for small in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % small == 0:
            return n == small
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


@lru_cache(maxsize=256)
def lagrange_at_zero(xs: tuple[int, ...], prime: int) -> np.ndarray:
    """Coefficients l_i with f(0) = sum_i l_i f(x_i) mod p, for distinct x_i."""
    if len(set(x % prime for x in xs)) != len(xs) or any(x % prime == 0 for x in xs):
        raise ValueError("evaluation points must be distinct and nonzero mod p.")
    out = []
    for i, xi in enumerate(xs):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * xj % prime
                den = den * (xj - xi) % prime
        out.append(num * pow(den, -1, prime) % prime)
    return np.array(out, dtype=np.int64)


class Shamir:
    """t-of-n Shamir secret sharing over F_p, shares at x = 1..n.

    Args:
        threshold: t, the number of shares that reconstruct (1 <= t <= n).
        num_shares: n.
        prime: p, a prime with n < p < 2^31.5 (so products fit int64).

    Raises:
        ValueError: bad parameters, with what to change.
    """

    def __init__(self, threshold: int, num_shares: int, prime: int = PRIME) -> None:
        if int(num_shares) != num_shares or num_shares < 1:
            raise ValueError(
                f"num_shares must be a positive integer, got {num_shares}."
            )
        if int(threshold) != threshold or not 1 <= threshold <= num_shares:
            raise ValueError(
                f"the threshold must be between 1 and the number of shares "
                f"({num_shares}), got {threshold}; lower it or add shares."
            )
        if not 2 <= prime <= 3037000493 or not _is_probable_prime(prime):
            raise ValueError(
                f"p = {prime} must be a prime below 3037000500 (so that products "
                f"fit in int64); the default is {PRIME}."
            )
        if num_shares >= prime:
            raise ValueError(
                f"{num_shares} shares need distinct nonzero points in F_{prime}; "
                "use a larger prime."
            )
        self.threshold = int(threshold)
        self.num_shares = int(num_shares)
        self.prime = int(prime)

    def share(
        self, secrets: np.ndarray, seed: bytes, points: Sequence[int] | None = None
    ) -> np.ndarray:
        """Shares of each secret: row j holds f(points[j]) for every secret.

        Args:
            secrets: k field elements (ints in [0, p)).
            seed: 32 secret bytes for the random coefficients (ChaCha20).
            points: the x values to evaluate at (distinct, in 1..n); all of
                1..n by default.

        Returns:
            A (len(points), k) int64 array (n rows by default).
        """
        s = np.asarray(secrets, dtype=np.int64).reshape(-1)
        if np.any((s < 0) | (s >= self.prime)):
            raise ValueError(f"secrets must lie in [0, {self.prime}).")
        p = np.int64(self.prime)
        k, t = s.size, self.threshold
        coefficients = prg_field(
            seed, (t - 1) * k, self.prime, label=b"shamir"
        ).reshape(t - 1, k)
        if points is None:
            x = np.arange(1, self.num_shares + 1, dtype=np.int64)[:, None]
        else:
            x = np.asarray(list(points), dtype=np.int64)[:, None]
            if x.size and (
                x.min() < 1 or x.max() > self.num_shares or np.unique(x).size != x.size
            ):
                raise ValueError(
                    f"share points must be distinct values in 1..{self.num_shares}."
                )
        acc = np.zeros((x.shape[0], k), dtype=np.int64)
        for row in coefficients[::-1]:
            acc = (acc + row) % p * x % p
        return (acc + s) % p

    def reconstruct(self, points: Sequence[int], shares: np.ndarray) -> np.ndarray:
        """The secrets from shares at ``points`` (x values, 1-based).

        Uses the first t points; more are allowed, fewer raise.

        Raises:
            NotEnoughShares: fewer than t shares.
        """
        pts = tuple(int(x) for x in points)
        values = np.asarray(shares, dtype=np.int64)
        if values.ndim == 1:
            values = values[:, None]
        if values.shape[0] != len(pts):
            raise ValueError(f"{len(pts)} points but {values.shape[0]} share rows.")
        if len(pts) < self.threshold:
            raise NotEnoughShares(
                f"{len(pts)} shares cannot reconstruct a {self.threshold}-of-"
                f"{self.num_shares} secret; at least {self.threshold} are needed."
            )
        pts, values = pts[: self.threshold], values[: self.threshold]
        lam = lagrange_at_zero(pts, self.prime)
        p = np.int64(self.prime)
        return (lam[:, None] * (values % p) % p).sum(axis=0) % p


def bytes_to_pieces(secret: bytes) -> np.ndarray:
    """A byte string as 31-bit pieces (int64), least significant first."""
    value = int.from_bytes(secret, "little")
    count = -(-len(secret) * 8 // PIECE_BITS)
    mask = (1 << PIECE_BITS) - 1
    return np.array(
        [(value >> (PIECE_BITS * i)) & mask for i in range(count)], dtype=np.int64
    )


def pieces_to_bytes(pieces: np.ndarray, num_bytes: int) -> bytes:
    """Inverse of :func:`bytes_to_pieces`.

    Raises:
        ValueError: the pieces do not encode ``num_bytes`` bytes (a wrong
            reconstruction).
    """
    value = 0
    for i, piece in enumerate(np.asarray(pieces, dtype=np.int64).tolist()):
        if not 0 <= piece < 1 << PIECE_BITS:
            raise ValueError("a piece is not a 31-bit value: wrong reconstruction.")
        value |= piece << (PIECE_BITS * i)
    if value >= 1 << (8 * num_bytes):
        raise ValueError("the pieces do not encode the expected number of bytes.")
    return value.to_bytes(num_bytes, "little")
