"""Cryptographic primitives for the encrypted-aggregation protocols.

Everything here is built on the ``cryptography`` package; nothing that a
protocol keeps secret (keys, seeds, masks, Shamir coefficients) comes from
``numpy.random``.

* :class:`KeySource` hands out secret bytes: ``os.urandom`` by default, or,
  for reproducible runs (the book's notebooks), HKDF-SHA256 of a master seed
  with a label naming the party, round and purpose. The seeded mode is a
  replication convenience, not a deployment mode: whoever knows the master
  seed knows every key.
* Key agreement: X25519 key pairs (:class:`KeyPair`) and
  :func:`agree`, which runs X25519 and HKDF-SHA256 with the session id as
  salt and the purpose and both parties' names as info.
* :class:`Channel`: an authenticated share channel (AES-256-GCM) whose
  associated data is (session, round, sender, receiver), so that a tampered
  message, one replayed from another round or session, or one delivered to
  the wrong party raises :class:`ChannelError`; a receiver also refuses the
  same ciphertext twice.
* Mask PRGs: :func:`prg_ring` expands a 32-byte seed with the ChaCha20
  keystream into values uniform over Z_{2^b} (any b <= 64), and
  :func:`prg_field` into values uniform over F_p by rejection sampling.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEED_BYTES = 32
"""Length of every key and PRG seed."""
PUBLIC_KEY_BYTES = 32
"""Length of a serialised X25519 public key."""
NONCE_BYTES = 12
TAG_BYTES = 16
CHANNEL_OVERHEAD = NONCE_BYTES + TAG_BYTES
"""Bytes an AES-GCM channel adds to each plaintext (nonce and tag)."""


class ChannelError(ValueError):
    """A channel message failed authentication (tampered, replayed or
    misaddressed); its content must be discarded."""


def _label(parts: Iterable[object]) -> bytes:
    """An unambiguous byte encoding of a tuple of labels (length-prefixed)."""
    out = bytearray()
    for part in parts:
        raw = part if isinstance(part, bytes) else str(part).encode()
        out += struct.pack("<I", len(raw)) + raw
    return bytes(out)


def hkdf(key: bytes, *, salt: bytes, info: bytes, length: int = SEED_BYTES) -> bytes:
    """HKDF-SHA256 of ``key``."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(
        key
    )


class KeySource:
    """Where secret bytes come from.

    Args:
        seed: ``None`` (the default) draws from ``os.urandom``. An int or
            bytes makes every draw HKDF-SHA256(seed, info=labels): the same
            seed and labels give the same bytes, so a run can be repeated
            exactly. Labels must then be unique per use (party, round,
            purpose); :meth:`derive` does not check that.
    """

    def __init__(self, seed: int | bytes | None = None) -> None:
        if seed is None:
            self._master: bytes | None = None
        elif isinstance(seed, bytes):
            if not seed:
                raise ValueError("a KeySource seed must not be empty bytes.")
            self._master = hashlib.sha256(b"gi-book key source" + seed).digest()
        elif isinstance(seed, int) and not isinstance(seed, bool):
            self._master = hashlib.sha256(
                b"gi-book key source" + str(seed).encode()
            ).digest()
        else:
            raise TypeError(f"seed must be None, an int or bytes, got {seed!r}.")

    @property
    def deterministic(self) -> bool:
        """Whether draws are a function of the seed and labels."""
        return self._master is not None

    def derive(self, *labels: object, length: int = SEED_BYTES) -> bytes:
        """``length`` secret bytes for the use the labels name."""
        if length <= 0:
            raise ValueError(f"length must be positive, got {length}.")
        if self._master is None:
            return os.urandom(length)
        return hkdf(self._master, salt=b"gi-book", info=_label(labels), length=length)

    def child(self, *labels: object) -> KeySource:
        """A source for one party: seeded from this one's draw for ``labels``
        (or ``os.urandom`` again when this one is)."""
        if self._master is None:
            return KeySource()
        return KeySource(self.derive("child", *labels))

    def __repr__(self) -> str:
        return f"KeySource({'seeded' if self.deterministic else 'os.urandom'})"


