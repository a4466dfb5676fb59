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

from gi_lib.defenses import _protocol
from gi_lib.defenses._crypto import KeySource, prg_field, session_id
from gi_lib.defenses._field import FIELD, PrimeField
from gi_lib.defenses._fixedpoint import FixedPoint
from gi_lib.defenses.aggregation import SERVER, Message, ProtocolAbort, client_name

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
class _Setup(_protocol.SharingSetup):
    num_clients: int
    code: MaskCode
    encoding: FixedPoint
    session: bytes

    @property
    def size(self) -> int:
        return self.code.size

    @property
    def field(self) -> PrimeField:
        return self.code.field

    @property
    def share_length(self) -> int:
        """Field elements of one encoded mask."""
        return self.code.piece_length


def default_parameters(num_clients: int, dropout: float) -> tuple[int, int]:
    """``(T, U)`` for a dropout rate (our choice; the paper's could not be read):
    ``U = N - round(dropout * N)`` users must answer the last round and
    ``T = floor(U / 2)`` may collude, so each user's mask is cut into
    ``U - T = ceil(U / 2)`` pieces whatever the dropout rate."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
    target = max(num_clients - math.floor(dropout * num_clients + 0.5), 1)
    return target // 2, target


class LightSecAgg(_protocol.FieldProtocol):
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
        super().__init__(frac_bits=frac_bits, clip=clip, field=field, seed=seed)
        self.privacy = int(privacy)
        self.target = int(target)

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

    def public_setup(self, num_clients: int, size: int, source: KeySource) -> _Setup:
        session = session_id(
            "lightsecagg",
            num_clients,
            size,
            self.privacy,
            self.target,
            self.encoding,
            source.derive("session nonce"),
        )
        code = self.code(num_clients, size)
        _ = code.encoding_matrix  # public, computed once before the run
        return _Setup(num_clients, code, self.encoding, session)

    def __repr__(self) -> str:
        return (
            f"LightSecAgg(T={self.privacy}, U={self.target}, frac_bits="
            f"{self.encoding.frac_bits}, clip={self.encoding.clip})"
        )


class LightSecAggClient(_protocol.SharingClient):
    """An honest LightSecAgg user.

    Attributes:
        rejected: channel messages it discarded, and why.
        refused: why it refused the server's survivor list, or ``None``.
    """

    def __init__(
        self, index: int, update: np.ndarray, setup: _Setup, source: KeySource
    ) -> None:
        super().__init__(index, update, setup, source)
        self._mask: np.ndarray | None = None

    def steps(self) -> tuple[_protocol.Step, ...]:
        return (
            self._advertise,
            self._share_mask,
            self._store_masks,
            self._masked_input,
            self._recover,
        )

    def _share_mask(self, round: int) -> list[Message]:
        peers = self._peer_keys()
        if peers is None:
            return []
        setup, code = self._setup, self._setup.code
        p = code.field.p
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
        return self._send_rows(round, peers, encoded, "encoded masks")

    def _store_masks(self, round: int) -> list[Message]:
        forwarded = [m for m in self.take_inbox() if m.kind == "masks for you"]
        if self._mask is None or len(forwarded) != 1:
            self._mask = None  # nothing to mask with: it takes no further part
            return []
        self._open_rows(
            forwarded[0].payload,
            "encoded mask",
            malformed="malformed forwarded masks",
        )
        return []

    def _masked_input(self, round: int) -> list[Message]:
        self.take_inbox()
        if self._mask is None:
            return []
        setup, code = self._setup, self._setup.code
        masked = code.field.add(setup.encoding.encode(self._update), self._mask)
        payload = _protocol.pack_field(masked, code.field)
        return [Message(round, self.name, SERVER, "masked input", payload)]

    def _recover(self, round: int) -> list[Message]:
        lists = [m for m in self.take_inbox() if m.kind == "survivors"]
        if len(lists) != 1:
            return []
        code = self._setup.code
        try:
            survivors, _ = _protocol.unpack_ids(lists[0].payload)
        except struct.error:
            raise _protocol.Refusal("malformed survivor list") from None
        if len(set(survivors)) != len(survivors):
            raise _protocol.Refusal("a survivor listed twice")
        if len(survivors) < code.target:
            raise _protocol.Refusal(
                f"only {len(survivors)} survivors listed, fewer than U = "
                f"{code.target}: "
                "their aggregate could single out a user's mask"
            )
        return self._send_sum(round, survivors, "mask", "aggregated mask")


class LightSecAggServer(_protocol.SharingServer):
    """The honest-but-curious LightSecAgg server."""

    not_done = "the server has not decoded anything yet."
    relay = _protocol.Relay(
        "encoded masks", what="shared their masks", forward="masks for you"
    )

    def __init__(self, setup: _Setup) -> None:
        super().__init__(setup)
        self._masked: dict[int, np.ndarray] = {}

    def _later_round(self, round: int, inbox: list[Message]) -> list[Message]:
        code = self._setup.code
        if round == 2:  # the users store their encoded masks; nothing to relay
            return []
        if round == 3:
            self._masked.update(
                self._field_vectors(inbox, self._shared, "masked input", code.size)
            )
            self._need(round, len(self._masked), "sent a masked input")
            survivors = sorted(self._masked)
            listing = _protocol.pack_ids(survivors)
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
        answers = self._field_vectors(
            inbox, self._masked, "aggregated mask", code.piece_length
        )
        refusals = self._refusals(inbox)
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


# The parties a LightSecAgg run builds (defined after the protocol).
LightSecAgg.client_class = LightSecAggClient
LightSecAgg.server_class = LightSecAggServer
