"""Additively homomorphic encryption for federated learning (Aono/Phong et al.).

Phong, Aono, Hayashi, Wang and Moriai, *Privacy-Preserving Deep Learning via
Additively Homomorphic Encryption*, IEEE TIFS 13(5), 2018 (ATIS 2017).

**Setting: shared key, asynchronous.** The learning participants share one
key pair, set up among themselves; the server never holds the secret key.
The server stores the encrypted model ``E(W)``. A participant downloads
``E(W)``, decrypts it, computes a gradient ``G`` on a local mini-batch and
uploads ``E(-alpha G)``; the server only adds: ``E(W) <- E(W) + E(-alpha G)``.
The server sees ciphertexts and their sizes; every participant sees the
model, so two downloads around one other upload differ by exactly that
upload (the leak the paper's threat model leaves open: participants are
trusted not to collude with the server).

**Backends**, one interface (:class:`HEBackend`: encrypt a flat update, add
ciphertexts, decrypt, bytes of a ciphertext):

* ``"lwe"``: the paper's LWE-based scheme with its parameters (n_lwe = 3000,
  s = 8, p = 2^48 + 1, q = 2^77), in numpy (:mod:`gi_lib.defenses._lwe`, which
  says how q = 2^77 is held without changing it);
* ``"paillier"``: packed Paillier on ``phe``, several fixed-point values per
  plaintext with headroom for ``max_summands`` additions
  (:mod:`gi_lib.defenses._paillier`);
* ``"ckks"``: CKKS through ``tenseal``, today's approximate alternative
  (:mod:`gi_lib.defenses._ckks`);
* ``"bfv"``: BFV through ``tenseal``, today's exact alternative, on the
  fixed-point integers as the paper's scheme (:mod:`gi_lib.defenses._bfv`);
* ``"plaintext"``: no encryption (the float update, or its fixed-point
  integers), the baseline the others are measured against.

The exact backends (LWE, Paillier, BFV) encrypt the fixed-point integers of an
update (:class:`gi_lib.defenses._fixedpoint.FixedPoint`: clip, scale by
2^frac_bits, round), so a decrypted sum equals the plaintext fixed-point sum
exactly; CKKS encrypts reals and decrypts a sum within
:meth:`HEBackend.tolerance`.

**On the harness.** :class:`HEAggregation` is one synchronous round of the
same system on :class:`gi_lib.defenses.aggregation.AggregationProtocol`:
clients upload ciphertexts (round 0), the server adds them and sends the
encrypted sum back (round 0), and the clients decrypt it (round 1).
:class:`AsyncSGD` is the paper's asynchronous training loop, recorded on
the same :class:`~gi_lib.defenses.aggregation.Transcript` (one round per
upload).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gi_lib.defenses import _bfv, _ckks, _lwe, _paillier, _tenseal, aggregation
from gi_lib.defenses._fixedpoint import FixedPoint
from gi_lib.defenses.aggregation import SERVER, Message, client_name

LWEParams = _lwe.LWEParams
"""The LWE scheme's parameters (re-exported: the paper's by default)."""

BACKENDS = ("lwe", "paillier", "ckks", "bfv", "plaintext")
"""The backend names :func:`make_backend` accepts."""


class Evaluator(ABC):
    """The server's view of a backend: it adds and (de)serialises ciphertexts.

    It holds no secret key and cannot decrypt.
    """

    name = "backend"

    @abstractmethod
    def add(self, a: Any, b: Any) -> Any:
        """The ciphertext of the sum of what ``a`` and ``b`` encrypt."""

    @abstractmethod
    def to_bytes(self, ciphertext: Any) -> bytes:
        """The ciphertext as sent on the wire."""

    @abstractmethod
    def from_bytes(self, payload: bytes) -> Any:
        """Inverse of :meth:`to_bytes` (a ValueError for a malformed payload)."""

    def ciphertext_bytes(self, ciphertext: Any) -> int:
        """Bytes of one ciphertext on the wire."""
        return len(self.to_bytes(ciphertext))


class HEBackend(Evaluator):
    """A participant's view of a backend: the shared key pair.

    Attributes:
        exact: decryption returns the fixed-point sum exactly (else within
            :meth:`tolerance`).
        codec: the fixed-point encoding of the exact backends (``None`` for
            CKKS and the float plaintext).
    """

    exact = True
    codec: FixedPoint | None = None

    @abstractmethod
    def encrypt(self, update: np.ndarray) -> Any:
        """Encrypt one flat real-valued update."""

    def decrypt(self, ciphertext: Any) -> np.ndarray:
        """The (summed) update a ciphertext holds, as float64 (an exact
        backend's fixed-point sum over its scale)."""
        return self.decrypt_integers(ciphertext).astype(np.float64) / self.codec.scale

    @abstractmethod
    def public(self) -> Evaluator:
        """What the server is given: an evaluator without the secret key."""

    def encode(self, update: np.ndarray) -> np.ndarray:
        """The integers an exact backend encrypts (its fixed-point encoding)."""
        if self.codec is None:
            raise TypeError(f"the {self.name} backend has no fixed-point encoding.")
        return self.codec.quantise(np.asarray(update, dtype=np.float64).reshape(-1))

    def decrypt_integers(self, ciphertext: Any) -> np.ndarray:
        """The exact fixed-point sum a ciphertext holds (int64)."""
        raise TypeError(f"the {self.name} backend does not decrypt to integers.")

    def tolerance(self, count: int) -> float:
        """The largest absolute error of a decrypted sum of ``count``
        ciphertexts against the sum of their fixed-point encodings (0 for the
        exact backends)."""
        return 0.0


def _check_update(update: np.ndarray) -> np.ndarray:
    x = np.asarray(update)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"expected a non-empty flat update, got shape {x.shape}.")
    return x


