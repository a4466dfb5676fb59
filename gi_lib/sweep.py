"""Parameter sweeps of a notebook on Dask: ``python -m gi_lib.sweep``.

A sweep runs one notebook once per point of a grid of parameter values, each
point with the project's runner (:func:`gi_lib.runner.run_notebook`: the
profile's overrides, then the point's values, checked against the parameters
cell; the executed notebook and the results file are written atomically)::

    python -m gi_lib.sweep notebooks/attacks/dlg.py --profile smoke \\
        --grid seed=0,1,2,3 --output _build/sweeps/dlg-seeds

The points run as tasks of a Dask cluster (``dask.distributed``): by default a
local cluster of one single-threaded worker process per CPU core
(``--workers N`` to choose), or an existing scheduler (``--scheduler
tcp://host:8786``), so the same command fans out over a lab's machines. The
workers must run this same environment (``gi_lib`` importable, the data sets
under ``GI_DATA_DIR``) and see the output folder and the notebook at the same
paths (a shared file system). On a SLURM cluster, ``dask-jobqueue`` starts the
workers as batch jobs; point the sweep at its scheduler::

    from dask_jobqueue import SLURMCluster
    cluster = SLURMCluster(cores=1, processes=1, memory="8GB",
                           walltime="02:00:00", job_extra_directives=["--gpus=1"])
    cluster.scale(jobs=8)
    print(cluster.scheduler_address)   # pass it as --scheduler

    # or from Python, with the cluster object itself:
    from dask.distributed import Client
    run_sweep(notebook, grid, profile="paper", output=..., client=Client(cluster))

Layout of ``--output``::

    points/<point>/point.json     the point's parameters (written first)
    points/<point>/<stem>.ipynb   the executed notebook (atomic, by the runner)
    points/<point>/<stem>.json    its results file (atomic, by the runner)
    points/<point>/failure.json   why the point failed (removed when it succeeds)
    sweep.json                    every point's status, parameters and time
    results.csv                   every results row of every point, one table
    <metric>.png                  the metric against the swept parameter

A point whose executed notebook and results file exist (for the same
parameters) is done: rerunning the sweep skips it. A failed point is reported
with its parameters and does not stop the others; the command then exits
with status 1.

One worker runs one point at a time (the runner sets process-wide environment
variables for its kernel), so give each worker one thread: ``dask worker
--nthreads 1`` (a local cluster does).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gi_lib._io import atomic_write_text

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

POINTS_DIR = "points"
POINT_FILE = "point.json"
FAILURE_FILE = "failure.json"
SUMMARY_FILE = "sweep.json"
TABLE_FILE = "results.csv"
SEED_NAMES = ("seed",)
# A point runs in its own kernel; one at a time per worker process.
_RUN_LOCK = threading.Lock()


class SweepError(Exception):
    """A problem with the sweep's arguments; the message says how to fix it."""


# --- the grid ----------------------------------------------------------------


def parse_values(text: str) -> list[Any]:
    """The values of one grid axis: ``1,2,3`` or a YAML list ``["a,b", "c"]``.

    Each comma-separated value is read as YAML, as the runner's ``-p`` reads
    one (``3`` is an int, ``0.1`` a float, ``true`` a bool, ``mnist`` a
    string). A value that itself holds commas (some parameters are
    comma-separated lists) needs the YAML list form.

    Raises:
        SweepError: no value, an empty value or a repeated value.
    """
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            values = yaml.safe_load(stripped)
        except yaml.YAMLError as error:
            raise SweepError(f"cannot read the YAML list {text!r}: {error}") from error
        if not isinstance(values, list):
            raise SweepError(f"{text!r} is not a YAML list.")
    else:
        parts = [part.strip() for part in stripped.split(",")]
        if any(not part for part in parts):
            raise SweepError(
                f"{text!r} has an empty value; write values as v1,v2,... "
                "(or a YAML list for values holding commas)."
            )
        values = [yaml.safe_load(part) for part in parts]
    if not values:
        raise SweepError(f"{text!r} gives no value.")
    keys = [json.dumps(v, sort_keys=True) for v in values]
    if len(set(keys)) != len(keys):
        raise SweepError(f"{text!r} repeats a value; give each value once.")
    return values


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """``["seed=0,1", "lr=0.1,1"]`` -> ``{"seed": [0, 1], "lr": [0.1, 1]}``.

    Raises:
        SweepError: a spec without ``=``, a bad name, a name given twice,
            ``profile`` (chosen with ``--profile``), or bad values.
    """
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep:
            raise SweepError(f"grid axis {spec!r} must read NAME=v1,v2,...")
        if not name.isidentifier():
            raise SweepError(f"{name!r} in {spec!r} is not a parameter name.")
        if name == "profile":
            raise SweepError("sweep profiles with separate sweeps (--profile).")
        if name in grid:
            raise SweepError(f"the grid names {name!r} twice; give one axis per name.")
        grid[name] = parse_values(values)
    if not grid:
        raise SweepError("the grid is empty; give at least one --grid NAME=v1,v2.")
    return grid


