"""Secure Aggregation (Bonawitz et al., CCS 2017) and SecAgg+ (Bell et al., CCS 2020).

The semi-honest protocol of Bonawitz et al. ("Practical Secure Aggregation
for Privacy-Preserving Machine Learning", CCS 2017, ePrint 2017/281), run on
the aggregation harness (:mod:`gi_lib.defenses.aggregation`): every party is
an object that exchanges serialised messages, all client-to-client traffic
is relayed by the server, and the server's output is the sum of the inputs
of the clients whose masked input arrived (U3).

Rounds (numbered from 0 as in the harness):

0. **advertise keys** -- each client sends two X25519 public keys, c_u^PK
   for its share channels and s_u^PK for its pairwise masks. The server
   sends each client the keys of its neighbours that advertised (U1).
1. **share keys** -- each client draws a self-mask seed b_u, Shamir-shares
   s_u^SK and b_u t-of-(its neighbours and itself), and sends each
   neighbour v its shares encrypted under AES-GCM with the key
   KA(c_u^SK, c_v^PK); the server forwards them (U2: clients that shared).
2. **masked input** -- each client uploads
   y_u = x_u + PRG(b_u) + sum_v +-PRG(KA(s_u^SK, s_v^PK)) mod 2^b, the sum
   over its neighbours v in U2 (+ if u < v, - if u > v), x_u its fixed-point
   encoded update. The server asks each client for the shares of its
   neighbours: b-shares of those in U3, s^SK-shares of those in U2 \\ U3.
3. **unmasking** -- an honest client checks the request (no peer listed both
   alive and dropped, itself not dropped, every listed peer one that shared
   with it, nothing that contradicts an earlier answer, at least t alive)
   and refuses otherwise; it never reveals both kinds of share of one peer.
   The server reconstructs b_u for u in U3 and s_v^SK for v in U2 \\ U3,
   regenerates the masks, and subtracts them.

With ``degree=None`` every client is every other's neighbour (SecAgg);
``degree=k`` uses a random k-regular graph (a Harary graph on a random
ordering of the clients, so each client has k neighbours): SecAgg+.

Design notes: masks are ChaCha20 keystreams, uniform over the whole ring
Z_{2^b}; secrets are shared in 31-bit pieces over p = 2^31 + 11; keys come
from :class:`~gi_lib.defenses._crypto.KeySource` (``os.urandom`` unless a
seed is given, which makes a run repeatable and is for replication only).
Not implemented: the active-adversary variant (signatures, consistency
round).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from gi_lib.defenses._crypto import (
    CHANNEL_OVERHEAD,
    PUBLIC_KEY_BYTES,
    SEED_BYTES,
    ChannelError,
    KeyPair,
    KeySource,
    prg_ring,
    ring_dtype,
    ring_mask,
    session_id,
)
from gi_lib.defenses._fixedpoint import FixedPoint, pack_bits, unpack_bits
from gi_lib.defenses._protocol import (
    KeyedProtocol,
    ProtocolClient,
    ProtocolServer,
    SessionKeys,
    Step,
    pack_ids,
    unpack_ids,
)
from gi_lib.defenses._shamir import (
    NotEnoughShares,
    Shamir,
    bytes_to_pieces,
    pieces_to_bytes,
)
from gi_lib.defenses.aggregation import (
    SERVER,
    Message,
    ProtocolAbort,
    client_name,
)

PIECES = len(bytes_to_pieces(bytes(SEED_BYTES)))
"""31-bit pieces per 32-byte secret (9)."""
SHARE_BYTES = 4 * PIECES
"""Bytes of one Shamir share of one 32-byte secret."""
KEY_ENTRY = 4 + 2 * PUBLIC_KEY_BYTES
"""Bytes per neighbour in the server's key list (index, two keys)."""
SHARE_PLAINTEXT = 8 + 2 * SHARE_BYTES
"""Bytes of an encrypted-share plaintext: u, v and the shares of s^SK, b."""
SHARE_ENTRY = 4 + SHARE_PLAINTEXT + CHANNEL_OVERHEAD
"""Bytes per peer of the round-1 upload (peer index and AES-GCM blob)."""
UNMASK_ENTRY = 4 + 1 + SHARE_BYTES
"""Bytes per peer of the round-3 answer (peer, kind, share)."""