# ---------------------------------------------------------------------------
# The backends
# ---------------------------------------------------------------------------


class _LWEEvaluator(Evaluator):
    name = "lwe"

    def __init__(self, params: _lwe.LWEParams, max_summands: int) -> None:
        self.params = params
        self.max_summands = max_summands

    def add(self, a: _lwe.LWECiphertext, b: _lwe.LWECiphertext) -> _lwe.LWECiphertext:
        return _lwe.add(a, b, self.params, max_summands=self.max_summands)

    def to_bytes(self, ciphertext: _lwe.LWECiphertext) -> bytes:
        return _lwe.to_bytes(ciphertext, self.params)

    def from_bytes(self, payload: bytes) -> _lwe.LWECiphertext:
        return _lwe.from_bytes(payload, self.params)


class LWEBackend(_LWEEvaluator, HEBackend):
    """Aono/Phong's LWE scheme on the fixed-point integers of an update.

    Args:
        frac_bits: fractional bits of the fixed-point encoding.
        clip: values are clipped to [-clip, clip] first.
        max_summands: the most ciphertexts that will be added into one
            (clients per round, or uploads plus one in :class:`AsyncSGD`).
        params: the scheme's parameters (the paper's by default).
        seed: makes keys and noise reproducible (``None``: from the OS).

    Raises:
        ValueError: the parameters cannot hold the sum (it says what to change).
    """

    def __init__(
        self,
        *,
        frac_bits: int = 24,
        clip: float = 8.0,
        max_summands: int = 64,
        params: _lwe.LWEParams | None = None,
        seed: int | None = None,
    ) -> None:
        params = params or _lwe.LWEParams()
        self.codec = FixedPoint(frac_bits, clip, prime=params.p)
        self.codec.check(max_summands)
        super().__init__(params, max_summands)
        self._scheme = _lwe.LWEScheme(
            params,
            max_summands=max_summands,
            max_abs_plaintext=max_summands * self.codec.max_abs_encoded,
            seed=seed,
        )

    def encrypt(self, update: np.ndarray) -> _lwe.LWECiphertext:
        return self._scheme.encrypt(self.encode(_check_update(update)))

    def decrypt_integers(self, ciphertext: _lwe.LWECiphertext) -> np.ndarray:
        return self._scheme.decrypt(ciphertext)

    def public(self) -> Evaluator:
        return _LWEEvaluator(self.params, self.max_summands)


