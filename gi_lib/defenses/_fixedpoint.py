"""Fixed-point encoding of real-valued updates for encrypted aggregation.

Masking and secret sharing work on integers modulo something: the ring
Z_{2^b} (sums wrap around through numpy's unsigned arithmetic) or a prime
field F_p. A real update is clipped to [-clip, clip], scaled by 2^f and
rounded to the nearest integer; negative values are stored as their
residue (2^b - v, or p - v). A sum of encoded values decodes exactly when
the true integer sum stays inside the signed range: |sum| < 2^(b-1) for
the ring, |sum| <= (p - 1)/2 for the field. :meth:`FixedPoint.check` makes
sure of that at set-up, for the number of clients that will be summed, and
says what to change when it would not hold.

:func:`pack_bits` and :func:`unpack_bits` serialise ring elements with
exactly b bits each, so a message's byte count is the protocol's, not
numpy's word size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gi_lib.defenses._crypto import ring_dtype, ring_mask


class FixedPointOverflow(ValueError):
    """A fixed-point sum could overflow its ring or field (set-up error)."""


@dataclass(frozen=True)
class FixedPoint:
    """Clip, scale and round real values into Z_{2^bits} or F_prime.

    Exactly one of ``bits`` and ``prime`` is given.

    Attributes:
        frac_bits: f, the number of fractional bits (the step is 2^-f).
        clip: c > 0; values are clipped to [-c, c] before scaling.
        bits: b, for the ring Z_{2^b} (1 <= b <= 64).
        prime: p, for the field F_p (p < 2^62).
    """

    frac_bits: int
    clip: float
    bits: int | None = None
    prime: int | None = None

    def __post_init__(self) -> None:
        if (self.bits is None) == (self.prime is None):
            raise ValueError(
                "give exactly one of bits (for Z_2^b) and prime (for F_p)."
            )
        if self.bits is not None:
            ring_dtype(self.bits)  # validates 1 <= b <= 64
        if self.prime is not None and not 3 <= self.prime < 2**62:
            raise ValueError(
                f"prime must be an odd prime below 2^62, got {self.prime}."
            )
        if int(self.frac_bits) != self.frac_bits or not 0 <= self.frac_bits <= 62:
            raise ValueError(
                f"frac_bits must be an integer in [0, 62], got {self.frac_bits}."
            )
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise ValueError(f"clip must be a positive number, got {self.clip}.")

    @property
    def scale(self) -> float:
        return float(2**self.frac_bits)

    @property
    def max_abs_encoded(self) -> int:
        """The largest |encoded value| of one client: round(clip * 2^f)."""
        return int(np.rint(self.clip * self.scale))

    @property
    def max_abs_sum(self) -> int:
        """The largest |integer| the modulus holds unambiguously (signed)."""
        if self.bits is not None:
            return 2 ** (self.bits - 1) - 1
        return (self.prime - 1) // 2

    @property
    def modulus(self) -> int:
        return 2**self.bits if self.bits is not None else self.prime

    @property
    def where(self) -> str:
        return (
            f"Z_2^{self.bits}" if self.bits is not None else f"F_p (p = {self.prime})"
        )

    def max_clients(self) -> int:
        """The most clients whose encoded sum cannot overflow."""
        return self.max_abs_sum // max(self.max_abs_encoded, 1)

    def check(self, num_clients: int) -> None:
        """Raise unless the sum of ``num_clients`` encoded updates always decodes.

        Raises:
            ValueError: naming the number of clients, the clip and the
                precision that would overflow, and the largest number of
                clients, clip or fractional bits that would not (or the ring
                size that would be needed).
        """
        if int(num_clients) != num_clients or num_clients < 1:
            raise ValueError(
                f"num_clients must be a positive integer, got {num_clients}."
            )
        worst = num_clients * self.max_abs_encoded
        if worst <= self.max_abs_sum:
            return
        max_clip = self.max_abs_sum / num_clients / self.scale
        max_f = (
            math.floor(math.log2(self.max_abs_sum / num_clients / self.clip))
            if (self.max_abs_sum / num_clients / self.clip >= 1)
            else None
        )
        hint = [
            f"use at most {self.max_clients()} clients",
            f"a clip of at most {max_clip:.4g}",
        ]
        if max_f is not None:
            hint.append(f"at most {max_f} fractional bits")
        if self.bits is not None:
            needed = math.ceil(math.log2(worst + 1)) + 1
            hint.append(f"a ring of at least {needed} bits")
        else:
            hint.append(f"a prime above {2 * worst + 1}")
        raise FixedPointOverflow(
            f"fixed-point sum overflows {self.where}: {num_clients} clients, each "
            f"clipped to +-{self.clip:g} with {self.frac_bits} fractional bits "
            f"(|value| <= {self.max_abs_encoded}), can sum to +-{worst}, beyond "
            f"the +-{self.max_abs_sum} the modulus holds. Change one of: "
            + "; ".join(hint)
            + "."
        )

    def quantise(self, values: np.ndarray) -> np.ndarray:
        """Clipped, scaled, rounded signed integers (int64), before reduction."""
        x = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise ValueError("cannot encode NaN or infinite values.")
        return np.rint(np.clip(x, -self.clip, self.clip) * self.scale).astype(np.int64)

    def reduce(self, integers: np.ndarray) -> np.ndarray:
        """Signed integers into the ring (uint32/uint64) or field (int64)."""
        q = np.asarray(integers, dtype=np.int64)
        if self.bits is not None:
            dtype = ring_dtype(self.bits)
            return (q.astype(np.uint64) & np.uint64(ring_mask(self.bits))).astype(dtype)
        return np.mod(q, np.int64(self.prime))

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Real values -> ring elements (uint32/uint64) or field elements (int64)."""
        return self.reduce(self.quantise(values))

    def to_signed(self, encoded: np.ndarray) -> np.ndarray:
        """Ring or field elements -> the signed integers they stand for (int64)."""
        if self.bits is not None:
            v = np.asarray(encoded).astype(np.uint64) & np.uint64(ring_mask(self.bits))
            if self.bits == 64:
                return v.view(np.int64)
            signed = v.astype(np.int64)
            signed[signed >= 2 ** (self.bits - 1)] -= np.int64(2**self.bits)
            return signed
        v = np.mod(np.asarray(encoded, dtype=np.int64), np.int64(self.prime))
        return np.where(v > (self.prime - 1) // 2, v - np.int64(self.prime), v)

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        """A (summed) encoding back to real values (float64)."""
        return self.to_signed(encoded).astype(np.float64) / self.scale


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Serialise ring elements with exactly ``bits`` bits each (little-endian).

    The result has ceil(len(values) * bits / 8) bytes.
    """
    v = np.ascontiguousarray(values, dtype=np.uint64)
    if bits in (8, 16, 32, 64):
        return v.astype(f"<u{bits // 8}").tobytes()
    as_bytes = v.astype("<u8").view(np.uint8).reshape(-1, 8)
    bit_matrix = np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :bits]
    return np.packbits(bit_matrix.reshape(-1), bitorder="little").tobytes()


def unpack_bits(payload: bytes, count: int, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: ``count`` values as :func:`ring_dtype`."""
    dtype = ring_dtype(bits)
    expected = math.ceil(count * bits / 8)
    if len(payload) != expected:
        raise ValueError(
            f"expected {expected} bytes for {count} values of {bits} bits, got "
            f"{len(payload)}."
        )
    if bits in (8, 16, 32, 64):
        return np.frombuffer(payload, dtype=f"<u{bits // 8}").astype(dtype)
    flat = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), bitorder="little")
    bit_matrix = np.zeros((count, 64), dtype=np.uint8)
    bit_matrix[:, :bits] = flat[: count * bits].reshape(count, bits)
    return (
        np.packbits(bit_matrix, axis=1, bitorder="little")
        .view("<u8")
        .reshape(-1)
        .astype(dtype)
    )
