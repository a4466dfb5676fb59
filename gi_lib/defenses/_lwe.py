"""The LWE-based additively homomorphic scheme of Aono/Phong et al., in numpy.

The scheme (a Lindner-Peikert public-key encryption with packing) as the
paper gives it (IEEE TIFS 2018, Sec. 3; parameters of its Table 3):

* parameters: dimension ``n_lwe = 3000``, Gaussian parameter ``s = 8``,
  plaintext modulus ``p = 2^48 + 1``, ciphertext modulus ``q = 2^77``,
  ``l`` plaintext slots per ciphertext;
* key generation: ``A`` uniform in Z_q^{n x n}, ``R, S`` Gaussian in
  Z^{n x l}, public key ``(A, P = p R - A S mod q)``, secret key ``S``;
* encryption of ``m`` in Z_p^l: Gaussian ``e1, e2`` in Z^n and ``e3`` in
  Z^l, ``c = (c1, c2) = (e1 A + p e2, e1 P + p e3 + m) mod q``;
* addition: ``c + c'`` coordinate-wise mod q;
* decryption: ``m = (c1 S + c2 mod q, centred) mod p``. It is exact while
  ``|p (e2 S + e1 R + e3) + m| < q / 2``: for a sum of K ciphertexts the
  noise grows as sqrt(K), which :meth:`LWEParams.check` bounds at set-up.

``D_{Z,s}`` is read with the Lindner-Peikert convention, density
proportional to exp(-pi x^2 / s^2): a standard deviation of
``s / sqrt(2 pi)`` (3.19 for s = 8). Samples are rounded normals from a
ChaCha20 keystream (:mod:`gi_lib.defenses._he_random`).

**Where q = 2^77 lives.** q does not fit numpy's int64, so nothing here
changes q: every element of Z_q is held as three *limbs* of 26, 26 and 25
bits (int64 arrays of shape ``(3, ...)``). The matrix products have one
small factor (Gaussian noise or the secret key, ``|e| <= 28`` for s = 8), so
each limb's product is an ordinary float64 BLAS product, exact while
``n * max|e| * 2^26 < 2^53`` (checked at set-up); carries between limbs are
propagated afterwards, and the top limb is reduced mod 2^25, i.e. the whole
value mod 2^77. Decryption finds ``w = round(v / p)`` in floating point and
subtracts ``w p`` limb by limb in exact integers, so ``v mod p`` is exact.
On the wire an element takes ceil(77 / 8) = 10 bytes.

**Where the layout changes.** The paper packs a whole gradient into one
ciphertext: ``l = n_gd``, so its public key ``P`` has n x n_gd entries
(3.2 GB for MNIST's 109,386 values at 77 bits). Here a flat vector is cut
into blocks of ``l`` slots (``block``, 4096 by default), each block its own
ciphertext with its own ``c1``: the key is n x l, a vector of d values costs
``ceil(d / l) * (n + l)`` elements instead of ``n + d``, and encryption does
``ceil(d / l)`` products ``e1 A`` instead of one. With ``block >= d`` it is
the paper's layout.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from gi_lib.defenses._he_random import KeyStream, derive_key, gaussian_bound
from gi_lib.defenses._summands import check_integer, summed_count

LIMB_BITS = 26
_FLOAT_EXACT = 2**53
# Decryption succeeds unless one coordinate's noise exceeds this many
# standard deviations (a normal tail of about 1e-44 per coordinate).
TAIL_SIGMAS = 14.0
_MAGIC = b"LWE1"
_HEADER = struct.Struct("<4sQQQII")  # magic, size, blocks, count, block, n


@dataclass(frozen=True)
class LWEParams:
    """Parameters of the LWE scheme; the defaults are the paper's Table 3.

    Attributes:
        n: the LWE dimension n_lwe.
        s: the Gaussian parameter (standard deviation ``s / sqrt(2 pi)``).
        p: the plaintext modulus (odd, so coprime to q).
        q_bits: log2 of the ciphertext modulus q = 2^q_bits.
        block: plaintext slots per ciphertext (the paper's l; see the module
            doc for why it is not the whole update).
    """

    n: int = 3000
    s: float = 8.0
    p: int = 2**48 + 1
    q_bits: int = 77
    block: int = 4096

    @property
    def sigma(self) -> float:
        """The noise's standard deviation, ``s / sqrt(2 pi)``."""
        return self.s / math.sqrt(2 * math.pi)

    @property
    def q(self) -> int:
        return 2**self.q_bits

    @property
    def num_limbs(self) -> int:
        return math.ceil(self.q_bits / LIMB_BITS)

    @property
    def bytes_per_element(self) -> int:
        """Bytes of one element of Z_q on the wire."""
        return math.ceil(self.q_bits / 8)

    def noise_sd(self) -> float:
        """Standard deviation of one coordinate of ``e2 S + e1 R + e3`` for a
        fresh ciphertext (rounded normals have variance sigma^2 + 1/12)."""
        var = self.sigma**2 + 1.0 / 12.0
        return math.sqrt(2 * self.n * var * var + var)

    def max_summands(self, max_abs_plaintext: int) -> int:
        """The most fresh ciphertexts whose sum still decrypts (noise bound)."""
        room = (self.q / 2 - max_abs_plaintext) / self.p - 1
        if room <= 0:
            return 0
        return int((room / (TAIL_SIGMAS * self.noise_sd())) ** 2)

    def check(self, *, max_summands: int = 1, max_abs_plaintext: int = 0) -> None:
        """Raise a ValueError, saying what to change, unless these parameters
        give exact products and a sum of ``max_summands`` ciphertexts whose
        plaintexts total at most ``max_abs_plaintext`` decrypts correctly."""
        check_integer("LWE", "n", self.n)
        check_integer("LWE", "block", self.block)
        if not (math.isfinite(self.s) and self.s > 0):
            raise ValueError(f"LWE: s must be positive, got {self.s}.")
        if not 32 <= self.q_bits <= 3 * LIMB_BITS:
            raise ValueError(
                f"LWE: q_bits must be in [32, {3 * LIMB_BITS}] (three 26-bit limbs "
                f"at most), got {self.q_bits}."
            )
        if self.p % 2 == 0 or self.p < 3:
            raise ValueError(
                f"LWE: p = {self.p} must be odd (coprime to q = 2^{self.q_bits}); "
                "with p | q, P mod p = -A S mod p reveals S. Use e.g. 2^k + 1."
            )
        if self.p >= 2**50:
            raise ValueError(
                f"LWE: p must be below 2^50, got 2^{math.log2(self.p):.1f}."
            )
        if self.q_bits - math.floor(math.log2(self.p)) > 36:
            raise ValueError(
                f"LWE: q / p = 2^{self.q_bits - math.log2(self.p):.1f} is above 2^36, "
                "which exact decryption here does not support; raise p or lower q_bits."
            )
        bound = gaussian_bound(self.sigma)
        if self.n * bound * (2**LIMB_BITS) >= _FLOAT_EXACT:
            raise ValueError(
                f"LWE: n = {self.n} with noise up to {bound} makes limb products "
                f"reach 2^{math.log2(self.n * bound) + LIMB_BITS:.1f}, beyond "
                "float64's exact 2^53; lower n or s."
            )
        check_integer("LWE", "max_summands", max_summands)
        if max_abs_plaintext > (self.p - 1) // 2:
            raise ValueError(
                f"LWE: plaintext sums up to +-{max_abs_plaintext} do not fit Z_p "
                f"(p = {self.p} holds +-{(self.p - 1) // 2}); use fewer summands, a "
                "smaller clip or fewer fractional bits, or a larger p."
            )
        allowed = self.max_summands(max_abs_plaintext)
        if max_summands > allowed:
            raise ValueError(
                f"LWE: the noise of a sum of {max_summands} ciphertexts (standard "
                f"deviation {self.noise_sd() * math.sqrt(max_summands):.3g}, "
                f"{TAIL_SIGMAS:g} of them) exceeds q / (2p) = "
                f"{self.q / (2 * self.p):.3g}: at most {allowed} summands decrypt "
                "correctly with these parameters; raise q_bits, or lower p, n or s."
            )


