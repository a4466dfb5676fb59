"""Arithmetic in a prime field F_p, vectorised with numpy, for the coded protocols.

LightSecAgg (Lagrange/MDS-coded masks) and FastSecAgg (FFT-based secret
sharing) compute in F_p. Elements are ``int64`` arrays with values in
``[0, p)``; ``p < 2**31``, so the product of two elements is below ``2**62``
and fits ``int64``; every product is reduced before anything is added to it,
so nothing overflows. Matrix products go through ``float64`` BLAS on 16-bit
limbs, whose partial sums stay exact below ``2**53``.

The default prime is the NTT-friendly ``p = 2013265921 = 15 * 2**27 + 1``:
``p - 1 = 2**27 * 3 * 5``, so F_p has primitive n-th roots of unity for every
``n`` dividing ``p - 1``, among them every power of two up to ``2**27``.

What is here:

* element-wise ``add``, ``sub``, ``neg``, ``mul``, ``power``, ``inv``;
* ``matmul`` (exact, for any inner dimension below ``2**21``);
* ``root_of_unity(n)``, which fails with a message saying what to change when
  ``n`` does not divide ``p - 1``;
* a radix-2 number-theoretic transform along any axis (``ntt``/``intt``) and a
  plain DFT for the other lengths dividing ``p - 1`` (``dft``);
* Vandermonde matrices and Lagrange (MDS) encoding/decoding
  (``lagrange_matrix``: values of the polynomial through ``k`` points, at
  other points);
* ``rank`` and ``solve`` by Gaussian elimination (privacy checks by rank);
* ``uniform``: uniform elements from a byte source by rejection sampling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property

import numpy as np

P = 2013265921
"""The default prime, 15 * 2**27 + 1 (NTT-friendly, below 2**31)."""

_MAX_INNER = 1 << 21  # float64 partial sums of 32-bit limb products stay exact


class FieldError(ValueError):
    """A field cannot do what was asked (no such root of unity, repeated points)."""


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    d = 3
    while d * d <= n:
        if n % d == 0:
            return False
        d += 2
    return True


def _prime_factors(n: int) -> list[int]:
    factors, d = [], 2
    while d * d <= n:
        if n % d == 0:
            factors.append(d)
            while n % d == 0:
                n //= d
        d += 1
    if n > 1:
        factors.append(n)
    return factors


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


class PrimeField:
    """F_p for a prime ``p < 2**31``, on ``int64`` numpy arrays.

    Args:
        p: the prime (default :data:`P`).

    Raises:
        FieldError: ``p`` is not a prime below ``2**31``.
    """

    def __init__(self, p: int = P) -> None:
        p = int(p)
        if not 2 < p < 2**31 or not _is_prime(p):
            raise FieldError(
                f"p = {p} must be an odd prime below 2**31 (products of two "
                "elements must fit int64); the NTT-friendly default is "
                f"{P} = 15 * 2**27 + 1."
            )
        self.p = p
        self._twiddles: dict[tuple[int, int], list[np.ndarray]] = {}

    def __repr__(self) -> str:
        return f"PrimeField({self.p})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrimeField) and other.p == self.p

    def __hash__(self) -> int:
        return hash(("PrimeField", self.p))

    # ------------------------------------------------------------ elements
    def element(self, values: object) -> np.ndarray:
        """``values`` (integers, any sign) reduced into ``[0, p)`` as int64."""
        array = np.asarray(values)
        if array.dtype == object:
            return np.array(
                [int(v) % self.p for v in array.reshape(-1)], dtype=np.int64
            ).reshape(array.shape)
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"field elements are integers, got dtype {array.dtype}.")
        if array.dtype == np.uint64:
            return (array % np.uint64(self.p)).astype(np.int64)
        return np.mod(array.astype(np.int64), self.p)

    def add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a + b."""
        out = np.add(a, b, dtype=np.int64)
        out[out >= self.p] -= self.p
        return out

    def sub(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a - b."""
        out = np.subtract(a, b, dtype=np.int64)
        out[out < 0] += self.p
        return out

    def neg(self, a: np.ndarray) -> np.ndarray:
        """-a."""
        return np.mod(-np.asarray(a, dtype=np.int64), self.p)

    def mul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a * b (each product below 2**62, reduced at once)."""
        return np.multiply(a, b, dtype=np.int64) % self.p

    def sum(self, a: np.ndarray, axis: int = 0) -> np.ndarray:
        """The sum along ``axis`` (exact: at most 2**32 terms below 2**31)."""
        a = np.asarray(a, dtype=np.int64)
        if a.shape[axis] >= 1 << 32:
            raise FieldError("too many terms to sum exactly in int64.")
        return np.sum(a, axis=axis, dtype=np.int64) % self.p

    def power(self, a: np.ndarray, exponent: int) -> np.ndarray:
        """a ** exponent, element-wise (square and multiply)."""
        exponent = int(exponent)
        base = np.asarray(a, dtype=np.int64) % self.p
        if exponent < 0:
            base, exponent = self.inv(base), -exponent
        result = np.ones_like(base)
        while exponent:
            if exponent & 1:
                result = self.mul(result, base)
            base = self.mul(base, base)
            exponent >>= 1
        return result

    def inv(self, a: np.ndarray) -> np.ndarray:
        """1 / a, element-wise (Fermat); a ZeroDivisionError on a zero."""
        a = np.asarray(a, dtype=np.int64) % self.p
        if np.any(a == 0):
            raise ZeroDivisionError("0 has no inverse in F_p.")
        return self.power(a, self.p - 2)

    # ------------------------------------------------------------ matrices
    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The matrix product a @ b over F_p (2-D, or batched as numpy does).

        Each operand is split into 16-bit limbs; the four limb products go
        through float64 BLAS, exact while the inner dimension is below 2**21,
        and are recombined in int64 with a reduction after every product.
        """
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        inner = a.shape[-1]
        if inner >= _MAX_INNER:
            raise FieldError(
                f"inner dimension {inner} is too large for an exact product "
                f"(at most {_MAX_INNER - 1})."
            )
        a_hi, a_lo = (a >> 16).astype(np.float64), (a & 0xFFFF).astype(np.float64)
        b_hi, b_lo = (b >> 16).astype(np.float64), (b & 0xFFFF).astype(np.float64)
        p = self.p
        hh = np.matmul(a_hi, b_hi).astype(np.int64) % p
        mid = (
            np.matmul(a_hi, b_lo).astype(np.int64)
            + np.matmul(a_lo, b_hi).astype(np.int64)
        ) % p
        ll = np.matmul(a_lo, b_lo).astype(np.int64) % p
        out = hh * ((1 << 32) % p) % p
        out += mid * (1 << 16) % p
        out += ll
        return out % p

    def vandermonde(self, points: np.ndarray, num_columns: int) -> np.ndarray:
        """V[i, j] = points[i] ** j, for j < num_columns."""
        points = self.element(points).reshape(-1)
        out = np.ones((points.size, num_columns), dtype=np.int64)
        for j in range(1, num_columns):
            out[:, j] = self.mul(out[:, j - 1], points)
        return out

    def lagrange_matrix(
        self,
        source_points: Sequence[int] | np.ndarray,
        target_points: Sequence[int] | np.ndarray,
    ) -> np.ndarray:
        """The matrix M with ``M @ f(source) = f(target)`` for deg f < len(source).

        ``M[t, s] = prod_{k != s} (target_t - source_k) / (source_s - source_k)``.
        Encoding (values at ``k`` points -> values at ``n`` points) and decoding
        (any ``k`` of those ``n`` values -> the original ``k``) are both this
        matrix; any ``k`` distinct points determine the polynomial (MDS).

        Raises:
            FieldError: the source points are not distinct.
        """
        src = self.element(np.asarray(source_points)).reshape(-1)
        dst = self.element(np.asarray(target_points)).reshape(-1)
        if np.unique(src).size != src.size:
            raise FieldError("Lagrange source points must be distinct.")
        k = src.size
        diff_src = self.sub(src[:, None], src[None, :])  # source_s - source_k
        np.fill_diagonal(diff_src, 1)
        denominators = np.ones(k, dtype=np.int64)
        for col in range(k):
            denominators = self.mul(denominators, diff_src[:, col])
        diff = self.sub(dst[:, None], src[None, :])  # (T, K): target_t - source_k
        zero = diff == 0
        # Where a target equals a source point the row is a unit vector.
        safe = np.where(zero, 1, diff)
        full = np.ones(dst.size, dtype=np.int64)
        for col in range(k):
            full = self.mul(full, safe[:, col])
        numer = self.mul(full[:, None], self.inv(safe))  # product over k != s
        out = self.mul(numer, self.inv(denominators)[None, :])
        hits = zero.any(axis=1)
        if hits.any():
            out[hits] = zero[hits].astype(np.int64)
        return out

    def rank(self, matrix: np.ndarray) -> int:
        """The rank over F_p (Gaussian elimination)."""
        return self._eliminate(np.array(matrix, dtype=np.int64) % self.p)[1]

    def solve(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """x with a @ x = b for a square invertible ``a`` (b a vector or matrix)."""
        a = np.array(a, dtype=np.int64) % self.p
        b = np.array(b, dtype=np.int64) % self.p
        n = a.shape[0]
        if a.shape != (n, n):
            raise FieldError(f"solve needs a square matrix, got shape {a.shape}.")
        vector = b.ndim == 1
        augmented = np.concatenate([a, b.reshape(n, -1)], axis=1)
        reduced, rank, pivots = self._eliminate(augmented, num_pivot_columns=n)
        if rank < n:
            raise FieldError("the matrix is singular over F_p.")
        x = reduced[:n, n:]
        return x[:, 0] if vector else x

    def _eliminate(
        self, m: np.ndarray, num_pivot_columns: int | None = None
    ) -> tuple[np.ndarray, int, list[int]]:
        """Reduced row echelon form (in place); its rank and pivot columns."""
        rows, cols = m.shape
        limit = cols if num_pivot_columns is None else num_pivot_columns
        rank, pivots = 0, []
        for col in range(limit):
            if rank == rows:
                break
            candidates = np.nonzero(m[rank:, col])[0]
            if candidates.size == 0:
                continue
            pivot = rank + int(candidates[0])
            if pivot != rank:
                m[[rank, pivot]] = m[[pivot, rank]]
            m[rank] = self.mul(m[rank], self.inv(m[rank, col]))
            factors = m[:, col].copy()
            factors[rank] = 0
            nonzero = np.nonzero(factors)[0]
            if nonzero.size:
                m[nonzero] = self.sub(
                    m[nonzero], self.mul(factors[nonzero, None], m[rank][None, :])
                )
            pivots.append(col)
            rank += 1
        return m, rank, pivots

    # ------------------------------------------------------------ roots of unity
    @cached_property
    def generator(self) -> int:
        """The smallest primitive root of p (a generator of F_p^*)."""
        factors = _prime_factors(self.p - 1)
        for g in range(2, self.p):
            if all(pow(g, (self.p - 1) // q, self.p) != 1 for q in factors):
                return g
        raise FieldError(f"no primitive root found for {self.p}.")  # unreachable

    def root_of_unity(self, n: int) -> int:
        """A primitive n-th root of unity, ``g ** ((p - 1) / n)``.

        Raises:
            FieldError: ``n`` does not divide ``p - 1`` (F_p has no such root);
                the message says which lengths this field supports and how to
                pick a prime that supports ``n``.
        """
        n = int(n)
        if n < 1:
            raise FieldError(f"a root of unity needs n >= 1, got {n}.")
        if (self.p - 1) % n:
            two_adic = (self.p - 1) & -(self.p - 1)
            raise FieldError(
                f"F_p with p = {self.p} has no primitive {n}-th root of unity: n "
                f"must divide p - 1 = {self.p - 1} = "
                f"{' * '.join(_factorisation(self.p - 1))}. Choose n among its "
                f"divisors (powers of two up to {two_adic} here), or a prime p "
                f"with p = 1 mod {n} (for powers of two, {P} = 15 * 2**27 + 1)."
            )
        return pow(self.generator, (self.p - 1) // n, self.p)

    def check_length(self, n: int, *, radix2: bool = False) -> None:
        """Raise a FieldError unless a length-``n`` transform exists here."""
        self.root_of_unity(n)
        if radix2 and not _is_power_of_two(n):
            raise FieldError(
                f"the radix-2 NTT needs a power-of-two length, got {n}; pad to "
                f"{1 << (n - 1).bit_length()} or use dft() for other divisors "
                f"of p - 1."
            )

    # ------------------------------------------------------------ transforms
    def powers(self, base: int, count: int) -> np.ndarray:
        """``[1, base, base**2, ..., base**(count - 1)]`` (by doubling)."""
        out = np.ones(max(count, 1), dtype=np.int64)
        length, step = 1, int(base) % self.p
        while length < count:
            take = min(length, count - length)
            out[length : length + take] = self.mul(out[:take], step)
            length += take
            step = step * step % self.p
        return out[:count]

    def _stage_twiddles(self, n: int, root: int) -> list[np.ndarray]:
        key = (n, root)
        if key not in self._twiddles:
            stages, m = [], 1
            while m < n:
                stages.append(self.powers(pow(root, n // (2 * m), self.p), m))
                m *= 2
            self._twiddles[key] = stages
        return self._twiddles[key]

    def ntt(
        self, a: np.ndarray, axis: int = -1, *, root: int | None = None
    ) -> np.ndarray:
        """The DFT ``X_j = sum_k a_k root**(j k)`` along ``axis`` (radix 2).

        Args:
            a: field elements; the length along ``axis`` is a power of two
                dividing ``p - 1``.
            axis: the axis to transform (others are batched).
            root: a primitive root of unity of that order (default
                :meth:`root_of_unity`).
        """
        a = np.asarray(a, dtype=np.int64)
        n = a.shape[axis]
        self.check_length(n, radix2=True)
        root = self.root_of_unity(n) if root is None else int(root) % self.p
        if pow(root, n, self.p) != 1 or (n > 1 and pow(root, n // 2, self.p) == 1):
            raise FieldError(f"{root} is not a primitive {n}-th root of unity.")
        x = np.moveaxis(a, axis, -1)
        batch = x.shape[:-1]
        bits = max(n.bit_length() - 1, 0)
        rev = np.zeros(n, dtype=np.int64)
        for b in range(bits):
            rev |= ((np.arange(n) >> b) & 1) << (bits - 1 - b)
        x = x[..., rev].reshape(-1, n)
        m = 1
        for tw in self._stage_twiddles(n, root):
            blocks = x.reshape(x.shape[0], n // (2 * m), 2, m)
            u = blocks[:, :, 0, :]
            v = self.mul(blocks[:, :, 1, :], tw)
            x = np.stack([self.add(u, v), self.sub(u, v)], axis=2).reshape(-1, n)
            m *= 2
        return np.moveaxis(x.reshape(*batch, n), -1, axis)

    def intt(
        self, a: np.ndarray, axis: int = -1, *, root: int | None = None
    ) -> np.ndarray:
        """The inverse of :meth:`ntt` (same ``root``)."""
        a = np.asarray(a, dtype=np.int64)
        n = a.shape[axis]
        self.check_length(n, radix2=True)
        root = self.root_of_unity(n) if root is None else int(root) % self.p
        out = self.ntt(a, axis, root=pow(root, self.p - 2, self.p))
        return self.mul(out, pow(n, self.p - 2, self.p))

    def dft_matrix(self, n: int, root: int | None = None) -> np.ndarray:
        """F[j, k] = root ** (j k) for a primitive n-th root (n | p - 1)."""
        root = self.root_of_unity(n) if root is None else int(root) % self.p
        return self.vandermonde(self.powers(root, n), n)

    def dft(
        self,
        a: np.ndarray,
        axis: int = -1,
        *,
        root: int | None = None,
        inverse: bool = False,
    ) -> np.ndarray:
        """The length-n DFT along ``axis`` for any n dividing ``p - 1``.

        Powers of two go through :meth:`ntt`; other lengths multiply by the
        n x n DFT matrix (they are small factors here: 3, 5, 15, ...).
        """
        a = np.asarray(a, dtype=np.int64)
        n = a.shape[axis]
        root = self.root_of_unity(n) if root is None else int(root) % self.p
        if _is_power_of_two(n):
            return (self.intt if inverse else self.ntt)(a, axis, root=root)
        if inverse:
            root = pow(root, self.p - 2, self.p)
        matrix = self.dft_matrix(n, root)
        x = np.moveaxis(a, axis, 0)
        shape = x.shape
        out = self.matmul(matrix, x.reshape(n, -1)).reshape(shape)
        if inverse:
            out = self.mul(out, pow(n, self.p - 2, self.p))
        return np.moveaxis(out, 0, axis)

    # ------------------------------------------------------------ randomness
    def uniform(
        self, shape: int | tuple[int, ...], randbytes: Callable[[int], bytes]
    ) -> np.ndarray:
        """Uniform elements of F_p from a byte source, by rejection sampling.

        Each candidate is 4 bytes read little-endian and masked to the bit
        length of ``p``; candidates >= p are rejected (for the default prime,
        1 in 16), so the output is exactly uniform if the bytes are.

        Args:
            shape: the output's shape.
            randbytes: returns that many (cryptographically random) bytes,
                e.g. ``os.urandom`` or a keystream.
        """
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        count = int(np.prod(shape, dtype=np.int64))
        mask = (1 << self.p.bit_length()) - 1
        out = np.empty(count, dtype=np.int64)
        filled = 0
        while filled < count:
            need = count - filled
            draw = need + need // 8 + 16
            raw = (
                np.frombuffer(randbytes(4 * draw), dtype="<u4").astype(np.int64) & mask
            )
            keep = raw[raw < self.p][:need]
            out[filled : filled + keep.size] = keep
            filled += keep.size
        return out.reshape(shape)


def _factorisation(n: int) -> list[str]:
    parts = []
    for q in _prime_factors(n):
        e = 0
        while n % q == 0:
            n //= q
            e += 1
        parts.append(f"{q}**{e}" if e > 1 else str(q))
    return parts


FIELD = PrimeField(P)
"""F_p for the default NTT-friendly prime."""
