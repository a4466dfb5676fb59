"""Client and server CPU seconds and bytes of the aggregation protocols.

Runs each protocol once on N random updates of d values (defaults N = 100,
d = 10^5, the issue's benchmark point) inside one process and prints, per
protocol: the mean CPU seconds of a surviving client, the server's CPU
seconds, the bytes a client sends and receives, and the bytes the server
receives. Clients may drop after sharing their keys (``--dropout``), the
costliest moment for SecAgg's server. It also prints the mask PRG's speed
(values of Z_2^32 per 10 ms of ChaCha20 keystream). Per-party CPU time is
``time.process_time`` around each party's work; run with the machine
otherwise idle and compare ratios, not seconds.

    python benchmarks/bench_aggregation.py [--clients 100] [--size 100000]
        [--dropout 0.1] [--protocols plaintext,secagg,secagg+]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from gi_lib.defenses import DropoutSchedule, PlaintextSum
from gi_lib.defenses._crypto import KeySource, prg_ring
from gi_lib.defenses.aggregation import SERVER, AggregationProtocol, client_name
from gi_lib.defenses.secagg import SecAgg, secaggplus_parameters


def _secaggplus(n: int, dropout: float) -> AggregationProtocol:
    degree, threshold = secaggplus_parameters(n, dropout)
    return SecAgg(degree=degree, threshold=threshold, seed=0)


PROTOCOLS: dict[str, Callable[[int, float], AggregationProtocol]] = {
    "plaintext": lambda n, dropout: PlaintextSum(),
    "secagg": lambda n, dropout: SecAgg(seed=0),
    "secagg+": _secaggplus,
}


def prg_values_per_10ms(count: int = 10**6, repeats: int = 5) -> float:
    """Values of Z_2^32 the ChaCha20 mask PRG produces in 10 ms."""
    seed = KeySource(0).derive("bench")
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        prg_ring(seed, count, 32)
        best = min(best, time.process_time() - start)
    return count * 0.01 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    args = parser.parse_args()
    names = [p for p in args.protocols.split(",") if p]
    unknown = sorted(set(names) - set(PROTOCOLS))
    if unknown:
        parser.error(f"unknown protocols {unknown}; choose from {sorted(PROTOCOLS)}")
    n, d = args.clients, args.size
    print(f"mask PRG: {prg_values_per_10ms():.3g} values of Z_2^32 per 10 ms")
    generator = torch.Generator().manual_seed(0)
    updates = [(torch.randn(d, generator=generator) * 0.1,) for _ in range(n)]
    schedule = DropoutSchedule.random(n, args.dropout, from_round=0, seed=0)
    print(
        f"N = {n} clients, d = {d} values, {len(schedule.silent_from)} drop "
        "after sharing keys"
    )
    header = (
        f"{'protocol':<10} {'client s':>9} {'server s':>9} {'client sent':>12} "
        f"{'client recv':>12} {'server recv':>12}"
    )
    print(header)
    for name in names:
        protocol = PROTOCOLS[name](n, args.dropout)
        rounds = protocol.num_rounds
        # Drop after sharing keys (SecAgg's round 2); a one-round protocol
        # cannot drop anyone after a key exchange, so its clients drop at 0.
        drop_round = min(2, rounds - 1)
        dropouts = DropoutSchedule({c: drop_round for c in schedule.silent_from})
        result = protocol.run(updates, dropouts=dropouts)
        transcript = result.transcript
        survivors = [client_name(i) for i in result.survivors]
        client_s = np.mean([transcript.seconds(c) for c in survivors])
        sent = np.mean([transcript.bytes_sent(c) for c in survivors])
        received = np.mean([transcript.bytes_received(c) for c in survivors])
        print(
            f"{name:<10} {client_s:>9.4f} {transcript.seconds(SERVER):>9.4f} "
            f"{sent:>12,.0f} {received:>12,.0f} "
            f"{transcript.bytes_received(SERVER):>12,.0f}"
        )


if __name__ == "__main__":
    main()
