"""Aggregation protocols: who sees what when clients' updates are summed.

A plaintext defense (:mod:`gi_lib.defenses.base`) changes what one client
sends. An aggregation protocol changes who sees it: the clients and the
server run a protocol whose output is the sum of the surviving clients'
updates (:func:`gi_lib.fl.aggregate`), and the question is what else each
party learns on the way. Threat model: an honest-but-curious server that
follows the protocol and keeps every byte it receives (for the encrypted
protocols, together with fewer than their threshold of colluding clients).

Every protocol runs on one harness, inside one process:

* each party (the server, ``n`` clients) is a :class:`Party` object; it knows
  only what it was built with (its own update, public parameters) and the
  :class:`Message` objects it receives, whose payloads are serialised bytes,
  so byte counts are real;
* :meth:`AggregationProtocol.run` drives the rounds: in each round every
  active client acts, then the server; each party's CPU seconds are measured
  around its own work (``time.process_time``);
* a :class:`Transcript` records every message (round, sender, receiver,
  kind, bytes) and the CPU seconds per party and round; ``view(party)`` is
  everything that party received (the server's view is every byte the
  server saw: what an attack on the protocol may use);
* a :class:`DropoutSchedule` says which clients go silent from which round;
  a protocol that cannot finish raises :class:`ProtocolAbort`.

:class:`PlaintextSum` is the baseline: it reveals every individual update to
the server. Encrypted protocols (secure aggregation, homomorphic encryption)
subclass :class:`AggregationProtocol` with the same result and transcript.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from gi_lib import fl

SERVER = "server"
"""The server's party name."""


def client_name(index: int) -> str:
    """The party name of client ``index`` (0-based)."""
    return f"client {index}"


class ProtocolAbort(RuntimeError):
    """The protocol cannot finish (too few survivors, a malformed message).

    Raised instead of returning a partial aggregate; the message names the
    round and what was missing. When raised by :meth:`AggregationProtocol.run`
    it carries the run's :class:`Transcript` so far as ``transcript`` (what
    every party had seen when the protocol stopped).
    """

    transcript: Transcript | None = None


@dataclass(frozen=True)
class Message:
    """One serialised message on the wire.

    Attributes:
        round: the round it was sent in.
        sender: the sending party's name.
        receiver: the receiving party's name.
        kind: what it carries (``"update"``, ``"public keys"``, ...).
        payload: the bytes sent; only these count as communication.
    """

    round: int
    sender: str
    receiver: str
    kind: str
    payload: bytes

    @property
    def num_bytes(self) -> int:
        return len(self.payload)


@dataclass(frozen=True)
class DropoutSchedule:
    """Which clients go silent, and from which round on.

    A client silent from round ``r`` sends nothing in round ``r`` or later
    (it may still have sent in earlier rounds). Messages to it are still
    sent, and counted.

    Attributes:
        silent_from: client index -> first round it does not act in.
    """

    silent_from: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for client, round_ in self.silent_from.items():
            if int(client) != client or client < 0:
                raise ValueError(
                    f"dropout schedule names client {client!r}; clients are "
                    "numbered 0, 1, ..."
                )
            if int(round_) != round_ or round_ < 0:
                raise ValueError(
                    f"client {client} drops from round {round_!r}; rounds are "
                    "numbered 0, 1, ..."
                )

    @classmethod
    def random(
        cls, num_clients: int, fraction: float, *, from_round: int = 0, seed: int
    ) -> DropoutSchedule:
        """A seeded uniform choice of ``fraction`` of the clients (rounded to
        the nearest count), silent from ``from_round`` on."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {fraction}.")
        count = math.floor(fraction * num_clients + 0.5)
        chosen = np.random.default_rng(seed).choice(num_clients, count, replace=False)
        return cls({int(c): from_round for c in sorted(chosen)})

    def is_active(self, client: int, round: int) -> bool:
        """Whether ``client`` acts in ``round``."""
        start = self.silent_from.get(client)
        return start is None or round < start

    def check(self, num_clients: int, num_rounds: int) -> None:
        """Raise a ValueError unless every entry fits the protocol's run."""
        for client, round_ in self.silent_from.items():
            if client >= num_clients:
                raise ValueError(
                    f"dropout schedule names client {client}, but there are only "
                    f"{num_clients} clients (0 to {num_clients - 1})."
                )
            if round_ >= num_rounds:
                raise ValueError(
                    f"client {client} drops from round {round_}, but the protocol "
                    f"has rounds 0 to {num_rounds - 1}; drop it in one of those "
                    "or leave it out of the schedule."
                )


