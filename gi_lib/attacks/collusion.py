"""What the threshold of a secure aggregation protocol, and time, give away.

Three attacks on what the encrypted-aggregation protocols of
:mod:`gi_lib.defenses` reveal, all exact (integers in, integers out):

* :func:`replay_unmasking` -- the server, with colluding clients, runs the
  protocol's last (unmasking) round a second time as if the target had
  dropped, and asks only its colluders. The honest round gives the sum over
  the survivors, the replay the sum without the target: their difference is
  the target's update, exactly. Honest SecAgg clients refuse to reveal both
  kinds of share of one peer, so the replay needs enough colluders to reach
  the threshold alone: t for SecAgg, U for LightSecAgg. It uses only the
  harness's public party interface (:meth:`AggregationProtocol.make_parties`,
  :meth:`Party.act`, :meth:`Party.receive`): a colluder is a copy of the
  client's state that answers a second, contradicting request, which is
  what a client that does not follow the protocol does.
* :func:`lightsecagg_leaked_pieces` -- how much of one user's LightSecAgg
  mask c colluders' encoded masks determine (rank over F_p): nothing up to
  T, ``c - T`` of the ``U - T`` pieces' worth of linear combinations past T,
  the whole mask from U on.
* :func:`difference_rounds` -- two rounds on the same model over client sets
  that differ by one client (Lam et al., "Gradient Disaggregation", ICML
  2021): the difference of the two decoded aggregates is that client's
  update, whatever the protocol.

Threat model: an honest-but-curious server that keeps every message, plus
colluding clients (replay), or a server that chooses who takes part in which
round (differencing). Nothing here breaks a cryptographic primitive.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gi_lib.defenses.aggregation import (
    AggregationProtocol,
    AggregationResult,
    DropoutSchedule,
    Message,
    Party,
    ProtocolAbort,
    UpdateLayout,
    client_name,
)

MASKED_INPUT = "masked input"
"""The message kind of a masked upload in SecAgg and LightSecAgg."""


@dataclass(frozen=True)
class ReplayResult:
    """What :func:`replay_unmasking` recovered.

    Attributes:
        target: the client whose update was isolated.
        colluders: the clients that answered the replayed round.
        honest_sum: the protocol's honest output, as its integers.
        replay_sum: the replayed output (sum without the target), or None
            when the replay could not finish.
        recovered: ``honest_sum - replay_sum`` in the protocol's ring or
            field (the target's encoded update), or None.
        abort: the replay's error message when it could not finish.
    """

    target: int
    colluders: tuple[int, ...]
    honest_sum: np.ndarray
    replay_sum: np.ndarray | None
    recovered: np.ndarray | None
    abort: str | None

    @property
    def succeeded(self) -> bool:
        return self.recovered is not None


def _modulus(protocol: AggregationProtocol) -> int:
    encoding = getattr(protocol, "encoding", None)
    if encoding is None:
        raise ValueError(
            f"{type(protocol).__name__} has no fixed-point encoding; the replay "
            "attack needs a protocol that sums integers (SecAgg, LightSecAgg)."
        )
    return int(encoding.modulus)


def _fork(party: Party) -> Party:
    """A copy of ``party``'s state that evolves on its own.

    Key objects of the ``cryptography`` package (AES-GCM contexts, X25519
    keys) cannot be copied; they are stateless, so the copy shares them.
    """
    memo: dict[int, object] = {}
    seen: set[int] = set()
    stack: list[object] = [party]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if type(obj).__module__.startswith("cryptography"):
            memo[id(obj)] = obj
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif hasattr(obj, "__dict__"):
            stack.extend(vars(obj).values())
    return copy.deepcopy(party, memo)


def replay_unmasking(
    protocol: AggregationProtocol,
    updates: Sequence[Sequence[torch.Tensor]],
    *,
    target: int,
    colluders: Sequence[int],
) -> ReplayResult:
    """Run ``protocol`` honestly, then replay its unmasking round with the
    target's masked upload left out, asking only ``colluders``.

    The protocol's masked uploads must be sent in round ``num_rounds - 2``
    (kind ``"masked input"``) and unmasked in the last round, as in SecAgg
    and LightSecAgg.

    Args:
        protocol: the protocol (its ``encoding`` fixes the ring or field).
        updates: one update per client.
        target: the client to isolate.
        colluders: clients (not the target) that answer the replayed round.

    Returns:
        The honest and replayed sums and, when the replay finished, the
        target's encoded update.
    """
    n = len(updates)
    if not 0 <= target < n:
        raise ValueError(f"target must be a client index in [0, {n}), got {target}.")
    chosen = tuple(sorted({int(c) for c in colluders}))
    if target in chosen or any(not 0 <= c < n for c in chosen):
        raise ValueError(
            f"colluders must be clients in [0, {n}) other than the target; got "
            f"{list(colluders)} with target {target}."
        )
    modulus = _modulus(protocol)
    layout = UpdateLayout.of(updates)
    protocol.check_setup(n, layout.size)
    server, clients = protocol.make_parties([layout.flatten(u) for u in updates])
    parties: dict[str, Party] = {server.name: server}
    parties.update({c.name: c for c in clients})
    masked_round = protocol.num_rounds - 2
    if masked_round < 0:
        raise ValueError("the protocol has no unmasking round to replay.")

    def deliver(out: list[Message], to: dict[str, Party]) -> None:
        for message in out:
            if message.receiver in to:
                to[message.receiver].receive(message)

    for r in range(masked_round + 1):
        for client in clients:
            deliver(client.act(r), parties)
        if r < masked_round:
            deliver(server.act(r), parties)
    # Everyone has uploaded its masked input; the server has not answered yet.
    fake_server = _fork(server)
    inbox = fake_server.take_inbox()
    for message in inbox:
        if not (message.sender == client_name(target) and message.kind == MASKED_INPUT):
            fake_server.receive(message)
    fakes = {client_name(c): _fork(clients[c]) for c in chosen}
    # The honest run.
    deliver(server.act(masked_round), parties)
    last = masked_round + 1
    for client in clients:
        deliver(client.act(last), parties)
    server.act(last)
    honest = server.encoded_output()
    if honest is None:
        raise ValueError("the protocol returned no encoded output.")
    # The replay: only the colluders hear (and answer) the server's requests.
    abort = None
    replay = None
    try:
        deliver(fake_server.act(masked_round), fakes)  # type: ignore[arg-type]
        for name in sorted(fakes):
            deliver(fakes[name].act(last), {fake_server.name: fake_server})
        fake_server.act(last)
        replay = fake_server.encoded_output()
    except ProtocolAbort as error:
        abort = str(error)
    recovered = None
    if replay is not None:
        recovered = (honest.astype(object) - replay.astype(object)) % modulus
        recovered = recovered.astype(np.uint64)
    return ReplayResult(target, chosen, honest, replay, recovered, abort)


def signed(protocol: AggregationProtocol, encoded: np.ndarray) -> np.ndarray:
    """Encoded integers as signed fixed-point integers (``encoding.to_signed``)."""
    return protocol.encoding.to_signed(encoded)  # type: ignore[attr-defined]


def quantised(
    protocol: AggregationProtocol, update: Sequence[torch.Tensor]
) -> np.ndarray:
    """An update as the protocol's signed fixed-point integers."""
    layout = UpdateLayout(tuple(tuple(t.shape) for t in update))
    return protocol.encoding.quantise(layout.flatten(update))  # type: ignore[attr-defined]


def decoded(
    protocol: AggregationProtocol, encoded: np.ndarray, like: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, ...]:
    """Encoded integers decoded to floats, in the shapes of ``like``."""
    layout = UpdateLayout(tuple(tuple(t.shape) for t in like))
    values = protocol.encoding.decode(encoded).astype(np.float32)  # type: ignore[attr-defined]
    return layout.unflatten(values)


# --- LightSecAgg: what c encoded masks say about one user's mask ---------------


def rank_mod_p(matrix: np.ndarray, p: int) -> int:
    """The rank of an integer matrix over F_p (Gaussian elimination)."""
    a = np.array(matrix, dtype=object) % p
    rows, cols = a.shape
    rank = 0
    for col in range(cols):
        pivot = next((r for r in range(rank, rows) if a[r, col] % p), None)
        if pivot is None:
            continue
        a[[rank, pivot]] = a[[pivot, rank]]
        inverse = pow(int(a[rank, col]), p - 2, p)
        a[rank] = (a[rank] * inverse) % p
        for r in range(rows):
            if r != rank and a[r, col]:
                a[r] = (a[r] - a[r, col] * a[rank]) % p
        rank += 1
        if rank == rows:
            break
    return rank


def lightsecagg_leaked_pieces(code: object, colluders: Sequence[int]) -> int:
    """How many of one user's ``U - T`` mask pieces the colluders' encoded
    masks determine (as independent linear combinations, per coordinate).

    The colluders hold ``E_C @ [pieces; noise]`` with ``E_C`` their rows of
    the Lagrange matrix; what they learn about the pieces is
    ``rank(E_C) - rank(E_C restricted to the noise columns)``.

    Args:
        code: a :class:`gi_lib.defenses.lightsecagg.MaskCode`.
        colluders: the colluding users (0-based).
    """
    matrix = np.asarray(code.encoding_matrix)[list(colluders)]  # type: ignore[attr-defined]
    if matrix.shape[0] == 0:
        return 0
    p = int(code.field.p)  # type: ignore[attr-defined]
    pieces = int(code.num_pieces)  # type: ignore[attr-defined]
    return rank_mod_p(matrix, p) - rank_mod_p(matrix[:, pieces:], p)


# --- differencing two rounds (Lam et al., ICML 2021) ---------------------------


@dataclass(frozen=True)
class DifferenceResult:
    """Two rounds over client sets that differ by ``isolated``.

    Attributes:
        isolated: the client in the larger round only.
        larger, smaller: the two rounds' results.
        recovered: the difference of their encoded sums (the isolated
            client's encoded update), or of their float sums when the
            protocol sums floats.
    """

    isolated: int
    larger: AggregationResult
    smaller: AggregationResult
    recovered: np.ndarray


def difference_rounds(
    protocol: AggregationProtocol,
    updates: Sequence[Sequence[torch.Tensor]],
    *,
    isolated: int,
) -> DifferenceResult:
    """Run ``protocol`` on every client, then on every client but
    ``isolated`` (it drops before anything in the second round), and
    subtract the sums.

    The model and the updates are the same in both rounds (FedSGD on a fixed
    model, or a server that repeats a round): the difference is the isolated
    client's update, exactly in the protocol's integers.
    """
    n = len(updates)
    if not 0 <= isolated < n:
        raise ValueError(f"isolated must be a client in [0, {n}), got {isolated}.")
    larger = protocol.run(updates)
    smaller = protocol.run(updates, dropouts=DropoutSchedule({isolated: 0}))
    if larger.encoded is not None and smaller.encoded is not None:
        modulus = _modulus(protocol)
        diff = (larger.encoded.astype(object) - smaller.encoded.astype(object)) % (
            modulus
        )
        recovered = diff.astype(np.uint64)
    else:
        layout = UpdateLayout(tuple(tuple(t.shape) for t in larger.aggregate))
        recovered = layout.flatten(larger.aggregate) - layout.flatten(smaller.aggregate)
    return DifferenceResult(isolated, larger, smaller, recovered)
