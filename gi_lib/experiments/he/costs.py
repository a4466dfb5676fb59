"""Parts 1 and 2 of the HE page: the cost of one encrypted update per backend
and one round on the aggregation harness."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from gi_lib.defenses import _lwe, he
from gi_lib.defenses.aggregation import SERVER, PlaintextSum, client_name
from gi_lib.experiments.he.params import HEParams


@dataclass(frozen=True)
class HarnessRound:
    """One round of :class:`gi_lib.defenses.he.HEAggregation` (or the plaintext sum).

    Attributes:
        backend: the backend's name.
        clients: how many clients.
        size: values per update.
        upload_bytes: bytes one client sends.
        download_bytes: bytes one client receives (the encrypted sum).
        client_seconds: mean CPU seconds of a client (both rounds).
        server_seconds: the server's CPU seconds.
        max_error: largest |decrypted sum - plaintext fixed-point sum| (the
            float sum for CKKS and the plaintext baseline).
        tolerance: the backend's allowed error for this sum.
        server_saw: message kinds in the server's view.
    """

    backend: str
    clients: int
    size: int
    upload_bytes: int
    download_bytes: int
    client_seconds: float
    server_seconds: float
    max_error: float
    tolerance: float
    server_saw: tuple[str, ...]


def _lwe_params(params: HEParams) -> _lwe.LWEParams:
    return _lwe.LWEParams(n=params.lwe_n, block=params.lwe_block)


def _backends(
    params: HEParams, max_summands: int
) -> tuple[dict[str, he.HEBackend], dict[str, float]]:
    """The four encrypted backends, each keyed once, and the CPU seconds
    their key generation took."""
    small = max(2, params.harness_clients)
    makers = {
        "lwe": lambda: he.LWEBackend(
            frac_bits=params.frac_bits,
            clip=params.clip,
            max_summands=max_summands,
            params=_lwe_params(params),
            seed=params.seed,
        ),
        "paillier": lambda: he.PaillierBackend(
            frac_bits=params.frac_bits,
            clip=params.clip,
            max_summands=small,
            key_bits=params.paillier_key_bits,
            seed=params.seed,
        ),
        "ckks": lambda: he.CKKSBackend(
            clip=params.clip, max_summands=small, poly_degree=params.ckks_poly_degree
        ),
        "bfv": lambda: he.BFVBackend(
            frac_bits=params.frac_bits,
            clip=params.clip,
            max_summands=small,
            poly_degree=params.bfv_poly_degree,
        ),
    }
    backends, seconds = {}, {}
    for name, make in makers.items():
        start = time.process_time()
        backends[name] = make()
        seconds[name] = time.process_time() - start
    return backends, seconds


def _update(size: int, seed: int) -> np.ndarray:
    """A gradient-like update (normal, scale 0.01) as float32."""
    rng = np.random.default_rng(seed)
    return rng.normal(scale=0.01, size=size).astype(np.float32)


def _time_operations(
    params: HEParams, backends: Mapping[str, he.HEBackend], progress: bool
) -> list[he.OperationCost]:
    sizes = {
        "lwe": params.lwe_sizes,
        "paillier": params.paillier_sizes,
        "ckks": params.ckks_sizes,
        "bfv": params.bfv_sizes,
    }
    jobs = [(name, size) for name in sizes for size in sizes[name]]
    out = []
    for name, size in tqdm(jobs, desc="Enc/Add/Dec", disable=not progress):
        update = _update(size, params.seed + size)
        out.append(
            he.operation_cost(backends[name], update, repeats=params.timing_repeats)
        )
    return out


def _harness_round(
    params: HEParams, name: str, backend: he.HEBackend | None
) -> HarnessRound:
    count, size = params.harness_clients, params.harness_size
    updates = [
        (torch.from_numpy(_update(size, params.seed + 1000 + i)),) for i in range(count)
    ]
    protocol = PlaintextSum() if backend is None else he.HEAggregation(backend)
    result = protocol.run(updates)
    transcript = result.transcript
    got = result.aggregate[0].numpy().astype(np.float64)
    flats = [u[0].numpy().astype(np.float64) for u in updates]
    if backend is None:  # the float32 sum in client order, as the server adds
        want = updates[0][0].numpy().copy()
        for u in updates[1:]:
            want = want + u[0].numpy()
    elif backend.exact:
        want = sum(backend.encode(f) for f in flats) / backend.codec.scale
    else:
        want = np.sum(flats, axis=0)
    clients = [client_name(i) for i in range(count)]
    return HarnessRound(
        backend=name,
        clients=count,
        size=size,
        upload_bytes=transcript.bytes_sent(clients[0]),
        download_bytes=transcript.bytes_received(clients[0]),
        client_seconds=float(np.mean([transcript.seconds(c) for c in clients])),
        server_seconds=transcript.seconds(SERVER),
        max_error=float(np.abs(got - want).max()),
        tolerance=0.0 if backend is None else backend.tolerance(count),
        server_saw=tuple(sorted({m.kind for m in transcript.view(SERVER)})),
    )
