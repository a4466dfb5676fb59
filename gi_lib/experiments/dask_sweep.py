"""The sweep page's experiment: DLG over seeds on a local Dask cluster.

It runs :func:`gi_lib.sweep.run_sweep` as ``python -m gi_lib.sweep`` would:
the DLG notebook once per seed under a small profile, on a local cluster of
``workers`` processes; then the same sweep again, which must skip every
point; and (with ``demo_failure``) a sweep over two step sizes of which one
is invalid, which must report that point with its parameters and finish the
other. The sweep's folder is ``<build>/<profile>/sweeps/dask_sweep`` (beside
the book's results folder), emptied first so that the page shows a full run.
"""

from __future__ import annotations

import io
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from gi_lib import sweep
from gi_lib.params import ExperimentParams, check_parameters, param
from gi_lib.profiles import profile_names
from gi_lib.results import Claim, ResultRow, bound_claim, results_dir, untested_claim

NOTEBOOK = "dask_sweep"
ROOT = Path(__file__).resolve().parents[2]
SWEPT = ROOT / "notebooks" / "attacks" / "dlg.py"
SOURCE = "gi_lib.sweep, module docstring (this book's sweep engine)"
BAD_LR = -1.0


@dataclass(frozen=True, kw_only=True)
class DaskSweepParams(ExperimentParams):
    """The sweep page's parameters."""

    model: str = param("the model of the worked example", choices=("lenet",))
    num_trials: int = param("DLG images per point", minimum=1)
    seeds: tuple[int, ...] = param("the seeds swept", minimum=0, unique=True)
    sweep_profile: str = param(
        "the profile every point runs under", choices=profile_names
    )
    max_iterations: int = param("DLG iterations of the worked example", minimum=1)
    lr: float = param("DLG's L-BFGS step size", above=0)
    workers: int = param("local Dask worker processes", minimum=1)
    demo_failure: bool = param("also sweep an invalid step size, to show a failure")


def check(values: dict[str, Any]) -> DaskSweepParams:
    """Check the sweep page's parameters."""
    return check_parameters(values, DaskSweepParams, notebook=NOTEBOOK)


@dataclass
class DaskSweepResult:
    """The sweep, its rerun and the failure demonstration."""

    params: DaskSweepParams
    output: Path
    first: sweep.SweepResult
    again: sweep.SweepResult
    failing: sweep.SweepResult | None
    seconds: float
    rerun_seconds: float
    log: str
    device: str = "cpu"

    @property
    def table(self) -> Any:
        return self.first.table


def output_dir() -> Path:
    """``<build>/<profile>/sweeps/dask_sweep``: beside the results folder."""
    return results_dir().parent / "sweeps" / NOTEBOOK


def run(params: DaskSweepParams) -> DaskSweepResult:
    """Sweep DLG over the seeds, rerun the sweep, and show a failed point."""
    output = output_dir()
    shutil.rmtree(output, ignore_errors=True)
    log = io.StringIO()
    grid = {"seed": list(params.seeds)}
    fixed = {"num_trials": params.num_trials, "lr": params.lr}
    common = {"profile": params.sweep_profile, "workers": params.workers, "log": log}
    started = time.perf_counter()
    first = sweep.run_sweep(SWEPT, grid, output=output / "seeds", fixed=fixed, **common)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = sweep.run_sweep(SWEPT, grid, output=output / "seeds", fixed=fixed, **common)
    rerun_seconds = time.perf_counter() - started
    failing = None
    if params.demo_failure:
        failing = sweep.run_sweep(
            SWEPT,
            {"lr": [BAD_LR, params.lr]},
            output=output / "failing",
            fixed={"num_trials": params.num_trials, "seed": params.seeds[0]},
            **common,
        )
    return DaskSweepResult(
        params, output, first, again, failing, seconds, rerun_seconds, log.getvalue()
    )


def summary_frame(result: DaskSweepResult) -> Any:
    """PSNR per data set: mean, SD and count over the seeds."""
    return sweep.summarise(result.table, "psnr")


def psnr_figure(result: DaskSweepResult) -> Figure:
    """The sweep's figure: PSNR per data set, each seed and mean ± SD."""
    return sweep.plot_sweep(result.table, "psnr", swept=["seed"])


def failure_text(result: DaskSweepResult) -> str:
    """What the failing sweep reported."""
    if result.failing is None:
        return "This profile does not run the failing sweep (`demo_failure`)."
    return "```text\n" + result.failing.report() + "\n```"


def summary_text(result: DaskSweepResult) -> str:
    """The sweep in two sentences, with its numbers."""
    counts = result.first.counts()
    again = result.again.counts()
    return (
        f"The sweep ran {counts['done']} of {len(result.first.outcomes)} points "
        f"({counts['failed']} failed) on {result.params.workers} local workers in "
        f"{result.seconds:.0f} s; run again, it skipped {again['skipped']} points "
        f"and ran {again['done']}, in {result.rerun_seconds:.1f} s."
    )


def rows(result: DaskSweepResult) -> list[ResultRow]:
    """PSNR per data set over the seeds, and the sweep's wall time."""
    p = result.params
    out = [
        ResultRow.against(
            f"sweep/dlg/{row['experiment']}",
            "psnr",
            float(row["mean"]),
            None,
            f"mean over {int(row['count'])} seeds, points of the "
            f"{p.sweep_profile} profile (the engine, not DLG's result)",
        )
        for row in summary_frame(result).to_dict("records")
    ]
    out.append(
        ResultRow.against(
            "sweep/dlg/seeds",
            "seconds",
            result.seconds,
            None,
            f"{len(result.first.outcomes)} points on {p.workers} local workers",
        )
    )
    return out


def claims(result: DaskSweepResult) -> list[Claim]:
    """What the sweep engine promises, judged on this run (one run each)."""
    first, again = result.first, result.again
    total = len(first.outcomes)
    out = [
        bound_claim(
            "Every point of the grid runs and writes its notebook and results file",
            SOURCE,
            [first.counts()["done"] / total],
            above=0.999,
            what="share of the points done",
        ),
        bound_claim(
            "Rerunning a sweep skips every point already done",
            SOURCE,
            [float(again.counts()["done"] + again.counts()["failed"])],
            below=0.5,
            what="points run again",
        ),
    ]
    claim = (
        "A failed point is reported with its parameters and does not stop the others"
    )
    if result.failing is None:
        out.append(untested_claim(claim, SOURCE, "demo_failure is off here"))
    else:
        reported = [
            o for o in result.failing.failed if o.point.values == {"lr": BAD_LR}
        ]
        others_done = result.failing.counts()["done"] == 1
        named = f"lr={BAD_LR!r}" in result.failing.report()
        out.append(
            bound_claim(
                claim,
                SOURCE,
                [float(bool(reported) and others_done and named)],
                above=0.5,
                what="the invalid point reported by name and the valid one done (1/0)",
            )
        )
    return out