class Transcript:
    """Every message of one protocol run and each party's CPU time per round.

    Args:
        round_names: what each round is called (``round_names[r]``), for
            per-phase tables; optional.
    """

    def __init__(self, round_names: Sequence[str] = ()) -> None:
        self._messages: list[Message] = []
        self._seconds: dict[tuple[str, int], float] = {}
        self.round_names: tuple[str, ...] = tuple(round_names)

    def record(self, message: Message) -> None:
        """Append a message that was sent."""
        self._messages.append(message)

    def add_seconds(self, party: str, round: int, seconds: float) -> None:
        """Add CPU seconds that ``party`` spent in ``round``."""
        key = (party, round)
        self._seconds[key] = self._seconds.get(key, 0.0) + seconds

    @property
    def messages(self) -> tuple[Message, ...]:
        """All messages, in the order they were sent."""
        return tuple(self._messages)

    @property
    def parties(self) -> tuple[str, ...]:
        """Every party that sent, received or worked, in order of appearance."""
        names: dict[str, None] = {}
        for party, _ in self._seconds:
            names[party] = None
        for message in self._messages:
            names[message.sender] = None
            names[message.receiver] = None
        return tuple(names)

    def bytes_sent(self, party: str, *, round: int | None = None) -> int:
        """Payload bytes ``party`` sent (in ``round``, or in all rounds)."""
        return sum(
            m.num_bytes
            for m in self._messages
            if m.sender == party and (round is None or m.round == round)
        )

    def bytes_received(self, party: str, *, round: int | None = None) -> int:
        """Payload bytes ``party`` received (in ``round``, or in all rounds)."""
        return sum(m.num_bytes for m in self.view(party, round=round))

    def seconds(self, party: str, *, round: int | None = None) -> float:
        """CPU seconds ``party`` spent (in ``round``, or in all rounds)."""
        return sum(
            s
            for (p, r), s in self._seconds.items()
            if p == party and (round is None or r == round)
        )

    def view(self, party: str, *, round: int | None = None) -> tuple[Message, ...]:
        """Everything ``party`` received: what it can learn from, beyond its input.

        ``view(SERVER)`` is every byte the server saw.
        """
        return tuple(
            m
            for m in self._messages
            if m.receiver == party and (round is None or m.round == round)
        )

    def server_view(self) -> ServerView:
        """Every byte the server saw (:meth:`view` of :data:`SERVER`)."""
        return ServerView(self.view(SERVER))

    @property
    def rounds(self) -> tuple[int, ...]:
        """The rounds in which anything was sent or any work was timed."""
        found = {r for _, r in self._seconds} | {m.round for m in self._messages}
        return tuple(sorted(found))

    def round_name(self, round: int) -> str:
        """The name of ``round`` (``"round r"`` when the protocol gave none)."""
        if 0 <= round < len(self.round_names):
            return self.round_names[round]
        return f"round {round}"

    def clients(self) -> tuple[str, ...]:
        """Every party other than the server, in order of appearance."""
        return tuple(p for p in self.parties if p != SERVER)

    def client_seconds(self, *, round: int | None = None) -> dict[str, float]:
        """CPU seconds per client (in ``round``, or in all rounds); clients
        that never worked are left out."""
        return {
            party: self.seconds(party, round=round)
            for party in self.clients()
            if any(p == party for p, _ in self._seconds)
        }

    def mean_client_seconds(self, *, round: int | None = None) -> float:
        """The mean of :meth:`client_seconds` over the clients that worked."""
        values = list(self.client_seconds(round=round).values())
        return float(np.mean(values)) if values else 0.0

    def total_bytes(self, *, round: int | None = None) -> int:
        """Payload bytes of every message (in ``round``, or in all rounds)."""
        return sum(
            m.num_bytes for m in self._messages if round is None or m.round == round
        )

    def bytes_by_kind(self) -> dict[str, int]:
        """Payload bytes per message kind."""
        out: dict[str, int] = {}
        for m in self._messages:
            out[m.kind] = out.get(m.kind, 0) + m.num_bytes
        return out