@dataclass(frozen=True)
class KeyPair:
    """An X25519 key pair.

    Attributes:
        private: the private key (kept by its owner).
        public: the 32-byte public key, as sent on the wire.
    """

    private: X25519PrivateKey
    public: bytes

    @classmethod
    def generate(cls, source: KeySource, *labels: object) -> KeyPair:
        """A fresh key pair from ``source`` (labels say whose and what for)."""
        private = X25519PrivateKey.from_private_bytes(source.derive("x25519", *labels))
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return cls(private, public)

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> KeyPair:
        """The key pair whose 32-byte private key is ``raw``."""
        private = X25519PrivateKey.from_private_bytes(raw)
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return cls(private, public)

    def private_bytes(self) -> bytes:
        """The raw 32-byte private key (what SecAgg secret-shares)."""
        return self.private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )


def agree(
    private: X25519PrivateKey | KeyPair,
    peer_public: bytes,
    *,
    session: bytes,
    purpose: str,
    parties: tuple[str, str],
) -> bytes:
    """A 32-byte key shared by two parties: HKDF-SHA256 of their X25519 secret.

    Args:
        private: one party's private key (or key pair).
        peer_public: the other party's 32-byte public key.
        session: the session id (HKDF salt), so keys differ across runs.
        purpose: what the key is for (``"channel"``, ``"mask"``).
        parties: both parties' names; sorted before use, so both sides derive
            the same key.

    Raises:
        ValueError: the peer's public key is malformed or of low order.
    """
    key = private.private if isinstance(private, KeyPair) else private
    if len(peer_public) != PUBLIC_KEY_BYTES:
        raise ValueError(
            f"an X25519 public key has {PUBLIC_KEY_BYTES} bytes, got "
            f"{len(peer_public)}."
        )
    shared = key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    info = _label(("gi-book agree", purpose, *sorted(parties)))
    return hkdf(shared, salt=session, info=info)


class Channel:
    """One party's end of its authenticated channels (AES-256-GCM).

    Every ciphertext binds (session, round, sender, receiver) as associated
    data: a flipped bit, a message replayed into another round or session,
    or one handed to another receiver fails to open. The nonce is derived
    from the same fields and a per-peer counter (unique per key), and the
    receiving end remembers what it opened, so the same ciphertext twice is
    refused as a replay.

    Args:
        owner: this party's name.
        session: the session id.
    """

    def __init__(self, owner: str, session: bytes) -> None:
        self.owner = owner
        self.session = session
        self._keys: dict[str, AESGCM] = {}
        self._sent: dict[str, int] = {}
        self._seen: set[bytes] = set()

    def add_peer(self, peer: str, key: bytes) -> None:
        """Use ``key`` (32 bytes, e.g. from :func:`agree`) with ``peer``."""
        if len(key) != SEED_BYTES:
            raise ValueError(f"a channel key has {SEED_BYTES} bytes, got {len(key)}.")
        self._keys[peer] = AESGCM(key)

    def has_peer(self, peer: str) -> bool:
        return peer in self._keys

    def _aad(self, round: int, sender: str, receiver: str) -> bytes:
        return _label(("gi-book channel", self.session, round, sender, receiver))

    def seal(self, receiver: str, round: int, plaintext: bytes) -> bytes:
        """Encrypt ``plaintext`` for ``receiver`` in ``round``: nonce + ct + tag."""
        if receiver not in self._keys:
            raise ValueError(f"{self.owner} has no channel key for {receiver}.")
        counter = self._sent.get(receiver, 0)
        self._sent[receiver] = counter + 1
        nonce = hashlib.sha256(
            _label(("nonce", round, self.owner, receiver, counter))
        ).digest()[:NONCE_BYTES]
        aad = self._aad(round, self.owner, receiver)
        return nonce + self._keys[receiver].encrypt(nonce, plaintext, aad)

    def open(self, sender: str, round: int, blob: bytes) -> bytes:
        """Decrypt what ``sender`` sealed for this party in ``round``.

        Raises:
            ChannelError: unknown sender, malformed, tampered, misaddressed,
                from another round or session, or already opened once.
        """
        if sender not in self._keys:
            raise ChannelError(f"{self.owner} has no channel with {sender}.")
        if len(blob) < CHANNEL_OVERHEAD:
            raise ChannelError(
                f"{self.owner}: a message from {sender} is {len(blob)} bytes, "
                f"shorter than a nonce and tag ({CHANNEL_OVERHEAD})."
            )
        digest = hashlib.sha256(_label((sender, round, blob))).digest()
        if digest in self._seen:
            raise ChannelError(
                f"{self.owner}: replayed message from {sender} in round {round}."
            )
        nonce, body = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        try:
            plaintext = self._keys[sender].decrypt(
                nonce, body, self._aad(round, sender, self.owner)
            )
        except InvalidTag:
            raise ChannelError(
                f"{self.owner}: a message claiming to be from {sender} in round "
                f"{round} failed authentication (tampered, misaddressed, or from "
                "another round or session)."
            ) from None
        self._seen.add(digest)
        return plaintext