@dataclass(frozen=True)
class Point:
    """One point of the grid: a value for every swept parameter."""

    parameters: tuple[tuple[str, Any], ...]

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.parameters)

    @property
    def name(self) -> str:
        """A folder name: readable, and unique (a hash of the exact values)."""
        readable = "_".join(f"{k}-{v}" for k, v in self.parameters)
        readable = re.sub(r"[^A-Za-z0-9.=-]+", "-", readable).strip("-")[:80]
        digest = hashlib.sha1(
            json.dumps(self.values, sort_keys=True).encode("utf-8")
        ).hexdigest()[:8]
        return f"{readable}_{digest}"

    def describe(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.parameters)


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[Point]:
    """Every combination, the last axis varying fastest."""
    names = list(grid)
    return [
        Point(tuple(zip(names, combo, strict=True)))
        for combo in itertools.product(*(grid[n] for n in names))
    ]


# --- one point -----------------------------------------------------------------


@dataclass(frozen=True)
class PointOutcome:
    """What happened to one point."""

    point: Point
    status: str  # "done", "skipped" (done before) or "failed"
    seconds: float = 0.0
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "point": self.point.name,
            "parameters": self.point.values,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }


def point_dir(output: Path, point: Point) -> Path:
    return output / POINTS_DIR / point.name


def _stem(notebook: str | os.PathLike[str]) -> str:
    return Path(notebook).stem


