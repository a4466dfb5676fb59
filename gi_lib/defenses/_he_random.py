"""Randomness for the homomorphic-encryption backends: a ChaCha20 DRBG.

Key material and encryption noise of the LWE scheme (:mod:`gi_lib.defenses._lwe`)
and Paillier's ``r`` come from the shared ChaCha20 keystream
(:func:`gi_lib.defenses._crypto.keystream`), never from ``numpy.random``. A
:class:`KeyStream` is keyed once (:func:`derive_key`: from a seed through
:class:`gi_lib.defenses._crypto.KeySource`, for reproducible runs, or from
``os.urandom``); every draw uses a fresh 96-bit nonce (a counter), so no two
draws share keystream.
"""

from __future__ import annotations

import math

import numpy as np

from gi_lib.defenses._crypto import KeySource, keystream

# Box-Muller on 53-bit uniforms never leaves |z| <= sqrt(2 * 53 * ln 2).
MAX_NORMAL = math.sqrt(2 * 53 * math.log(2))


def derive_key(seed: int | None, label: str) -> bytes:
    """32 bytes of key for ``label``: from ``seed`` (reproducible) or, without
    one, from the operating system's CSPRNG."""
    return KeySource(seed).derive("homomorphic encryption", label, length=32)


class KeyStream:
    """A ChaCha20 keystream as a deterministic random bit generator.

    Args:
        key: 32 bytes.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError(f"a ChaCha20 key has 32 bytes, got {len(key)}.")
        self._key = key
        self._draws = 0

    def bytes(self, count: int) -> bytes:
        """``count`` fresh pseudorandom bytes (a new nonce for every call)."""
        # The draw index is the 96-bit nonce: every draw is its own stream.
        label = self._draws.to_bytes(12, "little")
        self._draws += 1
        return keystream(self._key, count, label=label)

    def uniform_bits(self, shape: tuple[int, ...], bits: int) -> np.ndarray:
        """Independent uniform integers in [0, 2^bits) (int64), ``bits <= 32``."""
        if not 1 <= bits <= 32:
            raise ValueError(f"bits must be in [1, 32], got {bits}.")
        count = math.prod(shape)
        words = np.frombuffer(self.bytes(4 * count), dtype="<u4").astype(np.int64)
        return (words & ((1 << bits) - 1)).reshape(shape)

    def rounded_gaussian(self, shape: tuple[int, ...], sigma: float) -> np.ndarray:
        """Rounded normal samples with standard deviation ``sigma`` (int64).

        Box-Muller on 53-bit uniforms, so ``|value| <= ceil(MAX_NORMAL *
        sigma)`` always (see :func:`gaussian_bound`).
        """
        count = math.prod(shape)
        half = (count + 1) // 2
        words = np.frombuffer(self.bytes(16 * half), dtype="<u8").reshape(2, half)
        u1 = ((words[0] >> np.uint64(11)).astype(np.float64) + 1.0) * 2.0**-53
        u2 = (words[1] >> np.uint64(11)).astype(np.float64) * 2.0**-53
        radius = np.sqrt(-2.0 * np.log(u1))
        angle = 2.0 * np.pi * u2
        z = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:count]
        return np.rint(z * sigma).astype(np.int64).reshape(shape)


def gaussian_bound(sigma: float) -> int:
    """The largest ``|value|`` :meth:`KeyStream.rounded_gaussian` can return."""
    return math.ceil(MAX_NORMAL * sigma + 0.5)
