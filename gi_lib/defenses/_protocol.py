"""Round scaffolding shared by the keyed aggregation protocols.

SecAgg (:mod:`gi_lib.defenses.secagg`), LightSecAgg
(:mod:`gi_lib.defenses.lightsecagg`) and FastSecAgg
(:mod:`gi_lib.defenses.fastsecagg`) run the same skeleton on the harness of
:mod:`gi_lib.defenses.aggregation`: the clients advertise X25519 public keys,
send each other secret shares (of seeds, masks or updates) AES-GCM-encrypted
and relayed by the server, and finally answer the server with what it needs
to decode the sum. What they share lives here:

* :class:`KeyedProtocol`: a protocol whose parties are built from one
  public set-up and a key source per client; :class:`FieldProtocol`, one
  that sums fixed-point updates in a prime field (LightSecAgg, FastSecAgg);
* :class:`SharingSetup`: the set-up of the clients below, with the size of
  a sealed row;
* :class:`ProtocolClient`: an honest client with its index, the public
  set-up, its key source, its share channel, the messages it rejected and
  its refusal; each round is one step, and a step that finds the server's
  request unacceptable raises :class:`Refusal` (the client then sends a
  ``"refusal"`` and stays silent);
* :class:`SharingClient`: a client that advertises one key, reads the
  server's key list, sends one row of field elements to each peer, opens
  the rows the server forwards, and sums the rows of a listed group;
* :class:`ProtocolServer`: the server's bookkeeping (who sent a message,
  relaying encrypted shares, refusals, the decoded output);
* the wire formats of field vectors and of lists of client indices.
"""

from __future__ import annotations