def point_done(output: Path, point: Point, notebook: str | os.PathLike[str]) -> bool:
    """Whether the point ran to the end before: its parameters file matches and
    its executed notebook and results file exist (both are written atomically,
    the results file only by a run that finished)."""
    folder = point_dir(output, point)
    stem = _stem(notebook)
    try:
        recorded = json.loads((folder / POINT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        recorded.get("parameters") == point.values
        and (folder / f"{stem}.ipynb").is_file()
        and (folder / f"{stem}.json").is_file()
    )


def run_point(
    notebook: str,
    point: Point,
    *,
    profile: str,
    output: str,
    fixed: Mapping[str, Any] | None = None,
    profiles_dir: str | None = None,
    verbose: bool = False,
) -> PointOutcome:
    """Run one point with the runner; never raises for a failed run.

    This is the task a Dask worker executes. The point's values override the
    fixed ones, which override the profile's.
    """
    from gi_lib.runner import RunnerError, run_notebook

    folder = point_dir(Path(output), point)
    folder.mkdir(parents=True, exist_ok=True)
    stem = _stem(notebook)
    record = {
        "notebook": str(notebook),
        "profile": profile,
        "parameters": point.values,
        "fixed": dict(fixed or {}),
    }
    atomic_write_text(folder / POINT_FILE, json.dumps(record, indent=2) + "\n")
    started = time.perf_counter()
    error = ""
    with _RUN_LOCK:
        try:
            run_notebook(
                notebook,
                profile=profile,
                output=folder / f"{stem}.ipynb",
                results_dir=folder,
                extra_parameters={**(fixed or {}), **point.values},
                profiles_dir=profiles_dir,
                verbose=verbose,
            )
        except RunnerError as failure:
            error = str(failure)
        except Exception as failure:  # noqa: BLE001 - reported, never lost
            error = f"{type(failure).__name__}: {failure}"
    seconds = time.perf_counter() - started
    if error:
        failure_record = {**record, "error": error, "seconds": round(seconds, 3)}
        atomic_write_text(
            folder / FAILURE_FILE, json.dumps(failure_record, indent=2) + "\n"
        )
        return PointOutcome(point, "failed", seconds, error)
    (folder / FAILURE_FILE).unlink(missing_ok=True)
    return PointOutcome(point, "done", seconds)


# --- the sweep -----------------------------------------------------------------


@dataclass
class SweepResult:
    """The outcome of every point, the gathered table and where it all is."""

    output: Path
    outcomes: list[PointOutcome]
    table: Any  # pandas.DataFrame
    figures: dict[str, Path] = field(default_factory=dict)

    @property
    def failed(self) -> list[PointOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def counts(self) -> dict[str, int]:
        counts = {"done": 0, "skipped": 0, "failed": 0}
        for outcome in self.outcomes:
            counts[outcome.status] += 1
        return counts

    def report(self) -> str:
        """One line of counts, then one line per failed point."""
        c = self.counts()
        lines = [
            f"{len(self.outcomes)} points: {c['done']} ran, {c['skipped']} skipped "
            f"(done before), {c['failed']} failed; results in {self.output}"
        ]
        for outcome in self.failed:
            lines.append(f"FAILED {outcome.point.describe()}: {outcome.error}")
        return "\n".join(lines)


def default_workers() -> int:
    """One single-threaded worker per CPU core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _client(scheduler: str | None, workers: int | None) -> tuple[Any, Any]:
    """A Dask client on the given scheduler, or on a new local cluster."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(
        n_workers=workers or default_workers(),
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    return Client(cluster), cluster


def run_sweep(
    notebook: str | os.PathLike[str],
    grid: Mapping[str, Sequence[Any]],
    *,
    profile: str,
    output: str | os.PathLike[str],
    fixed: Mapping[str, Any] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    client: Any = None,
    profiles_dir: str | os.PathLike[str] | None = None,
    metric: str | None = "psnr",
    x: str | None = None,
    verbose: bool = False,
    log: Any = None,
) -> SweepResult:
    """Run every point of ``grid`` not done before, on Dask; gather the results.

    Args:
        notebook: the notebook source (``notebooks/<category>/<name>.py``).
        grid: parameter name -> values (:func:`parse_grid`).
        profile: the profile every point runs under.
        output: the sweep's folder (see the module's docstring).
        fixed: overrides shared by every point (after the profile's).
        scheduler: the address of an existing Dask scheduler; None starts a
            local cluster of ``workers`` single-threaded worker processes.
        workers: local workers (default: one per CPU core).
        client: an existing ``dask.distributed.Client`` (wins over the two above).
        profiles_dir: defaults to the notebook's ``notebooks/profiles``.
        metric: the metric the figure shows (None: no figure).
        x: the parameter on the figure's x axis (default: the first swept
            parameter that is not a seed).
        verbose: put each failure's traceback in its message.
        log: where progress lines go (default: stdout).

    Returns:
        The outcomes, the gathered table and the figure written.

    Raises:
        SweepError: before anything runs, for a bad notebook, profile or
            parameter name (checked once, as the runner checks it).
    """
    from gi_lib.runner import (
        NOTEBOOKS_DIR,
        PROFILES_DIR,
        RunnerError,
        locate,
        read_notebook,
        resolve_parameters,
    )

    log = log or sys.stdout
    try:
        source = locate(notebook)
        profiles = (
            Path(profiles_dir)
            if profiles_dir is not None
            else source.root / NOTEBOOKS_DIR / PROFILES_DIR
        )
        nb = read_notebook(source.path)
        # Every name and the profile are checked here, once, before any worker.
        for point in grid_points(grid)[:1]:
            resolve_parameters(
                source,
                nb,
                profile=profile,
                profiles_dir=profiles,
                extra={**(fixed or {}), **point.values},
            )
    except RunnerError as error:
        message = str(error).replace("the command line", "the grid (or -p)")
        raise SweepError(message) from error
    if x is not None and x not in grid:
        raise SweepError(f"--x {x!r} is not a swept parameter ({', '.join(grid)}).")

    out = Path(output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    points = grid_points(grid)
    todo = [p for p in points if not point_done(out, p, source.path)]
    outcomes: dict[Point, PointOutcome] = {
        p: PointOutcome(p, "skipped") for p in points if p not in todo
    }
    print(
        f"sweep of {source.key} [{profile}]: {len(points)} points, "
        f"{len(points) - len(todo)} done before",
        file=log,
        flush=True,
    )
    if todo:
        from dask.distributed import as_completed

        own_client, cluster = (client, None) if client else _client(scheduler, workers)
        try:
            futures = {
                own_client.submit(
                    run_point,
                    str(source.path),
                    point,
                    profile=profile,
                    output=str(out),
                    fixed=dict(fixed or {}),
                    profiles_dir=str(profiles),
                    verbose=verbose,
                    key=f"sweep-{source.stem}-{point.name}-{time.time_ns()}",
                    pure=False,
                ): point
                for point in todo
            }
            for future in as_completed(futures):
                point = futures[future]
                try:
                    outcome = future.result()
                except Exception as error:  # noqa: BLE001 - a lost worker, say
                    outcome = PointOutcome(
                        point, "failed", 0.0, f"{type(error).__name__}: {error}"
                    )
                outcomes[point] = outcome
                print(
                    f"  {outcome.status:6s} {point.describe()} "
                    f"({outcome.seconds:.0f} s)",
                    file=log,
                    flush=True,
                )
        finally:
            if client is None:
                own_client.close()
                if cluster is not None:
                    cluster.close()
    ordered = [outcomes[p] for p in points]
    summary = {
        "notebook": source.key,
        "profile": profile,
        "grid": {k: list(v) for k, v in grid.items()},
        "fixed": dict(fixed or {}),
        "points": [o.as_dict() for o in ordered],
    }
    atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    table = gather(out, points, source.path)
    atomic_write_text(out / TABLE_FILE, table.to_csv(index=False))
    figures: dict[str, Path] = {}
    if metric is not None and not table.empty and metric in set(table["metric"]):
        import matplotlib.pyplot as plt

        figure = plot_sweep(table, metric, x=x, swept=list(grid))
        path = out / f"{metric}.png"
        tmp = path.with_name(f".{path.name}.tmp.png")
        figure.savefig(tmp, dpi=120, bbox_inches="tight")
        plt.close(figure)
        os.replace(tmp, path)
        figures[metric] = path
    return SweepResult(out, ordered, table, figures)


def gather(
    output: str | os.PathLike[str],
    points: Sequence[Point],
    notebook: str | os.PathLike[str],
) -> pd.DataFrame:
    """One row per results row of every finished point, with its swept values.

    Columns: the swept parameters, ``point``, ``experiment``, ``metric``,
    ``ours``. A failed point has no row.
    """
    import pandas as pd

    out = Path(output)
    stem = _stem(notebook)
    names = list(points[0].values) if points else []
    records = []
    for point in points:
        path = point_dir(out, point) / f"{stem}.json"
        if not point_done(out, point, notebook):
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        for row in data.get("rows", []):
            ours = row.get("ours")
            records.append(
                {
                    **point.values,
                    "point": point.name,
                    "experiment": row["experiment"],
                    "metric": row["metric"],
                    "ours": math.nan if ours is None else float(ours),
                }
            )
    columns = [*names, "point", "experiment", "metric", "ours"]
    return pd.DataFrame.from_records(records, columns=columns)


def summarise(
    table: pd.DataFrame, metric: str, *, x: str | None = None
) -> pd.DataFrame:
    """Mean, standard deviation and count of ``metric`` per experiment (and x).

    The spread is over every other swept parameter (the seeds).
    """
    keys = ["experiment", *([x] if x else [])]
    rows = table[table["metric"] == metric]
    summary = rows.groupby(keys, sort=False)["ours"].agg(["mean", "std", "count"])
    return summary.reset_index()


def _x_axis(swept: Sequence[str], x: str | None) -> str | None:
    if x is not None:
        return x
    others = [name for name in swept if name not in SEED_NAMES]
    return others[0] if others else None


def plot_sweep(
    table: pd.DataFrame,
    metric: str,
    *,
    x: str | None = None,
    swept: Sequence[str] = (),
) -> Figure:
    """The metric against the swept parameter: each point, and mean ± SD.

    One line per experiment (a results row's ``experiment``); with only seeds
    swept, the experiments are the x axis.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from gi_lib.plots import PALETTE

    axis_name = _x_axis(swept, x)
    rows = table[table["metric"] == metric]
    figure, axis = plt.subplots(figsize=(6.0, 3.4))
    experiments = list(dict.fromkeys(rows["experiment"]))
    if axis_name is None:
        for i, experiment in enumerate(experiments):
            values = rows[rows["experiment"] == experiment]["ours"].to_numpy(float)
            colour = PALETTE[i % len(PALETTE)]
            jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [0]
            axis.scatter(i + np.asarray(jitter), values, s=14, color=colour, alpha=0.6)
            sd = float(np.nanstd(values, ddof=1)) if len(values) > 1 else 0.0
            axis.errorbar(
                i, float(np.nanmean(values)), yerr=sd, fmt="o", color=colour,
                capsize=5, markersize=7,
            )  # fmt: skip
        axis.set_xticks(range(len(experiments)), experiments)
        axis.set_xlabel("experiment (spread over seeds)")
    else:
        numeric = np.issubdtype(rows[axis_name].dtype, np.number)
        levels = list(dict.fromkeys(rows[axis_name]))
        position = {v: (v if numeric else k) for k, v in enumerate(levels)}
        for i, experiment in enumerate(experiments):
            part = rows[rows["experiment"] == experiment]
            colour = PALETTE[i % len(PALETTE)]
            xs = [position[v] for v in part[axis_name]]
            axis.scatter(xs, part["ours"], s=12, color=colour, alpha=0.45)
            summary = summarise(part, metric, x=axis_name)
            sx = [position[v] for v in summary[axis_name]]
            axis.errorbar(
                sx, summary["mean"], yerr=summary["std"].fillna(0.0), marker="o",
                color=colour, capsize=4, label=experiment,
            )  # fmt: skip
        if not numeric:
            axis.set_xticks(range(len(levels)), [str(v) for v in levels])
        axis.set_xlabel(axis_name)
        axis.legend(fontsize=8, frameon=False)
    axis.set_ylabel(f"{metric} (mean ± SD)")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


# --- the command line ------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    from gi_lib._cli import notebook_parser, parse_parameters

    parser = notebook_parser(
        "sweep",
        "Run a notebook over a grid of parameters on Dask.",
        parameters="a parameter fixed for every point (VALUE is read as YAML)",
        output="the sweep's folder",
    )
    parser.add_argument(
        "--grid",
        action="append",
        required=True,
        metavar="NAME=V1,V2",
        help="one swept parameter and its values (repeat for more axes)",
    )
    parser.add_argument("--scheduler", help="address of an existing Dask scheduler")
    parser.add_argument(
        "--workers", type=int, help="local cluster size (default: one per core)"
    )
    parser.add_argument("--metric", default="psnr", help="the metric to plot")
    parser.add_argument("--x", help="the parameter on the plot's x axis")
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    # The options are named as run_sweep's arguments, but for --param (fixed).
    options = dict(vars(args))
    try:
        grid = parse_grid(options.pop("grid"))
        fixed = parse_parameters(options.pop("param"))
        result = run_sweep(grid=grid, fixed=fixed, **options)
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(result.report())
    if not result.table.empty and args.metric in set(result.table["metric"]):
        x = _x_axis(list(grid), args.x)
        print(summarise(result.table, args.metric, x=x).to_string(index=False))
    for path in result.figures.values():
        print(f"figure: {path}")
    return 1 if result.failed else 0


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy's: Dask pickles
    # the task by reference to gi_lib.sweep, which workers can import.
    from gi_lib.sweep import main as _main

    sys.exit(_main())
