"""Results files: one JSON per notebook run, gathered by the book's scorecard.

Each file holds the profile, the parameters, the environment, the wall time and
a list of rows ``{experiment, metric, ours, paper, paper_source, note}``.
``ours`` is always computed by the run; ``paper`` is a value printed in the
paper (``None`` where the paper gives none) and ``paper_source`` cites it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gi_lib._io import atomic_write_text

if TYPE_CHECKING:  # params imports torch; results is read without it
    from gi_lib.params import ExperimentParams

METRICS = (
    "psnr",
    "ssim",
    "mse",
    "lpips",
    "label_accuracy",
    "success_rate",
    "test_accuracy",
    "epsilon",
    "seconds",
    "bytes",
)
RESULTS_ENV = "GI_RESULTS_DIR"


@dataclass(frozen=True)
class PaperValue:
    """A number printed in a paper, with where it is printed."""

    value: float
    source: str


@dataclass(frozen=True)
class ResultRow:
    """One scorecard row: our number beside the paper's (if it gives one)."""

    experiment: str
    metric: str
    ours: float
    paper: float | None = None
    paper_source: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(
                f"Unknown metric {self.metric!r}; use one of {', '.join(METRICS)}."
            )
        if not isinstance(self.ours, (int, float)) or isinstance(self.ours, bool):
            raise TypeError(
                f"'ours' must be a number computed by the run, got {self.ours!r}."
            )
        if self.paper is not None and not self.paper_source:
            raise ValueError(
                f"Row {self.experiment}/{self.metric}: a paper value needs its source."
            )

    @classmethod
    def against(
        cls,
        experiment: str,
        metric: str,
        ours: float,
        paper: PaperValue | None,
        note: str = "",
    ) -> ResultRow:
        """Build a row from our value and an optional cited paper value."""
        return cls(
            experiment=experiment,
            metric=metric,
            ours=float(ours),
            paper=None if paper is None else paper.value,
            paper_source=None if paper is None else paper.source,
            note=note,
        )


def results_dir() -> Path:
    """Folder for results files: ``$GI_RESULTS_DIR``, else ``./results``."""
    return Path(os.environ.get(RESULTS_ENV, "results")).resolve()


def environment_info(
    device: str | None = None, *, threads: int | None = None
) -> dict[str, Any]:
    """Versions, device and CPU threads, so a reader can tell what produced a number.

    Args:
        device: the device the run computed on.
        threads: the CPU threads the run used (its ``num_threads``); without
            it, torch's current setting, which outside the run is the
            machine's default rather than what the run used.
    """
    import numpy
    import torch

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda_available": torch.cuda.is_available(),
        "threads": torch.get_num_threads() if threads is None else threads,
    }
    if device is not None:
        info["device"] = device
        if device.startswith("cuda") and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _clean(value: float | None) -> float | None:
    if value is None:
        return None
    if math.isnan(value) or math.isinf(value):
        # JSON has no NaN; a missing number is reported as such.
        return None
    return value


def write_results(
    notebook: str,
    *,
    profile: str,
    parameters: Mapping[str, Any] | ExperimentParams,
    rows: list[ResultRow],
    wall_seconds: float,
    device: str | None = None,
    threads: int | None = None,
    directory: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``<directory>/<notebook>.json`` atomically and return its path.

    Args:
        notebook: the notebook's short name, which names the file.
        profile: the run profile.
        parameters: every parameter's value: a mapping, or an experiment's
            parameters dataclass (:class:`gi_lib.params.ExperimentParams`),
            whose lists are recorded as JSON lists.
        rows: the scorecard rows (at least one).
        wall_seconds: the run's wall time.
        device: the device the run computed on.
        threads: the CPU threads the run used; defaults to the parameters'
            ``num_threads`` where they have one.
        directory: defaults to :func:`results_dir`.
    """
    if not rows:
        raise ValueError(f"{notebook}: no result rows to write.")
    if dataclasses.is_dataclass(parameters) and not isinstance(parameters, type):
        parameters = dataclasses.asdict(parameters)
    parameters = dict(parameters)
    if threads is None:
        threads = parameters.get("num_threads")
    record = {
        "notebook": notebook,
        "profile": profile,
        "parameters": parameters,
        "environment": environment_info(device, threads=threads),
        "wall_seconds": round(float(wall_seconds), 3),
        "rows": [
            {**asdict(row), "ours": _clean(row.ours), "paper": _clean(row.paper)}
            for row in rows
        ],
    }
    target = Path(directory) if directory is not None else results_dir()
    return atomic_write_text(
        target / f"{notebook}.json", json.dumps(record, indent=2) + "\n"
    )


def read_results(
    directory: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Read every results file in ``directory``, sorted by notebook name."""
    folder = Path(directory) if directory is not None else results_dir()
    records = []
    for path in sorted(folder.glob("*.json")):
        with path.open(encoding="utf-8") as handle:
            records.append(json.load(handle))
    return records


def rows_frame(rows: list[ResultRow]):  # noqa: ANN201 - pandas is imported lazily
    """Rows as a pandas DataFrame for display: paper's value beside ours."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "experiment": r.experiment,
                "metric": r.metric,
                "paper": "—" if r.paper is None else round(r.paper, 4),
                "ours": round(r.ours, 4),
                "paper source": r.paper_source or "",
                "note": r.note,
            }
            for r in rows
        ]
    )