class _PublicEvaluator(Evaluator):
    """The server's side of a scheme whose public part adds and (de)serialises
    ciphertexts itself (:class:`_paillier.PaillierPublic`, and
    :class:`_tenseal.TensealPublic` for CKKS and BFV)."""

    def __init__(
        self, name: str, public: _paillier.PaillierPublic | _tenseal.TensealPublic
    ) -> None:
        self.name = name
        self._public = public

    def add(self, a: Any, b: Any) -> Any:
        return self._public.add(a, b)

    def to_bytes(self, ciphertext: Any) -> bytes:
        return self._public.to_bytes(ciphertext)

    def from_bytes(self, payload: bytes) -> Any:
        return self._public.from_bytes(payload)


class _SchemeBackend(_PublicEvaluator, HEBackend):
    """A backend over a scheme object that holds the secret key, adds and
    (de)serialises like its public part, and gives that part (``public()``)."""

    def __init__(
        self, scheme: _paillier.PaillierScheme | _ckks.CKKSScheme | _bfv.BFVScheme
    ) -> None:
        self._scheme = scheme
        super().__init__(scheme.name, scheme)

    def public(self) -> Evaluator:
        return _PublicEvaluator(self.name, self._scheme.public())


class PaillierBackend(_SchemeBackend):
    """Packed Paillier on the fixed-point integers of an update.

    Each value takes ``value_bits = bits(round(clip 2^frac_bits)) + 1`` bits
    (sign included) plus ``ceil(log2 max_summands)`` bits of headroom, so
    adding up to ``max_summands`` ciphertexts never carries between slots.

    Args:
        frac_bits: fractional bits of the fixed-point encoding.
        clip: values are clipped to [-clip, clip] first.
        max_summands: the most ciphertexts that will be added into one.
        key_bits: bits of the Paillier modulus n.
        seed: makes the encryption randomness reproducible.
    """

    def __init__(
        self,
        *,
        frac_bits: int = 24,
        clip: float = 8.0,
        max_summands: int = 64,
        key_bits: int = 2048,
        seed: int | None = None,
    ) -> None:
        probe = FixedPoint(frac_bits, clip, bits=64)
        value_bits = probe.max_abs_encoded.bit_length() + 1
        if value_bits > 64:
            raise ValueError(
                f"Paillier: clip {clip:g} at {frac_bits} fractional bits needs "
                f"{value_bits} bits per value; at most 64 are supported."
            )
        self.codec = FixedPoint(frac_bits, clip, bits=value_bits)
        self.params = _paillier.PaillierParams(key_bits, value_bits, max_summands)
        super().__init__(_paillier.PaillierScheme(self.params, seed=seed))

    def encrypt(self, update: np.ndarray) -> _paillier.PaillierCiphertext:
        return self._scheme.encrypt(self.encode(_check_update(update)).tolist())

    def decrypt_integers(self, ciphertext: _paillier.PaillierCiphertext) -> np.ndarray:
        return np.asarray(self._scheme.decrypt(ciphertext), dtype=np.int64)


class CKKSBackend(_SchemeBackend):
    """CKKS through tenseal on the (clipped) real values of an update.

    Args:
        clip: values are clipped to [-clip, clip] first.
        max_summands: the most ciphertexts that will be added into one.
        poly_degree, coeff_bits, scale_bits: see :class:`_ckks.CKKSParams`.
    """

    exact = False

    def __init__(
        self,
        *,
        clip: float = 8.0,
        max_summands: int = 64,
        poly_degree: int = 8192,
        coeff_bits: tuple[int, ...] = (60, 60),
        scale_bits: int = 40,
    ) -> None:
        self.params = _ckks.CKKSParams(
            poly_degree, tuple(coeff_bits), scale_bits, clip, max_summands
        )
        super().__init__(_ckks.CKKSScheme(self.params))

    def encrypt(self, update: np.ndarray) -> _tenseal.TensealCiphertext:
        return self._scheme.encrypt(_check_update(update))

    def decrypt(self, ciphertext: _tenseal.TensealCiphertext) -> np.ndarray:
        return self._scheme.decrypt(ciphertext)

    def tolerance(self, count: int) -> float:
        return self.params.tolerance(count)