def keystream(seed: bytes, num_bytes: int, *, label: bytes = b"") -> bytes:
    """``num_bytes`` of the ChaCha20 keystream keyed by ``seed``.

    Args:
        seed: 32 secret bytes.
        num_bytes: how many bytes.
        label: up to 12 bytes that select an independent stream (the nonce);
            the 4-byte block counter starts at 0.
    """
    if len(seed) != SEED_BYTES:
        raise ValueError(f"a PRG seed has {SEED_BYTES} bytes, got {len(seed)}.")
    if len(label) > 12:
        raise ValueError("a keystream label has at most 12 bytes.")
    nonce = b"\0" * 4 + label.ljust(12, b"\0")
    encryptor = Cipher(algorithms.ChaCha20(seed, nonce), mode=None).encryptor()
    return encryptor.update(bytes(num_bytes))


def ring_dtype(bits: int) -> np.dtype:
    """The unsigned numpy type that holds Z_{2^bits} (uint32 or uint64)."""
    if not 1 <= bits <= 64:
        raise ValueError(f"a ring Z_2^b needs 1 <= b <= 64, got b = {bits}.")
    return np.dtype(np.uint32 if bits <= 32 else np.uint64)


def ring_mask(bits: int) -> int:
    """2^bits - 1: AND with it reduces into Z_{2^bits}."""
    return (1 << bits) - 1


def prg_ring(seed: bytes, count: int, bits: int, *, label: bytes = b"") -> np.ndarray:
    """``count`` values uniform over Z_{2^bits}, from the ChaCha20 keystream.

    Each value takes 4 (bits <= 32) or 8 bytes of keystream, masked to its
    low ``bits`` bits: exactly uniform for every ``bits``.
    """
    dtype = ring_dtype(bits)
    raw = keystream(seed, count * dtype.itemsize, label=label)
    values = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)
    if bits not in (32, 64):
        values &= dtype.type(ring_mask(bits))
    return values


def prg_field(seed: bytes, count: int, prime: int, *, label: bytes = b"") -> np.ndarray:
    """``count`` values uniform over F_p (int64), by rejection sampling.

    Draws ``bit_length(p)``-bit candidates from the ChaCha20 keystream and
    keeps those below p (at least half are), continuing the same stream
    until there are enough.
    """
    if not 2 <= prime < 2**62:
        raise ValueError(f"prime must be in [2, 2^62), got {prime}.")
    bits = prime.bit_length()
    dtype = ring_dtype(bits)
    if len(seed) != SEED_BYTES:
        raise ValueError(f"a PRG seed has {SEED_BYTES} bytes, got {len(seed)}.")
    if len(label) > 12:
        raise ValueError("a keystream label has at most 12 bytes.")
    encryptor = Cipher(
        algorithms.ChaCha20(seed, b"\0" * 4 + label.ljust(12, b"\0")), mode=None
    ).encryptor()
    out = np.empty(count, dtype=np.int64)
    filled = 0
    while filled < count:
        want = count - filled
        draw = int(want * 1.1) + 16
        raw = encryptor.update(bytes(draw * dtype.itemsize))
        candidates = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)
        candidates = candidates & dtype.type(ring_mask(bits))
        kept = candidates[candidates < prime][:want]
        out[filled : filled + kept.size] = kept.astype(np.int64)
        filled += kept.size
    return out


def session_id(*labels: object) -> bytes:
    """A 32-byte session id from the run's public parameters (SHA-256)."""
    return hashlib.sha256(_label(("gi-book session", *labels))).digest()