@dataclass(frozen=True)
class ServerView:
    """Every message the server received: what an attack on the protocol
    (an honest-but-curious server) may use.

    Attributes:
        messages: the messages, in the order they arrived.
    """

    messages: tuple[Message, ...]

    @property
    def num_bytes(self) -> int:
        """Total payload bytes the server saw."""
        return sum(m.num_bytes for m in self.messages)

    def of_kind(self, kind: str) -> tuple[Message, ...]:
        """The messages of one kind (e.g. ``"masked input"``)."""
        return tuple(m for m in self.messages if m.kind == kind)

    def from_party(
        self, sender: str, *, kind: str | None = None
    ) -> tuple[Message, ...]:
        """What ``sender`` sent the server (of ``kind``, if given)."""
        return tuple(
            m
            for m in self.messages
            if m.sender == sender and (kind is None or m.kind == kind)
        )

    def contains(self, needle: bytes) -> bool:
        """Whether any payload holds ``needle`` as a contiguous byte string
        (e.g. a client's serialised plaintext update)."""
        if not needle:
            return True
        return any(needle in m.payload for m in self.messages)


@dataclass(frozen=True)
class NetworkModel:
    """A simple model of the network, to turn a transcript into wall time.

    Each round has an upload phase (clients act in parallel, then send),
    then the server's work, then a download phase (the server's messages):

        T_r = max_c (cpu_c,r + up_c,r / B_c)  [or total up_r / B_s if larger]
              + L + cpu_server,r
              + max(max_c down_c,r / B_c, total down_r / B_s) + L  [if the
                server sends anything in round r]

    with B_c the client bandwidth, B_s the server's, L the one-way latency,
    and bytes counted in bits. Client-to-client messages count as uploads
    of the sender and downloads of the receiver in the same round.

    Attributes:
        client_bandwidth: bits per second of each client's link.
        server_bandwidth: bits per second of the server's link (``None``:
            not a bottleneck).
        latency: one-way latency in seconds.
    """

    client_bandwidth: float = 100e6
    server_bandwidth: float | None = 1e9
    latency: float = 0.05

    def __post_init__(self) -> None:
        if not self.client_bandwidth > 0:
            raise ValueError("client_bandwidth must be positive (bits per second).")
        if self.server_bandwidth is not None and not self.server_bandwidth > 0:
            raise ValueError("server_bandwidth must be positive or None.")
        if not self.latency >= 0:
            raise ValueError("latency must be non-negative (seconds).")

    def round_phases(self, transcript: Transcript, round: int) -> dict[str, float]:
        """Modelled seconds of one round, by phase: ``client compute``,
        ``upload``, ``server compute``, ``download``, ``total``."""
        up: dict[str, int] = {}
        down: dict[str, int] = {}
        for m in transcript.messages:
            if m.round != round:
                continue
            if m.sender == SERVER:
                down[m.receiver] = down.get(m.receiver, 0) + m.num_bytes
            else:
                up[m.sender] = up.get(m.sender, 0) + m.num_bytes
                if m.receiver != SERVER:
                    down[m.receiver] = down.get(m.receiver, 0) + m.num_bytes
        clients = set(transcript.clients())
        cpu = {c: transcript.seconds(c, round=round) for c in clients}
        slowest, compute, upload = 0.0, 0.0, 0.0
        for c in clients:
            t_up = 8 * up.get(c, 0) / self.client_bandwidth
            if cpu[c] + t_up >= slowest:
                slowest, compute, upload = cpu[c] + t_up, cpu[c], t_up
        total_up = 8 * sum(up.values())
        if self.server_bandwidth is not None:
            server_up = total_up / self.server_bandwidth
            if server_up > slowest:
                upload += server_up - slowest
                slowest = server_up
        upload += self.latency if total_up else 0.0
        download = 0.0
        if down:
            download = max(8 * b / self.client_bandwidth for b in down.values())
            if self.server_bandwidth is not None:
                download = max(download, 8 * sum(down.values()) / self.server_bandwidth)
            download += self.latency
        server = transcript.seconds(SERVER, round=round)
        return {
            "client compute": compute,
            "upload": upload,
            "server compute": server,
            "download": download,
            "total": compute + upload + server + download,
        }

    def round_seconds(self, transcript: Transcript, round: int) -> float:
        """Modelled wall time of ``round``."""
        return self.round_phases(transcript, round)["total"]

    def total_seconds(self, transcript: Transcript) -> float:
        """Modelled wall time of the whole run (rounds one after another)."""
        return sum(self.round_seconds(transcript, r) for r in transcript.rounds)


class Party(ABC):
    """One participant. It learns only its own input and what it receives.

    The harness calls :meth:`receive` to deliver a message (which only
    stores it) and :meth:`act` once per round in which the party is active;
    all of a party's work happens in :meth:`act`, which is what is timed.

    Args:
        name: the party's name (:data:`SERVER` or :func:`client_name`).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._inbox: list[Message] = []

    def receive(self, message: Message) -> None:
        """Store a delivered message for the next :meth:`act`."""
        if message.receiver != self.name:
            raise ValueError(
                f"{self.name} was handed a message addressed to {message.receiver}."
            )
        self._inbox.append(message)

    def take_inbox(self) -> list[Message]:
        """The messages received since the last call, oldest first."""
        messages, self._inbox = self._inbox, []
        return messages

    @abstractmethod
    def act(self, round: int) -> list[Message]:
        """Do this round's work on what was received; return what to send."""


