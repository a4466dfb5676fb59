"""What CKKS and BFV share: on the server's side, adding tenseal vectors
chunk by chunk and their wire format; on a participant's, cutting a vector
into chunks to encrypt, joining the decrypted chunks, and the public view.

A ciphertext is a list of tenseal vectors of ``slots`` values each, with the
number of values and of fresh encryptions added into it (public). On the
wire: a 24-byte header (magic, size, count, chunks), then each chunk's length
and its SEAL serialisation; a scheme's :class:`Wire` names its magic and
tenseal's deserialiser.
"""

from __future__ import annotations

import math
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import tenseal as ts

from gi_lib.defenses._summands import check_sizes, summed_count

_HEADER = struct.Struct("<4sQQI")  # magic, size, count, chunks


@dataclass
class TensealCiphertext:
    """An encrypted flat vector: one tenseal vector per ``slots`` values.

    Attributes:
        chunks: the tenseal vectors.
        size: how many values they hold.
        count: how many fresh encryptions were added into them (public).
    """

    chunks: list[Any]
    size: int
    count: int = 1


@dataclass(frozen=True)
class Wire:
    """What sets one scheme's ciphertexts apart on the wire.

    Attributes:
        label: the scheme's name in messages.
        magic: the 4 bytes that open its payloads.
        vector_from: tenseal's deserialiser of one chunk.
    """

    label: str
    magic: bytes
    vector_from: Callable[[ts.Context, bytes], Any]


class TensealPublic:
    """The server's view: a context without the secret key (it can add).

    Args:
        params: the scheme's parameters (they give ``slots`` and
            ``max_summands``).
        context: the tenseal context.
        wire: the scheme's wire format.
    """

    def __init__(self, params: Any, context: ts.Context, wire: Wire) -> None:
        self.params = params
        self.context = context
        self.wire = wire

    def add(self, a: TensealCiphertext, b: TensealCiphertext) -> TensealCiphertext:
        """Slot-wise sum (a ValueError past ``max_summands`` or on a size mismatch)."""
        check_sizes(a, b, parts=(len(a.chunks), len(b.chunks)))
        limit = self.params.max_summands
        count = summed_count(
            a, b, limit, f", more than the {limit} the parameters were checked for."
        )
        return TensealCiphertext(
            [x + y for x, y in zip(a.chunks, b.chunks, strict=True)], a.size, count
        )

    def to_bytes(self, c: TensealCiphertext) -> bytes:
        """A 24-byte header, then each chunk's length and SEAL serialisation."""
        parts = [_HEADER.pack(self.wire.magic, c.size, c.count, len(c.chunks))]
        for chunk in c.chunks:
            body = chunk.serialize()
            parts += [struct.pack("<Q", len(body)), body]
        return b"".join(parts)

    def from_bytes(self, payload: bytes) -> TensealCiphertext:
        """Inverse of :meth:`to_bytes` (a ValueError for a malformed payload)."""
        what = f"{self.wire.label} ciphertext"
        if len(payload) < _HEADER.size:
            raise ValueError(f"{what}: payload shorter than its header.")
        magic, size, count, chunks = _HEADER.unpack_from(payload)
        if magic != self.wire.magic or chunks != max(
            1, math.ceil(size / self.params.slots)
        ):
            raise ValueError(f"{what}: malformed header.")
        offset, out = _HEADER.size, []
        for _ in range(chunks):
            if offset + 8 > len(payload):
                raise ValueError(f"{what}: truncated payload.")
            (length,) = struct.unpack_from("<Q", payload, offset)
            offset += 8
            out.append(
                self.wire.vector_from(self.context, payload[offset : offset + length])
            )
            offset += length
        if offset != len(payload):
            raise ValueError(f"{what}: trailing bytes.")
        return TensealCiphertext(out, int(size), int(count))


class TensealScheme(TensealPublic, ABC):
    """A participant's view: the context with its secret key.

    A scheme sets ``name``, ``dtype`` (of the decrypted values), its wire
    format (``wire_format``), the type of its parameters (``params_type``,
    with a ``check()`` method) and how checked parameters make a context
    (:meth:`make_context`).

    Args:
        params: the scheme's parameters (checked here; ``None``: the
            defaults of ``params_type``).
    """

    name: ClassVar[str]
    dtype: ClassVar[type[np.generic]]
    wire_format: ClassVar[Wire]
    params_type: ClassVar[type]

    def __init__(self, params: Any = None) -> None:
        params = params or self.params_type()
        params.check()
        super().__init__(params, self.make_context(params), self.wire_format)

    @staticmethod
    @abstractmethod
    def make_context(params: Any) -> ts.Context:
        """A new context with a secret key for ``params`` (already checked)."""

    def public(self) -> TensealPublic:
        """The server's view: a copy of the context without the secret key."""
        public = self.context.copy()
        public.make_context_public()
        return TensealPublic(self.params, public, self.wire)

    def _encrypt_chunks(
        self, x: np.ndarray, vector: Callable[[np.ndarray], Any]
    ) -> TensealCiphertext:
        """A flat vector encrypted ``slots`` values at a time by ``vector``
        (one empty chunk when it has no values)."""
        slots = self.params.slots
        chunks = [
            vector(x[start : start + slots])
            for start in range(0, max(x.size, 1), slots)
        ]
        return TensealCiphertext(chunks, int(x.size), 1)

    def decrypt(self, c: TensealCiphertext) -> np.ndarray:
        """The slot-wise sum, as ``dtype`` (exact for BFV, approximate for CKKS)."""
        if not c.chunks:
            return np.zeros(0, dtype=self.dtype)
        out = np.concatenate(
            [np.asarray(chunk.decrypt(), dtype=self.dtype) for chunk in c.chunks]
        )
        return out[: c.size]
