"""The DP-SGD notebook: test accuracy against epsilon on MNIST, DLG through noise.

Utility: the model (BatchNorm swapped for GroupNorm, as opacus needs) is
trained once without a defense and once per noise multiplier with per-example
clipping; epsilon for each run comes from opacus's RDP accountant for its
sampling rate and number of steps. Attack: the page's attack (DLG by
default) on single images whose gradient was clipped and noised with the
same clip norm and multipliers. The engine is the defense pages' own
(:mod:`gi_lib.experiments.defense_page`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from gi_lib import plots
from gi_lib.defenses import DPSGD, NoDefense
from gi_lib.defenses.dpsgd import epsilon, private_model
from gi_lib.experiments import defense_page
from gi_lib.experiments.common import uses_num_threads
from gi_lib.params import check_parameters, param
from gi_lib.results import ResultRow

NOTEBOOK = "dpsgd"


@dataclass(frozen=True, kw_only=True)
class DPSGDParams(defense_page.DefensePageParams):
    """The DP-SGD notebook's parameters."""

    noise_multipliers: tuple[float, ...] = param("noise multipliers sigma", above=0)
    clip_norm: float = param("per-example L2 bound C", minimum=1e-6)
    delta: float = param("delta of (eps, delta)", minimum=1e-12, maximum=0.1)


PAPER_NOTE = (
    "Abadi et al. train a PCA + 1,000-unit network on all 60,000 MNIST images "
    "with lots of 600; their accuracies are not entered here (not verified from "
    "a source available to this build)."
)

# The examples figure and the summary are the defense pages' (the notebook
# calls them through this module).
examples_figure = defense_page.examples_figure
summary_text = defense_page.summary_text


def check(values: Mapping[str, Any]) -> DPSGDParams:
    """Check the parameters (see :class:`DPSGDParams`)."""
    return check_parameters(values, DPSGDParams, notebook=NOTEBOOK)


def label(sigma: float) -> str:
    """The setting's label: the noise multiplier."""
    return f"sigma={sigma:g}"


@uses_num_threads
def run(
    params: DPSGDParams, *, progress: bool = True
) -> defense_page.DefensePageRun[DPSGDParams]:
    """Non-private and DP-SGD training per noise multiplier; the attack with
    no defense and through each multiplier."""
    clip, seed = params.clip_norm, params.seed
    values = params.noise_multipliers
    training = {"non-private": NoDefense(seed=seed)}
    training |= {
        label(s): DPSGD(clip_norm=clip, noise_multiplier=s, seed=seed) for s in values
    }
    attacked: dict[str, defense_page.DefenseMaker] = {
        "none": lambda pool, s: NoDefense(seed=s)
    }
    attacked |= {
        label(v): (
            lambda pool, s, _v=v: DPSGD(clip_norm=clip, noise_multiplier=_v, seed=s)
        )
        for v in values
    }
    return defense_page.run_defense_page(
        params, training, attacked, progress=progress, prepare=private_model
    )


def epsilons(result: defense_page.DefensePageRun[DPSGDParams]) -> dict[str, float]:
    """Epsilon of every private training run, from opacus's accountant."""
    out = {}
    for sigma in result.params.noise_multipliers:
        trained = result.utility[label(sigma)]
        out[label(sigma)] = epsilon(
            noise_multiplier=sigma,
            sample_rate=trained.sample_rate,
            steps=trained.steps,
            delta=result.params.delta,
        )
    return out


def tradeoff_figure(result: defense_page.DefensePageRun[DPSGDParams]) -> Figure:
    """Test accuracy against epsilon (the non-private run as a line)."""
    eps = epsilons(result)
    series = {
        "DP-SGD": sorted(
            (eps[name], result.utility[name].test_accuracy) for name in eps
        )
    }
    figure = plots.curves(
        series,
        xlabel="epsilon (opacus RDP accountant)",
        ylabel="test accuracy",
        reference=(result.utility["non-private"].test_accuracy, "non-private"),
    )
    figure.axes[0].set_xscale("log")
    return figure


def rows(result: defense_page.DefensePageRun[DPSGDParams]) -> list[ResultRow]:
    """The defense pages' rows, and epsilon of each private training run."""
    out = defense_page.page_rows(result, note=PAPER_NOTE)
    delta = result.params.delta
    for name, value in epsilons(result).items():
        out.append(
            ResultRow.against(
                f"{result.params.dataset}/{result.params.model}/{name}",
                "epsilon",
                value,
                None,
                f"delta={delta:g}, {result.utility[name].steps} steps at sampling "
                f"rate {result.utility[name].sample_rate:.4f}",
            )
        )
    return out