@dataclass
class LWECiphertext:
    """One encrypted flat vector: ``blocks`` ciphertexts of the scheme.

    Attributes:
        c1: ``(limbs, blocks, n)`` int64 limbs of the ``c1`` parts.
        c2: ``(limbs, blocks, block)`` int64 limbs of the ``c2`` parts.
        size: how many plaintext values it holds (the rest of the last
            block is padding).
        count: how many fresh ciphertexts were added into it (public).
    """

    c1: np.ndarray
    c2: np.ndarray
    size: int
    count: int = 1


def _limb_widths(q_bits: int) -> list[int]:
    count = math.ceil(q_bits / LIMB_BITS)
    return [LIMB_BITS] * (count - 1) + [q_bits - LIMB_BITS * (count - 1)]


def _constant_limbs(value: int, count: int) -> list[int]:
    """A non-negative integer's limbs (``count`` of them, the top one unbounded)."""
    out = []
    for _ in range(count - 1):
        out.append(value & ((1 << LIMB_BITS) - 1))
        value >>= LIMB_BITS
    out.append(value)
    return out


def _normalise(limbs: np.ndarray, q_bits: int) -> np.ndarray:
    """Canonical limbs of the value mod 2^q_bits (in place; returns ``limbs``).

    Any int64 limbs (of either sign) are accepted while no intermediate
    exceeds 2^62.
    """
    last = limbs.shape[0] - 1
    for i in range(last):
        carry = limbs[i] >> LIMB_BITS  # floor division, also for negatives
        limbs[i] -= carry << LIMB_BITS
        limbs[i + 1] += carry
    limbs[last] &= (1 << (q_bits - LIMB_BITS * last)) - 1
    return limbs