class BFVBackend(_SchemeBackend):
    """BFV through tenseal on the fixed-point integers of an update (exact).

    Args:
        frac_bits: fractional bits of the fixed-point encoding.
        clip: values are clipped to [-clip, clip] first.
        max_summands: the most ciphertexts that will be added into one.
        poly_degree, plain_bits: see :class:`_bfv.BFVParams`.

    Raises:
        ValueError: the plaintext modulus cannot hold the sum of
            ``max_summands`` encodings (it says what to change).
    """

    def __init__(
        self,
        *,
        frac_bits: int = 24,
        clip: float = 8.0,
        max_summands: int = 64,
        poly_degree: int = 8192,
        plain_bits: int = 41,
    ) -> None:
        self.params = _bfv.BFVParams(poly_degree, plain_bits, max_summands)
        self.params.check()
        self.codec = FixedPoint(frac_bits, clip, prime=self.params.plain_modulus)
        self.codec.check(max_summands)
        super().__init__(_bfv.BFVScheme(self.params))

    def encrypt(self, update: np.ndarray) -> _tenseal.TensealCiphertext:
        return self._scheme.encrypt(self.encode(_check_update(update)))

    def decrypt_integers(self, ciphertext: _tenseal.TensealCiphertext) -> np.ndarray:
        return self._scheme.decrypt(ciphertext)


@dataclass
class PlainCiphertext:
    """A plaintext "ciphertext": the values themselves.

    Attributes:
        values: float64 values, or int64 fixed-point integers.
        count: how many updates were added into it.
    """

    values: np.ndarray
    count: int = 1


class _PlainEvaluator(Evaluator):
    name = "plaintext"

    def __init__(self, dtype: str) -> None:
        self._dtype = dtype

    def add(self, a: PlainCiphertext, b: PlainCiphertext) -> PlainCiphertext:
        if a.values.shape != b.values.shape:
            raise ValueError("cannot add updates of different sizes.")
        return PlainCiphertext(a.values + b.values, a.count + b.count)

    def to_bytes(self, ciphertext: PlainCiphertext) -> bytes:
        return ciphertext.values.astype(self._dtype).tobytes()

    def from_bytes(self, payload: bytes) -> PlainCiphertext:
        return PlainCiphertext(np.frombuffer(payload, dtype=self._dtype).copy())


class PlaintextBackend(_PlainEvaluator, HEBackend):
    """No encryption: the baseline with the same interface.

    Args:
        frac_bits: with a value, the update's fixed-point integers (int64)
            are sent and summed, exactly as the exact backends sum them;
            without (``None``), the float64 values.
        clip: the fixed-point clip.
    """

    def __init__(self, *, frac_bits: int | None = None, clip: float = 8.0) -> None:
        if frac_bits is not None:
            self.codec = FixedPoint(frac_bits, clip, bits=64)
        self.exact = frac_bits is not None
        super().__init__("<i8" if self.exact else "<f8")

    def encrypt(self, update: np.ndarray) -> PlainCiphertext:
        x = _check_update(update)
        if self.codec is not None:
            return PlainCiphertext(self.encode(x))
        return PlainCiphertext(np.asarray(x, dtype=np.float64).copy())

    def decrypt_integers(self, ciphertext: PlainCiphertext) -> np.ndarray:
        if self.codec is None:
            return super().decrypt_integers(ciphertext)
        return ciphertext.values.astype(np.int64)

    def decrypt(self, ciphertext: PlainCiphertext) -> np.ndarray:
        if self.codec is None:
            return ciphertext.values.astype(np.float64)
        return ciphertext.values.astype(np.float64) / self.codec.scale

    def public(self) -> Evaluator:
        return _PlainEvaluator(self._dtype)