class ServerParty(Party):
    """The server: after the last round it holds the protocol's output."""

    def __init__(self) -> None:
        super().__init__(SERVER)

    @abstractmethod
    def output(self) -> tuple[np.ndarray, tuple[int, ...]]:
        """The decoded aggregate (flat) and the clients it sums, in index order.

        Only returns what :meth:`act` computed (it is not timed).
        """

    def encoded_output(self) -> np.ndarray | None:
        """The aggregate as the integers the protocol summed (ring or field
        elements, before decoding to floats), or ``None`` for a protocol
        that sums floats. Used to check a protocol bit for bit."""
        return None


@dataclass(frozen=True)
class UpdateLayout:
    """Shapes of the tensors of one update, to flatten it and back.

    Attributes:
        shapes: one shape per tensor (per trainable parameter).
    """

    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, updates: Sequence[Sequence[torch.Tensor]]) -> UpdateLayout:
        """The common layout of ``updates`` (a ValueError if they differ)."""
        fl.check_updates(updates)
        return cls(tuple(tuple(t.shape) for t in updates[0]))

    @property
    def size(self) -> int:
        """Number of values in one update."""
        return sum(int(np.prod(shape, dtype=np.int64)) for shape in self.shapes)

    def flatten(self, update: Sequence[torch.Tensor]) -> np.ndarray:
        """One update as a flat float32 vector, tensors in order."""
        if not update:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(
            [t.detach().cpu().to(torch.float32).reshape(-1).numpy() for t in update]
        )

    def unflatten(self, vector: np.ndarray) -> tuple[torch.Tensor, ...]:
        """Tensors (on the CPU) from a flat vector of :attr:`size` values."""
        if vector.shape != (self.size,):
            raise ValueError(
                f"expected a flat vector of {self.size} values, got shape "
                f"{vector.shape}."
            )
        out, start = [], 0
        for shape in self.shapes:
            count = int(np.prod(shape, dtype=np.int64))
            part = vector[start : start + count].copy()
            out.append(torch.from_numpy(part).view(shape))
            start += count
        return tuple(out)


@dataclass(frozen=True)
class AggregationResult:
    """What one protocol run produced.

    Attributes:
        aggregate: the server's decoded sum over the survivors, one CPU
            tensor per position of the update (float32 for
            :class:`PlaintextSum`).
        survivors: the indices of the clients the aggregate sums.
        num_clients: how many clients took part.
        transcript: every message and each party's CPU time.
        encoded: the sum as the protocol's integers before decoding (see
            :meth:`ServerParty.encoded_output`), or ``None``.
    """

    aggregate: tuple[torch.Tensor, ...]
    survivors: tuple[int, ...]
    num_clients: int
    transcript: Transcript
    encoded: np.ndarray | None = None

    @property
    def server_view(self) -> ServerView:
        """Every byte the server saw."""
        return self.transcript.server_view()


