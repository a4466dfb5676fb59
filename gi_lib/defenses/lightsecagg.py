"""LightSecAgg (So, He, Yang, Li, Yu, Ali, Güler, Avestimehr; MLSys 2022).

"LightSecAgg: a Lightweight and Versatile Design for Secure Aggregation in
Federated Learning" (arXiv 2109.14236; earlier "LightSecAgg: Rethinking
Secure Aggregation in Federated Learning"). Instead of secret-sharing the
*seeds* of the masks and regenerating the masks of the users who dropped
(SecAgg), every user encodes its *mask* with an MDS (Lagrange) code and the
server decodes the sum of the survivors' masks in one shot from any ``U``
aggregated encoded masks, whatever and however many users dropped.

Rounds on the aggregation harness (numbered from 0), in F_p with the
NTT-friendly ``p = 2013265921`` (:mod:`gi_lib.defenses._field`):

0. **advertise keys** (offline) -- each user sends an X25519 public key;
   the server sends everyone the list.
1. **mask sharing** (offline) -- user i draws a mask ``z_i`` uniform over
   ``F_p^d`` (ChaCha20 keystream), cuts it into ``U - T`` pieces of length
   ``ceil(d / (U - T))``, appends ``T`` pieces of uniform noise (random, not
   zeros: that is what keeps any ``T`` encoded masks independent of
   ``z_i``), and evaluates the polynomial through those ``U`` pieces at the
   points ``alpha_1..alpha_U = N+1..N+U`` at ``beta_j = j`` for every user
   j: ``N`` encoded masks ``[z~_i]_j``. It keeps its own and sends the others
   AES-GCM-encrypted, relayed by the server.
2. **mask receipt** (offline) -- each user decrypts and stores the encoded
   masks it was sent (no message).
3. **masked input** (online) -- user i uploads ``x~_i = x_i + z_i``, its
   fixed-point update masked; the server calls the senders U1 and tells the
   survivors who they are.
4. **mask recovery** (online) -- each surviving user j checks the list (at
   least ``U`` users, each of whom shared a mask with it) and sends
   ``sum_{i in U1} [z~_i]_j``; from any ``U`` of these the server
   interpolates the polynomial of ``sum_i z_i`` (Lagrange), reads its first
   ``U - T`` pieces, and outputs ``sum x~_i - sum z_i = sum_{i in U1} x_i``.

Guarantees (set at construction): privacy against the server colluding with
up to ``T`` users; the sum is recovered whenever at least ``U`` of the users
in U1 are alive in the last round (``N - U`` dropouts tolerated, ``T < U``).
The server's decoding cost does not depend on how many users dropped.

Keys and masks come from :class:`~gi_lib.defenses._crypto.KeySource`
(``os.urandom`` unless a seed is given, for replication). Not implemented:
the asynchronous variant.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from gi_lib.defenses._crypto import (
    CHANNEL_OVERHEAD,
    PUBLIC_KEY_BYTES,
    Channel,
    ChannelError,
    KeyPair,
    KeySource,
    agree,
    prg_field,
    session_id,
)
from gi_lib.defenses._field import FIELD, PrimeField
from gi_lib.defenses._fixedpoint import FixedPoint, pack_bits, unpack_bits
from gi_lib.defenses.aggregation import (
    SERVER,
    AggregationProtocol,
    Message,
    Party,
    ProtocolAbort,
    ServerParty,
    client_name,
)

ROUND_NAMES = (
    "advertise keys",
    "mask sharing",
    "mask receipt",
    "masked input",
    "mask recovery",
)
OFFLINE_ROUNDS = (0, 1, 2)
MASKED_INPUT_ROUND = 3
"""The round in which users upload their masked update."""
"""Rounds that do not depend on the update (can run before training ends)."""
KEY_ENTRY = 4 + PUBLIC_KEY_BYTES


def field_bytes(count: int, field: PrimeField = FIELD) -> int:
    """Bytes of ``count`` field elements on the wire (bit-packed)."""
    return math.ceil(count * field.p.bit_length() / 8)


def pack_field(values: np.ndarray, field: PrimeField = FIELD) -> bytes:
    """Field elements, ``bit_length(p)`` bits each."""
    return pack_bits(np.asarray(values, dtype=np.int64), field.p.bit_length())


def unpack_field(payload: bytes, count: int, field: PrimeField = FIELD) -> np.ndarray:
    """Inverse of :func:`pack_field`; a ValueError on a value >= p."""
    values = unpack_bits(payload, count, field.p.bit_length()).astype(np.int64)
    if np.any(values >= field.p):
        raise ValueError("a field element is not below p.")
    return values


@dataclass(frozen=True)
class MaskCode:
    """LightSecAgg's mask code: ``U`` pieces -> ``N`` encoded masks (Lagrange).

    Attributes:
        num_users: N.
        target: U, how many aggregated encoded masks decode.
        privacy: T, how many encoded masks of one user reveal nothing.
        size: d, values per mask.
        field: the prime field.
    """

    num_users: int
    target: int
    privacy: int
    size: int
    field: PrimeField = FIELD

    def __post_init__(self) -> None:
        n, u, t = self.num_users, self.target, self.privacy
        if not 0 <= t < u <= n:
            raise ValueError(
                f"LightSecAgg needs 0 <= T < U <= N; got T = {t}, U = {u}, N = {n}. "
                f"U is how many users must answer in the last round (so at most "
                f"N - U = {n - u} may drop), T how many may collude; lower T or "
                "raise U."
            )
        if self.size < 1:
            raise ValueError(f"a mask needs at least one value, got d = {self.size}.")
        if n + u >= self.field.p:
            raise ValueError(
                f"N + U = {n + u} evaluation points do not fit F_p "
                f"(p = {self.field.p})."
            )

    @property
    def num_pieces(self) -> int:
        """U - T: the pieces the mask is cut into."""
        return self.target - self.privacy

    @property
    def piece_length(self) -> int:
        """ceil(d / (U - T)): the length of every piece and encoded mask."""
        return -(-self.size // self.num_pieces)

    @property
    def alphas(self) -> np.ndarray:
        """The points of the U pieces, N+1..N+U."""
        return np.arange(self.num_users + 1, self.num_users + self.target + 1)

    @property
    def betas(self) -> np.ndarray:
        """User j's evaluation point, j + 1 (j = 0..N-1)."""
        return np.arange(1, self.num_users + 1)

    @cached_property
    def encoding_matrix(self) -> np.ndarray:
        """The N x U Lagrange matrix: encoded masks = matrix @ pieces."""
        return self.field.lagrange_matrix(self.alphas, self.betas)

    def pieces(self, mask: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """The U x piece_length pieces: the padded mask, then the noise."""
        mask = np.asarray(mask, dtype=np.int64)
        if mask.shape != (self.size,):
            raise ValueError(f"mask must have shape ({self.size},), got {mask.shape}.")
        noise = np.asarray(noise, dtype=np.int64)
        if noise.size != self.privacy * self.piece_length:
            raise ValueError(
                f"noise must hold T = {self.privacy} pieces of {self.piece_length} "
                "values."
            )
        padded = np.zeros(self.num_pieces * self.piece_length, dtype=np.int64)
        padded[: self.size] = mask
        noise = noise.reshape(self.privacy, self.piece_length)
        return np.concatenate([padded.reshape(self.num_pieces, -1), noise])

    def encode(self, mask: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """The N encoded masks of one user, ``(N, piece_length)``."""
        return self.field.matmul(self.encoding_matrix, self.pieces(mask, noise))

    def decode(self, users: Sequence[int], encoded: np.ndarray) -> np.ndarray:
        """The (aggregate) mask from ``U`` users' (aggregated) encoded masks.

        Args:
            users: the users (0-based) whose values are given; the first U
                are used.
            encoded: ``(len(users), piece_length)``, row r from ``users[r]``.

        Raises:
            ValueError: fewer than U users, or repeated users.
        """
        users = [int(u) for u in users]
        if len(set(users)) != len(users):
            raise ValueError("each user's encoded mask may be given only once.")
        if len(users) < self.target:
            raise ValueError(
                f"decoding needs U = {self.target} encoded masks, got {len(users)}."
            )
        chosen = users[: self.target]
        matrix = self.field.lagrange_matrix(
            self.betas[chosen], self.alphas[: self.num_pieces]
        )
        pieces = self.field.matmul(matrix, np.asarray(encoded)[: self.target])
        return pieces.reshape(-1)[: self.size]


@dataclass(frozen=True)
class _Setup:
    num_clients: int
    code: MaskCode
    encoding: FixedPoint
    session: bytes

    @property
    def size(self) -> int:
        return self.code.size

    def channel_key(self, own: KeyPair, peer_public: bytes, u: int, v: int) -> bytes:
        return agree(
            own,
            peer_public,
            session=self.session,
            purpose="channel",
            parties=(client_name(u), client_name(v)),
        )


def default_parameters(num_clients: int, dropout: float) -> tuple[int, int]:
    """``(T, U)`` for a dropout rate (our choice; the paper's could not be read):
    ``U = N - round(dropout * N)`` users must answer the last round and
    ``T = floor(U / 2)`` may collude, so each user's mask is cut into
    ``U - T = ceil(U / 2)`` pieces whatever the dropout rate."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
    target = max(num_clients - math.floor(dropout * num_clients + 0.5), 1)
    return target // 2, target


class LightSecAgg(AggregationProtocol):
    """LightSecAgg on the harness (see the module docstring).

    Args:
        privacy: T, colluding users (with the server) who learn nothing.
        target: U, how many users must answer the last round (``N - U``
            dropouts tolerated); ``T < U <= N``.
        frac_bits: fixed-point fractional bits.
        clip: updates are clipped to [-clip, clip].
        field: the prime field (default p = 2013265921).
        seed: ``None`` draws keys and masks from ``os.urandom``; an int or
            bytes makes the run repeatable (replication only).

    Raises:
        ValueError: at set-up (:meth:`check_setup`): T >= U, U > N, or a
            field too small for the sum of N fixed-point updates.
    """

    name = "lightsecagg"
    num_rounds = 5
    round_names = ROUND_NAMES

    def __init__(
        self,
        *,
        privacy: int,
        target: int,
        frac_bits: int = 16,
        clip: float = 1.0,
        field: PrimeField = FIELD,
        seed: int | bytes | None = None,
    ) -> None:
        for name, value in (("privacy", privacy), ("target", target)):
            if int(value) != value or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value}.")
        self.privacy = int(privacy)
        self.target = int(target)
        self.field = field
        self.encoding = FixedPoint(frac_bits=frac_bits, clip=clip, prime=field.p)
        self.seed = seed

    @classmethod
    def for_dropout(
        cls, num_clients: int, dropout: float, **kwargs: object
    ) -> LightSecAgg:
        """With :func:`default_parameters` for ``num_clients`` and ``dropout``."""
        t, u = default_parameters(num_clients, dropout)
        return cls(privacy=t, target=u, **kwargs)  # type: ignore[arg-type]

    def code(self, num_clients: int, size: int) -> MaskCode:
        """The mask code a run with these sizes uses."""
        return MaskCode(num_clients, self.target, self.privacy, size, self.field)

    def check_setup(self, num_clients: int, size: int) -> None:
        self.code(num_clients, size)  # raises with what to change
        self.encoding.check(num_clients)

    def make_parties(
        self, inputs: Sequence[np.ndarray]
    ) -> tuple[ServerParty, list[Party]]:
        n, size = len(inputs), int(inputs[0].shape[0])
        source = KeySource(self.seed)
        session = session_id(
            "lightsecagg",
            n,
            size,
            self.privacy,
            self.target,
            self.encoding,
            source.derive("session nonce"),
        )
        code = self.code(n, size)
        _ = code.encoding_matrix  # public, computed once before the run
        setup = _Setup(n, code, self.encoding, session)
        clients: list[Party] = [
            LightSecAggClient(i, x, setup, source.child("client", i))
            for i, x in enumerate(inputs)
        ]
        return LightSecAggServer(setup), clients

    def __repr__(self) -> str:
        return (
            f"LightSecAgg(T={self.privacy}, U={self.target}, frac_bits="
            f"{self.encoding.frac_bits}, clip={self.encoding.clip})"
        )


class LightSecAggClient(Party):
    """An honest LightSecAgg user.

    Attributes:
        rejected: channel messages it discarded, and why.
        refused: why it refused the server's survivor list, or ``None``.
    """

    def __init__(
        self, index: int, update: np.ndarray, setup: _Setup, source: KeySource
    ) -> None:
        super().__init__(client_name(index))
        self.index = index
        self.__update = update
        self._setup = setup
        self._source = source
        self._channel = Channel(self.name, setup.session)
        self._held: dict[int, np.ndarray] = {}
        self._mask: np.ndarray | None = None
        self.rejected: list[str] = []
        self.refused: str | None = None

    def _advertise(self, round: int) -> list[Message]:
        self._key = KeyPair.generate(self._source, "channel", self._setup.session)
        return [Message(round, self.name, SERVER, "public key", self._key.public)]

    def _share_mask(self, round: int) -> list[Message]:
        lists = [m for m in self.take_inbox() if m.kind == "key list"]
        if len(lists) != 1:
            return []
        payload = lists[0].payload
        (count,) = struct.unpack_from("<I", payload, 0)
        if len(payload) != 4 + count * KEY_ENTRY:
            return self._refuse(round, "malformed key list")
        setup, code = self._setup, self._setup.code
        peers: dict[int, bytes] = {}
        for k in range(count):
            off = 4 + k * KEY_ENTRY
            (v,) = struct.unpack_from("<I", payload, off)
            if not 0 <= v < setup.num_clients or v in peers:
                return self._refuse(round, f"key list names client {v} badly")
            peers[v] = payload[off + 4 : off + KEY_ENTRY]
        if len(set(peers.values())) != len(peers):
            return self._refuse(round, "two advertised public keys are equal")
        p = setup.code.field.p
        self._mask = prg_field(
            self._source.derive("mask", setup.session), setup.size, p, label=b"mask"
        )
        noise = prg_field(
            self._source.derive("noise", setup.session),
            code.privacy * code.piece_length,
            p,
            label=b"noise",
        )
        encoded = code.encode(self._mask, noise)
        out = bytearray()
        for v in sorted(peers):
            if v == self.index:
                self._held[v] = encoded[v]
                continue
            self._channel.add_peer(
                client_name(v),
                setup.channel_key(self._key, peers[v], self.index, v),
            )
            blob = self._channel.seal(
                client_name(v),
                round,
                struct.pack("<II", self.index, v) + pack_field(encoded[v], code.field),
            )
            out += struct.pack("<I", v) + blob
        return [Message(round, self.name, SERVER, "encoded masks", bytes(out))]

    def _store_masks(self, round: int) -> list[Message]:
        forwarded = [m for m in self.take_inbox() if m.kind == "masks for you"]
        if self._mask is None or len(forwarded) != 1:
            self._mask = None  # nothing to mask with: it takes no further part
            return []
        code = self._setup.code
        entry = 4 + _blob_bytes(code)
        payload = forwarded[0].payload
        if len(payload) % entry:
            return self._refuse(round, "malformed forwarded masks")
        for off in range(0, len(payload), entry):
            (u,) = struct.unpack_from("<I", payload, off)
            if u in self._held:
                self.rejected.append(f"a second encoded mask from client {u}")
                continue
            try:
                plain = self._channel.open(
                    client_name(u), 1, payload[off + 4 : off + entry]
                )
                sender, receiver = struct.unpack_from("<II", plain, 0)
                if (sender, receiver) != (u, self.index):
                    raise ChannelError(f"names clients {sender} -> {receiver}")
                self._held[u] = unpack_field(plain[8:], code.piece_length, code.field)
            except (ChannelError, ValueError, struct.error) as error:
                self.rejected.append(f"encoded mask from client {u}: {error}")
        return []

    def _masked_input(self, round: int) -> list[Message]:
        self.take_inbox()
        if self._mask is None:
            return []
        setup, code = self._setup, self._setup.code
        masked = code.field.add(setup.encoding.encode(self.__update), self._mask)
        return [
            Message(
                round, self.name, SERVER, "masked input", pack_field(masked, code.field)
            )
        ]

    def _recover(self, round: int) -> list[Message]:
        lists = [m for m in self.take_inbox() if m.kind == "survivors"]
        if len(lists) != 1:
            return []
        code = self._setup.code
        try:
            (count,) = struct.unpack_from("<I", lists[0].payload, 0)
            survivors = list(struct.unpack_from(f"<{count}I", lists[0].payload, 4))
        except struct.error:
            return self._refuse(round, "malformed survivor list")
        if len(set(survivors)) != len(survivors):
            return self._refuse(round, "a survivor listed twice")
        if len(survivors) < code.target:
            return self._refuse(
                round,
                f"only {len(survivors)} survivors listed, fewer than U = "
                f"{code.target}: "
                "their aggregate could single out a user's mask",
            )
        missing = [u for u in survivors if u not in self._held]
        if missing:
            return self._refuse(
                round, f"asked to add the mask of client {missing[0]}, which it lacks"
            )
        total = code.field.sum(np.stack([self._held[u] for u in sorted(survivors)]))
        return [
            Message(
                round,
                self.name,
                SERVER,
                "aggregated mask",
                pack_field(total, code.field),
            )
        ]

    def _refuse(self, round: int, reason: str) -> list[Message]:
        self.refused = reason
        return [Message(round, self.name, SERVER, "refusal", reason.encode())]

    def act(self, round: int) -> list[Message]:
        if self.refused is not None:
            self.take_inbox()
            return []
        if round == 0:
            return self._advertise(round)
        if round == 1:
            return self._share_mask(round)
        if round == 2:
            return self._store_masks(round)
        if round == 3:
            return self._masked_input(round)
        return self._recover(round)


def _blob_bytes(code: MaskCode) -> int:
    return 8 + field_bytes(code.piece_length, code.field) + CHANNEL_OVERHEAD


class LightSecAggServer(ServerParty):
    """The honest-but-curious LightSecAgg server."""

    def __init__(self, setup: _Setup) -> None:
        super().__init__()
        self._setup = setup
        self._public: dict[int, bytes] = {}
        self._shared: set[int] = set()
        self._masked: dict[int, np.ndarray] = {}
        self._sum: np.ndarray | None = None
        self._survivors: tuple[int, ...] = ()

    def _index(self, message: Message) -> int | None:
        try:
            index = int(message.sender.split(" ", 1)[1])
        except (IndexError, ValueError):
            return None
        return index if 0 <= index < self._setup.num_clients else None

    def act(self, round: int) -> list[Message]:
        inbox = self.take_inbox()
        code = self._setup.code
        if round == 0:
            for m in inbox:
                u = self._index(m)
                if u is not None and m.kind == "public key" and m.num_bytes == 32:
                    self._public[u] = m.payload
            self._need(round, len(self._public), "advertised keys")
            listing = struct.pack("<I", len(self._public)) + b"".join(
                struct.pack("<I", v) + self._public[v] for v in sorted(self._public)
            )
            return [
                Message(round, SERVER, client_name(u), "key list", listing)
                for u in sorted(self._public)
            ]
        if round == 1:
            entry = 4 + _blob_bytes(code)
            forwarded: dict[int, bytearray] = {}
            for m in inbox:
                u = self._index(m)
                if u not in self._public or m.kind != "encoded masks":
                    continue
                if m.num_bytes % entry:
                    continue
                self._shared.add(u)
                for off in range(0, m.num_bytes, entry):
                    (v,) = struct.unpack_from("<I", m.payload, off)
                    forwarded.setdefault(v, bytearray()).extend(
                        struct.pack("<I", u) + m.payload[off + 4 : off + entry]
                    )
            self._need(round, len(self._shared), "shared their masks")
            return [
                Message(
                    round,
                    SERVER,
                    client_name(v),
                    "masks for you",
                    bytes(forwarded.get(v, b"")),
                )
                for v in sorted(self._shared)
            ]
        if round == 2:  # the users store their encoded masks; nothing to relay
            return []
        if round == 3:
            expected = field_bytes(code.size, code.field)
            for m in inbox:
                u = self._index(m)
                if (
                    u in self._shared
                    and m.kind == "masked input"
                    and m.num_bytes == expected
                ):
                    try:
                        self._masked[u] = unpack_field(m.payload, code.size, code.field)
                    except ValueError:
                        continue
            self._need(round, len(self._masked), "sent a masked input")
            survivors = sorted(self._masked)
            listing = struct.pack(f"<I{len(survivors)}I", len(survivors), *survivors)
            return [
                Message(round, SERVER, client_name(u), "survivors", listing)
                for u in survivors
            ]
        return self._finish(round, inbox)

    def _need(self, round: int, count: int, what: str) -> None:
        target = self._setup.code.target
        if count < target:
            raise ProtocolAbort(
                f"round {round} ({ROUND_NAMES[round]}): only {count} users {what}, "
                f"fewer than U = {target}; the protocol stops without an output."
            )

    def _finish(self, round: int, inbox: list[Message]) -> list[Message]:
        code = self._setup.code
        expected = field_bytes(code.piece_length, code.field)
        answers: dict[int, np.ndarray] = {}
        for m in inbox:
            u = self._index(m)
            if (
                u in self._masked
                and m.kind == "aggregated mask"
                and m.num_bytes == expected
            ):
                try:
                    answers[u] = unpack_field(m.payload, code.piece_length, code.field)
                except ValueError:
                    continue
        refusals = [
            f"{m.sender}: {m.payload.decode(errors='replace')}"
            for m in inbox
            if m.kind == "refusal"
        ]
        if len(answers) < code.target:
            raise ProtocolAbort(
                f"round {round} (mask recovery): only {len(answers)} aggregated "
                f"encoded masks arrived, fewer than U = {code.target}; the aggregate "
                "mask cannot be decoded and the protocol stops without an output"
                + (f" (refusals: {'; '.join(refusals)})" if refusals else "")
                + "."
            )
        users = sorted(answers)[: code.target]
        mask_sum = code.decode(users, np.stack([answers[u] for u in users]))
        survivors = sorted(self._masked)
        total = code.field.sum(np.stack([self._masked[u] for u in survivors]))
        self._sum = code.field.sub(total, mask_sum)
        self._survivors = tuple(survivors)
        return []

    def output(self) -> tuple[np.ndarray, tuple[int, ...]]:
        if self._sum is None:
            raise ProtocolAbort("the server has not decoded anything yet.")
        return self._setup.encoding.decode(self._sum).astype(
            np.float32
        ), self._survivors

    def encoded_output(self) -> np.ndarray | None:
        return None if self._sum is None else self._sum.copy()
