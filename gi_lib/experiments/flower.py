"""The Flower page's experiment: a curious FedAvg server, with and without SecAgg+.

A small Flower simulation (``num_clients`` clients, one private image each,
``rounds`` FedAvg rounds of one local SGD step) runs twice: with Flower's
plain FedAvg, where the recording strategy
(:mod:`gi_lib.integrations.flower`) sees each client's trained weights, and
with Flower's SecAgg+ workflow, where it sees only their aggregate. The last
round's updates are inverted with a registered gradient attack (iDLG by
default): each client's own update, then the SecAgg+ aggregate (a batch of
``num_clients`` images; its reconstructions are matched one-to-one to the
private images).

Without Flower installed the run is skipped: the result says so, its rows
hold no number and every claim is "not tested".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from matplotlib.figure import Figure

from gi_lib import data, fl, metrics, models, plots
from gi_lib.attacks import build_attack
from gi_lib.experiments.common import uses_num_threads
from gi_lib.integrations import flower
from gi_lib.params import ExperimentParams, ParameterError, check_parameters, param
from gi_lib.results import Claim, ResultRow, bound_claim, untested_claim

NOTEBOOK = "flower"
SKIP_NOTE = (
    "not run: Flower is not installed here (install gi-book's extra with "
    f"`{flower.FLOWER_EXTRA}`)"
)
SECAGG_SOURCE = (
    "Bell et al., Secure Single-Server Aggregation with (Poly)Logarithmic "
    "Overhead (SecAgg+), CCS 2020, Sec. 1 and 3 (the server learns only the "
    "sum); Flower's SecAggPlusWorkflow"
)
DLG_SOURCE = (
    "Zhu et al., DLG, Sec. 3, and Zhao et al., iDLG, Sec. 3 (one image's "
    "gradient reveals it), here through Flower's FedAvg"
)


@dataclass(frozen=True, kw_only=True)
class FlowerParams(ExperimentParams):
    """The Flower page's parameters."""

    dataset: str = param("data set", choices=("mnist", "cifar10"))
    model: str = param("a model without BatchNorm", choices=("lenet",))
    num_trials: int = param("clients whose own update is inverted", minimum=1)
    num_clients: int = param("clients, one private image each", minimum=3)
    rounds: int = param("FedAvg rounds; the last one is attacked", minimum=1)
    local_lr: float = param("the clients' SGD step size", above=0)
    attack: str = param("a registered gradient attack", choices=("idlg", "dlg"))
    max_iterations: int = param("L-BFGS iterations of the attack", minimum=1)
    lr: float = param("L-BFGS step size of the attack", above=0)
    success_psnr: float = param("PSNR (dB) at which an image counts as recovered")
    backend: str = param(
        "Flower's simulation engine: ray, thread, or auto (ray, else thread)",
        choices=flower.BACKENDS,
    )
    num_shown: int = param("clients shown in the figure", minimum=1)


def check(values: dict) -> FlowerParams:
    """Check the Flower page's parameters."""
    params = check_parameters(values, FlowerParams, notebook=NOTEBOOK)
    if params.num_trials > params.num_clients:
        raise ParameterError(
            f"num_trials ({params.num_trials}) attacks clients' updates, so it "
            f"cannot exceed num_clients ({params.num_clients})."
        )
    if params.device == "cuda":
        raise ParameterError("this page runs on the CPU (device: auto or cpu).")
    return params


@dataclass
class ClientAttack:
    """The attack on one client's update, as the curious server saw it."""

    partition: int
    psnr: float
    label_right: bool
    image: torch.Tensor
    reconstruction: torch.Tensor
    gradient_error: float  # vs gi_lib's own FedSGD gradient of that image


@dataclass
class FlowerResult:
    """Both runs and their attacks (or why nothing ran)."""

    params: FlowerParams
    images: torch.Tensor
    labels: torch.Tensor
    skipped: str = ""
    flower_version: str = ""
    backend: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    clients: list[ClientAttack] = field(default_factory=list)
    secagg_replies_identical: bool = False
    secagg_reply_spread: float = math.nan
    secagg_error: float = math.nan  # SecAgg+ aggregate vs plaintext FedAvg (round 1)
    aggregate_psnr: list[float] = field(default_factory=list)  # matched, per image
    aggregate_reconstruction: torch.Tensor | None = None
    device: str = "cpu"

    @property
    def aggregate_best_psnr(self) -> float:
        return max(self.aggregate_psnr) if self.aggregate_psnr else math.nan


def _max_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(
        float(np.max(np.abs(x.astype(np.float64) - y)))
        for x, y in zip(a, b, strict=True)
    )