import math
import struct
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gi_lib.defenses._crypto import (
    CHANNEL_OVERHEAD,
    PUBLIC_KEY_BYTES,
    Channel,
    ChannelError,
    KeyPair,
    KeySource,
    agree,
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

KEY_ENTRY = 4 + PUBLIC_KEY_BYTES
"""Bytes per client in a key list of one key each (index, key)."""

Step = Callable[[int], list[Message]]
"""One round of a party's work: ``round -> messages to send``."""


# --- wire formats -----------------------------------------------------------


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


def pack_ids(ids: Sequence[int]) -> bytes:
    """A list of client indices: its length, then the indices (uint32)."""
    return struct.pack(f"<I{len(ids)}I", len(ids), *ids)


def unpack_ids(payload: bytes, offset: int = 0) -> tuple[list[int], int]:
    """Inverse of :func:`pack_ids` read from ``offset``: the indices and the
    offset after them (a ``struct.error`` when the payload is too short)."""
    (count,) = struct.unpack_from("<I", payload, offset)
    ids = list(struct.unpack_from(f"<{count}I", payload, offset + 4))
    return ids, offset + 4 + 4 * count


class SessionKeys:
    """Pairwise keys of a run's public set-up (a mixin for a dataclass with
    a ``session`` id)."""

    session: bytes

    def pair_key(
        self, purpose: str, own: KeyPair, peer_public: bytes, u: int, v: int
    ) -> bytes:
        """The key ``purpose`` that clients ``u`` (holding ``own``) and ``v``
        (who advertised ``peer_public``) agree on."""
        return agree(
            own,
            peer_public,
            session=self.session,
            purpose=purpose,
            parties=(client_name(u), client_name(v)),
        )

    def channel_key(self, own: KeyPair, peer_public: bytes, u: int, v: int) -> bytes:
        """The AES-GCM key of the share channel between ``u`` and ``v``."""
        return self.pair_key("channel", own, peer_public, u, v)


class SharingSetup(SessionKeys):
    """The public set-up of a run of :class:`SharingClient` s (a mixin for a
    dataclass with ``num_clients`` and a ``session`` id that gives the
    ``field`` and the ``share_length``, elements per row)."""

    @property
    def blob_bytes(self) -> int:
        """Bytes of one sealed row: the sender's and receiver's indices, the
        row, the channel's overhead."""
        return 8 + field_bytes(self.share_length, self.field) + CHANNEL_OVERHEAD


# --- the protocol -----------------------------------------------------------


class KeyedProtocol(AggregationProtocol):
    """A protocol whose parties share a public set-up and draw their secrets
    from one :class:`KeySource` (``seed``: ``None`` for ``os.urandom``).

    Subclasses set :attr:`client_class` and :attr:`server_class` and build
    the set-up in :meth:`public_setup`; client ``i`` gets its update, the
    set-up and the source's child ``("client", i)``, the server the set-up.
    """

    client_class: type[ProtocolClient]
    server_class: type[ProtocolServer]
    seed: int | bytes | None = None

    @abstractmethod
    def public_setup(self, num_clients: int, size: int, source: KeySource) -> Any:
        """The public parameters of a run (with its ``session`` id)."""

    def make_parties(
        self, inputs: Sequence[np.ndarray]
    ) -> tuple[ServerParty, list[Party]]:
        source = KeySource(self.seed)
        setup = self.public_setup(len(inputs), int(inputs[0].shape[0]), source)
        clients: list[Party] = [
            self.client_class(i, x, setup, source.child("client", i))
            for i, x in enumerate(inputs)
        ]
        return self.server_class(setup), clients


class FieldProtocol(KeyedProtocol):
    """A keyed protocol that sums fixed-point updates in a prime field.

    Args:
        frac_bits: fixed-point fractional bits.
        clip: updates are clipped to [-clip, clip].
        field: the prime field.
        seed: ``None`` draws keys and randomness from ``os.urandom``; an int
            or bytes makes the run repeatable (replication only).
    """

    def __init__(
        self,
        *,
        frac_bits: int,
        clip: float,
        field: PrimeField,
        seed: int | bytes | None,
    ) -> None:
        self.field = field
        self.encoding = FixedPoint(frac_bits=frac_bits, clip=clip, prime=field.p)
        self.seed = seed


# --- clients ----------------------------------------------------------------


class Refusal(Exception):
    """Raised by a client's step: the server's request is unacceptable."""


class ProtocolClient(Party):
    """An honest client of a keyed protocol.

    Subclasses give each round's step (:meth:`steps`); :meth:`act` runs the
    step of the round (the last step serves every later round). A step that
    raises :class:`Refusal` makes the client send a ``"refusal"`` and take no
    further part, except in the rounds of :attr:`acts_after_refusal`.

    Args:
        index: the client's index (its name is :func:`client_name`).
        update: its update (flat float32), known to it alone.
        setup: the run's public parameters (with a ``session`` id).
        source: where the client's secret bytes come from.

    Attributes:
        rejected: channel messages it discarded, and why.
        refused: why it refused the server, or ``None``.
    """

    acts_after_refusal: frozenset[int] = frozenset()
    """Rounds in which a client that refused still reads its messages."""

    def __init__(
        self, index: int, update: np.ndarray, setup: Any, source: KeySource
    ) -> None:
        super().__init__(client_name(index))
        self.index = index
        self.__update = update
        self._setup = setup
        self._source = source
        self._channel = Channel(self.name, setup.session)
        self.rejected: list[str] = []
        self.refused: str | None = None

    @property
    def _update(self) -> np.ndarray:
        """The client's own update."""
        return self.__update

    @abstractmethod
    def steps(self) -> Sequence[Step]:
        """The client's step of round 0, 1, ...; the last serves later rounds."""

    def act(self, round: int) -> list[Message]:
        if self.refused is not None and round not in self.acts_after_refusal:
            self.take_inbox()
            return []
        steps = self.steps()
        try:
            return steps[min(round, len(steps) - 1)](round)
        except Refusal as refusal:
            return self._refuse(round, str(refusal))

    def _refuse(self, round: int, reason: str) -> list[Message]:
        self.refused = reason
        return [Message(round, self.name, SERVER, "refusal", reason.encode())]


class SharingClient(ProtocolClient):
    """A client that sends one row of field elements to every peer.

    It advertises one X25519 key, reads the server's list of everyone's
    keys, sends row ``v`` of its shares to client ``v`` over the share
    channel, opens the rows the server forwards to it (:attr:`_held`: client
    -> row) and finally sends the sum of the rows of a group the server
    names. The set-up is a :class:`SharingSetup`: it gives ``num_clients``,
    ``field``, ``share_length`` (elements per row), ``blob_bytes`` and
    ``channel_key``.
    """

    def __init__(
        self, index: int, update: np.ndarray, setup: Any, source: KeySource
    ) -> None:
        super().__init__(index, update, setup, source)
        self._held: dict[int, np.ndarray] = {}

    def _advertise(self, round: int) -> list[Message]:
        self._key = KeyPair.generate(self._source, "channel", self._setup.session)
        return [Message(round, self.name, SERVER, "public key", self._key.public)]

    def _peer_keys(self) -> dict[int, bytes] | None:
        """The clients' public keys from the server's key list (``None``
        without exactly one list); a :class:`Refusal` if it is malformed."""
        lists = [m for m in self.take_inbox() if m.kind == "key list"]
        if len(lists) != 1:
            return None
        payload = lists[0].payload
        (count,) = struct.unpack_from("<I", payload, 0)
        if len(payload) != 4 + count * KEY_ENTRY:
            raise Refusal("malformed key list")
        peers: dict[int, bytes] = {}
        for k in range(count):
            off = 4 + k * KEY_ENTRY
            (v,) = struct.unpack_from("<I", payload, off)
            if not 0 <= v < self._setup.num_clients or v in peers:
                raise Refusal(f"key list names client {v} badly")
            peers[v] = payload[off + 4 : off + KEY_ENTRY]
        if len(set(peers.values())) != len(peers):
            raise Refusal("two advertised public keys are equal")
        return peers

    def _send_rows(
        self, round: int, peers: Mapping[int, bytes], rows: np.ndarray, kind: str
    ) -> list[Message]:
        """Keep row ``index`` of ``rows``; seal row ``v`` for each other peer
        ``v``, in one message to the server (``kind``) that relays them."""
        setup = self._setup
        out = bytearray()
        for v in sorted(peers):
            if v == self.index:
                self._held[v] = rows[v]
                continue
            self._channel.add_peer(
                client_name(v), setup.channel_key(self._key, peers[v], self.index, v)
            )
            blob = self._channel.seal(
                client_name(v),
                round,
                struct.pack("<II", self.index, v) + pack_field(rows[v], setup.field),
            )
            out += struct.pack("<I", v) + blob
        return [Message(round, self.name, SERVER, kind, bytes(out))]

    def _open_rows(self, body: bytes, what: str, *, malformed: str) -> None:
        """Open the rows in ``body`` (sender index, sealed row, ...), sent in
        round 1, into :attr:`_held`; what fails is recorded in
        :attr:`rejected` (``what`` names a row) and left out. A body that is
        not whole entries is a :class:`Refusal` (``malformed``)."""
        setup = self._setup
        entry = 4 + setup.blob_bytes
        if len(body) % entry:
            raise Refusal(malformed)
        for off in range(0, len(body), entry):
            (u,) = struct.unpack_from("<I", body, off)
            if u in self._held:
                self.rejected.append(f"a second {what} from client {u}")
                continue
            try:
                plain = self._channel.open(
                    client_name(u), 1, body[off + 4 : off + entry]
                )
                sender, receiver = struct.unpack_from("<II", plain, 0)
                if (sender, receiver) != (u, self.index):
                    raise ChannelError(f"names clients {sender} -> {receiver}")
                self._held[u] = unpack_field(plain[8:], setup.share_length, setup.field)
            except (ChannelError, ValueError, struct.error) as error:
                self.rejected.append(f"{what} from client {u}: {error}")

    def _send_sum(
        self, round: int, group: Iterable[int], what: str, kind: str
    ) -> list[Message]:
        """The sum of the held rows of ``group`` to the server (``kind``); a
        :class:`Refusal` if a row is missing (``what`` names a row)."""
        field = self._setup.field
        missing = [u for u in group if u not in self._held]
        if missing:
            raise Refusal(
                f"asked to add the {what} of client {missing[0]}, which it lacks"
            )
        total = field.sum(np.stack([self._held[u] for u in sorted(group)]))
        return [Message(round, self.name, SERVER, kind, pack_field(total, field))]


# --- the server -------------------------------------------------------------


class ProtocolServer(ServerParty):
    """The server's bookkeeping in a keyed protocol.

    It knows the set-up, the clients' public keys (:attr:`_public`), and,
    once it has decoded, the sum as field or ring elements (:attr:`_sum`)
    and the clients it sums (:attr:`_survivors`).
    """

    not_done = "the server has not aggregated anything yet."
    """The abort message of :meth:`output` before the server has decoded."""

    def __init__(self, setup: Any) -> None:
        super().__init__()
        self._setup = setup
        self._public: dict[int, Any] = {}
        self._sum: np.ndarray | None = None
        self._survivors: tuple[int, ...] = ()

    def _index(self, message: Message) -> int | None:
        """The index of the client that sent ``message`` (``None`` if none)."""
        name = message.sender
        if not name.startswith("client "):
            return None
        try:
            index = int(name.split(" ", 1)[1])
        except ValueError:
            return None
        return index if 0 <= index < self._setup.num_clients else None

    def _collect_keys(self, inbox: Iterable[Message]) -> None:
        """Keep each client's advertised key (one ``"public key"`` each)."""
        for m in inbox:
            u = self._index(m)
            if u is not None and m.kind == "public key" and m.num_bytes == 32:
                self._public[u] = m.payload

    def _key_lists(self, round: int) -> list[Message]:
        """Every client's key to every client that advertised one."""
        listing = struct.pack("<I", len(self._public)) + b"".join(
            struct.pack("<I", v) + self._public[v] for v in sorted(self._public)
        )
        return [
            Message(round, SERVER, client_name(u), "key list", listing)
            for u in sorted(self._public)
        ]

    def _relay(
        self, inbox: Iterable[Message], kind: str, entry: int
    ) -> tuple[list[int], dict[int, bytearray]]:
        """Split each ``kind`` upload of a client with keys into its entries
        (receiver index, ``entry - 4`` sealed bytes) and regroup them by
        receiver, each entry prefixed with its sender's index.

        Returns:
            The senders (in the order their uploads arrived) and, per
            receiver, the bytes to forward.
        """
        senders: list[int] = []
        forwarded: dict[int, bytearray] = {}
        for m in inbox:
            u = self._index(m)
            if u not in self._public or m.kind != kind or m.num_bytes % entry:
                continue
            senders.append(u)
            for off in range(0, m.num_bytes, entry):
                (v,) = struct.unpack_from("<I", m.payload, off)
                forwarded.setdefault(v, bytearray()).extend(
                    struct.pack("<I", u) + m.payload[off + 4 : off + entry]
                )
        return senders, forwarded

    def _forward(
        self,
        round: int,
        receivers: Iterable[int],
        forwarded: Mapping[int, bytearray],
        kind: str,
        header: bytes = b"",
    ) -> list[Message]:
        """One ``kind`` message to each receiver: ``header``, then what was
        relayed to it."""
        return [
            Message(round, SERVER, client_name(v), kind, header + forwarded.get(v, b""))
            for v in receivers
        ]

    def _field_vectors(
        self, inbox: Iterable[Message], senders: Iterable[int], kind: str, count: int
    ) -> dict[int, np.ndarray]:
        """The ``kind`` uploads of ``senders`` that hold exactly ``count``
        field elements of the set-up's field, by sender."""
        field = self._setup.field
        allowed = set(senders)
        expected = field_bytes(count, field)
        out: dict[int, np.ndarray] = {}
        for m in inbox:
            u = self._index(m)
            if u in allowed and m.kind == kind and m.num_bytes == expected:
                try:
                    out[u] = unpack_field(m.payload, count, field)
                except ValueError:
                    continue
        return out

    def _refusals(self, inbox: Iterable[Message]) -> list[str]:
        """The refusals in ``inbox``, as ``"client i: reason"``."""
        return [
            f"{m.sender}: {m.payload.decode(errors='replace')}"
            for m in inbox
            if m.kind == "refusal"
        ]

    def output(self) -> tuple[np.ndarray, tuple[int, ...]]:
        if self._sum is None:
            raise ProtocolAbort(self.not_done)
        return self._setup.encoding.decode(self._sum).astype(
            np.float32
        ), self._survivors

    def encoded_output(self) -> np.ndarray | None:
        return None if self._sum is None else self._sum.copy()


@dataclass(frozen=True)
class Relay:
    """What a :class:`SharingServer` relays in round 1.

    Attributes:
        upload: the kind of the clients' uploads whose rows it forwards.
        what: what a client that uploaded did (for the abort message).
        forward: the kind of the messages it forwards.
        list_sharers: the forward starts with the list of sharing clients.
    """

    upload: str
    what: str
    forward: str
    list_sharers: bool = False


class SharingServer(ProtocolServer):
    """The server of a :class:`SharingClient` protocol.

    Round 0 it lists every advertised key to each client that advertised
    one; round 1 it relays each client's sealed rows to their receivers
    (what :attr:`relay` says) and keeps who shared (:attr:`_shared`, sorted).
    A protocol says at each step whether enough clients took part
    (:meth:`_need`) and what its server does from round 2 on
    (:meth:`_later_round`).
    """

    relay: Relay

    def __init__(self, setup: Any) -> None:
        super().__init__(setup)
        self._shared: list[int] = []

    @abstractmethod
    def _need(self, round: int, count: int, what: str) -> None:
        """A :class:`ProtocolAbort` unless ``count`` clients that ``what``
        (e.g. ``"advertised keys"``) are enough to go on."""

    @abstractmethod
    def _later_round(self, round: int, inbox: list[Message]) -> list[Message]:
        """The server's step in round 2 and after."""

    def act(self, round: int) -> list[Message]:
        inbox = self.take_inbox()
        if round == 0:
            self._collect_keys(inbox)
            self._need(round, len(self._public), "advertised keys")
            return self._key_lists(round)
        if round == 1:
            relay = self.relay
            size = 4 + self._setup.blob_bytes
            shared, forwarded = self._relay(inbox, relay.upload, size)
            self._shared = sorted(set(shared))
            self._need(round, len(self._shared), relay.what)
            header = pack_ids(self._shared) if relay.list_sharers else b""
            return self._forward(round, self._shared, forwarded, relay.forward, header)
        return self._later_round(round, inbox)