def make_backend(
    name: str,
    *,
    frac_bits: int = 24,
    clip: float = 8.0,
    max_summands: int = 64,
    seed: int | None = None,
    **options: Any,
) -> HEBackend:
    """A backend by name (:data:`BACKENDS`), with its own options.

    Args:
        name: ``"lwe"``, ``"paillier"``, ``"ckks"``, ``"bfv"`` or ``"plaintext"``.
        frac_bits, clip: the fixed-point encoding (CKKS uses only the clip;
            the plaintext backend sends floats unless ``fixed_point=True``).
        max_summands: the most ciphertexts added into one.
        seed: reproducible keys and noise where the backend draws them.
        options: ``params=`` (:class:`_lwe.LWEParams`) for LWE; ``key_bits``
            for Paillier; ``poly_degree``, ``coeff_bits``, ``scale_bits`` for
            CKKS; ``poly_degree``, ``plain_bits`` for BFV; ``fixed_point`` for
            the plaintext backend.
    """
    if name in ("lwe", "paillier"):
        backend = LWEBackend if name == "lwe" else PaillierBackend
        return backend(
            frac_bits=frac_bits,
            clip=clip,
            max_summands=max_summands,
            seed=seed,
            **options,
        )
    if name == "ckks":
        return CKKSBackend(clip=clip, max_summands=max_summands, **options)
    if name == "bfv":
        return BFVBackend(
            frac_bits=frac_bits, clip=clip, max_summands=max_summands, **options
        )
    if name == "plaintext":
        fixed = options.pop("fixed_point", False)
        if options:
            raise ValueError(f"unknown options for the plaintext backend: {options}.")
        return PlaintextBackend(frac_bits=frac_bits if fixed else None, clip=clip)
    raise ValueError(
        f"unknown HE backend {name!r}; choose one of {', '.join(BACKENDS)}."
    )


# ---------------------------------------------------------------------------
# Cost of one update: Enc, Add, Dec (the paper's Table 3) and bytes
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OperationCost:
    """CPU seconds of the operations on one update, and its bytes.

    Attributes:
        backend: the backend's name.
        size: values in the update.
        encrypt, add, decrypt: CPU seconds (median over the repeats) to
            encrypt one update, add two ciphertexts, decrypt one.
        ciphertext_bytes: bytes of one serialised ciphertext.
        plaintext_bytes: 4 bytes per value (float32), the baseline.
        repeats: how many times each operation was timed.
    """

    backend: str
    size: int
    encrypt: float
    add: float
    decrypt: float
    ciphertext_bytes: int
    plaintext_bytes: int
    repeats: int

    @property
    def expansion(self) -> float:
        """Ciphertext bytes over float32 plaintext bytes."""
        return self.ciphertext_bytes / self.plaintext_bytes


