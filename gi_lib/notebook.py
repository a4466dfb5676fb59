"""The bookkeeping of a notebook page, in one object.

Around its visible calls, every notebook under ``notebooks/`` does the same
few things: collect the names its parameters cell defines (papermill may
inject more), check them with its driver's ``check``, time the page, and
write the results file that the scorecard is built from. :class:`Page` does
them, so that a page's hidden cells hold nothing but this bookkeeping::

    # a hidden cell, before the parameters cell
    from gi_lib.experiments import dlg as experiment
    from gi_lib.notebook import Page

    page = Page(experiment, globals())

    # the parameters cell, tagged "parameters"
    profile = "cpu"
    seed = 0
    ...

    # visible cells
    params = page.check(globals())
    ...  # the worked example
    result = experiment.run(params)
    rows = experiment.rows(result)

    claims = experiment.claims(result)

    # last, a cell whose input is hidden: it writes the results file and
    # shows how long the page ran
    page.finish(result, rows, claims)
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from gi_lib.params import ExperimentParams, new_names
from gi_lib.results import Claim, ResultRow, write_results


@dataclass(frozen=True)
class Finished:
    """What :meth:`Page.finish` wrote; shown in a notebook as one sentence
    that says how long the page ran, with what."""

    path: Path
    profile: str
    wall_seconds: float
    device: str | None
    threads: int

    def __str__(self) -> str:
        on = f" on {self.device}" if self.device else ""
        return (
            f"This page ran in {_duration(self.wall_seconds)} with the "
            f"`{self.profile}` profile{on}, {self.threads} CPU "
            f"thread{'s' if self.threads != 1 else ''}; its numbers are in "
            f"`{self.path.name}`."
        )

    def _repr_markdown_(self) -> str:
        return str(self)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


class Experiment(Protocol):
    """What a page needs of its driver (a module of :mod:`gi_lib.experiments`)."""

    NOTEBOOK: str

    def check(self, values: Mapping[str, Any]) -> Any: ...


class Page:
    """A notebook page's parameters, wall time and results file.

    Args:
        experiment: the page's driver, e.g. ``gi_lib.experiments.dlg``: its
            ``NOTEBOOK`` names the results file and its ``check`` checks the
            parameters.
        namespace: the notebook's ``globals()`` before its parameters cell;
            every name defined after it is taken for a parameter.
    """

    def __init__(self, experiment: Experiment, namespace: Mapping[str, Any]) -> None:
        self.experiment = experiment
        self.notebook: str = experiment.NOTEBOOK
        self._baseline = frozenset(namespace)
        self._params: ExperimentParams | None = None
        self._started: float | None = None

    def check(self, namespace: Mapping[str, Any]) -> Any:
        """The parameters, checked by the driver: its typed, frozen parameters.

        Every public name of ``namespace`` (the notebook's ``globals()``) that
        was not there when the page was made is a parameter, including any
        that papermill injected, so a misspelt parameter stops the page here
        (:class:`gi_lib.params.ParameterError`). The page object itself is
        not one.

        From here on the page computes on ``num_threads`` CPU threads (the
        worked example as well as the driver's run), the number its results
        file records, and its wall time is measured from here.
        """
        values = {
            name: value
            for name, value in new_names(namespace, self._baseline).items()
            if value is not self
        }
        params = self.experiment.check(values)
        torch.set_num_threads(params.num_threads)
        self._params = params
        self._started = time.perf_counter()
        return params

    @property
    def params(self) -> Any:
        """The checked parameters (after :meth:`check`)."""
        if self._params is None:
            raise self._not_checked()
        return self._params

    def wall_seconds(self) -> float:
        """Seconds since :meth:`check`."""
        if self._started is None:
            raise self._not_checked()
        return time.perf_counter() - self._started

    def _not_checked(self) -> RuntimeError:
        return RuntimeError(
            f"{self.notebook}: the parameters are not checked yet; call "
            "`params = page.check(globals())` after the parameters cell."
        )

    def finish(
        self,
        result: Any,
        rows: Sequence[ResultRow],
        claims: Sequence[Claim],
        *,
        directory: str | os.PathLike[str] | None = None,
    ) -> Finished:
        """Write the page's results file; return where, and how long the page
        ran (a notebook shows it as a sentence).

        The file (:func:`gi_lib.results.write_results`) holds the profile, the
        parameters, the environment with the device the run computed on
        (``result.device``) and the ``num_threads`` it used, the page's wall
        time since :meth:`check`, ``rows`` and ``claims``.

        Args:
            result: what the driver's ``run`` returned.
            rows: the scorecard rows (the driver's ``rows(result)``).
            claims: the paper's claims with this run's verdicts (the driver's
                ``claims(result)``); a page checks at least one.
            directory: defaults to :func:`gi_lib.results.results_dir`.
        """
        params = self.params
        if not claims:
            raise ValueError(
                f"{self.notebook}: a page checks at least one of its paper's "
                "claims (gi_lib.results.Claim); pass them to finish()."
            )
        device = getattr(result, "device", None)
        device = None if device is None else str(device)
        seconds = self.wall_seconds()
        path = write_results(
            self.notebook,
            profile=params.profile,
            parameters=params,
            rows=list(rows),
            claims=list(claims),
            wall_seconds=seconds,
            device=device,
            threads=params.num_threads,
            directory=directory,
        )
        return Finished(path, params.profile, seconds, device, params.num_threads)
