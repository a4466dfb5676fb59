"""SecAgg and SecAgg+: exact sums under dropout, clean aborts that reveal
nothing, rejected forgeries, refused double-share requests, uniform masked
uploads, no plaintext in any transcript, and set-up errors."""

import math
import struct

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gi_lib.defenses import DropoutSchedule, ProtocolAbort
from gi_lib.defenses._fixedpoint import FixedPointOverflow, pack_bits
from gi_lib.defenses.aggregation import SERVER, Message, client_name
from gi_lib.defenses.secagg import (
    UNMASK_ENTRY,
    SecAgg,
    SecAggClient,
    SecAggServer,
    client_bytes,
    expansion,
    harary_graph,
    idealised_expansion,
    secaggplus_parameters,
)


def _inputs(
    n: int, d: int, seed: int = 0, scale: float = 0.3
) -> list[tuple[torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(d, generator=generator) * scale,) for _ in range(n)]


def _expected(protocol: SecAgg, inputs, survivors) -> np.ndarray:
    return sum(protocol.encoding.quantise(inputs[i][0].numpy()) for i in survivors)


def _should_succeed(protocol: SecAgg, n: int, silent_from: dict[int, int]) -> bool:
    graph = protocol.neighbour_graph(n)
    t = protocol.threshold_for(n)

    def alive_from(r):
        return {u for u in range(n) if silent_from.get(u, 99) > r}

    u1, u2, u3, u5 = alive_from(0), alive_from(1), alive_from(2), alive_from(3)
    for alive in (u1, u2, u3):
        if not alive or any(len((graph[u] & alive) | {u}) < t for u in alive):
            return False
    return all(len((graph[w] | {w}) & u5) >= t for w in u2)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_exact_sum_of_the_survivors_under_random_dropouts(data):
    n = data.draw(st.integers(3, 7), label="n")
    d = data.draw(st.integers(1, 9), label="d")
    degree = data.draw(st.sampled_from([None, 2, 4]), label="degree")
    if degree is not None and degree >= n:
        degree = None
    holders = n if degree is None else degree + 1
    t = data.draw(st.integers(holders // 2 + 1, holders), label="t")
    silent = data.draw(
        st.dictionaries(st.integers(0, n - 1), st.integers(0, 3), max_size=n),
        label="drops",
    )
    protocol = SecAgg(
        seed=data.draw(st.integers(0, 3)),
        threshold=t,
        degree=degree,
        bits=24,
        frac_bits=8,
    )
    inputs = _inputs(n, d, seed=n * 10 + d)
    if _should_succeed(protocol, n, silent):
        result = protocol.run(inputs, dropouts=DropoutSchedule(silent))
        survivors = tuple(u for u in range(n) if silent.get(u, 99) > 2)
        assert result.survivors == survivors
        assert np.array_equal(
            protocol.encoding.to_signed(result.encoded),
            _expected(protocol, inputs, survivors),
        )
        decoded = result.aggregate[0].numpy()
        assert np.array_equal(
            decoded, protocol.encoding.decode(result.encoded).astype(np.float32)
        )
    else:
        with pytest.raises(ProtocolAbort, match="fewer than the threshold|no client"):
            protocol.run(inputs, dropouts=DropoutSchedule(silent))


def test_secagg_at_thirty_percent_dropout_after_sharing_is_exact():
    n, d = 12, 40
    protocol = SecAgg(seed=3)  # t = 8 of 12
    inputs = _inputs(n, d)
    schedule = DropoutSchedule.random(n, 0.3, from_round=2, seed=1)  # 4 drop
    result = protocol.run(inputs, dropouts=schedule)
    assert len(result.survivors) == 8 or len(result.survivors) == n - len(
        schedule.silent_from
    )
    assert np.array_equal(
        protocol.encoding.to_signed(result.encoded),
        _expected(protocol, inputs, result.survivors),
    )
    # The server spent its recovery work in the unmasking round.
    assert result.transcript.round_name(3) == "unmasking"


def _shares_in(view, kind_filter=None):
    """(holder, peer, kind) of every share the server received."""
    out = []
    for m in view:
        if m.kind != "unmask shares":
            continue
        (count,) = struct.unpack_from("<I", m.payload, 0)
        for j in range(count):
            v, kind = struct.unpack_from("<IB", m.payload, 4 + j * UNMASK_ENTRY)
            out.append((m.sender, v, kind))
    return out


def test_below_threshold_stops_cleanly_and_reveals_too_few_shares():
    n, t = 6, 5
    protocol = SecAgg(seed=0, threshold=t)
    # Three clients drop before their masked input: U3 has 3 < 5 clients.
    with pytest.raises(
        ProtocolAbort, match=r"round 2 \(masked input\).*fewer than the threshold 5"
    ) as info:
        protocol.run(_inputs(n, 8), dropouts=DropoutSchedule({0: 2, 1: 2, 2: 2}))
    assert _shares_in(info.value.transcript.view(SERVER)) == []
    # Two clients drop before unmasking: 4 < 5 answers, so no secret has t shares.
    with pytest.raises(
        ProtocolAbort, match=r"unmasking.*only 4 shares.*threshold 5"
    ) as info:
        protocol.run(_inputs(n, 8), dropouts=DropoutSchedule({0: 3, 1: 3}))
    counts: dict[tuple[int, int], int] = {}
    for _, v, kind in _shares_in(info.value.transcript.view(SERVER)):
        counts[(v, kind)] = counts.get((v, kind), 0) + 1
    assert counts and max(counts.values()) == 4 < t


class _Scripted(SecAgg):
    """SecAgg whose server is swapped for a misbehaving one."""

    def __init__(self, server_cls, **kwargs):
        super().__init__(**kwargs)
        self.server_cls = server_cls

    def make_parties(self, inputs):
        server, clients = super().make_parties(inputs)
        self.clients = clients
        return self.server_cls(server._setup), clients


def _entries(payload: bytes, entry: int) -> list[bytes]:
    return [payload[i : i + entry] for i in range(0, len(payload), entry)]


def _forward_hook(edit):
    class Server(SecAggServer):
        def act(self, round):
            out = super().act(round)
            return edit(out) if round == 1 else out

    return Server


SHARE_ENTRY = 4 + 8 + 2 * 36 + 28


def _edit_payload(out, receiver, fn):
    return [
        Message(m.round, m.sender, m.receiver, m.kind, fn(m.payload))
        if m.receiver == client_name(receiver)
        else m
        for m in out
    ]


def _from(payload, sender):
    return [
        e
        for e in _entries(payload, SHARE_ENTRY)
        if struct.unpack_from("<I", e)[0] == sender
    ][0]


def test_tampered_replayed_and_misaddressed_shares_are_rejected():
    n = 5
    inputs = _inputs(n, 6)

    def tamper(out):
        def flip(payload):
            entries = _entries(payload, SHARE_ENTRY)
            for i, e in enumerate(entries):
                if struct.unpack_from("<I", e)[0] == 1:
                    entries[i] = e[:40] + bytes([e[40] ^ 1]) + e[41:]
            return b"".join(entries)

        return _edit_payload(out, 0, flip)

    def replay(out):
        return _edit_payload(out, 0, lambda p: p + _from(p, 1))

    def misaddress(out):
        for_zero = next(m.payload for m in out if m.receiver == client_name(0))
        stolen = _from(for_zero, 1)

        def swap(payload):
            return b"".join(
                stolen if struct.unpack_from("<I", e)[0] == 1 else e
                for e in _entries(payload, SHARE_ENTRY)
            )

        return _edit_payload(out, 2, swap)

    for edit, victim, reason in (
        (tamper, 0, "failed authentication"),
        (replay, 0, "replay"),
        (misaddress, 2, "failed authentication"),
    ):
        protocol = _Scripted(_forward_hook(edit), seed=5, threshold=4)
        result = protocol.run(inputs)
        client = protocol.clients[victim]
        assert any(reason in r for r in client.rejected), (reason, client.rejected)
        # The rejected share is not used; the other shares still unmask exactly.
        assert np.array_equal(
            protocol.encoding.to_signed(result.encoded),
            _expected(protocol, inputs, range(n)),
        )


def _request_hook(alive_and_dropped):
    class Server(SecAggServer):
        def unmask_request(self, round, u, u3):
            alive, dropped = alive_and_dropped(u, u3)
            payload = struct.pack(f"<I{len(alive)}I", len(alive), *alive)
            payload += struct.pack(f"<I{len(dropped)}I", len(dropped), *dropped)
            return Message(round, SERVER, client_name(u), "unmask request", payload)

    return Server


def test_clients_refuse_a_server_that_asks_for_both_shares():
    n = 5
    protocol = _Scripted(
        _request_hook(lambda u, u3: (sorted(u3), [1] if u != 1 else [])),
        seed=2,
        threshold=4,
    )
    with pytest.raises(ProtocolAbort, match="both shares of client 1") as info:
        protocol.run(_inputs(n, 4))
    # Only client 1 (asked honestly) answered: one share per secret, < t.
    shares = _shares_in(info.value.transcript.view(SERVER))
    assert {holder for holder, _, _ in shares} == {client_name(1)}
    assert all(
        "both shares" in c.refused for i, c in enumerate(protocol.clients) if i != 1
    )
    protocol = _Scripted(
        _request_hook(lambda u, u3: (sorted(u3 - {u}), [u])), seed=2, threshold=4
    )
    with pytest.raises(ProtocolAbort, match="itself as dropped"):
        protocol.run(_inputs(n, 4))


def test_a_second_request_for_the_other_share_is_refused():
    n = 5
    protocol = _Scripted(SecAggServer, seed=4, threshold=4)
    protocol.run(_inputs(n, 4))
    client: SecAggClient = protocol.clients[0]
    assert client.refused is None
    # The server now claims client 3 dropped: client 0 already revealed its b-share.
    alive, dropped = [0, 1, 2, 4], [3]
    payload = struct.pack("<I4I", 4, *alive) + struct.pack("<I1I", 1, *dropped)
    (answer,) = client.answer_unmask_request(3, payload)
    assert answer.kind == "refusal" and b"other share of client 3" in answer.payload
    # Once refused, it answers nothing else, even a harmless request.
    payload = struct.pack("<I5I", 5, 0, 1, 2, 3, 4) + struct.pack("<I", 0)
    (answer,) = client.answer_unmask_request(3, payload)
    assert answer.kind == "refusal"


def test_no_client_sends_both_kinds_of_share_for_one_peer():
    n = 8
    result = SecAgg(seed=6, threshold=5).run(
        _inputs(n, 5), dropouts=DropoutSchedule({2: 2, 5: 2, 6: 3})
    )
    seen: dict[int, set[int]] = {}
    for _, v, kind in _shares_in(result.transcript.view(SERVER)):
        seen.setdefault(v, set()).add(kind)
    assert seen and all(len(kinds) == 1 for kinds in seen.values())


def test_a_masked_upload_alone_is_uniform_over_the_ring():
    n, d = 3, 40000
    inputs = [(torch.full((d,), 0.25),) for _ in range(n)]  # a constant input
    result = SecAgg(seed=7, threshold=2).run(inputs)
    (message,) = result.server_view.from_party(client_name(0), kind="masked input")
    y = np.frombuffer(message.payload, dtype="<u4")
    counts = np.bincount((y >> np.uint32(28)).astype(np.int64), minlength=16)
    expected = d / 16
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 40.0  # 15 degrees of freedom; p ~ 5e-4
    ones = int((y & np.uint32(1)).sum())
    assert abs(ones - d / 2) < 5 * math.sqrt(d / 4)
    # The encoded input itself is one repeated value: the mask hides it.
    assert np.unique(y).size > 0.99 * d


def test_no_transcript_holds_another_clients_plaintext():
    n, d = 6, 64
    generator = torch.Generator().manual_seed(11)
    # Poisoned inputs: values that cannot occur by chance in masked traffic.
    inputs = [(torch.rand(d, generator=generator) * 0.5 + i,) for i in range(n)]
    protocol = SecAgg(seed=8, clip=8.0, frac_bits=16)
    result = protocol.run(inputs, dropouts=DropoutSchedule({4: 2}))
    needles = []
    for (x,) in inputs:
        flat = x.numpy()
        needles.append(flat[:8].astype("<f4").tobytes())
        needles.append(pack_bits(protocol.encoding.encode(flat)[:8], 32))
    for message in result.transcript.messages:
        for needle in needles:
            assert needle not in message.payload, (
                message.sender,
                message.receiver,
                message.kind,
            )
    assert np.array_equal(
        protocol.encoding.to_signed(result.encoded),
        _expected(protocol, inputs, result.survivors),
    )


def test_changing_one_input_changes_only_that_clients_masked_upload():
    n, d = 5, 16
    a = _inputs(n, d)
    b = list(a)
    b[2] = (a[2][0] + 0.5,)
    run_a = SecAgg(seed=9).run(a).transcript.messages
    run_b = SecAgg(seed=9).run(b).transcript.messages
    assert len(run_a) == len(run_b)
    differ = [
        (m.sender, m.kind)
        for m, o in zip(run_a, run_b, strict=True)
        if m.payload != o.payload
    ]
    assert differ == [(client_name(2), "masked input")]


def test_bad_parameters_fail_at_setup_with_what_to_change():
    inputs = _inputs(4, 3)
    with pytest.raises(ValueError, match="above the 4 share holders.*at most 4"):
        SecAgg(threshold=5).run(inputs)
    with pytest.raises(ValueError, match="not above half.*at least 3"):
        SecAgg(threshold=2).run(inputs)
    with pytest.raises(FixedPointOverflow, match="4 clients.*fractional bits"):
        SecAgg(bits=12, frac_bits=10, clip=1.0).run(inputs)
    with pytest.raises(ValueError, match="even"):
        SecAgg(degree=3)
    with pytest.raises(ValueError, match="needs more than 4 clients"):
        SecAgg(degree=4).run(inputs)
    with pytest.raises(ValueError, match="positive integer"):
        SecAgg(threshold=0)


@pytest.mark.parametrize("degree", [None, 4])
@pytest.mark.parametrize("n,d,bits", [(5, 7, 32), (7, 33, 19), (9, 10, 64)])
def test_the_byte_model_matches_real_runs(degree, n, d, bits):
    protocol = SecAgg(seed=1, degree=degree, bits=bits, frac_bits=4, threshold=None)
    transcript = protocol.run(_inputs(n, d)).transcript
    model = client_bytes(n, d, bits, degree=degree)
    for i in range(n):
        assert transcript.bytes_sent(client_name(i)) == model["sent"]
        assert transcript.bytes_received(client_name(i)) == model["received"]


def test_expansion_figures():
    # The idealised accounting reproduces the abstract's 1.73x and 1.98x.
    assert round(idealised_expansion(2**10, 2**20, 16), 2) == 1.73
    assert round(idealised_expansion(2**14, 2**24, 16), 2) == 1.98
    ours = expansion(2**10, 2**20, 16)
    assert 1.73 < ours < 1.73 * 1.05
    assert expansion(2**10, 2**20, 16, degree=20) < ours


def test_secaggplus_graph_and_parameters():
    graph = harary_graph(20, 6, b"\1" * 32)
    assert all(len(nb) == 6 and u not in nb for u, nb in enumerate(graph))
    assert all(u in graph[v] for u, nb in enumerate(graph) for v in nb)
    assert graph != harary_graph(20, 6, b"\2" * 32)
    with pytest.raises(ValueError, match="even"):
        harary_graph(20, 5, b"\1" * 32)
    k, t = secaggplus_parameters(200, 0.1)
    assert k is not None and k < 199 and k % 2 == 0 and 2 * t > k + 1
    assert secaggplus_parameters(10, 0.3)[0] is None
    with pytest.raises(ValueError, match="below 1/2"):
        secaggplus_parameters(100, 0.5)


def test_a_server_telling_clients_different_stories_cannot_unmask_a_client():
    # t = 4 > 7/2: the server tells clients 0, 2, 3 that client 1 is alive and
    # clients 4, 5, 6 that it dropped, hoping for both b_1 and client 1's mask
    # key (which would strip every mask off client 1's upload). Each honest
    # client reveals one kind of share of client 1, so the server gets 4
    # b-shares (with client 1's own) but only 3 mask-key shares: fewer than t.
    n = 7

    def story(u, u3):
        if u in (4, 5, 6):
            return sorted(u3 - {1}), [1]
        return sorted(u3), []

    protocol = _Scripted(_request_hook(story), seed=3, threshold=4)
    result = protocol.run(_inputs(n, 4))
    kinds: dict[int, int] = {}
    for _, v, kind in _shares_in(result.transcript.view(SERVER)):
        if v == 1:
            kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds == {0: 4, 1: 3}
    assert all(c.refused is None for c in protocol.clients)


def test_a_duplicated_key_list_is_refused():
    class Server(SecAggServer):
        def act(self, round):
            out = super().act(round)
            return out + out[:1] if round == 0 else out

    protocol = _Scripted(Server, seed=1, threshold=3)
    inputs = _inputs(4, 3)
    result = protocol.run(inputs)
    assert protocol.clients[0].refused == "the server sent two key lists"
    # Client 0 left; the others' sum is still exact.
    assert result.survivors == (1, 2, 3)
    assert np.array_equal(
        protocol.encoding.to_signed(result.encoded),
        _expected(protocol, inputs, (1, 2, 3)),
    )
