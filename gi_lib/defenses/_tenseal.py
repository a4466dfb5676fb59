"""What CKKS and BFV share on the server's side: adding tenseal vectors
chunk by chunk, and their wire format.

A ciphertext is a list of tenseal vectors of ``slots`` values each, with the
number of values and of fresh encryptions added into it (public). On the
wire: a 24-byte header (magic, size, count, chunks), then each chunk's length
and its SEAL serialisation.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

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


class TensealPublic:
    """The server's view: a context without the secret key (it can add).

    A scheme sets ``label`` (for messages), ``magic`` (4 bytes on the wire),
    ``vector_from`` (tenseal's deserialiser) and ``ciphertext`` (the type it
    builds); its parameters give ``slots`` and ``max_summands``.
    """

    label: ClassVar[str]
    magic: ClassVar[bytes]
    vector_from: ClassVar[Callable[[ts.Context, bytes], Any]]
    ciphertext: ClassVar[type[TensealCiphertext]]

    def __init__(self, params: Any, context: ts.Context) -> None:
        self.params = params
        self.context = context

    def add(self, a: TensealCiphertext, b: TensealCiphertext) -> TensealCiphertext:
        """Slot-wise sum (a ValueError past ``max_summands`` or on a size mismatch)."""
        check_sizes(a, b, parts=(len(a.chunks), len(b.chunks)))
        limit = self.params.max_summands
        count = summed_count(
            a, b, limit, f", more than the {limit} the parameters were checked for."
        )
        return self.ciphertext(
            [x + y for x, y in zip(a.chunks, b.chunks, strict=True)], a.size, count
        )

    def to_bytes(self, c: TensealCiphertext) -> bytes:
        """A 24-byte header, then each chunk's length and SEAL serialisation."""
        parts = [_HEADER.pack(self.magic, c.size, c.count, len(c.chunks))]
        for chunk in c.chunks:
            body = chunk.serialize()
            parts += [struct.pack("<Q", len(body)), body]
        return b"".join(parts)

    def from_bytes(self, payload: bytes) -> TensealCiphertext:
        """Inverse of :meth:`to_bytes` (a ValueError for a malformed payload)."""
        what = f"{self.label} ciphertext"
        if len(payload) < _HEADER.size:
            raise ValueError(f"{what}: payload shorter than its header.")
        magic, size, count, chunks = _HEADER.unpack_from(payload)
        if magic != self.magic or chunks != max(1, math.ceil(size / self.params.slots)):
            raise ValueError(f"{what}: malformed header.")
        offset, out = _HEADER.size, []
        for _ in range(chunks):
            if offset + 8 > len(payload):
                raise ValueError(f"{what}: truncated payload.")
            (length,) = struct.unpack_from("<Q", payload, offset)
            offset += 8
            out.append(
                type(self).vector_from(self.context, payload[offset : offset + length])
            )
            offset += length
        if offset != len(payload):
            raise ValueError(f"{what}: trailing bytes.")
        return self.ciphertext(out, int(size), int(count))