class AggregationProtocol(ABC):
    """A protocol that sums the clients' updates for the server.

    Subclasses set :attr:`name` and :attr:`num_rounds` and build their
    parties in :meth:`make_parties`; :meth:`run` is the shared harness.
    """

    name = "protocol"
    num_rounds = 1
    round_names: tuple[str, ...] = ()

    def check_setup(self, num_clients: int, size: int) -> None:  # noqa: B027
        """Raise a ValueError when the protocol's parameters cannot work for
        ``num_clients`` clients with updates of ``size`` values (called by
        :meth:`run` before any party is built; nothing to check by default).
        """

    @abstractmethod
    def make_parties(
        self, inputs: Sequence[np.ndarray]
    ) -> tuple[ServerParty, list[Party]]:
        """The server and the clients; ``clients[i]`` is client ``i``.

        Args:
            inputs: each client's update as a flat float32 vector
                (:meth:`UpdateLayout.flatten`); only client ``i`` gets
                ``inputs[i]``.
        """

    def run(
        self,
        updates: Sequence[Sequence[torch.Tensor]],
        *,
        dropouts: DropoutSchedule | None = None,
    ) -> AggregationResult:
        """Run the protocol on one update per client.

        Args:
            updates: each client's update (tensors of the same shapes; cast to
                float32 before they are encoded).
            dropouts: which clients go silent from which round (none by default).

        Returns:
            The aggregate over the survivors, who they are, and the transcript.

        Raises:
            ProtocolAbort: the protocol could not finish (e.g. nobody survived).
        """
        layout = UpdateLayout.of(updates)
        schedule = dropouts or DropoutSchedule()
        schedule.check(len(updates), self.num_rounds)
        self.check_setup(len(updates), layout.size)
        server, clients = self.make_parties([layout.flatten(u) for u in updates])
        parties: dict[str, Party] = {server.name: server}
        for client in clients:
            if client.name in parties:
                raise ValueError(f"two parties are named {client.name!r}.")
            parties[client.name] = client
        transcript = Transcript(self.round_names)

        def turn(party: Party, r: int) -> None:
            start = time.process_time()
            outgoing = party.act(r)
            transcript.add_seconds(party.name, r, time.process_time() - start)
            for message in outgoing:
                if message.sender != party.name or message.round != r:
                    raise ValueError(
                        f"{party.name} sent a message as {message.sender} in round "
                        f"{message.round} during round {r}."
                    )
                if message.receiver not in parties:
                    raise ValueError(
                        f"{party.name} sent a message to {message.receiver!r}, "
                        "who is not a party of this run."
                    )
                transcript.record(message)
                parties[message.receiver].receive(message)

        try:
            for r in range(self.num_rounds):
                for index, client in enumerate(clients):
                    if schedule.is_active(index, r):
                        turn(client, r)
                turn(server, r)
            flat, survivors = server.output()
        except ProtocolAbort as abort:
            abort.transcript = transcript  # what was sent before it stopped
            raise
        return AggregationResult(
            aggregate=layout.unflatten(flat),
            survivors=tuple(survivors),
            num_clients=len(updates),
            transcript=transcript,
            encoded=server.encoded_output(),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class PlaintextSum(AggregationProtocol):
    """No protection: each client sends its update in the clear (float32).

    One round: every surviving client sends its serialised update to the
    server, which decodes and sums them in client order (the same sum as
    :func:`gi_lib.fl.aggregate`). The server's view holds every individual
    update; this is the baseline whose leak encrypted protocols remove, and
    whose bytes (4 per value per client) they are measured against.
    """

    name = "plaintext"
    num_rounds = 1

    def make_parties(
        self, inputs: Sequence[np.ndarray]
    ) -> tuple[ServerParty, list[Party]]:
        names = [client_name(i) for i in range(len(inputs))]
        size = int(inputs[0].shape[0]) if len(inputs) else 0
        server = _SumServer(names, size)
        return server, [_PlainClient(n, x) for n, x in zip(names, inputs, strict=True)]


class _PlainClient(Party):
    """Sends its update, little-endian float32, to the server."""

    def __init__(self, name: str, update: np.ndarray) -> None:
        super().__init__(name)
        self.__update = update

    def act(self, round: int) -> list[Message]:
        payload = self.__update.astype("<f4").tobytes()
        return [Message(round, self.name, SERVER, "update", payload)]


class _SumServer(ServerParty):
    """Decodes every update it receives and adds them in client order."""

    def __init__(self, clients: Sequence[str], size: int) -> None:
        super().__init__()
        self._index = {name: i for i, name in enumerate(clients)}
        self._size = size
        self._sum: np.ndarray | None = None
        self._survivors: tuple[int, ...] = ()

    def act(self, round: int) -> list[Message]:
        received = {}
        for message in self.take_inbox():
            if message.sender not in self._index or message.kind != "update":
                raise ProtocolAbort(
                    f"round {round}: unexpected {message.kind!r} message from "
                    f"{message.sender}."
                )
            vector = np.frombuffer(message.payload, dtype="<f4")
            if vector.shape != (self._size,):
                raise ProtocolAbort(
                    f"round {round}: {message.sender} sent {vector.shape[0]} values, "
                    f"expected {self._size}."
                )
            received[self._index[message.sender]] = vector
        if not received:
            raise ProtocolAbort(
                f"round {round}: no client sent its update; nothing to aggregate."
            )
        order = sorted(received)
        total = received[order[0]].astype(np.float32)  # a copy
        for index in order[1:]:
            total = total + received[index]
        self._sum, self._survivors = total, tuple(order)
        return []

    def output(self) -> tuple[np.ndarray, tuple[int, ...]]:
        if self._sum is None:
            raise ProtocolAbort("the server has not aggregated anything yet.")
        return self._sum, self._survivors