ROUND_NAMES = ("advertise keys", "share keys", "masked input", "unmasking")
_ALIVE, _DROPPED = 0, 1


# --- neighbour graphs -------------------------------------------------------


def harary_graph(
    num_clients: int, degree: int, seed: bytes
) -> tuple[frozenset[int], ...]:
    """A random ``degree``-regular graph: clients in a random order (from the
    ChaCha20 keystream of ``seed``), each joined to the degree/2 clients on
    either side of it on the ring.

    Returns:
        For each client, the set of its neighbours (itself excluded).
    """
    if degree % 2 or not 2 <= degree < num_clients:
        raise ValueError(
            f"a SecAgg+ degree must be even and between 2 and num_clients - 1 "
            f"({num_clients - 1}), got {degree}; use degree=None for SecAgg's "
            "complete graph."
        )
    order = np.argsort(prg_ring(seed, num_clients, 64, label=b"graph"), kind="stable")
    position = np.empty(num_clients, dtype=np.int64)
    position[order] = np.arange(num_clients)
    half = degree // 2
    out = []
    for u in range(num_clients):
        p = int(position[u])
        out.append(
            frozenset(
                int(order[(p + o) % num_clients])
                for o in range(-half, half + 1)
                if o != 0
            )
        )
    return tuple(out)


def complete_graph(num_clients: int) -> tuple[frozenset[int], ...]:
    """Everyone is everyone else's neighbour (SecAgg)."""
    everyone = frozenset(range(num_clients))
    return tuple(everyone - {u} for u in range(num_clients))


