"""FastShare and FastRecon: FFT-based multi-secret sharing over F_p.

Kadhe, Rajaraman, Koyluoglu and Ramchandran, *FastSecAgg* (arXiv 2009.11248),
build their protocol on FastShare: the dealer writes ``L`` secrets, ``T``
random values and zeros into a length-``N`` vector ``x`` and the ``N`` shares
are its DFT over F_p (so ``N`` divides ``p - 1``), computed by an FFT; the
zeros make the shares a product of two Reed-Solomon codes, so FastRecon
recovers them from a *random* subset by peeling, decoding rows and columns in
turn. The paper's exact index pattern could not be read for this build (only
its abstract and secondary descriptions); this module is our construction
with those properties, stated and checked here:

* ``N = n1 * n2`` with ``gcd(n1, n2) = 1``. By the Chinese remainder theorem
  exponent ``k`` is the cell ``(k mod n1, k mod n2)`` and share ``j`` the cell
  ``(j mod n1, j mod n2)``; then ``w**(j k) = a**(j1 k1) * b**(j2 k2)`` with
  ``a`` of order ``n1`` and ``b`` of order ``n2``, so the length-``N`` DFT is
  an ``n1 x n2`` two-dimensional DFT (Good-Thomas): a radix-2 NTT along the
  power-of-two side and a small matrix DFT along the other.
* Zeros: ``x_k = 0`` unless ``k1 < K1 = n1 - z1`` and ``k2 < K2 = n2 - z2``
  (``k1, k2`` the residues of ``k``). Every column of the share grid is then
  a Reed-Solomon codeword of length ``n1`` and dimension ``K1`` (it corrects
  ``z1`` erasures), every row one of length ``n2`` and dimension ``K2`` (it
  corrects ``z2``): the shares form a product code.
* Randomness in the cells ``k1 < K1, k2 < T``; secrets in the cells
  ``k1 < K1, T <= k2 < K2``: ``L = K1 (K2 - T)`` secrets per sharing.
* **T-privacy.** Share ``(j1, j2)`` is ``u(j1)^T X v(j2)`` with ``X`` the
  ``K1 x K2`` block of ``x``, ``u(j1) = (a**(j1 k1))`` and
  ``v(j2) = (b**(j2 k2))``. Take any ``T`` shares and a linear combination
  of them that cancels the randomness. It involves at most ``T`` distinct
  ``j2``, and the first ``T`` entries of distinct ``v(j2)`` are independent
  (Vandermonde), so for each ``j2`` the coefficients ``c`` satisfy
  ``sum_j1 c_j1 u(j1) = 0``: a parity check of column ``j2``, which cancels
  the secrets too. So no combination of ``T`` shares depends on the
  secrets: they are uniform whatever the secrets are (checked by rank in the
  tests). ``T + 1`` shares in one row do leak.
* FastRecon: fill any column with at most ``z1`` erasures and any row with at
  most ``z2`` by Lagrange interpolation, repeat, then invert the DFT. It
  fails only on a *stopping set* (rows and columns each with too many
  erasures), whose smallest is a ``(z1 + 1) x (z2 + 1)`` sub-grid: every
  pattern of fewer dropouts is recovered, a random pattern of many more
  usually is, and that sub-grid (an adversary's choice) never is; it is the
  support of a codeword, so no decoder can recover it.

Take ``n1`` small (3, 5 or 15, the odd part of ``p - 1``) and ``n2`` a power
of two: the privacy ``T`` and the tolerated share of random dropouts are then
constant fractions of ``N``, as the paper's abstract says, and sharing costs
``O(N log N)`` per block of ``L = Theta(N)`` values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from gi_lib.defenses._field import FIELD, FieldError, PrimeField


class RecoveryError(RuntimeError):
    """FastRecon stopped with erasures left (a stopping set of dropouts)."""


@dataclass(frozen=True)
class FastShare:
    """FastShare with its parameters (see the module docstring).

    Attributes:
        n1, n2: the share grid, coprime, ``n1 * n2 = N`` dividing ``p - 1``.
        z1: zero residues mod ``n1``: each column corrects ``z1`` erasures.
        z2: zero residues mod ``n2``: each row corrects ``z2`` erasures.
        privacy: ``T``, how many share holders may collude and learn nothing
            (``1 <= T < n2 - z2``).
        field: the prime field.
    """

    n1: int
    n2: int
    z1: int
    z2: int
    privacy: int
    field: PrimeField = field(default=FIELD, compare=False)

    def __post_init__(self) -> None:
        for name in ("n1", "n2"):
            if getattr(self, name) < 2:
                raise ValueError(
                    f"{name} must be at least 2, got {getattr(self, name)}."
                )
        if math.gcd(self.n1, self.n2) != 1:
            raise ValueError(
                f"n1 = {self.n1} and n2 = {self.n2} must be coprime (the share grid "
                "comes from the Chinese remainder theorem); e.g. 3 x 32 or 15 x 16."
            )
        self.field.root_of_unity(self.num_shares)  # FieldError: what to change
        if not 0 <= self.z1 < self.n1 or not 0 <= self.z2 < self.n2:
            raise ValueError(
                f"z1 = {self.z1} and z2 = {self.z2} must satisfy 0 <= z1 < n1 = "
                f"{self.n1} and 0 <= z2 < n2 = {self.n2}."
            )
        if not 1 <= self.privacy < self.k2:
            raise ValueError(
                f"privacy T = {self.privacy} must be between 1 and n2 - z2 - 1 = "
                f"{self.k2 - 1} (each row holds T random and at least one secret "
                "coefficient); lower T or the row parity z2, or take a larger n2."
            )

    @classmethod
    def design(
        cls,
        num_shares: int,
        *,
        privacy: float = 0.1,
        parity: float = 0.2,
        field: PrimeField = FIELD,
    ) -> FastShare:
        """An instance for ``num_shares`` clients.

        ``N = n1 * n2`` with ``n1`` the smaller of the coprime factors (the odd
        part and the power of two of ``N``), one parity per column
        (``z1 = 1``), ``z2 = round(parity * n2)`` parities per row and
        ``T = round(privacy * N)`` (at least 1, at most ``n2 - z2 - 1``).

        Raises:
            FieldError: ``num_shares`` does not divide ``p - 1``.
            ValueError: ``num_shares`` is not (odd part) x (power of two) with
                both parts at least 2, or the fractions leave no secrets.
        """
        field.root_of_unity(num_shares)
        odd = num_shares
        while odd % 2 == 0:
            odd //= 2
        two = num_shares // odd
        if odd < 2 or two < 2:
            raise ValueError(
                f"{num_shares} shares do not split into an odd part and a power of "
                "two, both at least 2; use e.g. 3 * 2**a, 5 * 2**a or 15 * 2**a "
                f"(these divide p - 1 for p = {field.p})."
            )
        n1, n2 = min(odd, two), max(odd, two)
        z2 = min(max(1, round(parity * n2)), n2 - 2)
        top = n2 - z2 - 1
        t = max(1, round(privacy * num_shares))
        if t > top:
            raise ValueError(
                f"privacy {privacy} of {num_shares} shares is T = {t}, but this grid "
                f"({n1} x {n2}, z2 = {z2}) allows at most T = {top}; lower the "
                "privacy or the parity, or use more clients."
            )
        return cls(n1, n2, 1, z2, t, field)

    # ------------------------------------------------------------ sizes
    @property
    def num_shares(self) -> int:
        """N, one share per client."""
        return self.n1 * self.n2

    @property
    def k1(self) -> int:
        """Dimension of the column code, ``n1 - z1``."""
        return self.n1 - self.z1

    @property
    def k2(self) -> int:
        """Dimension of the row code, ``n2 - z2``."""
        return self.n2 - self.z2

    @property
    def num_secrets(self) -> int:
        """L, the secrets one sharing carries, ``(n1 - z1)(n2 - z2 - T)``."""
        return self.k1 * (self.k2 - self.privacy)

    @property
    def worst_case_dropouts(self) -> int:
        """Every pattern of at most this many missing shares is recovered."""
        return (self.z1 + 1) * (self.z2 + 1) - 1

    def __repr__(self) -> str:
        return (
            f"FastShare(N={self.num_shares}={self.n1}x{self.n2}, z=({self.z1}, "
            f"{self.z2}), T={self.privacy}, L={self.num_secrets})"
        )

    # ------------------------------------------------------------ index maps
    @cached_property
    def _roots(self) -> tuple[int, int, int]:
        p, n = self.field.p, self.num_shares
        w = self.field.root_of_unity(n)
        e1 = self.n2 * pow(self.n2, -1, self.n1) % n
        e2 = self.n1 * pow(self.n1, -1, self.n2) % n
        return w, pow(w, e1, p), pow(w, e2, p)

    def _exponents(self, low: int, high: int) -> np.ndarray:
        k = np.arange(self.num_shares)
        keep = (k % self.n1 < self.k1) & (k % self.n2 >= low) & (k % self.n2 < high)
        return k[keep]

    @cached_property
    def secret_exponents(self) -> np.ndarray:
        """The exponents k of the secrets (cells k1 < K1, T <= k2 < K2)."""
        return self._exponents(self.privacy, self.k2)

    @cached_property
    def random_exponents(self) -> np.ndarray:
        """The exponents k of the randomness (cells k1 < K1, k2 < T)."""
        return self._exponents(0, self.privacy)

    @cached_property
    def nonzero_exponents(self) -> np.ndarray:
        """Every exponent that is not forced to zero (randomness and secrets)."""
        return self._exponents(0, self.k2)

    @property
    def num_random(self) -> int:
        """Random field elements per sharing, ``(n1 - z1) T``."""
        return self.k1 * self.privacy

    def share_matrix(self, columns: np.ndarray | None = None) -> np.ndarray:
        """The N x len(columns) matrix ``w**(j k)``: shares = matrix @ x[columns].

        Used for checks by linear algebra (the protocol uses the FFT).
        """
        columns = np.arange(self.num_shares) if columns is None else np.asarray(columns)
        w = self._roots[0]
        exponents = np.outer(np.arange(self.num_shares), columns) % self.num_shares
        return self.field.powers(w, self.num_shares)[exponents]

    # ------------------------------------------------------------ sharing
    def share(self, secrets: np.ndarray, randomness: np.ndarray) -> np.ndarray:
        """The N shares of ``B`` independent sharings, by the 2-D FFT.

        Args:
            secrets: ``(L, B)`` field elements (column b is sharing b).
            randomness: ``(num_random, B)`` uniform field elements.

        Returns:
            ``(N, B)``: row ``j`` is client ``j``'s share of every sharing.
        """
        secrets = np.asarray(secrets, dtype=np.int64)
        randomness = np.asarray(randomness, dtype=np.int64)
        if secrets.ndim != 2 or secrets.shape[0] != self.num_secrets:
            raise ValueError(
                f"secrets must have shape (L={self.num_secrets}, B), got "
                f"{secrets.shape}."
            )
        blocks = secrets.shape[1]
        if randomness.shape != (self.num_random, blocks):
            raise ValueError(
                f"randomness must have shape ({self.num_random}, {blocks}), got "
                f"{randomness.shape}."
            )
        x = np.zeros((self.n1, self.n2, blocks), dtype=np.int64)
        s = self.secret_exponents
        x[s % self.n1, s % self.n2] = secrets
        r = self.random_exponents
        x[r % self.n1, r % self.n2] = randomness
        _, a, b = self._roots
        grid = self.field.dft(self.field.dft(x, axis=1, root=b), axis=0, root=a)
        j = np.arange(self.num_shares)
        return grid[j % self.n1, j % self.n2]

    # ------------------------------------------------------------ recovery
    def stuck_erasures(self, available: np.ndarray) -> np.ndarray:
        """The erasures FastRecon's peeling cannot fill, as an (n1, n2) grid.

        Empty (all False) when the pattern is recoverable. Only the pattern
        matters, not the values, so this is what a Monte-Carlo estimate of
        the recovery probability runs.
        """
        erased = ~self._grid_mask(available)
        changed = True
        while changed and erased.any():
            changed = False
            columns = erased.sum(axis=0)
            fill = (columns > 0) & (columns <= self.z1)
            if fill.any():
                erased[:, fill] = False
                changed = True
            rows = erased.sum(axis=1)
            fill = (rows > 0) & (rows <= self.z2)
            if fill.any():
                erased[fill, :] = False
                changed = True
        return erased

    def _grid_mask(self, available: np.ndarray) -> np.ndarray:
        available = np.asarray(available, dtype=bool)
        if available.shape != (self.num_shares,):
            raise ValueError(
                f"available must be {self.num_shares} booleans, got shape "
                f"{available.shape}."
            )
        j = np.arange(self.num_shares)
        grid = np.zeros((self.n1, self.n2), dtype=bool)
        grid[j % self.n1, j % self.n2] = available
        return grid

    def reconstruct(self, shares: np.ndarray, available: np.ndarray) -> np.ndarray:
        """FastRecon: the secrets ``(L, B)`` from the available shares.

        Args:
            shares: ``(N, B)``; rows of missing shares are ignored.
            available: ``(N,)`` booleans, which shares arrived.

        Raises:
            RecoveryError: peeling stopped with erasures left; the message
                names the stuck grid rows and columns.
        """
        shares = np.asarray(shares, dtype=np.int64)
        erased = ~self._grid_mask(available)
        j = np.arange(self.num_shares)
        grid = np.zeros((self.n1, self.n2, shares.shape[1]), dtype=np.int64)
        ok = np.asarray(available, dtype=bool)
        grid[j[ok] % self.n1, j[ok] % self.n2] = shares[ok]
        _, a, b = self._roots
        points1 = self.field.powers(a, self.n1)
        points2 = self.field.powers(b, self.n2)
        changed = True
        while changed and erased.any():
            changed = False
            for c in np.nonzero(
                (erased.sum(axis=0) > 0) & (erased.sum(axis=0) <= self.z1)
            )[0]:
                known = np.nonzero(~erased[:, c])[0][: self.k1]
                missing = np.nonzero(erased[:, c])[0]
                m = self.field.lagrange_matrix(points1[known], points1[missing])
                grid[missing, c] = self.field.matmul(m, grid[known, c])
                erased[missing, c] = False
                changed = True
            for r in np.nonzero(
                (erased.sum(axis=1) > 0) & (erased.sum(axis=1) <= self.z2)
            )[0]:
                known = np.nonzero(~erased[r, :])[0][: self.k2]
                missing = np.nonzero(erased[r, :])[0]
                m = self.field.lagrange_matrix(points2[known], points2[missing])
                grid[r, missing] = self.field.matmul(m, grid[r, known])
                erased[r, missing] = False
                changed = True
        if erased.any():
            rows = np.nonzero(erased.any(axis=1))[0].tolist()
            cols = np.nonzero(erased.any(axis=0))[0].tolist()
            raise RecoveryError(
                f"FastRecon is stuck: {int(erased.sum())} shares cannot be filled "
                f"(grid rows {rows} each miss more than z2 = {self.z2}, columns "
                f"{cols} more than z1 = {self.z1}); this dropout pattern is a "
                "stopping set of the product code."
            )
        x = self.field.dft(
            self.field.dft(grid, axis=0, root=a, inverse=True),
            axis=1,
            root=b,
            inverse=True,
        )
        s = self.secret_exponents
        return x[s % self.n1, s % self.n2]

    # ------------------------------------------------------------ analysis
    def leaks(self, holders: np.ndarray) -> bool:
        """Whether these share holders together learn anything about the secrets.

        By linear algebra over F_p: their shares are ``F_A,R r + F_A,S s``;
        they learn nothing iff the randomness block spans everything they
        see, ``rank(F_A,R) = rank(F_A,R+S)``.
        """
        holders = np.asarray(holders)
        random_block, everything = self._privacy_matrices
        return self.field.rank(random_block[holders]) < self.field.rank(
            everything[holders]
        )

    @cached_property
    def _privacy_matrices(self) -> tuple[np.ndarray, np.ndarray]:
        return (
            self.share_matrix(self.random_exponents),
            self.share_matrix(self.nonzero_exponents),
        )

    def adversarial_dropouts(self) -> np.ndarray:
        """A stopping set: the (z1 + 1) x (z2 + 1) corner of the share grid.

        Returns the client indices (``j`` with ``j mod n1 <= z1`` and
        ``j mod n2 <= z2``); with them missing, no decoder recovers.
        """
        j = np.arange(self.num_shares)
        return j[(j % self.n1 <= self.z1) & (j % self.n2 <= self.z2)]


__all__ = ["FastShare", "FieldError", "RecoveryError"]