@uses_num_threads
def run(params: FlowerParams) -> FlowerResult:
    """Run the Flower simulation twice (plain, SecAgg+) and attack what it saw."""
    info = data.dataset_info(params.dataset)
    images, labels, _ = data.sample_victims(
        data.load_dataset(info.name), params.num_clients, params.seed
    )
    result = FlowerResult(params=params, images=images, labels=labels)
    if not flower.flower_available():
        result.skipped = SKIP_NOTE
        return result
    net = models.build_model(params.model, info, seed=params.seed)
    batches = [(images[k : k + 1], labels[k : k + 1]) for k in range(len(images))]
    common = {
        "rounds": params.rounds,
        "local_lr": params.local_lr,
        "backend": params.backend,
        "num_cpus": 2,
    }
    plain = flower.simulate(net, batches, secagg=False, **common)
    secure = flower.simulate(net, batches, secagg=True, **common)
    result.flower_version = plain.flower_version
    result.backend = (
        plain.backend
        if plain.backend == secure.backend
        else f"{plain.backend} for FedAvg, {secure.backend} for SecAgg+"
    )
    result.seconds = {"fedavg": plain.seconds, "secagg+": secure.seconds}
    attack = build_attack(
        params.attack,
        lr=params.lr,
        max_iterations=params.max_iterations,
        on_divergence="stop",
    )
    shape = tuple(images.shape[1:])
    # Each client's own update (plain FedAvg, last round).
    last = plain.rounds[-1]
    attacked_model = flower.load_ndarrays(
        models.build_model(params.model, info, seed=params.seed), last.sent
    )
    replies = sorted(last.replies, key=lambda reply: reply.partition)
    for reply in replies[: params.num_trials]:
        k = reply.partition
        observation = flower.observe(
            net,
            last.sent,
            reply.parameters,
            num_examples=reply.num_examples,
            num_classes=info.num_classes,
            image_shape=shape,
            local_lr=params.local_lr,
        )
        reference = torch.autograd.grad(
            fl.cross_entropy(attacked_model(images[k : k + 1]), labels[k : k + 1]),
            list(attacked_model.parameters()),
        )
        error = max(
            float((g - r).abs().max())
            for g, r in zip(observation.gradients, reference, strict=True)
        )
        reconstruction = attack.reconstruct(observation, seed=params.seed)
        result.clients.append(
            ClientAttack(
                partition=k,
                psnr=float(metrics.psnr(reconstruction.images, images[k : k + 1])),
                label_right=bool(int(reconstruction.labels[0]) == int(labels[k])),
                image=images[k],
                reconstruction=reconstruction.images[0].detach(),
                gradient_error=error,
            )
        )
    # SecAgg+: every reply is the aggregate.
    first = secure.rounds[0]
    spreads = [
        _max_difference(reply.parameters, first.replies[0].parameters)
        for reply in first.replies
    ]
    result.secagg_reply_spread = max(spreads)
    result.secagg_replies_identical = result.secagg_reply_spread == 0.0
    result.secagg_error = _max_difference(first.aggregate, plain.rounds[0].aggregate)
    last_secure = secure.rounds[-1]
    total = sum(reply.num_examples for reply in last_secure.replies)  # in the clear
    observation = flower.observe(
        net,
        last_secure.sent,
        last_secure.aggregate,
        num_examples=total,
        num_classes=info.num_classes,
        image_shape=shape,
        local_lr=params.local_lr,
        num_clients=len(last_secure.replies),
    )
    reconstruction = attack.reconstruct(observation, seed=params.seed)
    order = metrics.best_matching(reconstruction.images, images)
    result.aggregate_reconstruction = reconstruction.images[order].detach()
    result.aggregate_psnr = [
        float(v) for v in metrics.psnr(result.aggregate_reconstruction, images)
    ]
    return result


def examples_figure(result: FlowerResult) -> Figure:
    """Private images; what the curious server recovered from each client's
    update (plain FedAvg) and from the SecAgg+ aggregate."""
    shown = min(result.params.num_shown, len(result.images))
    rows = [[result.images[k]] for k in range(shown)]
    titles = ["private"]
    if not result.skipped:
        by_client = {c.partition: c.reconstruction for c in result.clients}
        blank = torch.zeros_like(result.images[0])
        titles.append("from its update")
        titles.append("from SecAgg+ sum")
        for k in range(shown):
            rows[k].append(by_client.get(k, blank))
            rows[k].append(result.aggregate_reconstruction[k])
    return plots.image_rows(rows, titles, [f"client {k}" for k in range(shown)])


