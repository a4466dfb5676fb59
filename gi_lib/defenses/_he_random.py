"""Randomness for the homomorphic-encryption backends: a ChaCha20 DRBG.

Key material and encryption noise of the LWE scheme (:mod:`gi_lib.defenses._lwe`)
come from a ChaCha20 keystream (``cryptography``), never from ``numpy.random``.
A :class:`KeyStream` is keyed once (from a seed, for reproducible runs, or
from ``os.urandom``); every draw uses a fresh 96-bit nonce (a counter), so
no two draws share keystream.
"""

from __future__ import annotations

import hashlib
import math
import os

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

# Box-Muller on 53-bit uniforms never leaves |z| <= sqrt(2 * 53 * ln 2).
MAX_NORMAL = math.sqrt(2 * 53 * math.log(2))


def derive_key(seed: int | None, label: str) -> bytes:
    """32 bytes of key for ``label``: from ``seed`` (reproducible) or, without
    one, from the operating system's CSPRNG."""
    if seed is None:
        return os.urandom(32)
    return hashlib.sha256(f"gi_lib.he/{label}/{int(seed)}".encode()).digest()


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
        # cryptography's 16-byte ChaCha20 nonce is a 32-bit block counter
        # (starting at 0) then a 96-bit nonce: the draw index goes there.
        nonce = b"\0\0\0\0" + self._draws.to_bytes(12, "little")
        self._draws += 1
        encryptor = Cipher(algorithms.ChaCha20(self._key, nonce), None).encryptor()
        return encryptor.update(bytes(count))

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