def default_threshold(holders: int) -> int:
    """ceil(2h/3) of the h share holders: above h/2, and it tolerates
    floor(h/3) dropped holders (the paper's "up to 1/3 users failing")."""
    return -(-2 * holders // 3)


def _binomial_tail_below(n: int, p_alive: float, t: int) -> float:
    """P[Binomial(n, p_alive) < t]."""
    return sum(
        math.comb(n, i) * p_alive**i * (1 - p_alive) ** (n - i) for i in range(t)
    )


def secaggplus_parameters(
    num_clients: int, dropout: float, *, failure: float = 1e-3
) -> tuple[int | None, int]:
    """A SecAgg+ degree and threshold that survive random dropouts.

    Starting from degree k = 2 * ceil(log2 n) (Bell et al.'s k = O(log n)),
    raises k (even) until, with threshold t = floor((k + 1)/2) + 1 of the
    k + 1 share holders, the chance that some client keeps fewer than t
    live holders under independent dropout at rate ``dropout`` is below
    ``failure`` (a union bound over the clients). Returns ``(None, t)`` --
    the complete graph with SecAgg's threshold -- when no smaller degree does.

    Raises:
        ValueError: ``dropout`` is not below 1/2 (a threshold above half the
            holders cannot be met by the survivors on average).
    """
    if not 0.0 <= dropout < 0.5:
        raise ValueError(
            f"SecAgg+ needs a dropout rate below 1/2 (threshold above half the "
            f"share holders), got {dropout}."
        )
    k = 2 * max(1, math.ceil(math.log2(max(num_clients, 2))))
    while k < num_clients - 1:
        holders = k + 1
        t = holders // 2 + 1
        if num_clients * _binomial_tail_below(holders, 1 - dropout, t) < failure:
            return k, t
        k += 2
    return None, default_threshold(num_clients)


# --- the byte model ---------------------------------------------------------


def client_bytes(
    num_clients: int, size: int, bits: int, *, degree: int | None = None
) -> dict[str, int]:
    """Bytes one client sends and receives in a run without dropouts.

    Args:
        num_clients: n.
        size: values per update (m).
        bits: ring bits b (R = 2^b).
        degree: SecAgg+ neighbours k, ``None`` for SecAgg (k = n - 1).

    Returns:
        ``sent``, ``received`` and ``total`` bytes, and ``masked input`` (the
        upload of the masked vector alone).
    """
    k = num_clients - 1 if degree is None else degree
    masked = math.ceil(size * bits / 8)
    sent = 2 * PUBLIC_KEY_BYTES + k * SHARE_ENTRY + masked + 4 + (k + 1) * UNMASK_ENTRY
    received = (4 + k * KEY_ENTRY) + k * SHARE_ENTRY + (8 + 4 * (k + 1))
    return {
        "sent": sent,
        "received": received,
        "total": sent + received,
        "masked input": masked,
    }


def expansion(
    num_clients: int, size: int, input_bits: int, *, degree: int | None = None
) -> float:
    """Our protocol's communication expansion over sending ``input_bits``-bit
    values in the clear: a client's bytes sent and received, with the ring
    just wide enough for the sum (b = input_bits + ceil(log2 n)), over
    size * input_bits / 8."""
    bits = input_bits + math.ceil(math.log2(num_clients))
    clear = size * input_bits / 8
    return client_bytes(num_clients, size, bits, degree=degree)["total"] / clear


def idealised_expansion(
    num_clients: int,
    size: int,
    input_bits: int,
    *,
    key_bits: int = 256,
    share_bits: int = 256,
) -> float:
    """The expansion with an idealised accounting: per client 2n keys and
    5n - 4 secret-sized shares of ``key_bits``/``share_bits`` each (no
    indices, nonces or tags), plus m * ceil(log2 R) bits, over m * input bits.

    This accounting (our reconstruction, not quoted from the paper)
    reproduces both figures of the paper's abstract to the digits given:
    1.734 for n = 2^10, m = 2^20 and 1.984 for n = 2^14, m = 2^24.
    """
    n = num_clients
    bits = input_bits + math.ceil(math.log2(n))
    total = 2 * n * key_bits + (5 * n - 4) * share_bits + size * bits
    return total / (size * input_bits)


# --- wire formats -----------------------------------------------------------


def _shares_to_bytes(shares: np.ndarray) -> bytes:
    return np.asarray(shares, dtype="<u4").tobytes()


def _shares_from_bytes(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<u4").astype(np.int64)


@dataclass(frozen=True)
class _Setup(SessionKeys):
    """Public parameters every party knows."""

    num_clients: int
    size: int
    threshold: int
    encoding: FixedPoint
    session: bytes
    neighbours: tuple[frozenset[int], ...]

    @property
    def bits(self) -> int:
        assert self.encoding.bits is not None
        return self.encoding.bits

    @property
    def shamir(self) -> Shamir:
        return Shamir(self.threshold, self.num_clients)

    def mask_seed(self, own: KeyPair, peer_public: bytes, u: int, v: int) -> bytes:
        return self.pair_key("mask", own, peer_public, u, v)


# --- the protocol -----------------------------------------------------------


class SecAgg(KeyedProtocol):
    """Secure Aggregation (Bonawitz et al., CCS 2017); SecAgg+ with ``degree``.

    Args:
        frac_bits: fixed-point fractional bits of the encoded updates.
        clip: updates are clipped to [-clip, clip] before encoding.
        bits: the ring Z_{2^bits} the masked sums live in (1..64).
        threshold: t, the number of share holders needed to unmask a client
            (``None``: ceil(2h/3) of the h = n (SecAgg) or k + 1
            (SecAgg+) holders). Must be above h/2, so that a server that
            tells clients different survivor sets cannot collect t shares of
            both kinds for one client.
        degree: ``None`` for SecAgg's complete graph, or an even k for SecAgg+
            (each client's masks and shares are with k neighbours).
        seed: ``None`` draws every key and seed from ``os.urandom``; an int
            or bytes makes the run repeatable (replication only).

    Raises:
        ValueError: at set-up (:meth:`check_setup`), for a threshold above
            the number of share holders or not above half of them, a ring
            too small for the sum, or a bad degree.
    """

    num_rounds = 4
    round_names = ROUND_NAMES

    def __init__(
        self,
        *,
        frac_bits: int = 16,
        clip: float = 1.0,
        bits: int = 32,
        threshold: int | None = None,
        degree: int | None = None,
        seed: int | bytes | None = None,
    ) -> None:
        self.encoding = FixedPoint(frac_bits=frac_bits, clip=clip, bits=bits)
        if threshold is not None and (int(threshold) != threshold or threshold < 1):
            raise ValueError(f"threshold must be a positive integer, got {threshold}.")
        if degree is not None and (int(degree) != degree or degree < 2 or degree % 2):
            raise ValueError(
                f"degree must be an even integer >= 2 (SecAgg+) or None (SecAgg), "
                f"got {degree}."
            )
        self.threshold = threshold
        self.degree = degree
        self.seed = seed
        self.name = "secagg+" if degree is not None else "secagg"

    def holders(self, num_clients: int) -> int:
        """How many clients hold shares of each client's secrets (itself included)."""
        return num_clients if self.degree is None else self.degree + 1

    def threshold_for(self, num_clients: int) -> int:
        """The threshold t used with ``num_clients`` clients."""
        if self.threshold is not None:
            return int(self.threshold)
        return default_threshold(self.holders(num_clients))

    def check_setup(self, num_clients: int, size: int) -> None:
        if size < 1:
            raise ValueError("SecAgg needs updates with at least one value.")
        if self.degree is not None and self.degree >= num_clients:
            raise ValueError(
                f"SecAgg+ degree {self.degree} needs more than {self.degree} "
                f"clients, got {num_clients}; lower the degree or use "
                "degree=None (SecAgg)."
            )
        holders = self.holders(num_clients)
        t = self.threshold_for(num_clients)
        if t > holders:
            raise ValueError(
                f"threshold {t} is above the {holders} share holders of each client "
                f"({num_clients} clients"
                + (f", degree {self.degree}" if self.degree else "")
                + f"); use a threshold of at most {holders}."
            )
        if 2 * t <= holders:
            raise ValueError(
                f"threshold {t} is not above half of the {holders} share holders; "
                "a server could then collect both kinds of share of one client. "
                f"Use a threshold of at least {holders // 2 + 1}."
            )
        self.encoding.check(num_clients)

    def public_setup(self, num_clients: int, size: int, source: KeySource) -> _Setup:
        n = num_clients
        public_nonce = source.derive("session nonce")
        session = session_id(
            "secagg",
            n,
            size,
            self.encoding,
            self.threshold_for(n),
            self.degree,
            public_nonce,
        )
        graph = self._graph(n, source, public_nonce)
        return _Setup(n, size, self.threshold_for(n), self.encoding, session, graph)

    def _graph(
        self, n: int, source: KeySource, public_nonce: bytes
    ) -> tuple[frozenset[int], ...]:
        if self.degree is None:
            return complete_graph(n)
        return harary_graph(n, self.degree, source.derive("graph", public_nonce))

    def neighbour_graph(self, num_clients: int) -> tuple[frozenset[int], ...]:
        """The neighbour sets a run with ``num_clients`` clients uses (the
        same graph as :meth:`run` only when ``seed`` is given; a public
        parameter of the run)."""
        source = KeySource(self.seed)
        return self._graph(num_clients, source, source.derive("session nonce"))

    def __repr__(self) -> str:
        return (
            f"SecAgg(bits={self.encoding.bits}, frac_bits={self.encoding.frac_bits}, "
            f"clip={self.encoding.clip}, threshold={self.threshold}, "
            f"degree={self.degree})"
        )


class SecAggClient(ProtocolClient):
    """An honest SecAgg client.

    Attributes:
        rejected: channel messages it discarded (why), e.g. a tampered share.
        refused: why it refused the server's unmasking request, or ``None``.
    """

    acts_after_refusal = frozenset({3})  # to repeat its refusal when asked again

    def __init__(
        self, index: int, update: np.ndarray, setup: _Setup, source: KeySource
    ) -> None:
        super().__init__(index, update, setup, source)
        self._peer_keys: dict[int, tuple[bytes, bytes]] = {}
        self._ciphertexts: dict[int, bytes] = {}
        self._own_shares: np.ndarray | None = None
        self._revealed: dict[int, int] = {}
        self._opened: dict[int, np.ndarray] = {}
        self._bad: set[int] = set()

    def steps(self) -> tuple[Step, ...]:
        return (self._advertise, self._share_keys, self._masked_input, self._unmask)

    # round 0
    def _advertise(self, round: int) -> list[Message]:
        self._c = KeyPair.generate(self._source, "c", self._setup.session)
        self._s = KeyPair.generate(self._source, "s", self._setup.session)
        payload = self._c.public + self._s.public
        return [Message(round, self.name, SERVER, "public keys", payload)]

    # round 1
    def _share_keys(self, round: int) -> list[Message]:
        lists = [m for m in self.take_inbox() if m.kind == "key list"]
        if not lists:
            return []
        if len(lists) > 1:
            return self._refuse(round, "the server sent two key lists")
        payload = lists[0].payload
        (count,) = struct.unpack_from("<I", payload, 0)
        if len(payload) != 4 + count * KEY_ENTRY:
            return self._refuse(round, "malformed key list")
        keys = {}
        for j in range(count):
            off = 4 + j * KEY_ENTRY
            (v,) = struct.unpack_from("<I", payload, off)
            c_pk = payload[off + 4 : off + 4 + PUBLIC_KEY_BYTES]
            s_pk = payload[off + 4 + PUBLIC_KEY_BYTES : off + KEY_ENTRY]
            if v not in self._setup.neighbours[self.index] or v in keys:
                return self._refuse(
                    round, f"key list names client {v}, not a neighbour once"
                )
            keys[v] = (c_pk, s_pk)
        all_keys = [k for pair in keys.values() for k in pair] + [
            self._c.public,
            self._s.public,
        ]
        if len(set(all_keys)) != len(all_keys):
            return self._refuse(round, "two advertised public keys are equal")
        if len(keys) + 1 < self._setup.threshold:
            return self._refuse(
                round,
                f"only {len(keys) + 1} share holders advertised keys, fewer than the "
                f"threshold {self._setup.threshold}",
            )
        self._peer_keys = keys
        for v, (c_pk, _) in keys.items():
            self._channel.add_peer(
                client_name(v), self._setup.channel_key(self._c, c_pk, self.index, v)
            )
        self._b = self._source.derive("self mask", self._setup.session)
        holders = sorted([*keys, self.index])
        secrets = np.concatenate(
            [bytes_to_pieces(self._s.private_bytes()), bytes_to_pieces(self._b)]
        )
        shares = self._setup.shamir.share(
            secrets,
            self._source.derive("shamir", self._setup.session),
            points=[h + 1 for h in holders],
        )
        out = bytearray()
        for row, v in zip(shares, holders, strict=True):
            if v == self.index:
                self._own_shares = row
                continue
            plaintext = struct.pack("<II", self.index, v) + _shares_to_bytes(row)
            out += struct.pack("<I", v) + self._channel.seal(
                client_name(v), round, plaintext
            )
        return [Message(round, self.name, SERVER, "encrypted shares", bytes(out))]

    # round 2
    def _masked_input(self, round: int) -> list[Message]:
        bundles = [m for m in self.take_inbox() if m.kind == "shares for you"]
        if not bundles or self._own_shares is None:
            return []
        if len(bundles) > 1:
            return self._refuse(round, "the server forwarded shares twice")
        payload = bundles[0].payload
        if len(payload) % SHARE_ENTRY:
            return self._refuse(round, "malformed forwarded shares")
        for off in range(0, len(payload), SHARE_ENTRY):
            (u,) = struct.unpack_from("<I", payload, off)
            if u not in self._peer_keys:
                self.rejected.append(f"shares from client {u}, who is not a neighbour")
                continue
            if u in self._ciphertexts:
                self.rejected.append(f"a second ciphertext from client {u} (replay)")
                continue
            self._ciphertexts[u] = payload[off + 4 : off + SHARE_ENTRY]
        if len(self._ciphertexts) + 1 < self._setup.threshold:
            return self._refuse(
                round,
                f"only {len(self._ciphertexts) + 1} share holders shared keys, fewer "
                f"than the threshold {self._setup.threshold}",
            )
        setup = self._setup
        bits = setup.bits
        dtype = ring_dtype(bits)
        y = setup.encoding.encode(self._update)
        y = y + prg_ring(self._b, setup.size, bits)
        for v in sorted(self._ciphertexts):
            seed = setup.mask_seed(self._s, self._peer_keys[v][1], self.index, v)
            mask = prg_ring(seed, setup.size, bits)
            y = y + mask if self.index < v else y - mask
        y &= dtype.type(ring_mask(bits))
        return [Message(round, self.name, SERVER, "masked input", pack_bits(y, bits))]

    # round 3
    def _unmask(self, round: int) -> list[Message]:
        messages = [m for m in self.take_inbox() if m.kind == "unmask request"]
        if not messages:
            return []
        out: list[Message] = []
        for message in messages:
            out.extend(self.answer_unmask_request(round, message.payload))
        return out

    def answer_unmask_request(self, round: int, payload: bytes) -> list[Message]:
        """Answer one unmasking request (alive ids, dropped ids).

        Refuses -- sends a ``"refusal"`` and never any share again -- when a
        peer is listed both alive and dropped, when this client is listed as
        dropped or not listed alive, when a listed peer did not share with
        it, when a peer's status contradicts an earlier answer, or when fewer
        than t holders are alive.
        """
        if self.refused is not None:
            return self._refuse(round, self.refused)
        try:
            alive, off = unpack_ids(payload)
            dropped, off = unpack_ids(payload, off)
            if off != len(payload):
                raise ValueError
        except (struct.error, ValueError):
            return self._refuse(round, "malformed unmasking request")
        both = sorted(set(alive) & set(dropped))
        if both:
            return self._refuse(
                round,
                f"asked for both shares of client {both[0]} (listed alive and dropped)",
            )
        if self.index in dropped or self.index not in alive:
            return self._refuse(round, "asked to treat itself as dropped")
        if len(set(alive)) != len(alive) or len(set(dropped)) != len(dropped):
            return self._refuse(round, "a client listed twice")
        unknown = sorted(
            (set(alive) | set(dropped)) - set(self._ciphertexts) - {self.index}
        )
        if unknown:
            return self._refuse(
                round,
                f"asked about client {unknown[0]}, who did not share keys with it",
            )
        for v, kind in [(v, _ALIVE) for v in alive] + [(v, _DROPPED) for v in dropped]:
            if self._revealed.get(v, kind) != kind:
                return self._refuse(
                    round,
                    f"asked for the other share of client {v} after revealing one",
                )
        if len(alive) < self._setup.threshold:
            return self._refuse(
                round,
                f"only {len(alive)} clients listed alive, fewer than the threshold "
                f"{self._setup.threshold}",
            )
        out = bytearray()
        entries = [(v, _ALIVE) for v in sorted(alive)] + [
            (v, _DROPPED) for v in sorted(dropped)
        ]
        for v, kind in entries:
            shares = self._shares_of(v, round)
            if shares is None:
                continue
            self._revealed[v] = kind
            part = shares[:PIECES] if kind == _DROPPED else shares[PIECES:]
            out += struct.pack("<IB", v, kind) + _shares_to_bytes(part)
        header = struct.pack("<I", len(out) // UNMASK_ENTRY)
        return [Message(round, self.name, SERVER, "unmask shares", header + bytes(out))]

    def _shares_of(self, v: int, round: int) -> np.ndarray | None:
        """The shares this client holds of v's (s^SK, b), or None if invalid."""
        if v == self.index:
            return self._own_shares
        if v in self._opened:
            return self._opened[v]
        blob = self._ciphertexts.get(v)
        if blob is None or v in self._bad:
            return None
        try:
            plaintext = self._channel.open(client_name(v), 1, blob)
        except ChannelError as error:
            self.rejected.append(str(error))
            self._bad.add(v)
            return None
        sender, receiver = struct.unpack_from("<II", plaintext, 0)
        if (sender, receiver) != (v, self.index) or len(plaintext) != SHARE_PLAINTEXT:
            self.rejected.append(
                f"shares from client {v} name clients {sender} -> {receiver}"
            )
            self._bad.add(v)
            return None
        shares = _shares_from_bytes(plaintext[8:])
        self._opened[v] = shares
        return shares


class SecAggServer(ProtocolServer):
    """The honest-but-curious SecAgg server."""

    not_done = "the server has not unmasked anything yet."

    def __init__(self, setup: _Setup) -> None:
        super().__init__(setup)
        self._public: dict[int, tuple[bytes, bytes]] = {}
        self._u2: set[int] = set()
        self._masked: dict[int, np.ndarray] = {}

    def _need(self, round: int, alive: set[int], what: str) -> None:
        """Abort unless every client in ``alive`` keeps t live share holders."""
        t = self._setup.threshold
        for u in sorted(alive):
            live = len((self._setup.neighbours[u] & alive) | {u})
            if live < t:
                raise ProtocolAbort(
                    f"round {round} ({ROUND_NAMES[round]}): only {live} of client "
                    f"{u}'s share holders {what}, fewer than the threshold {t}; "
                    "the protocol stops without an output."
                )
        if not alive:
            raise ProtocolAbort(
                f"round {round} ({ROUND_NAMES[round]}): no client {what}; nothing to "
                "aggregate."
            )

    def act(self, round: int) -> list[Message]:
        inbox = self.take_inbox()
        setup = self._setup
        if round == 0:
            for m in inbox:
                u = self._index(m)
                if (
                    u is not None
                    and m.kind == "public keys"
                    and m.num_bytes == 2 * PUBLIC_KEY_BYTES
                ):
                    self._public[u] = (
                        m.payload[:PUBLIC_KEY_BYTES],
                        m.payload[PUBLIC_KEY_BYTES:],
                    )
            self._need(round, set(self._public), "advertised keys")
            out = []
            for u in sorted(self._public):
                peers = sorted(setup.neighbours[u] & set(self._public))
                payload = struct.pack("<I", len(peers)) + b"".join(
                    struct.pack("<I", v) + self._public[v][0] + self._public[v][1]
                    for v in peers
                )
                out.append(Message(round, SERVER, client_name(u), "key list", payload))
            return out
        if round == 1:
            shared, forwarded = self._relay(inbox, "encrypted shares", SHARE_ENTRY)
            self._u2.update(shared)
            self._need(round, self._u2, "shared keys")
            return self._forward(round, sorted(self._u2), forwarded, "shares for you")
        if round == 2:
            expected = math.ceil(setup.size * setup.bits / 8)
            for m in inbox:
                u = self._index(m)
                if (
                    u in self._u2
                    and m.kind == "masked input"
                    and m.num_bytes == expected
                ):
                    self._masked[u] = unpack_bits(m.payload, setup.size, setup.bits)
            u3 = set(self._masked)
            self._need(round, u3, "sent a masked input")
            return [self.unmask_request(round, u, u3) for u in sorted(u3)]
        return self._finish(round, inbox)

    def unmask_request(self, round: int, u: int, u3: set[int]) -> Message:
        """What the server asks client u for: b-shares of its neighbours in
        U3 (and its own), s^SK-shares of those in U2 \\ U3."""
        near = self._setup.neighbours[u] & self._u2
        alive = sorted((near & u3) | {u})
        dropped = sorted(near - u3)
        return Message(
            round,
            SERVER,
            client_name(u),
            "unmask request",
            pack_ids(alive) + pack_ids(dropped),
        )

    def _finish(self, round: int, inbox: list[Message]) -> list[Message]:
        setup = self._setup
        shamir = setup.shamir
        u3 = set(self._masked)
        dropped = self._u2 - u3
        collected: dict[tuple[int, int], dict[int, np.ndarray]] = {}
        for m in inbox:
            holder = self._index(m)
            if holder is None or m.kind != "unmask shares":
                continue
            if m.num_bytes < 4:
                continue
            (count,) = struct.unpack_from("<I", m.payload, 0)
            body = m.payload[4:]
            if len(body) != count * UNMASK_ENTRY:
                continue
            for pos in range(0, len(body), UNMASK_ENTRY):
                v, kind = struct.unpack_from("<IB", body, pos)
                share = _shares_from_bytes(body[pos + 5 : pos + UNMASK_ENTRY])
                collected.setdefault((v, kind), {})[holder + 1] = share
        refusals = self._refusals(inbox)
        needed = [(u, _ALIVE) for u in sorted(u3)] + [
            (v, _DROPPED) for v in sorted(dropped)
        ]
        secrets: dict[tuple[int, int], bytes] = {}
        for v, kind in needed:
            got = collected.get((v, kind), {})
            what = "self-mask seed b" if kind == _ALIVE else "mask key s^SK"
            try:
                points = sorted(got)
                pieces = shamir.reconstruct(
                    points,
                    np.stack([got[p] for p in points])
                    if points
                    else np.zeros((0, PIECES)),
                )
            except NotEnoughShares:
                raise ProtocolAbort(
                    f"round {round} (unmasking): only {len(got)} shares of client "
                    f"{v}'s {what} arrived, fewer than the threshold "
                    f"{setup.threshold}; the protocol stops without an output"
                    + (f" (refusals: {'; '.join(refusals)})" if refusals else "")
                    + "."
                ) from None
            try:
                secrets[(v, kind)] = pieces_to_bytes(pieces, SEED_BYTES)
            except ValueError:
                raise ProtocolAbort(
                    f"round {round}: the shares of client {v}'s {what} are "
                    "inconsistent."
                ) from None
        bits, size = setup.bits, setup.size
        dtype = ring_dtype(bits)
        total = np.zeros(size, dtype=dtype)
        for u in sorted(u3):
            total += self._masked[u]
            total -= prg_ring(secrets[(u, _ALIVE)], size, bits)
        for v in sorted(dropped):
            key = KeyPair.from_private_bytes(secrets[(v, _DROPPED)])
            if key.public != self._public[v][1]:
                raise ProtocolAbort(
                    f"round {round}: client {v}'s reconstructed mask key does not "
                    "match the key it advertised."
                )
            for u in sorted(setup.neighbours[v] & u3):
                seed = setup.mask_seed(key, self._public[u][1], v, u)
                mask = prg_ring(seed, size, bits)
                # u added +mask if u < v, -mask otherwise: take it back out.
                total = total - mask if u < v else total + mask
        total &= dtype.type(ring_mask(bits))
        self._sum = total
        self._survivors = tuple(sorted(u3))
        return []


# The parties a SecAgg run builds (defined after the protocol).
SecAgg.client_class = SecAggClient
SecAgg.server_class = SecAggServer
