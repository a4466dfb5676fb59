"""FastSecAgg (Kadhe, Rajaraman, Koyluoglu, Ramchandran, arXiv 2009.11248).

"FastSecAgg: Scalable Secure Aggregation for Privacy-Preserving Federated
Learning". Each client secret-shares its update with FastShare, an FFT-based
multi-secret sharing scheme over F_p (:mod:`gi_lib.defenses._fastshare`:
``L`` values per sharing, ``N`` shares, any ``T`` of them reveal nothing);
since sharing is linear, the sum of the shares client j holds is client j's
share of the sum of the updates, and the server recovers that sum from the
clients that answer with FastRecon, which succeeds for a *random* subset of
missing clients (with high probability) but not for every subset.

Rounds on the aggregation harness (numbered from 0), in F_p with
``p = 2013265921`` (so ``N`` must divide ``p - 1``): our reading of the
protocol from the paper's abstract and descriptions of it (the paper's own
round table could not be read for this build):

0. **advertise keys** -- each client sends an X25519 public key; the server
   sends everyone the list.
1. **sharing** -- client i fixed-point encodes its update into F_p, cuts it
   into ``ceil(d / L)`` blocks of ``L`` values, FastShares every block (with
   fresh uniform randomness from a ChaCha20 keystream) and sends share j of
   every block to client j, AES-GCM-encrypted and relayed by the server;
   U1 = the clients whose shares the server relayed.
2. **aggregation** -- client j checks that it holds a share from every
   client in U1 and sends the sum of those shares; the server runs FastRecon
   on the sums it receives and outputs ``sum_{i in U1} x_i``, or stops with
   :class:`~gi_lib.defenses.aggregation.ProtocolAbort` when the missing
   clients form a stopping set.

Guarantees: the server colluding with at most ``T`` clients learns nothing
about an individual update beyond the sum (FastShare's T-privacy; the shares
travel encrypted); every pattern of at most ``(z1 + 1)(z2 + 1) - 1`` clients
missing in round 2 is recovered, random patterns of many more usually are,
and some patterns of ``(z1 + 1)(z2 + 1)`` are not.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

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
from gi_lib.defenses._fastshare import FastShare, RecoveryError
from gi_lib.defenses._field import FIELD
from gi_lib.defenses._fixedpoint import FixedPoint
from gi_lib.defenses.aggregation import (
    SERVER,
    AggregationProtocol,
    Message,
    Party,
    ProtocolAbort,
    ServerParty,
    client_name,
)
from gi_lib.defenses.lightsecagg import field_bytes, pack_field, unpack_field

ROUND_NAMES = ("advertise keys", "sharing", "aggregation")
KEY_ENTRY = 4 + PUBLIC_KEY_BYTES


@dataclass(frozen=True)
class _Setup:
    num_clients: int
    size: int
    scheme: FastShare
    encoding: FixedPoint
    session: bytes

    @property
    def num_blocks(self) -> int:
        return -(-self.size // self.scheme.num_secrets)

    @property
    def blob_bytes(self) -> int:
        return 8 + field_bytes(self.num_blocks, self.scheme.field) + CHANNEL_OVERHEAD

    def channel_key(self, own: KeyPair, peer_public: bytes, u: int, v: int) -> bytes:
        return agree(
            own,
            peer_public,
            session=self.session,
            purpose="channel",
            parties=(client_name(u), client_name(v)),
        )


class FastSecAgg(AggregationProtocol):
    """FastSecAgg on the harness (see the module docstring).

    Args:
        privacy: T as a share of the clients (``FastShare.design``), or
            ``scheme`` to fix every parameter.
        parity: row parities as a share of the row length (``z2``).
        scheme: a :class:`FastShare` to use; its ``num_shares`` must equal the
            number of clients.
        frac_bits: fixed-point fractional bits.
        clip: updates are clipped to [-clip, clip].
        seed: ``None`` draws keys and randomness from ``os.urandom``; an int or
            bytes makes the run repeatable (replication only).

    Raises:
        ValueError, FieldError: at set-up (:meth:`check_setup`), with what to
            change: a number of clients that does not divide ``p - 1`` or has
            no coprime grid, a privacy above what the grid allows, a field too
            small for the sum.
    """

    name = "fastsecagg"
    num_rounds = 3
    round_names = ROUND_NAMES

    def __init__(
        self,
        *,
        privacy: float = 0.1,
        parity: float = 0.2,
        scheme: FastShare | None = None,
        frac_bits: int = 16,
        clip: float = 1.0,
        seed: int | bytes | None = None,
    ) -> None:
        self.privacy = privacy
        self.parity = parity
        self.scheme = scheme
        self.field = scheme.field if scheme is not None else FIELD
        self.encoding = FixedPoint(frac_bits=frac_bits, clip=clip, prime=self.field.p)
        self.seed = seed

    def scheme_for(self, num_clients: int) -> FastShare:
        """The FastShare instance a run with ``num_clients`` clients uses."""
        if self.scheme is not None:
            if self.scheme.num_shares != num_clients:
                raise ValueError(
                    f"the FastShare scheme has {self.scheme.num_shares} shares, but "
                    f"{num_clients} clients take part; they must be equal."
                )
            return self.scheme
        return FastShare.design(
            num_clients, privacy=self.privacy, parity=self.parity, field=self.field
        )

    def check_setup(self, num_clients: int, size: int) -> None:
        if size < 1:
            raise ValueError("FastSecAgg needs updates with at least one value.")
        self.scheme_for(num_clients)
        self.encoding.check(num_clients)

    def make_parties(
        self, inputs: Sequence[np.ndarray]
    ) -> tuple[ServerParty, list[Party]]:
        n, size = len(inputs), int(inputs[0].shape[0])
        scheme = self.scheme_for(n)
        source = KeySource(self.seed)
        session = session_id(
            "fastsecagg", n, size, repr(scheme), self.encoding, source.derive("nonce")
        )
        setup = _Setup(n, size, scheme, self.encoding, session)
        clients: list[Party] = [
            FastSecAggClient(i, x, setup, source.child("client", i))
            for i, x in enumerate(inputs)
        ]
        return FastSecAggServer(setup), clients

    def __repr__(self) -> str:
        return (
            f"FastSecAgg(privacy={self.privacy}, parity={self.parity}, "
            f"frac_bits={self.encoding.frac_bits}, clip={self.encoding.clip})"
        )


def blocks_of(values: np.ndarray, scheme: FastShare) -> np.ndarray:
    """A flat field vector as ``(L, B)`` sharing blocks (zero-padded)."""
    num_blocks = -(-values.size // scheme.num_secrets)
    padded = np.zeros(num_blocks * scheme.num_secrets, dtype=np.int64)
    padded[: values.size] = values
    return padded.reshape(num_blocks, scheme.num_secrets).T


class FastSecAggClient(Party):
    """An honest FastSecAgg client.

    Attributes:
        rejected: channel messages it discarded, and why.
        refused: why it refused to send its aggregated share, or ``None``.
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
        self.rejected: list[str] = []
        self.refused: str | None = None

    def _advertise(self, round: int) -> list[Message]:
        self._key = KeyPair.generate(self._source, "channel", self._setup.session)
        return [Message(round, self.name, SERVER, "public key", self._key.public)]

    def _share(self, round: int) -> list[Message]:
        lists = [m for m in self.take_inbox() if m.kind == "key list"]
        if len(lists) != 1:
            return []
        payload = lists[0].payload
        (count,) = struct.unpack_from("<I", payload, 0)
        if len(payload) != 4 + count * KEY_ENTRY:
            return self._refuse(round, "malformed key list")
        setup = self._setup
        scheme = setup.scheme
        peers: dict[int, bytes] = {}
        for k in range(count):
            off = 4 + k * KEY_ENTRY
            (v,) = struct.unpack_from("<I", payload, off)
            if not 0 <= v < setup.num_clients or v in peers:
                return self._refuse(round, f"key list names client {v} badly")
            peers[v] = payload[off + 4 : off + KEY_ENTRY]
        if len(set(peers.values())) != len(peers):
            return self._refuse(round, "two advertised public keys are equal")
        secrets = blocks_of(setup.encoding.encode(self.__update), scheme)
        randomness = prg_field(
            self._source.derive("sharing randomness", setup.session),
            scheme.num_random * secrets.shape[1],
            scheme.field.p,
        ).reshape(scheme.num_random, -1)
        shares = scheme.share(secrets, randomness)
        out = bytearray()
        for v in sorted(peers):
            if v == self.index:
                self._held[v] = shares[v]
                continue
            self._channel.add_peer(
                client_name(v), setup.channel_key(self._key, peers[v], self.index, v)
            )
            blob = self._channel.seal(
                client_name(v),
                round,
                struct.pack("<II", self.index, v) + pack_field(shares[v], scheme.field),
            )
            out += struct.pack("<I", v) + blob
        return [Message(round, self.name, SERVER, "encrypted shares", bytes(out))]

    def _aggregate(self, round: int) -> list[Message]:
        forwarded = [m for m in self.take_inbox() if m.kind == "shares for you"]
        if len(forwarded) != 1 or not self._held:
            return []
        setup = self._setup
        scheme = setup.scheme
        payload = forwarded[0].payload
        try:
            (count,) = struct.unpack_from("<I", payload, 0)
            group = list(struct.unpack_from(f"<{count}I", payload, 4))
        except struct.error:
            return self._refuse(round, "malformed forwarded shares")
        body = payload[4 + 4 * count :]
        entry = 4 + setup.blob_bytes
        if len(body) % entry:
            return self._refuse(round, "malformed forwarded shares")
        for off in range(0, len(body), entry):
            (u,) = struct.unpack_from("<I", body, off)
            if u in self._held:
                self.rejected.append(f"a second share from client {u}")
                continue
            try:
                plain = self._channel.open(
                    client_name(u), 1, body[off + 4 : off + entry]
                )
                sender, receiver = struct.unpack_from("<II", plain, 0)
                if (sender, receiver) != (u, self.index):
                    raise ChannelError(f"names clients {sender} -> {receiver}")
                self._held[u] = unpack_field(plain[8:], setup.num_blocks, scheme.field)
            except (ChannelError, ValueError, struct.error) as error:
                self.rejected.append(f"share from client {u}: {error}")
        if len(set(group)) != len(group) or len(group) < 2:
            return self._refuse(
                round, "the server's list of sharing clients is too short or repeats"
            )
        missing = [u for u in group if u not in self._held]
        if missing:
            return self._refuse(
                round, f"asked to add the share of client {missing[0]}, which it lacks"
            )
        total = scheme.field.sum(np.stack([self._held[u] for u in sorted(group)]))
        return [
            Message(
                round,
                self.name,
                SERVER,
                "aggregated share",
                pack_field(total, scheme.field),
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
            return self._share(round)
        return self._aggregate(round)


class FastSecAggServer(ServerParty):
    """The honest-but-curious FastSecAgg server."""

    def __init__(self, setup: _Setup) -> None:
        super().__init__()
        self._setup = setup
        self._public: dict[int, bytes] = {}
        self._shared: list[int] = []
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
        setup = self._setup
        if round == 0:
            for m in inbox:
                u = self._index(m)
                if u is not None and m.kind == "public key" and m.num_bytes == 32:
                    self._public[u] = m.payload
            if len(self._public) < 2:
                raise ProtocolAbort(
                    f"round 0 (advertise keys): {len(self._public)} clients "
                    "advertised keys; a sum needs at least 2."
                )
            listing = struct.pack("<I", len(self._public)) + b"".join(
                struct.pack("<I", v) + self._public[v] for v in sorted(self._public)
            )
            return [
                Message(round, SERVER, client_name(u), "key list", listing)
                for u in sorted(self._public)
            ]
        if round == 1:
            entry = 4 + setup.blob_bytes
            forwarded: dict[int, bytearray] = {}
            shared = []
            for m in inbox:
                u = self._index(m)
                if u not in self._public or m.kind != "encrypted shares":
                    continue
                if m.num_bytes % entry:
                    continue
                shared.append(u)
                for off in range(0, m.num_bytes, entry):
                    (v,) = struct.unpack_from("<I", m.payload, off)
                    forwarded.setdefault(v, bytearray()).extend(
                        struct.pack("<I", u) + m.payload[off + 4 : off + entry]
                    )
            self._shared = sorted(shared)
            if len(self._shared) < 2:
                raise ProtocolAbort(
                    f"round 1 (sharing): {len(self._shared)} clients shared their "
                    "update; a sum needs at least 2."
                )
            header = struct.pack(
                f"<I{len(self._shared)}I", len(self._shared), *self._shared
            )
            return [
                Message(
                    round,
                    SERVER,
                    client_name(v),
                    "shares for you",
                    header + bytes(forwarded.get(v, b"")),
                )
                for v in self._shared
            ]
        return self._finish(round, inbox)

    def _finish(self, round: int, inbox: list[Message]) -> list[Message]:
        setup = self._setup
        scheme = setup.scheme
        expected = field_bytes(setup.num_blocks, scheme.field)
        shares = np.zeros((setup.num_clients, setup.num_blocks), dtype=np.int64)
        available = np.zeros(setup.num_clients, dtype=bool)
        for m in inbox:
            u = self._index(m)
            if (
                u in self._shared
                and m.kind == "aggregated share"
                and m.num_bytes == expected
            ):
                try:
                    shares[u] = unpack_field(m.payload, setup.num_blocks, scheme.field)
                except ValueError:
                    continue
                available[u] = True
        try:
            blocks = scheme.reconstruct(shares, available)
        except RecoveryError as error:
            missing = np.nonzero(~available)[0].tolist()
            raise ProtocolAbort(
                f"round {round} (aggregation): {len(missing)} clients' aggregated "
                f"shares are missing ({missing}) and FastRecon cannot recover the "
                f"sum: {error} The protocol stops without an output."
            ) from None
        self._sum = blocks.T.reshape(-1)[: setup.size]
        self._survivors = tuple(self._shared)
        return []

    def output(self) -> tuple[np.ndarray, tuple[int, ...]]:
        if self._sum is None:
            raise ProtocolAbort("the server has not recovered anything yet.")
        return self._setup.encoding.decode(self._sum).astype(
            np.float32
        ), self._survivors

    def encoded_output(self) -> np.ndarray | None:
        return None if self._sum is None else self._sum.copy()


def recovery_probability(
    scheme: FastShare, fraction: float, *, trials: int, seed: int
) -> float:
    """Monte-Carlo probability that FastRecon recovers when a uniformly random
    ``fraction`` of the clients (rounded) is missing."""
    rng = np.random.default_rng(seed)
    n = scheme.num_shares
    count = math.floor(fraction * n + 0.5)
    ok = 0
    for _ in range(trials):
        available = np.ones(n, dtype=bool)
        available[rng.choice(n, count, replace=False)] = False
        ok += not scheme.stuck_erasures(available).any()
    return ok / trials
