"""The R-GAP page's parameters and run: the closed-form attack on each image
and model, and the sweep over the rank of the layers' systems."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch

from gi_lib import data, models
from gi_lib.attacks import rgap
from gi_lib.experiments.baselines import dlg_logistic
from gi_lib.experiments.common import AttackedSample, attack_and_score, uses_num_threads
from gi_lib.params import ExperimentParams, check_parameters, param, resolve_device

NOTEBOOK = "rgap"
RGAP_MODELS = ("cnn6", "cnn6d", "fcn3")
DEVICES = ("cpu",)
"""Where R-GAP runs: its closed-form solve is float64 linear algebra on the
CPU (:mod:`gi_lib.attacks.rgap`), and the networks it inverts stay beside it."""


@dataclass(frozen=True, kw_only=True)
class RGAPParams(ExperimentParams):
    """The R-GAP notebook's parameters."""

    model: str = param("the full-rank network R-GAP attacks", choices=RGAP_MODELS)
    device: str = param(
        "where to compute: R-GAP's float64 solve runs on the CPU (auto: the CPU)",
        choices=("auto", *DEVICES),
    )
    deficient_model: str = param(
        "the rank-deficient variant attacked beside", choices=RGAP_MODELS
    )
    dlg_iterations: int = param("L-BFGS steps of the DLG baseline", minimum=1)
    sweep_widths: tuple[int, ...] = param(
        "widths of CNN6's second convolution", minimum=1
    )
    sweep_strides: tuple[int, ...] = param(
        "strides of CNN6's first convolution", minimum=1
    )
    sweep_images: int = param("images attacked per swept network", minimum=1)
    success_psnr: float = param("PSNR (dB) counted as a recovery", minimum=0)


def check(values: Mapping[str, Any]) -> RGAPParams:
    """Check the notebook's parameters (see :class:`RGAPParams`)."""
    return check_parameters(values, RGAPParams, notebook=NOTEBOOK)


@dataclass
class RGAPTrial:
    """One image attacked on one network: R-GAP (with its per-layer solves)
    and, where it ran, DLG.

    Attributes:
        network: the attacked network's name.
        rgap: R-GAP's record.
        layers: R-GAP's per-layer solves, input layer first.
        dlg: DLG's record on the same gradient, or None.
    """

    network: str
    rgap: AttackedSample
    layers: list[rgap.LayerSolve]
    dlg: AttackedSample | None = None


def attack_image(
    net: torch.nn.Module,
    truth: torch.Tensor,
    *,
    name: str,
    index: int,
    dlg_iterations: int | None,
    seed: int,
    numerical_rank: bool = False,
) -> RGAPTrial:
    """Observe one image's gradient on ``net`` and attack it (R-GAP, then DLG)."""
    labels = rgap.wrong_labels(net, truth)
    observation = rgap.observe(net, truth, labels)
    start = time.perf_counter()
    result = rgap.reconstruct(
        observation, rgap.RGAPConfig(numerical_rank=numerical_rank)
    )
    seconds = time.perf_counter() - start
    trial = RGAPTrial(
        network=name,
        rgap=AttackedSample.scored(
            result, truth, seconds=seconds, setting="rgap", index=index
        ),
        layers=result.layers,
    )
    if dlg_iterations is not None:
        trial.dlg = attack_and_score(
            partial(dlg_logistic, observation, iterations=dlg_iterations, seed=seed),
            truth,
            setting="dlg",
            index=index,
        )
    return trial


@dataclass
class SweepPoint:
    """One swept network: its change, counted and measured deficiency, PSNR."""

    label: str
    varied: str
    value: int
    counted_deficiency: int
    numerical_deficiency: int
    psnr: float


@dataclass
class RGAPRun:
    """Everything the notebook shows."""

    params: RGAPParams
    device: torch.device
    attacks: list[RGAPTrial]
    counts: dict[str, list[rgap.LayerCount]]
    sweep: list[SweepPoint] = field(default_factory=list)

    def of(self, network: str) -> list[RGAPTrial]:
        """The trials on ``network``."""
        return [a for a in self.attacks if a.network == network]


def swept_network(
    info: data.DatasetInfo, *, width: int, stride: int, seed: int
) -> torch.nn.Module:
    """CNN6 with its second convolution ``width`` wide, first one ``stride`` apart,
    initialised from ``seed``."""
    convs = list(models.CNN6_CONVS)
    first, second = convs[0], convs[1]
    convs[0] = (first[0], first[1], stride, first[3])
    convs[1] = (width, second[1], second[2], second[3])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return models.RGAPNet(info, tuple(convs))


@uses_num_threads
def run(params: RGAPParams, *, progress: bool = True) -> RGAPRun:
    """Attack ``num_trials`` images on the full-rank and the deficient network,
    then one or more images on each swept network (on the CPU: :data:`DEVICES`)."""
    device = resolve_device(params.device, supported=DEVICES)
    return _run(params, device, progress)


def _run(params: RGAPParams, device: torch.device, progress: bool) -> RGAPRun:
    info = data.dataset_info(params.dataset)
    seed = params.seed
    count = max(params.num_trials, params.sweep_images)
    victims, _, _ = data.sample_victims(data.load_dataset(params.dataset), count, seed)
    attacks, counts = [], {}
    for name in dict.fromkeys((params.model, params.deficient_model)):
        net = models.build_model(name, info, seed=seed)
        counts[name] = rgap.rank_analysis(net, victims.shape[1:])
        for i in range(params.num_trials):
            attacks.append(
                attack_image(
                    net,
                    victims[i : i + 1],
                    name=name,
                    index=i,
                    dlg_iterations=params.dlg_iterations,
                    seed=seed + i,
                )
            )
            if progress:
                last = attacks[-1]
                print(
                    f"{name} #{i}: R-GAP {last.rgap.psnr:.1f} dB, "
                    f"DLG {last.dlg.psnr:.1f} dB",  # type: ignore[union-attr]
                    flush=True,
                )
    result = RGAPRun(params=params, device=device, attacks=attacks, counts=counts)
    if info.image_size != 32 or info.channels != 3:
        return result  # the sweep varies CIFAR's CNN6
    settings = [("width", w, w, 2) for w in params.sweep_widths]
    settings += [("stride", s, 36, s) for s in params.sweep_strides]
    for varied, value, width, stride in settings:
        net = swept_network(info, width=width, stride=stride, seed=seed)
        counted = rgap.rank_deficiency_index(rgap.rank_analysis(net, victims.shape[1:]))
        for i in range(params.sweep_images):
            attack = attack_image(
                net,
                victims[i : i + 1],
                name=f"{varied}={value}",
                index=i,
                dlg_iterations=None,
                seed=seed + i,
                numerical_rank=True,
            )
            measured = sum(layer.deficiency or 0 for layer in attack.layers)
            result.sweep.append(
                SweepPoint(
                    f"{varied} {value}",
                    varied,
                    value,
                    counted,
                    measured,
                    attack.rgap.psnr,
                )
            )
    return result
