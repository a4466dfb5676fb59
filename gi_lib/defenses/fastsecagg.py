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
from dataclasses import dataclass

import numpy as np

from gi_lib.defenses import _protocol
from gi_lib.defenses._crypto import KeySource, prg_field, session_id
from gi_lib.defenses._fastshare import FastShare, RecoveryError
from gi_lib.defenses._field import FIELD, PrimeField
from gi_lib.defenses._fixedpoint import FixedPoint
from gi_lib.defenses.aggregation import Message, ProtocolAbort

ROUND_NAMES = ("advertise keys", "sharing", "aggregation")


@dataclass(frozen=True)
class _Setup(_protocol.SharingSetup):
    num_clients: int
    size: int
    scheme: FastShare
    encoding: FixedPoint
    session: bytes

    @property
    def num_blocks(self) -> int:
        return -(-self.size // self.scheme.num_secrets)

    @property
    def field(self) -> PrimeField:
        return self.scheme.field

    @property
    def share_length(self) -> int:
        """Field elements of one client's share (one per block)."""
        return self.num_blocks


class FastSecAgg(_protocol.FieldProtocol):
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
        super().__init__(
            frac_bits=frac_bits,
            clip=clip,
            field=scheme.field if scheme is not None else FIELD,
            seed=seed,
        )
        self.privacy = privacy
        self.parity = parity
        self.scheme = scheme

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

    def public_setup(self, num_clients: int, size: int, source: KeySource) -> _Setup:
        scheme = self.scheme_for(num_clients)
        session = session_id(
            "fastsecagg",
            num_clients,
            size,
            repr(scheme),
            self.encoding,
            source.derive("nonce"),
        )
        return _Setup(num_clients, size, scheme, self.encoding, session)

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


class FastSecAggClient(_protocol.SharingClient):
    """An honest FastSecAgg client.

    Attributes:
        rejected: channel messages it discarded, and why.
        refused: why it refused to send its aggregated share, or ``None``.
    """

    def steps(self) -> tuple[_protocol.Step, ...]:
        return (self._advertise, self._share, self._aggregate)

    def _share(self, round: int) -> list[Message]:
        peers = self._peer_keys()
        if peers is None:
            return []
        setup = self._setup
        scheme = setup.scheme
        secrets = blocks_of(setup.encoding.encode(self._update), scheme)
        randomness = prg_field(
            self._source.derive("sharing randomness", setup.session),
            scheme.num_random * secrets.shape[1],
            scheme.field.p,
        ).reshape(scheme.num_random, -1)
        shares = scheme.share(secrets, randomness)
        return self._send_rows(round, peers, shares, "encrypted shares")

    def _aggregate(self, round: int) -> list[Message]:
        forwarded = [m for m in self.take_inbox() if m.kind == "shares for you"]
        if len(forwarded) != 1 or not self._held:
            return []
        payload = forwarded[0].payload
        try:
            group, start = _protocol.unpack_ids(payload)
        except struct.error:
            raise _protocol.Refusal("malformed forwarded shares") from None
        self._open_rows(
            payload[start:], "share", malformed="malformed forwarded shares"
        )
        if len(set(group)) != len(group) or len(group) < 2:
            raise _protocol.Refusal(
                "the server's list of sharing clients is too short or repeats"
            )
        return self._send_sum(round, group, "share", "aggregated share")


class FastSecAggServer(_protocol.SharingServer):
    """The honest-but-curious FastSecAgg server."""

    not_done = "the server has not recovered anything yet."
    relay = _protocol.Relay(
        "encrypted shares",
        what="shared their update",
        forward="shares for you",
        list_sharers=True,
    )

    def _need(self, round: int, count: int, what: str) -> None:
        if count < 2:
            raise ProtocolAbort(
                f"round {round} ({ROUND_NAMES[round]}): {count} clients {what}; "
                "a sum needs at least 2."
            )

    def _later_round(self, round: int, inbox: list[Message]) -> list[Message]:
        setup = self._setup
        answers = self._field_vectors(
            inbox, self._shared, "aggregated share", setup.num_blocks
        )
        shares = np.zeros((setup.num_clients, setup.num_blocks), dtype=np.int64)
        available = np.zeros(setup.num_clients, dtype=bool)
        for u, share in answers.items():
            shares[u] = share
            available[u] = True
        try:
            blocks = setup.scheme.reconstruct(shares, available)
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


# The parties a FastSecAgg run builds (defined after the protocol).
FastSecAgg.client_class = FastSecAggClient
FastSecAgg.server_class = FastSecAggServer


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