class LWEScheme:
    """Keys and operations of the LWE scheme (secret key included).

    Participants share one instance's keys (the shared-key setting); the
    server needs none of it: :func:`add` works on ciphertexts alone.

    Args:
        params: the scheme's parameters (:class:`LWEParams`).
        max_summands: the most fresh ciphertexts that will be added into
            one; checked against the noise bound here.
        max_abs_plaintext: bound on ``|sum of plaintexts|`` per slot.
        seed: makes the keys and the encryption noise reproducible (a
            replication convenience; ``None`` draws a key from the OS).
    """

    name = "lwe"

    def __init__(
        self,
        params: LWEParams | None = None,
        *,
        max_summands: int = 1,
        max_abs_plaintext: int = 0,
        seed: int | None = None,
    ) -> None:
        self.params = params or LWEParams()
        self.params.check(
            max_summands=max_summands, max_abs_plaintext=max_abs_plaintext
        )
        self.max_summands = max_summands
        prm = self.params
        self._limbs = prm.num_limbs
        self._p_limbs = _constant_limbs(prm.p, self._limbs)
        self._keys = KeyStream(derive_key(seed, "lwe keys"))
        self._noise = KeyStream(derive_key(seed, "lwe noise"))
        n, slots, L = prm.n, prm.block, self._limbs
        widths = _limb_widths(prm.q_bits)
        # Public matrix A, uniform mod q, limb by limb (q is a power of 2).
        self._a = np.empty((L, n, n), dtype=np.float64)
        for i, width in enumerate(widths):
            self._a[i] = self._keys.uniform_bits((n, n), width)
        self._s = self._keys.rounded_gaussian((n, slots), prm.sigma).astype(np.float64)
        self._p = np.empty((L, n, slots), dtype=np.float64)
        step = 1024  # columns at a time, to bound the int64 intermediate
        for start in range(0, slots, step):
            cols = slice(start, min(start + step, slots))
            r = self._keys.rounded_gaussian((n, cols.stop - start), prm.sigma)
            limbs = np.empty((L, n, cols.stop - start), dtype=np.int64)
            for i in range(L):
                limbs[i] = self._p_limbs[i] * r - (
                    self._a[i] @ self._s[:, cols]
                ).astype(np.int64)
            self._p[:, :, cols] = _normalise(limbs, prm.q_bits)

    @property
    def key_bytes(self) -> int:
        """Bytes of the public key ``(A, P)`` at q_bits per element."""
        prm = self.params
        return prm.n * (prm.n + prm.block) * prm.bytes_per_element

    def encrypt(self, plaintext: np.ndarray) -> LWECiphertext:
        """Encrypt signed integers (each ``|m| <= (p - 1) / 2``), any length."""
        prm = self.params
        m = np.asarray(plaintext)
        if m.ndim != 1 or not np.issubdtype(m.dtype, np.integer):
            raise ValueError("LWE encrypts a flat vector of integers.")
        m = m.astype(np.int64)
        half = (prm.p - 1) // 2
        if m.size and int(np.abs(m).max()) > half:
            raise ValueError(
                f"LWE plaintexts must lie in [-{half}, {half}] (Z_p, centred)."
            )
        size, slots, n, L = m.size, prm.block, prm.n, self._limbs
        blocks = max(1, math.ceil(size / slots))
        padded = np.zeros(blocks * slots, dtype=np.int64)
        padded[:size] = m
        e1 = self._noise.rounded_gaussian((blocks, n), prm.sigma)
        e2 = self._noise.rounded_gaussian((blocks, n), prm.sigma)
        e3 = self._noise.rounded_gaussian((blocks, slots), prm.sigma)
        e1f = e1.astype(np.float64)
        c1 = np.empty((L, blocks, n), dtype=np.int64)
        c2 = np.empty((L, blocks, slots), dtype=np.int64)
        for i in range(L):
            c1[i] = (e1f @ self._a[i]).astype(np.int64) + self._p_limbs[i] * e2
            c2[i] = (e1f @ self._p[i]).astype(np.int64) + self._p_limbs[i] * e3
        c2[0] += padded.reshape(blocks, slots)
        return LWECiphertext(
            _normalise(c1, prm.q_bits), _normalise(c2, prm.q_bits), size, 1
        )

    def add(self, a: LWECiphertext, b: LWECiphertext) -> LWECiphertext:
        """The encryption of the sum (see :func:`add`)."""
        return add(a, b, self.params, max_summands=self.max_summands)

    def decrypt(self, ciphertext: LWECiphertext) -> np.ndarray:
        """The signed plaintext (int64, centred mod p) of a (summed) ciphertext."""
        prm = self.params
        if ciphertext.count > self.max_summands:
            raise ValueError(
                f"this ciphertext sums {ciphertext.count} encryptions, more than the "
                f"{self.max_summands} the scheme was set up for."
            )
        _check_shape(ciphertext, prm)
        q_bits, L = prm.q_bits, self._limbs
        c1 = _normalise(ciphertext.c1.copy(), q_bits)
        v = _normalise(ciphertext.c2.copy(), q_bits)
        for i in range(L):
            v[i] += (c1[i].astype(np.float64) @ self._s).astype(np.int64)
        v = _normalise(v, q_bits)
        top = q_bits - LIMB_BITS * (L - 1)
        v[L - 1] = np.where(v[L - 1] >= 1 << (top - 1), v[L - 1] - (1 << top), v[L - 1])
        approx = sum(v[i].astype(np.float64) * 2.0 ** (LIMB_BITS * i) for i in range(L))
        w = np.rint(approx / prm.p).astype(np.int64)
        for i in range(L):
            v[i] -= w * self._p_limbs[i]
        for i in range(L - 1):  # signed carries, no reduction: v is now small
            carry = v[i] >> LIMB_BITS
            v[i] -= carry << LIMB_BITS
            v[i + 1] += carry
        r = v[0].copy()
        for i in range(1, L):
            r += v[i] * (1 << (LIMB_BITS * i))
        r %= prm.p
        r = np.where(r > (prm.p - 1) // 2, r - prm.p, r)
        return r.reshape(-1)[: ciphertext.size]


def _check_shape(c: LWECiphertext, params: LWEParams) -> None:
    limbs = params.num_limbs
    blocks = c.c1.shape[1] if c.c1.ndim == 3 else -1
    if (
        c.c1.shape != (limbs, blocks, params.n)
        or c.c2.shape != (limbs, blocks, params.block)
        or not 0 <= c.size <= blocks * params.block
    ):
        raise ValueError(
            f"ciphertext shapes {c.c1.shape}, {c.c2.shape} do not fit LWE parameters "
            f"n = {params.n}, block = {params.block}."
        )


def add(
    a: LWECiphertext,
    b: LWECiphertext,
    params: LWEParams,
    *,
    max_summands: int | None = None,
) -> LWECiphertext:
    """Coordinate-wise sum of two ciphertexts: what the server computes.

    Limbs are added without propagating carries (an int64 limb has room
    for 2^36 additions); :func:`to_bytes` and decryption normalise.

    Raises:
        ValueError: the ciphertexts differ in shape, or the sum would hold
            more than ``max_summands`` encryptions.
    """
    _check_shape(a, params)
    _check_shape(b, params)
    if a.c1.shape != b.c1.shape or a.size != b.size:
        raise ValueError(
            f"cannot add ciphertexts of {a.size} and {b.size} values "
            f"({a.c1.shape[1]} and {b.c1.shape[1]} blocks)."
        )
    count = summed_count(
        a,
        b,
        max_summands,
        f", more than the {max_summands} the parameters guarantee to decrypt.",
    )
    if count >= 2**35:
        raise ValueError("too many additions without normalisation.")
    return LWECiphertext(a.c1 + b.c1, a.c2 + b.c2, a.size, count)


def _pack(limbs: np.ndarray, params: LWEParams) -> bytes:
    """Canonical limbs ``(L, ...)`` -> ``bytes_per_element`` bytes per element."""
    flat = limbs.reshape(limbs.shape[0], -1).astype(np.uint64)
    words = np.zeros((flat.shape[1], 2), dtype="<u8")
    for i in range(flat.shape[0]):
        shift = LIMB_BITS * i
        if shift < 64:
            words[:, 0] |= flat[i] << np.uint64(shift)
            if shift + LIMB_BITS > 64:
                words[:, 1] |= flat[i] >> np.uint64(64 - shift)
        else:
            words[:, 1] |= flat[i] << np.uint64(shift - 64)
    width = params.bytes_per_element
    return words.view(np.uint8).reshape(-1, 16)[:, :width].tobytes()


def _unpack(payload: bytes, count: int, params: LWEParams) -> np.ndarray:
    width = params.bytes_per_element
    raw = np.frombuffer(payload, dtype=np.uint8).reshape(count, width)
    padded = np.zeros((count, 16), dtype=np.uint8)
    padded[:, :width] = raw
    words = padded.view("<u8")
    lo, hi = words[:, 0], words[:, 1]
    mask = np.uint64((1 << LIMB_BITS) - 1)
    limbs = np.empty((params.num_limbs, count), dtype=np.int64)
    for i in range(params.num_limbs):
        shift = LIMB_BITS * i
        if shift < 64:
            value = lo >> np.uint64(shift)
            if shift + LIMB_BITS > 64:
                value = value | (hi << np.uint64(64 - shift))
        else:
            value = hi >> np.uint64(shift - 64)
        limbs[i] = (value & mask).astype(np.int64)
    return _normalise(limbs, params.q_bits)


def to_bytes(c: LWECiphertext, params: LWEParams) -> bytes:
    """Serialise: a 40-byte header, then every element of ``c1`` and ``c2``."""
    _check_shape(c, params)
    blocks = c.c1.shape[1]
    header = _HEADER.pack(_MAGIC, c.size, blocks, c.count, params.block, params.n)
    c1 = _normalise(c.c1.copy(), params.q_bits)
    c2 = _normalise(c.c2.copy(), params.q_bits)
    return header + _pack(c1, params) + _pack(c2, params)


def from_bytes(payload: bytes, params: LWEParams) -> LWECiphertext:
    """Inverse of :func:`to_bytes` (a ValueError for a malformed payload)."""
    if len(payload) < _HEADER.size:
        raise ValueError("LWE ciphertext: payload shorter than its header.")
    magic, size, blocks, count, block, n = _HEADER.unpack_from(payload)
    if magic != _MAGIC or block != params.block or n != params.n:
        raise ValueError(
            f"LWE ciphertext: header {magic!r} n={n} block={block} does not match "
            f"these parameters (n={params.n}, block={params.block})."
        )
    width = params.bytes_per_element
    expected = _HEADER.size + blocks * (n + block) * width
    if len(payload) != expected:
        raise ValueError(f"LWE ciphertext: {len(payload)} bytes, expected {expected}.")
    body = payload[_HEADER.size :]
    split = blocks * n * width
    c1 = _unpack(body[:split], blocks * n, params).reshape(-1, blocks, n)
    c2 = _unpack(body[split:], blocks * block, params).reshape(-1, blocks, block)
    c = LWECiphertext(c1, c2, int(size), int(count))
    _check_shape(c, params)
    return c


def ciphertext_bytes(size: int, params: LWEParams) -> int:
    """Bytes of the serialised encryption of ``size`` values."""
    blocks = max(1, math.ceil(size / params.block))
    return _HEADER.size + blocks * (params.n + params.block) * params.bytes_per_element


def body_as_plaintext(c: LWECiphertext, params: LWEParams) -> np.ndarray:
    """What a reader *without* the secret key gets by decoding ``c2`` as if it
    were the message: ``c2 mod q``, reduced mod p and centred (int64).

    Only for showing what the server holds: without ``c1 S`` this is the
    message plus ``e1 P``, which is pseudorandom in Z_p.
    """
    _check_shape(c, params)
    limbs = _normalise(c.c2.copy(), params.q_bits).reshape(params.num_limbs, -1)
    value = np.zeros(limbs.shape[1], dtype=object)
    for i in range(params.num_limbs):
        value += limbs[i].astype(object) * (1 << (LIMB_BITS * i))
    residue = value % params.p
    centred = np.where(residue > (params.p - 1) // 2, residue - params.p, residue)
    return centred.astype(np.int64)[: c.size]
