"""Flower (``flwr``) to gi_lib: what a Flower server sees, as an `Observation`.

Install with the optional extra: ``pip install -e .[flower]``. The functions
that turn Flower's parameters into an observation (:func:`observe`,
:func:`to_ndarrays`) need only numpy and torch; :func:`simulate` and the
recording strategy need ``flwr[simulation]`` (:func:`flower_available` says
whether it is installed, :func:`require_flower` raises a clear error when not).

Threat model: an honest-but-curious server. It runs Flower's ordinary FedAvg
and changes nothing the clients see, but keeps what passes through its
strategy: the global weights it sends each round (``configure_fit``) and each
client's reply (``aggregate_fit``: the weights it trained, its
``num_examples`` and its metrics). It knows the clients' local training
settings (learning rate, steps), which it sends them in the round's config.

What comes back from a client with one plain SGD step on its whole batch is
``w - lr * g``, so ``(w - w') / lr`` is exactly the FedSGD gradient ``g`` and
every gradient attack applies (:func:`observe` with ``update="gradient"``);
with several local steps the observation is the weight difference, which
attacks that unroll FedAvg's local steps (``inverting``) take.

With Flower's SecAgg+ workflow (``secagg=True`` in :func:`simulate`) the
strategy receives, for every client, the same parameters: the unmasked
aggregate (the weighted mean of the clients' weights, quantised by the
protocol). Only the aggregate can then be observed (:func:`observe` with
``num_clients`` set).

Flower exchanges the model's trainable parameters here, in
``model.parameters()`` order (the order of ``Observation.gradients``); a model
with buffers (BatchNorm's running statistics) is refused, as the adapter
would not send them.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from gi_lib import fl

FLOWER_EXTRA = "pip install -e .[flower]"
FLOWER_REQUIREMENT = "flwr[simulation]==1.41.*"


class FlowerUnavailable(ImportError):
    """flwr (or its simulation engine, Ray) is not installed."""


def flower_available() -> bool:
    """Whether ``flwr`` and its simulation engine (Ray) can be imported."""
    return all(importlib.util.find_spec(name) for name in ("flwr", "ray"))


def flower_version() -> str | None:
    """The installed flwr version, or None."""
    if not flower_available():
        return None
    import flwr

    return str(flwr.__version__)


def require_flower() -> None:
    """Raise :class:`FlowerUnavailable` with how to install Flower."""
    if not flower_available():
        raise FlowerUnavailable(
            "Flower is not installed: this needs flwr and Ray "
            f"({FLOWER_REQUIREMENT}); install gi-book's extra with "
            f"`{FLOWER_EXTRA}`."
        )


# --- Flower parameters <-> torch -----------------------------------------------


def _check_exchangeable(model: nn.Module) -> None:
    buffers = [name for name, _ in model.named_buffers()]
    if buffers:
        raise ValueError(
            f"the model has buffers ({', '.join(buffers[:3])}...), which this "
            "adapter does not exchange; use a model without BatchNorm (e.g. "
            "lenet, fcn3)."
        )


def model_to_ndarrays(model: nn.Module) -> list[np.ndarray]:
    """The trainable parameters, as the float32 arrays Flower sends."""
    _check_exchangeable(model)
    return [
        p.detach().cpu().numpy().astype(np.float32, copy=True)
        for p in fl.trainable_parameters(model)
    ]


def load_ndarrays(model: nn.Module, arrays: Sequence[np.ndarray]) -> nn.Module:
    """Write Flower's arrays into the model's trainable parameters (in place).

    Raises:
        ValueError: the arrays do not match the parameters in number or shape.
    """
    _check_exchangeable(model)
    params = fl.trainable_parameters(model)
    _check_shapes(arrays, [tuple(p.shape) for p in params], "the model's parameters")
    with torch.no_grad():
        for param, array in zip(params, arrays, strict=True):
            param.copy_(torch.as_tensor(np.asarray(array), dtype=param.dtype))
    return model


def _check_shapes(
    arrays: Sequence[np.ndarray], shapes: Sequence[tuple[int, ...]], what: str
) -> None:
    if len(arrays) != len(shapes):
        raise ValueError(
            f"got {len(arrays)} arrays for {len(shapes)} tensors of {what}."
        )
    for k, (array, shape) in enumerate(zip(arrays, shapes, strict=True)):
        if tuple(np.shape(array)) != tuple(shape):
            raise ValueError(
                f"array {k} has shape {tuple(np.shape(array))}, {what} {tuple(shape)}."
            )


def to_ndarrays(parameters: Any) -> list[np.ndarray]:
    """Flower ``Parameters`` (or a list of arrays or tensors) as numpy arrays."""
    if hasattr(parameters, "tensors") and hasattr(parameters, "tensor_type"):
        from flwr.common import parameters_to_ndarrays

        return [np.asarray(a) for a in parameters_to_ndarrays(parameters)]
    return [
        t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        for t in parameters
    ]


# --- the observation -------------------------------------------------------------


def observe(
    model: nn.Module,
    sent: Any,
    received: Any,
    *,
    num_examples: int,
    num_classes: int,
    image_shape: tuple[int, int, int],
    local_lr: float,
    local_steps: int = 1,
    local_batch_size: int | None = None,
    update: Literal["gradient", "weight_difference"] = "gradient",
    num_clients: int = 1,
    labels: torch.Tensor | None = None,
) -> fl.Observation:
    """What the server saw of one client's (or the aggregate's) round.

    Args:
        model: the architecture (its weights are replaced by ``sent``).
        sent: the global weights the server sent that round (Flower
            ``Parameters`` or arrays).
        received: the weights that came back: one client's ``FitRes.parameters``,
            or under SecAgg+ the aggregate.
        num_examples: the client's ``num_examples`` (under SecAgg+: the total).
        num_classes: classes of the task.
        image_shape: ``(C, H, W)`` of one input.
        local_lr: the clients' local SGD step size (the server's config).
        local_steps: local SGD steps per round.
        local_batch_size: local mini-batch size (None: the whole batch).
        update: ``"gradient"`` recovers the FedSGD gradient
            ``(sent - received) / local_lr``, exact for one plain SGD step on
            the whole batch (any gradient attack applies); ``"weight_difference"``
            keeps ``received - sent`` with the local schedule (attacks that
            unroll FedAvg's steps).
        num_clients: how many clients ``received`` aggregates.
        labels: the labels, where the threat model grants them.

    Raises:
        ValueError: shapes that do not match the model, or ``update="gradient"``
            for more than one full-batch local step.
    """
    if update not in ("gradient", "weight_difference"):
        raise ValueError(
            f"update must be 'gradient' or 'weight_difference', got {update!r}."
        )
    if not local_lr > 0:
        raise ValueError(f"local_lr must be positive, got {local_lr}.")
    if num_examples < 1 or num_clients < 1:
        raise ValueError("num_examples and num_clients must be at least 1.")
    if update == "gradient" and (
        local_steps != 1
        or (local_batch_size is not None and local_batch_size < num_examples)
    ):
        raise ValueError(
            "the FedSGD gradient is (sent - received) / lr only for one SGD step "
            f"on the whole batch, not {local_steps} step(s) of batch "
            f"{local_batch_size}; use update='weight_difference'."
        )
    attacker_model = load_ndarrays(copy.deepcopy(model).cpu().eval(), to_ndarrays(sent))
    shapes = [tuple(p.shape) for p in fl.trainable_parameters(attacker_model)]
    before = to_ndarrays(sent)
    after = to_ndarrays(received)
    _check_shapes(after, shapes, "the model's parameters")
    difference = [
        torch.as_tensor(
            np.asarray(a, dtype=np.float64) - np.asarray(b, np.float64)
        ).float()
        for a, b in zip(after, before, strict=True)
    ]
    common = {
        "model": attacker_model,
        "num_images": int(num_examples),
        "image_shape": tuple(image_shape),
        "num_classes": int(num_classes),
        "labels": None if labels is None else labels.detach().clone(),
        "model_mode": "eval",
        "num_clients": int(num_clients),
    }
    if update == "gradient":
        return fl.Observation(
            gradients=tuple(-d / local_lr for d in difference), **common
        )
    return fl.Observation(
        gradients=tuple(difference),
        update_kind="weight_difference",
        local_lr=float(local_lr),
        local_steps=int(local_steps),
        local_batch_size=local_batch_size,
        **common,
    )


# --- a Flower simulation with an honest-but-curious strategy ---------------------


@dataclass
class ClientReply:
    """One client's reply as the strategy received it."""

    partition: int  # the client's partition id (from its metrics)
    num_examples: int
    parameters: list[np.ndarray]
    metrics: dict[str, Any]


@dataclass
class RoundRecord:
    """What the strategy kept of one round."""

    server_round: int
    sent: list[np.ndarray]
    replies: list[ClientReply] = field(default_factory=list)
    aggregate: list[np.ndarray] | None = None


@dataclass
class FlowerRun:
    """The rounds the strategy recorded and how the run was set up."""

    rounds: list[RoundRecord]
    secagg: bool
    num_clients: int
    local_lr: float
    local_steps: int
    seconds: float
    flower_version: str
    backend: str = "ray"


def _curious_fedavg(records: list[RoundRecord], **kwargs: Any) -> Any:
    """Flower's FedAvg that keeps what passes through it (see the module)."""
    from flwr.common import parameters_to_ndarrays
    from flwr.server.strategy import FedAvg

    class CuriousFedAvg(FedAvg):
        def configure_fit(self, server_round, parameters, client_manager):  # noqa: ANN001, ANN202
            records.append(
                RoundRecord(server_round, list(parameters_to_ndarrays(parameters)))
            )
            return super().configure_fit(server_round, parameters, client_manager)

        def aggregate_fit(self, server_round, results, failures):  # noqa: ANN001, ANN202
            # Replies arrive in the order the clients finish; FedAvg's float sum
            # depends on that order, so sort by partition for a reproducible
            # aggregate (and so the next round's model) from run to run.
            results = sorted(
                results, key=lambda result: int(result[1].metrics.get("partition", -1))
            )
            record = records[-1]
            for _, fit_res in results:
                record.replies.append(
                    ClientReply(
                        partition=int(fit_res.metrics.get("partition", -1)),
                        num_examples=int(fit_res.num_examples),
                        parameters=list(parameters_to_ndarrays(fit_res.parameters)),
                        metrics=dict(fit_res.metrics),
                    )
                )
            aggregated, metrics = super().aggregate_fit(server_round, results, failures)
            if aggregated is not None:
                record.aggregate = list(parameters_to_ndarrays(aggregated))
            return aggregated, metrics

    return CuriousFedAvg(**kwargs)


def _client_app(
    model: nn.Module,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    local_lr: float,
    local_steps: int,
    secagg: bool,
) -> Any:
    """Clients that train ``model`` on their own batch with plain SGD."""
    from flwr.client import NumPyClient
    from flwr.clientapp import ClientApp

    template = copy.deepcopy(model).cpu().eval()
    data = [(x.detach().cpu().clone(), y.detach().cpu().clone()) for x, y in batches]

    class SGDClient(NumPyClient):
        def __init__(self, partition: int) -> None:
            self.partition = partition

        def fit(self, parameters, config):  # noqa: ANN001, ANN202
            torch.set_num_threads(1)
            net = load_ndarrays(copy.deepcopy(template), parameters)
            images, labels = data[self.partition]
            optimiser = torch.optim.SGD(net.parameters(), lr=local_lr)
            for _ in range(local_steps):
                optimiser.zero_grad()
                fl.cross_entropy(net(images), labels).backward()
                optimiser.step()
            metrics = {"partition": self.partition}
            return model_to_ndarrays(net), int(images.shape[0]), metrics

    def client_fn(context):  # noqa: ANN001, ANN202
        partition = int(context.node_config["partition-id"])
        return SGDClient(partition).to_client()

    if secagg:
        from flwr.client.mod import secaggplus_mod

        return ClientApp(client_fn=client_fn, mods=[secaggplus_mod])
    return ClientApp(client_fn=client_fn)


def _quiet_flower() -> None:
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    logging.getLogger("flwr").setLevel(logging.ERROR)


Backend = Literal["ray", "thread", "auto"]
BACKENDS = ("ray", "thread", "auto")


def _in_thread_backend() -> type:
    """A Flower simulation backend that runs each ClientApp in the calling thread.

    Flower 1.41 has no supported backend but Ray, whose start-up (about 7 s,
    and over its fixed 30 s limit on a loaded machine) dominates a small
    run. This one follows Flower's ``Backend`` interface; it depends on
    Flower's internals (the Simulation Runtime imports ``RayBackend`` from
    ``flwr.server.superlink.fleet.vce.backend.raybackend`` when it starts),
    so :func:`simulate` uses it only when asked (or when Ray fails to start,
    with ``backend="auto"``). The clients then share this process: their
    code here keeps no global state, so what they send is the same.
    """
    from flwr.server.superlink.fleet.vce.backend import Backend as FlowerBackend

    class InThreadBackend(FlowerBackend):
        def __init__(self, backend_config: Any) -> None:
            super().__init__(backend_config)
            self.app_fn: Any = None

        def build(self, app_fn: Any) -> None:
            self.app_fn = app_fn

        @property
        def num_workers(self) -> int:
            return 1

        def is_worker_idle(self) -> bool:
            return True

        def terminate(self) -> None:
            self.app_fn = None

        def process_message(self, message: Any, context: Any) -> tuple[Any, Any]:
            # Ray hands an actor copies; so does this backend, as Flower's
            # mods (SecAgg+) change what they are given.
            message, context = copy.deepcopy(message), copy.deepcopy(context)
            app = self.app_fn()
            return app(message=message, context=context), context

    return InThreadBackend


@contextlib.contextmanager
def _backend(name: str) -> Iterator[None]:
    """Run Flower's simulation on Ray (as shipped) or in this thread."""
    if name == "ray":
        yield
        return
    from flwr.server.superlink.fleet.vce.backend import raybackend

    shipped = raybackend.RayBackend
    raybackend.RayBackend = _in_thread_backend()  # type: ignore[misc]
    try:
        yield
    finally:
        raybackend.RayBackend = shipped  # type: ignore[misc]


def simulate(
    model: nn.Module,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    rounds: int = 1,
    local_lr: float = 0.1,
    local_steps: int = 1,
    secagg: bool = False,
    num_shares: int | None = None,
    reconstruction_threshold: int | None = None,
    num_cpus: int = 1,
    backend: Backend = "ray",
) -> FlowerRun:
    """Run FedAvg in Flower's simulation engine, one client per batch.

    Every client trains the global model on its own ``(images, labels)`` for
    ``local_steps`` plain SGD steps of size ``local_lr`` and returns its
    weights. The server is Flower's ``DefaultWorkflow`` with the recording
    FedAvg strategy; with ``secagg`` its fit phase is Flower's
    ``SecAggPlusWorkflow`` (clients with ``secaggplus_mod``), so the strategy
    gets only the aggregate.

    Args:
        model: the global model's architecture and initial weights.
        batches: one private batch per client.
        rounds: FedAvg rounds.
        local_lr: the clients' SGD step size.
        local_steps: SGD steps per round (each on the whole batch).
        secagg: run the fit phase through SecAgg+.
        num_shares: SecAgg+ shares per client, an int above 2 (default: every
            client).
        reconstruction_threshold: SecAgg+ threshold (default: 2 or more,
            a majority).
        num_cpus: CPUs Ray may use (one per client actor).
        backend: ``"ray"``, Flower's simulation engine; ``"thread"``, every
            client in this thread (seconds instead of Ray's start-up; see
            :func:`_in_thread_backend`); ``"auto"``, Ray, and the thread
            backend if Ray fails to start.

    Returns:
        The recorded rounds (:class:`FlowerRun`).
    """
    import time

    require_flower()
    _quiet_flower()
    from flwr.common import Context, ndarrays_to_parameters
    from flwr.server import LegacyContext, ServerConfig
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
    from flwr.serverapp import ServerApp
    from flwr.simulation import run_simulation

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    n = len(batches)
    if n < 3:
        raise ValueError(
            f"a Flower round here needs at least three clients, got {n} (SecAgg+ "
            "shares each client's secrets among the others)."
        )
    if rounds < 1 or local_steps < 1:
        raise ValueError("rounds and local_steps must be at least 1.")
    if backend == "auto":
        try:
            return simulate(**{**_arguments(locals()), "backend": "ray"})
        except RuntimeError as error:
            logging.getLogger(__name__).warning(
                "Flower on Ray failed (%s); running the clients in this thread.",
                error,
            )
            return simulate(**{**_arguments(locals()), "backend": "thread"})
    records: list[RoundRecord] = []
    strategy = _curious_fedavg(
        records,
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=n,
        min_evaluate_clients=0,
        min_available_clients=n,
        accept_failures=False,
        initial_parameters=ndarrays_to_parameters(model_to_ndarrays(model)),
    )
    if secagg:
        max_examples = max(int(images.shape[0]) for images, _ in batches)
        fit_workflow = SecAggPlusWorkflow(
            num_shares=num_shares or 1.0,  # 1.0: with every client
            reconstruction_threshold=reconstruction_threshold or max(2, n // 2 + 1),
            # the client weight is quantised against max_weight: keep it near
            # the largest real num_examples (Flower's default 1000 is coarse)
            max_weight=float(max_examples),
        )
        workflow = DefaultWorkflow(fit_workflow=fit_workflow)
    else:
        workflow = DefaultWorkflow()
    server = ServerApp()

    @server.main()
    def _main(grid: Any, context: Context) -> None:
        legacy = LegacyContext(
            context=context, config=ServerConfig(num_rounds=rounds), strategy=strategy
        )
        workflow(grid, legacy)

    client = _client_app(
        model, batches, local_lr=local_lr, local_steps=local_steps, secagg=secagg
    )
    started = time.perf_counter()
    with warnings.catch_warnings(), _backend(backend):
        warnings.simplefilter("ignore")
        run_simulation(
            server_app=server,
            client_app=client,
            num_supernodes=n,
            backend_config={
                "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                "init_args": {"num_cpus": int(num_cpus)},
            },
        )
    seconds = time.perf_counter() - started
    if len(records) != rounds or any(r.aggregate is None for r in records):
        raise RuntimeError(
            f"the Flower simulation recorded {len(records)} of {rounds} rounds; "
            "a client or the server failed (see Flower's log above)."
        )
    return FlowerRun(
        rounds=records,
        secagg=secagg,
        num_clients=n,
        local_lr=local_lr,
        local_steps=local_steps,
        seconds=seconds,
        flower_version=flower_version() or "",
        backend=backend,
    )


def _arguments(namespace: dict[str, Any]) -> dict[str, Any]:
    """simulate's own arguments, from its locals()."""
    names = (
        "model batches rounds local_lr local_steps secagg num_shares "
        "reconstruction_threshold num_cpus"
    ).split()
    return {name: namespace[name] for name in names}
