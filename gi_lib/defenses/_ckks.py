"""CKKS through ``tenseal``: today's approximate additively homomorphic choice.

CKKS (Cheon, Kim, Kim, Song 2017) encrypts vectors of reals, scaled by
``2^scale_bits``, into ring-LWE ciphertexts of ``poly_degree / 2`` slots;
adding ciphertexts adds the vectors slot by slot. Decryption is
approximate: every fresh ciphertext carries encoding and encryption noise
of a few times ``poly_degree / 2^scale_bits`` in absolute terms (measured
here at about ``poly_degree / (6 2^scale_bits)``), and a sum of K
ciphertexts at most K times that. :meth:`CKKSParams.tolerance` is the bound
the tests hold a decrypted sum to: ``K * poly_degree / 2^scale_bits``.

Only additions are needed, so one data prime and SEAL's special prime
suffice (``coeff_bits = (60, 60)`` by default): the values' integer part
must fit the data prime above the scale, ``|sum| < 2^(coeff_bits[0] -
scale_bits - 1)``, which :meth:`CKKSParams.check` makes sure of for the
clip and the number of summands. The secret key stays with the
participants; the server gets a public copy of the context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tenseal as ts

from gi_lib.defenses._summands import check_integer
from gi_lib.defenses._tenseal import TensealCiphertext, TensealScheme, Wire

# SEAL's largest total coefficient-modulus bits for 128-bit security.
MAX_COEFF_BITS = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}
WIRE = Wire("CKKS", b"CKK1", ts.ckks_vector_from)


@dataclass(frozen=True)
class CKKSParams:
    """CKKS parameters.

    Attributes:
        poly_degree: the ring degree N (slots per ciphertext: N / 2).
        coeff_bits: bit sizes of the coefficient-modulus primes (the last is
            SEAL's special prime).
        scale_bits: log2 of the encoding scale.
        clip: values are clipped to [-clip, clip] before encryption.
        max_summands: K, the most ciphertexts ever added into one.
    """

    poly_degree: int = 8192
    coeff_bits: tuple[int, ...] = (60, 60)
    scale_bits: int = 40
    clip: float = 8.0
    max_summands: int = 64

    @property
    def slots(self) -> int:
        return self.poly_degree // 2

    def tolerance(self, count: int) -> float:
        """The largest absolute error the tests allow a decrypted sum of
        ``count`` fresh ciphertexts (see the module doc)."""
        return count * self.poly_degree / 2.0**self.scale_bits

    def check(self) -> None:
        """Raise a ValueError, saying what to change, unless the parameters
        are valid, 128-bit secure by SEAL's table and leave room for the sum."""
        if self.poly_degree not in MAX_COEFF_BITS or self.poly_degree < 4096:
            raise ValueError(
                f"CKKS: poly_degree must be one of 4096, 8192, 16384, 32768, got "
                f"{self.poly_degree}."
            )
        if len(self.coeff_bits) < 2 or any(not 20 <= b <= 60 for b in self.coeff_bits):
            raise ValueError(
                "CKKS: coeff_bits needs at least two primes (data and special) of "
                f"20 to 60 bits each, got {self.coeff_bits}."
            )
        total, limit = sum(self.coeff_bits), MAX_COEFF_BITS[self.poly_degree]
        if total > limit:
            raise ValueError(
                f"CKKS: {total} coefficient-modulus bits exceed the {limit} that "
                f"poly_degree {self.poly_degree} allows at 128-bit security; use "
                "fewer or smaller primes, or a larger poly_degree."
            )
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise ValueError(f"CKKS: clip must be positive, got {self.clip}.")
        check_integer("CKKS", "max_summands", self.max_summands)
        room = self.coeff_bits[0] - self.scale_bits - 1
        needed = math.log2(self.clip * self.max_summands)
        if not 10 <= self.scale_bits or needed >= room:
            raise ValueError(
                f"CKKS: a sum of {self.max_summands} values clipped to +-{self.clip:g} "
                f"needs 2^{needed:.1f}, but a {self.coeff_bits[0]}-bit data prime "
                f"at scale 2^{self.scale_bits} holds below 2^{room}; lower "
                "scale_bits, the clip or the summands."
            )


class CKKSScheme(TensealScheme):
    """A participant's view: the context with its secret key (decrypts to
    the approximate slot-wise sum, float64).

    Args:
        params: the CKKS parameters (checked here).
    """

    name = "ckks"
    dtype = np.float64
    wire_format = WIRE
    params_type = CKKSParams

    @staticmethod
    def make_context(params: CKKSParams) -> ts.Context:
        context = ts.context(
            ts.SCHEME_TYPE.CKKS,
            poly_modulus_degree=params.poly_degree,
            coeff_mod_bit_sizes=list(params.coeff_bits),
            n_threads=1,
        )
        context.global_scale = 2.0**params.scale_bits
        return context

    def encrypt(self, values: np.ndarray) -> TensealCiphertext:
        """Encrypt a flat vector of reals (clipped to +-clip)."""
        x = np.clip(np.asarray(values, dtype=np.float64).reshape(-1), *self._clip)
        return self._encrypt_chunks(
            x, lambda chunk: ts.ckks_vector(self.context, chunk)
        )

    @property
    def _clip(self) -> tuple[float, float]:
        return -self.params.clip, self.params.clip