def operation_cost(
    backend: HEBackend, update: np.ndarray, *, repeats: int = 3
) -> OperationCost:
    """Time Enc, Add and Dec of ``update`` (process CPU seconds, median).

    The encryption time includes the fixed-point encoding, the decryption
    time the decoding; serialisation is not timed (its bytes are counted).
    The addition adds the ciphertext to itself, so the backend must allow
    two summands.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}.")
    x = _check_update(update)
    evaluator = backend.public()
    enc, add, dec = [], [], []
    for _ in range(repeats):
        start = time.process_time()
        a = backend.encrypt(x)
        enc.append(time.process_time() - start)
        start = time.process_time()
        total = evaluator.add(a, a)  # the cost of an addition does not depend on b
        add.append(time.process_time() - start)
        start = time.process_time()
        backend.decrypt(total)
        dec.append(time.process_time() - start)
    return OperationCost(
        backend=backend.name,
        size=int(x.size),
        encrypt=float(np.median(enc)),
        add=float(np.median(add)),
        decrypt=float(np.median(dec)),
        ciphertext_bytes=len(evaluator.to_bytes(a)),
        plaintext_bytes=4 * int(x.size),
        repeats=repeats,
    )


# ---------------------------------------------------------------------------
# One aggregation round on the harness
# ---------------------------------------------------------------------------


class HEAggregation(aggregation.AggregationProtocol):
    """One round of encrypted aggregation in the shared-key setting.

    Round 0: every client encrypts its update with the shared key and sends
    it to the server (``"ciphertext"``); the server adds the ciphertexts it
    received, in client order, and sends the encrypted sum back to each of
    those clients (``"encrypted sum"``). Round 1: the clients decrypt it.

    The server cannot decrypt: :meth:`AggregationProtocol.run` reports as
    the aggregate what the first surviving client decrypted, read from that
    client after the run (no message carries it, so the server's view
    holds only ciphertexts). A client silent in round 0 is left out of the
    sum; if every client that could decrypt is silent in round 1, the run
    stops with :class:`ProtocolAbort`.

    Args:
        backend: the participants' backend (with the shared secret key); the
            server gets only ``backend.public()``.
    """

    name = "he"
    num_rounds = 2

    def __init__(self, backend: HEBackend) -> None:
        self.backend = backend

    def make_parties(
        self, inputs: Sequence[np.ndarray]
    ) -> tuple[aggregation.ServerParty, list[aggregation.Party]]:
        names = [client_name(i) for i in range(len(inputs))]
        clients = [
            _HEClient(name, update, self.backend)
            for name, update in zip(names, inputs, strict=True)
        ]
        return _HEServer(self.backend.public(), names, clients), list(clients)

    def __repr__(self) -> str:
        return f"HEAggregation({self.backend.name})"


class _HEClient(aggregation.Party):
    """Encrypts its update (round 0) and decrypts the encrypted sum (round 1)."""

    def __init__(self, name: str, update: np.ndarray, backend: HEBackend) -> None:
        super().__init__(name)
        self.__update = update
        self.__backend = backend
        self.decrypted: np.ndarray | None = None

    def act(self, round: int) -> list[Message]:
        inbox = self.take_inbox()
        if round == 0:
            payload = self.__backend.to_bytes(self.__backend.encrypt(self.__update))
            return [Message(round, self.name, SERVER, "ciphertext", payload)]
        sums = [m for m in inbox if m.sender == SERVER and m.kind == "encrypted sum"]
        if len(sums) == 1:
            self.decrypted = self.__backend.decrypt(
                self.__backend.from_bytes(sums[0].payload)
            )
        return []


class _HEServer(aggregation.ServerParty):
    """Adds the ciphertexts it receives and returns the encrypted sum."""

    def __init__(
        self, evaluator: Evaluator, clients: Sequence[str], parties: Sequence[_HEClient]
    ) -> None:
        super().__init__()
        self._evaluator = evaluator
        self._index = {name: i for i, name in enumerate(clients)}
        self._parties = list(parties)
        self._summed: tuple[int, ...] = ()

    def act(self, round: int) -> list[Message]:
        inbox = self.take_inbox()
        if round != 0:
            return []
        received: dict[int, Any] = {}
        for message in inbox:
            if message.sender not in self._index or message.kind != "ciphertext":
                raise aggregation.ProtocolAbort(
                    f"round {round}: unexpected {message.kind!r} from {message.sender}."
                )
            try:
                received[self._index[message.sender]] = self._evaluator.from_bytes(
                    message.payload
                )
            except ValueError as error:
                raise aggregation.ProtocolAbort(
                    f"round {round}: {message.sender} sent a malformed ciphertext "
                    f"({error})."
                ) from error
        if not received:
            raise aggregation.ProtocolAbort(
                f"round {round}: no client sent a ciphertext."
            )
        order = sorted(received)
        total = received[order[0]]
        for index in order[1:]:
            total = self._evaluator.add(total, received[index])
        self._summed = tuple(order)
        payload = self._evaluator.to_bytes(total)
        return [
            Message(round, SERVER, client_name(i), "encrypted sum", payload)
            for i in order
        ]

    def output(self) -> tuple[np.ndarray, tuple[int, ...]]:
        for party in self._parties:
            if party.decrypted is not None:
                return party.decrypted, self._summed
        raise aggregation.ProtocolAbort(
            "no client decrypted the encrypted sum (the server cannot: it has no "
            "secret key)."
        )


# ---------------------------------------------------------------------------
# The paper's asynchronous SGD: E(W) on the server, participants in turn
# ---------------------------------------------------------------------------

LocalUpdate = Callable[[int, np.ndarray], np.ndarray]
"""``(participant, decrypted weights) -> the update to upload`` (``-alpha G``)."""


@dataclass
class AsyncRun:
    """What :class:`AsyncSGD` produced.

    Attributes:
        weights: the final model as the participants decrypt it (float64).
        transcript: every download and upload (one round per upload) with
            each party's CPU seconds.
        uploads: how many updates were added.
        order: which participant made each upload.
        views: for each participant, the weights it decrypted at each of its
            downloads, when ``keep_views`` was set (else empty).
    """

    weights: np.ndarray
    transcript: aggregation.Transcript
    uploads: int
    order: list[int]
    views: dict[int, list[np.ndarray]] = field(default_factory=dict)


class AsyncSGD:
    """The paper's asynchronous system: the server adds, participants decrypt.

    Each upload ``t`` is one round: the server sends ``E(W)`` to
    participant ``order[t]`` (``"model"``), which decrypts it, computes its
    update with ``local_update`` on the decrypted weights, and sends
    ``E(update)`` (``"update"``); the server adds it to ``E(W)``.

    Args:
        backend: the participants' shared backend; the server gets
            ``backend.public()``.
        initial: the initial weights (flat); participant 0 encrypts them and
            sends them to the server first (round 0, kind ``"initial model"``).
    """

    def __init__(self, backend: HEBackend, initial: np.ndarray) -> None:
        self.backend = backend
        self.evaluator = backend.public()
        self.transcript = aggregation.Transcript()
        start = time.process_time()
        payload = backend.to_bytes(backend.encrypt(_check_update(initial)))
        self.transcript.add_seconds(client_name(0), 0, time.process_time() - start)
        self._send(Message(0, client_name(0), SERVER, "initial model", payload))
        start = time.process_time()
        self._model = self.evaluator.from_bytes(payload)
        self.transcript.add_seconds(SERVER, 0, time.process_time() - start)
        self.uploads = 0

    def _send(self, message: Message) -> None:
        self.transcript.record(message)

    def download(self, participant: int, round: int) -> np.ndarray:
        """The server sends ``E(W)``; the participant decrypts it."""
        name = client_name(participant)
        start = time.process_time()
        payload = self.evaluator.to_bytes(self._model)
        self.transcript.add_seconds(SERVER, round, time.process_time() - start)
        self._send(Message(round, SERVER, name, "model", payload))
        start = time.process_time()
        weights = self.backend.decrypt(self.backend.from_bytes(payload))
        self.transcript.add_seconds(name, round, time.process_time() - start)
        return weights

    def upload(self, participant: int, round: int, update: np.ndarray) -> None:
        """The participant encrypts ``update``; the server adds it to ``E(W)``."""
        name = client_name(participant)
        start = time.process_time()
        payload = self.backend.to_bytes(self.backend.encrypt(_check_update(update)))
        self.transcript.add_seconds(name, round, time.process_time() - start)
        self._send(Message(round, name, SERVER, "update", payload))
        start = time.process_time()
        self._model = self.evaluator.add(
            self._model, self.evaluator.from_bytes(payload)
        )
        self.transcript.add_seconds(SERVER, round, time.process_time() - start)
        self.uploads += 1

    def run(
        self,
        order: Sequence[int],
        local_update: LocalUpdate,
        *,
        keep_views: bool = False,
    ) -> AsyncRun:
        """Make one upload per entry of ``order`` (a participant index each).

        The time ``local_update`` takes (the participant's plaintext
        training step) is not counted: the transcript holds the cost of the
        encryption around it.
        """
        views: dict[int, list[np.ndarray]] = {}
        for participant in order:
            round_ = self.uploads + 1
            weights = self.download(participant, round_)
            if keep_views:
                views.setdefault(participant, []).append(weights)
            self.upload(participant, round_, local_update(participant, weights))
        final = self.backend.decrypt(self._model)
        return AsyncRun(final, self.transcript, self.uploads, list(order), views)

    @property
    def encrypted_model(self) -> bytes:
        """``E(W)`` as the server stores it (all the server knows of the model)."""
        return self.evaluator.to_bytes(self._model)