def summary_text(result: FlowerResult) -> str:
    """The run in two sentences, with its numbers."""
    if result.skipped:
        return (
            f"**This page did not run its Flower simulation**: {result.skipped}. "
            "The figure shows the clients' private images only, its rows hold no "
            "number and its claims are not tested."
        )
    p = result.params
    recovered = sum(c.psnr >= p.success_psnr for c in result.clients)
    psnrs = ", ".join(f"{c.psnr:.1f}" for c in result.clients)
    return (
        f"Flower {result.flower_version} ({result.backend} backend): the plain "
        f"FedAvg run took {result.seconds['fedavg']:.1f} s and the SecAgg+ run "
        f"{result.seconds['secagg+']:.1f} s. From each client's own update "
        f"{p.attack} recovered {recovered} of {len(result.clients)} images at "
        f"{p.success_psnr:g} dB or more (PSNR {psnrs} dB); the gradient the "
        "adapter read off Flower's weights differed from gi_lib's own by at "
        f"most {max(c.gradient_error for c in result.clients):.1e}. Under "
        "SecAgg+ every client's reply held the same parameters (largest "
        f"difference {result.secagg_reply_spread:.1e}), their aggregate "
        f"differed from plaintext FedAvg's by at most {result.secagg_error:.1e}, "
        f"and inverting it gave at best {result.aggregate_best_psnr:.1f} dB "
        "against any client's image."
    )


def rows(result: FlowerResult) -> list[ResultRow]:
    """Scorecard rows: no paper reports these numbers for Flower."""
    p = result.params
    where = f"flower/{p.dataset}/{p.model}"
    if result.skipped:
        nan = math.nan
        return [
            ResultRow.against(f"{where}/fedavg/client", "psnr", nan, None, SKIP_NOTE),
            ResultRow.against(f"{where}/secagg+/sum", "psnr", nan, None, SKIP_NOTE),
        ]
    clients = result.clients
    n = len(clients)
    return [
        ResultRow.against(
            f"{where}/fedavg/client",
            "psnr",
            float(np.mean([c.psnr for c in clients])),
            None,
            f"mean over {n} clients' own updates ({p.attack}, {p.max_iterations} "
            "iterations)",
        ),
        ResultRow.against(
            f"{where}/fedavg/client",
            "label_accuracy",
            float(np.mean([c.label_right for c in clients])),
            None,
            f"{n} clients",
        ),
        ResultRow.against(
            f"{where}/secagg+/sum",
            "psnr",
            result.aggregate_best_psnr,
            None,
            f"the best of {p.num_clients} reconstructions matched one-to-one to the "
            "private images",
        ),
        ResultRow.against(
            f"{where}/fedavg/run",
            "seconds",
            result.seconds["fedavg"],
            None,
            f"{p.rounds} round(s), {result.backend} backend",
        ),
        ResultRow.against(
            f"{where}/secagg+/run",
            "seconds",
            result.seconds["secagg+"],
            None,
            f"{p.rounds} round(s), {result.backend} backend",
        ),
    ]


def claims(result: FlowerResult) -> list[Claim]:
    """The claims this page checks, judged on this run."""
    p = result.params
    texts = (
        (
            "An honest-but-curious server that keeps each client's update "
            "recovers the client's private image from it",
            DLG_SOURCE,
        ),
        (
            "Under SecAgg+ the server learns only the aggregate: each client's "
            "reply reaches the strategy as the same parameters",
            SECAGG_SOURCE,
        ),
        (
            "The SecAgg+ aggregate equals the plaintext FedAvg aggregate "
            "(up to the protocol's quantisation)",
            SECAGG_SOURCE,
        ),
        (
            "Inverting the SecAgg+ aggregate recovers no client's image",
            SECAGG_SOURCE,
        ),
    )
    if result.skipped:
        return [untested_claim(c, s, result.skipped) for c, s in texts]
    return [
        bound_claim(
            *texts[0],
            [c.psnr for c in result.clients],
            above=p.success_psnr,
            unit="dB",
            what="PSNR of each client's reconstruction from its own update",
        ),
        bound_claim(
            *texts[1],
            [result.secagg_reply_spread],
            below=1e-9,
            what="largest difference between two clients' replies (one run)",
        ),
        bound_claim(
            *texts[2],
            [result.secagg_error],
            below=1e-4,
            what="largest difference from plaintext FedAvg, round 1 (one run)",
        ),
        bound_claim(
            *texts[3],
            [result.aggregate_best_psnr],
            below=p.success_psnr,
            unit="dB",
            what="best PSNR of a reconstruction from the aggregate (one run)",
        ),
    ]
