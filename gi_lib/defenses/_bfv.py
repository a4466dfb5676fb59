"""BFV through ``tenseal``: today's exact additively homomorphic choice.

BFV (Brakerski 2012; Fan, Vercauteren 2012) encrypts vectors of integers
modulo a plaintext modulus ``t`` into ring-LWE ciphertexts of
``poly_degree`` slots (batching needs a prime ``t = 1 mod 2 poly_degree``);
adding ciphertexts adds the vectors slot by slot modulo ``t``, and
decryption is exact. Like the paper's LWE scheme it encrypts the fixed-point
integers of an update, so a decrypted sum equals the sum of the clients'
encodings bit for bit, provided that sum stays within ``+-(t - 1) / 2``
(:class:`gi_lib.defenses._fixedpoint.FixedPoint` checks it for the clip,
precision and number of summands). tenseal decodes slots as signed
integers.

The plaintext modulus is the smallest prime ``t = 1 mod 2 poly_degree``
with ``plain_bits`` bits (found with sympy's primality test); the
coefficient modulus is SEAL's default for the ring degree at 128-bit
security, which leaves noise budget for many thousands of additions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import tenseal as ts
from sympy import isprime

from gi_lib.defenses._summands import check_integer
from gi_lib.defenses._tenseal import TensealCiphertext, TensealScheme, Wire

RING_DEGREES = (4096, 8192, 16384, 32768)
WIRE = Wire("BFV", b"BFV1", ts.bfv_vector_from)


@functools.cache
def batching_prime(poly_degree: int, bits: int) -> int:
    """The smallest prime ``t = 1 mod 2 poly_degree`` of ``bits`` bits."""
    step = 2 * poly_degree
    k = -(-(2 ** (bits - 1)) // step)  # the first multiple at or above 2^(bits-1)
    while (t := k * step + 1).bit_length() == bits:
        if isprime(t):
            return t
        k += 1
    raise ValueError(
        f"BFV: no {bits}-bit prime is 1 mod {step}; choose more plain_bits."
    )


@dataclass(frozen=True)
class BFVParams:
    """BFV parameters.

    Attributes:
        poly_degree: the ring degree N (slots per ciphertext).
        plain_bits: bits of the plaintext modulus t (a batching prime).
        max_summands: K, the most ciphertexts ever added into one.
    """

    poly_degree: int = 8192
    plain_bits: int = 41
    max_summands: int = 64

    @property
    def slots(self) -> int:
        return self.poly_degree

    @property
    def plain_modulus(self) -> int:
        return batching_prime(self.poly_degree, self.plain_bits)

    def check(self) -> None:
        """Raise a ValueError, saying what to change, unless valid."""
        if self.poly_degree not in RING_DEGREES:
            raise ValueError(
                f"BFV: poly_degree must be one of "
                f"{', '.join(map(str, RING_DEGREES))}, got {self.poly_degree}."
            )
        limit = 60 if self.poly_degree >= 8192 else 40
        if (
            int(self.plain_bits) != self.plain_bits
            or not 18 <= self.plain_bits <= limit
        ):
            raise ValueError(
                f"BFV: plain_bits must be an integer from 18 to {limit} at "
                f"poly_degree {self.poly_degree}, got {self.plain_bits}."
            )
        check_integer("BFV", "max_summands", self.max_summands)


class BFVScheme(TensealScheme):
    """A participant's view: the context with its secret key (decrypts to
    the exact slot-wise sum, int64, signed).

    Args:
        params: the BFV parameters (checked here).
    """

    name = "bfv"
    dtype = np.int64
    wire_format = WIRE
    params_type = BFVParams

    @staticmethod
    def make_context(params: BFVParams) -> ts.Context:
        return ts.context(
            ts.SCHEME_TYPE.BFV,
            poly_modulus_degree=params.poly_degree,
            plain_modulus=params.plain_modulus,
            n_threads=1,
        )

    def encrypt(self, values: np.ndarray) -> TensealCiphertext:
        """Encrypt a flat vector of signed integers, each within
        ``+-(t - 1) / 2`` (a ValueError otherwise)."""
        x = np.asarray(values).reshape(-1)
        if x.size and not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"BFV encrypts integers, got {x.dtype}.")
        half = (self.params.plain_modulus - 1) // 2
        if x.size and int(np.abs(x).max()) > half:
            raise ValueError(
                f"BFV: a value of {int(np.abs(x).max())} exceeds the +-{half} the "
                "plaintext modulus holds."
            )
        return self._encrypt_chunks(
            x, lambda chunk: ts.bfv_vector(self.context, chunk.tolist())
        )
