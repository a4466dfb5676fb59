"""Packed Paillier: several fixed-point values per plaintext, with ``phe``.

Paillier (Eurocrypt 1999) is additively homomorphic: with public modulus
``n = p q`` and ``g = n + 1``, ``E(m) = (1 + n m) r^n mod n^2`` and
``E(m1) E(m2) = E(m1 + m2 mod n)``. One plaintext is a ~2048-bit integer,
so Aono/Phong et al. pack many fixed-point values into it. Here:

* a signed value ``v`` with ``|v| < 2^(b-1)`` is stored as ``v + 2^(b-1)``
  in [0, 2^b): a non-negative *slot* (offset binary);
* a slot is ``w = b + ceil(log2 K)`` bits wide, where K is the most
  ciphertexts that will ever be added: a sum of K slots stays below
  ``K 2^b <= 2^w``, so adding never carries from one slot into the next;
* ``floor((bits(n) - 1) / w)`` slots share one plaintext, below ``n``;
* decryption splits the plaintext into slots and subtracts ``count *
  2^(b-1)``, where ``count`` (public, the number of fresh ciphertexts the
  server added) travels with the ciphertext.

Keys come from ``phe`` (``generate_paillier_keypair``), decryption is
``phe``'s ``raw_decrypt`` (CRT). Encryption is written here on the raw
formula, also with CRT: in the shared-key setting every participant holds
the factors p, q, which makes ``r^n mod n^2`` about twice as fast; the
randomness ``r`` comes from a ChaCha20 stream. Python's own ``pow`` is the
big-integer arithmetic (``gmpy2`` is not installed).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import phe

from gi_lib.defenses._he_random import KeyStream, derive_key
from gi_lib.defenses._summands import check_integer, check_sizes, summed_count

MIN_KEY_BITS = 512
_MAGIC = b"PAI1"
_HEADER = struct.Struct("<4sQQQI")  # magic, size, ciphertexts, count, key bytes


@dataclass(frozen=True)
class PaillierParams:
    """Packing parameters.

    Attributes:
        key_bits: bits of the modulus n (2048 is the usual minimum today).
        value_bits: b: each value is a signed integer in [-2^(b-1), 2^(b-1)).
        max_summands: K, the most ciphertexts ever added into one.
    """

    key_bits: int = 2048
    value_bits: int = 36
    max_summands: int = 64

    @property
    def slot_bits(self) -> int:
        """Bits per slot: b + ceil(log2 K), so K slots never carry."""
        return self.value_bits + max(0, math.ceil(math.log2(self.max_summands)))

    @property
    def slots(self) -> int:
        """Values per plaintext."""
        return (self.key_bits - 1) // self.slot_bits

    @property
    def ciphertext_bytes(self) -> int:
        """Bytes of one ciphertext (an element of Z_{n^2})."""
        return 2 * math.ceil(self.key_bits / 8)

    def check(self) -> None:
        """Raise a ValueError, saying what to change, unless the packing fits."""
        check_integer(
            "Paillier", "key_bits", self.key_bits, MIN_KEY_BITS, " (2048 for real use)"
        )
        check_integer("Paillier", "value_bits", self.value_bits, 2)
        check_integer("Paillier", "max_summands", self.max_summands)
        if self.slots < 1:
            raise ValueError(
                f"Paillier: a slot of {self.slot_bits} bits ({self.value_bits} value "
                f"bits + {self.slot_bits - self.value_bits} for {self.max_summands} "
                f"summands) does not fit a {self.key_bits}-bit plaintext; use a "
                "larger key, fewer value bits or fewer summands."
            )


@dataclass
class PaillierCiphertext:
    """An encrypted flat vector: one Paillier ciphertext per ``slots`` values.

    Attributes:
        values: the ciphertexts (integers mod n^2).
        size: how many plaintext values they hold.
        count: how many fresh encryptions were added into them (public).
    """

    values: list[int]
    size: int
    count: int = 1


class PaillierPublic:
    """What the server holds: n and the packing (it can add, not decrypt).

    Args:
        params: the packing parameters.
        n: the public modulus.
    """

    def __init__(self, params: PaillierParams, n: int) -> None:
        self.params = params
        self.n = n
        self.nsquare = n * n

    def add(self, a: PaillierCiphertext, b: PaillierCiphertext) -> PaillierCiphertext:
        """``E(x) E(y) mod n^2 = E(x + y)``, slot by slot without carries.

        Raises:
            ValueError: the vectors differ in size, or the sum would hold
                more than ``max_summands`` encryptions (slots could carry).
        """
        check_sizes(a, b, parts=(len(a.values), len(b.values)))
        limit = self.params.max_summands
        count = summed_count(
            a,
            b,
            limit,
            f"; the slots have headroom for {limit} (raise max_summands, which "
            "widens the slots).",
        )
        n2 = self.nsquare
        return PaillierCiphertext(
            [x * y % n2 for x, y in zip(a.values, b.values, strict=True)],
            a.size,
            count,
        )

    def to_bytes(self, c: PaillierCiphertext) -> bytes:
        """A 32-byte header, then each ciphertext in ``ciphertext_bytes`` bytes."""
        width = self.params.ciphertext_bytes
        header = _HEADER.pack(_MAGIC, c.size, len(c.values), c.count, width)
        return header + b"".join(v.to_bytes(width, "big") for v in c.values)

    def from_bytes(self, payload: bytes) -> PaillierCiphertext:
        """Inverse of :meth:`to_bytes` (a ValueError for a malformed payload)."""
        if len(payload) < _HEADER.size:
            raise ValueError("Paillier ciphertext: payload shorter than its header.")
        magic, size, count_ct, count, width = _HEADER.unpack_from(payload)
        if magic != _MAGIC or width != self.params.ciphertext_bytes:
            raise ValueError("Paillier ciphertext: header does not match this key.")
        if count_ct != math.ceil(size / self.params.slots) or len(payload) != (
            _HEADER.size + count_ct * width
        ):
            raise ValueError("Paillier ciphertext: wrong length for its header.")
        body = payload[_HEADER.size :]
        values = [
            int.from_bytes(body[i * width : (i + 1) * width], "big")
            for i in range(count_ct)
        ]
        if any(not 0 < v < self.nsquare for v in values):
            raise ValueError("Paillier ciphertext: a value is not in Z_{n^2}.")
        return PaillierCiphertext(values, int(size), int(count))

    def ciphertext_bytes(self, size: int) -> int:
        """Bytes of the serialised encryption of ``size`` values."""
        return _HEADER.size + math.ceil(size / self.params.slots) * (
            self.params.ciphertext_bytes
        )


class PaillierScheme(PaillierPublic):
    """A participant's view: the key pair, shared by all participants.

    Args:
        params: the packing parameters (checked here).
        seed: seeds the encryption randomness r (a replication convenience);
            the key itself comes from ``phe``'s generator (the OS's CSPRNG).
    """

    name = "paillier"

    def __init__(
        self, params: PaillierParams | None = None, *, seed: int | None = None
    ):
        params = params or PaillierParams()
        params.check()
        public_key, private_key = phe.generate_paillier_keypair(
            n_length=params.key_bits
        )
        super().__init__(params, public_key.n)
        self._private = private_key
        self._p2 = private_key.p * private_key.p
        self._q2 = private_key.q * private_key.q
        self._q2_inverse = pow(self._q2, -1, self._p2)
        self._random = KeyStream(derive_key(seed, "paillier r"))

    def public(self) -> PaillierPublic:
        """The server's view: n and the packing, no factors."""
        return PaillierPublic(self.params, self.n)

    def _pack(self, values: list[int]) -> list[int]:
        prm = self.params
        offset, width, slots = 1 << (prm.value_bits - 1), prm.slot_bits, prm.slots
        out = []
        for start in range(0, max(len(values), 1), slots):
            packed = 0
            for v in reversed(values[start : start + slots]):
                packed = (packed << width) | (v + offset)
            out.append(packed)
        return out

    def _obfuscator(self) -> int:
        """``r^n mod n^2`` for a fresh random r, by CRT over p^2 and q^2."""
        n = self.n
        raw = int.from_bytes(
            self._random.bytes(math.ceil(n.bit_length() / 8) + 16), "big"
        )
        r = raw % (n - 1) + 1
        rp, rq = pow(r, n, self._p2), pow(r, n, self._q2)
        return rq + self._q2 * ((rp - rq) * self._q2_inverse % self._p2)

    def encrypt(self, plaintext: list[int]) -> PaillierCiphertext:
        """Encrypt signed integers with ``|v| < 2^(value_bits - 1)``."""
        half = 1 << (self.params.value_bits - 1)
        values = [int(v) for v in plaintext]
        if values and (max(values) >= half or min(values) < -half):
            raise ValueError(
                f"Paillier plaintexts must lie in [-{half}, {half}) "
                f"({self.params.value_bits} value bits)."
            )
        n, n2 = self.n, self.nsquare
        cts = [(1 + n * m) * self._obfuscator() % n2 for m in self._pack(values)]
        return PaillierCiphertext(cts, len(values), 1)

    def decrypt(self, c: PaillierCiphertext) -> list[int]:
        """The signed sums of the slots (Python integers)."""
        prm = self.params
        if c.count > prm.max_summands:
            raise ValueError(
                f"this ciphertext sums {c.count} encryptions, beyond the slots' "
                f"headroom for {prm.max_summands}."
            )
        width, mask = prm.slot_bits, (1 << prm.slot_bits) - 1
        shift = c.count << (prm.value_bits - 1)
        out: list[int] = []
        for value in c.values:
            packed = self._private.raw_decrypt(value)
            for _ in range(prm.slots):
                out.append((packed & mask) - shift)
                packed >>= width
        return out[: c.size]
