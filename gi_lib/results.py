"""Results files: one JSON per notebook run, gathered by the book's scorecard.

Each file holds the profile, the parameters, the environment, the wall time,
a list of rows ``{experiment, metric, ours, paper, paper_source,
paper_confidence, paper_tolerance, note}`` and a list of claims ``{claim,
source, verdict, evidence}``.

- ``ours`` is always computed by the run; ``paper`` is a value the paper
  reports (``None`` where it gives none), ``paper_source`` cites the table or
  section and ``paper_confidence`` says how it was read (the labels of
  ``PAPER_VALUES.md``: P and T are the paper's own, S and F are not).
- A claim is one thing the paper states, in a sentence, with where it says
  it and the verdict this run reaches: ``holds``, ``does not hold``, ``not
  enough trials`` (the difference is within the trial-to-trial spread) or
  ``not tested`` (at this profile), with the numbers behind it.
  :func:`paired_claim` and :func:`bound_claim` compute verdicts from trials.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import sys
from collections.abc import Mapping, Sequence
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
    "expansion",
    "speedup",
)
RESULTS_ENV = "GI_RESULTS_DIR"


# How a paper's value was read (the labels of PAPER_VALUES.md); only P and T
# are the paper's own numbers.
CONFIDENCE_LABELS = {
    "P": "read in the paper or its authors' repository",
    "T": "read in a verbatim copy of the paper",
    "S": "quoted by a third party, not the paper's own number",
    "F": "a follow-up's own run, not the paper's number",
}
PAPERS_OWN = ("P", "T")

# The band around a paper's value inside which ours counts as matching it,
# per metric, unless the value gives its own ``tolerance``: ("abs", w) is
# value +- w, ("rel", r) is value * (1 +- r), ("factor", f) is value / f to
# value * f (times depend on the hardware).
DEFAULT_BANDS: dict[str, tuple[str, float]] = {
    "psnr": ("abs", 2.0),
    "ssim": ("abs", 0.05),
    "mse": ("factor", 2.0),
    "lpips": ("abs", 0.05),
    "label_accuracy": ("abs", 0.05),
    "success_rate": ("abs", 0.1),
    "test_accuracy": ("abs", 0.02),
    "epsilon": ("rel", 0.05),
    "seconds": ("factor", 3.0),
    "bytes": ("rel", 0.01),
    "expansion": ("rel", 0.05),
    "speedup": ("factor", 2.0),
}


@dataclass(frozen=True)
class PaperValue:
    """A number a paper reports, with where and how it was read.

    Attributes:
        value: the number, in the row's unit (accuracies as fractions).
        source: the paper's table or section, e.g. ``"iDLG, Table 1"``.
        confidence: a label of :data:`CONFIDENCE_LABELS`.
        tolerance: half-width of the band in which ours matches it (in the
            metric's unit); ``None`` uses :data:`DEFAULT_BANDS`.
    """

    value: float
    source: str
    confidence: str
    tolerance: float | None = None

    def __post_init__(self) -> None:
        if not self.source:
            raise ValueError(f"Paper value {self.value}: its source is missing.")
        if self.confidence not in CONFIDENCE_LABELS:
            raise ValueError(
                f"Paper value {self.value} ({self.source}): confidence "
                f"{self.confidence!r} is not one of {', '.join(CONFIDENCE_LABELS)}."
            )
        if self.tolerance is not None and not self.tolerance >= 0:
            raise ValueError(f"Paper value {self.value}: tolerance must be >= 0.")


NOT_RUN = "not run here"
"""How a row's note starts when it holds a paper's number this page does not
reproduce (:meth:`ResultRow.not_run`)."""


@dataclass(frozen=True)
class ResultRow:
    """One scorecard row: our number beside the paper's (if it gives one)."""

    experiment: str
    metric: str
    ours: float
    paper: float | None = None
    paper_source: str | None = None
    paper_confidence: str | None = None
    paper_tolerance: float | None = None
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
        if self.paper is not None and self.paper_confidence not in CONFIDENCE_LABELS:
            raise ValueError(
                f"Row {self.experiment}/{self.metric}: a paper value needs a "
                f"confidence label ({', '.join(CONFIDENCE_LABELS)}), got "
                f"{self.paper_confidence!r}."
            )

    @classmethod
    def not_run(
        cls, experiment: str, metric: str, paper: PaperValue, why: str
    ) -> ResultRow:
        """A paper's number that this page does not reproduce (its setting is
        not run here: another attack, a machine of 20 threads): the row keeps
        the paper's value in the scorecard, with no value of ours and why."""
        if not why:
            raise ValueError(f"Row {experiment}/{metric}: say why it is not run.")
        return cls.against(experiment, metric, math.nan, paper, f"{NOT_RUN}: {why}")

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
        if paper is None:
            return cls(experiment, metric, float(ours), note=note)
        return cls(
            experiment=experiment,
            metric=metric,
            ours=float(ours),
            paper=paper.value,
            paper_source=paper.source,
            paper_confidence=paper.confidence,
            paper_tolerance=paper.tolerance,
            note=note,
        )


def paper_band(row: Mapping[str, Any] | ResultRow) -> tuple[float, float] | None:
    """The interval around the row's paper value in which ours matches it
    (``None`` without a paper value)."""
    get = row.get if isinstance(row, Mapping) else lambda key: getattr(row, key)
    paper, metric = get("paper"), get("metric")
    if paper is None:
        return None
    tolerance = get("paper_tolerance")
    kind, width = ("abs", tolerance) if tolerance is not None else DEFAULT_BANDS[metric]
    if kind == "abs":
        return paper - width, paper + width
    if kind == "rel":
        return sorted((paper * (1 - width), paper * (1 + width)))  # type: ignore[return-value]
    return sorted((paper / width, paper * width))  # type: ignore[return-value]


def within_band(row: Mapping[str, Any] | ResultRow) -> bool | None:
    """Whether our value lies in the paper's band; ``None`` without a paper
    value (or without a finite value of ours)."""
    band = paper_band(row)
    ours = row.get("ours") if isinstance(row, Mapping) else row.ours
    if band is None or ours is None or not math.isfinite(ours):
        return None
    return band[0] <= ours <= band[1]


# ---------------------------------------------------------------------------
# Claims: what a paper states, and the verdict of this run
# ---------------------------------------------------------------------------

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
NOT_ENOUGH_TRIALS = "not enough trials"
NOT_TESTED = "not tested"
VERDICTS = (HOLDS, DOES_NOT_HOLD, NOT_ENOUGH_TRIALS, NOT_TESTED)


@dataclass(frozen=True)
class Claim:
    """One claim of a paper and this run's verdict on it.

    Attributes:
        claim: the claim in a sentence, as the paper states it.
        source: where the paper says it (section, figure or table).
        verdict: one of :data:`VERDICTS`.
        evidence: the numbers behind the verdict (means, spread, trials), or
            why it is not tested.
    """

    claim: str
    source: str
    verdict: str
    evidence: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(
                f"Unknown verdict {self.verdict!r}; use one of {', '.join(VERDICTS)}."
            )
        for name in ("claim", "source", "evidence"):
            if not getattr(self, name).strip():
                raise ValueError(f"A claim needs its {name}: {self.claim!r}.")


@dataclass(frozen=True)
class Spread:
    """Mean of ``n`` trials with the t-interval of the mean at ``confidence``
    (``low``/``high`` are NaN below two trials) and the standard deviation."""

    mean: float
    sd: float
    n: int
    low: float
    high: float
    confidence: float

    def describe(self, unit: str = "") -> str:
        """``mean +- sd (n trials, 95% interval [low, high])``."""
        u = f" {unit}" if unit else ""
        if self.n < 2:
            return f"{self.mean:.3g}{u} (1 trial, no spread)"
        return (
            f"{self.mean:.3g}{u} ± {self.sd:.2g} (SD, {self.n} trials; "
            f"{100 * self.confidence:.0f}% interval of the mean "
            f"[{self.low:.3g}, {self.high:.3g}])"
        )


def spread(values: Sequence[float], confidence: float = 0.95) -> Spread:
    """Mean, standard deviation and Student-t interval of the mean."""
    xs = [float(v) for v in values]
    if not xs or not all(math.isfinite(x) for x in xs):
        raise ValueError(f"spread needs finite values, got {values!r}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}.")
    n = len(xs)
    mean = math.fsum(xs) / n
    if n < 2:
        return Spread(mean, math.nan, n, math.nan, math.nan, confidence)
    from scipy import stats

    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Spread(mean, sd, n, mean - half, mean + half, confidence)


def paired_claim(
    claim: str,
    source: str,
    better: Sequence[float],
    worse: Sequence[float],
    *,
    names: tuple[str, str],
    unit: str = "dB",
    margin: float = 0.0,
    min_trials: int = 3,
    confidence: float = 0.95,
) -> Claim:
    """A claim that one setting beats another, judged on paired trials.

    ``better[i]`` and ``worse[i]`` are the same trial (image, seed) under the
    setting the paper says is better and the other one, in a metric where
    larger is better (pass negated values otherwise). The claim **holds**
    when the whole interval of the mean paired difference lies above
    ``margin``, **does not hold** when it lies below, and otherwise there are
    **not enough trials** to tell, as there are below ``min_trials``.
    """
    if len(better) != len(worse):
        raise ValueError(
            f"{claim!r}: paired trials differ in number "
            f"({len(better)} vs {len(worse)})."
        )
    if min_trials < 2:
        raise ValueError("min_trials must be at least 2 to estimate a spread.")
    if not better:
        return Claim(claim, source, NOT_TESTED, "no trials in this run")
    diffs = [b - w for b, w in zip(better, worse, strict=True)]
    first, second = names
    d = spread(diffs, confidence)
    u = f" {unit}" if unit else ""
    evidence = (
        f"{first}: {spread(better).mean:.3g}{u}, {second}: {spread(worse).mean:.3g}"
        f"{u}; paired difference {d.describe(unit)}"
    )
    if len(diffs) < min_trials:
        verdict = NOT_ENOUGH_TRIALS
        evidence += f"; {min_trials} trials are needed to judge"
    elif d.low > margin:
        verdict = HOLDS
    elif d.high < margin:
        verdict = DOES_NOT_HOLD
    else:
        verdict = NOT_ENOUGH_TRIALS
    if margin and verdict != NOT_ENOUGH_TRIALS:
        evidence += f"; judged against a margin of {margin:g}{u}"
    return Claim(claim, source, verdict, evidence)


def bound_claim(
    claim: str,
    source: str,
    values: Sequence[float],
    *,
    above: float | None = None,
    below: float | None = None,
    unit: str = "",
    what: str = "",
    confidence: float = 0.95,
    every_trial: bool = False,
) -> Claim:
    """A claim that a quantity lies above ``above`` and/or below ``below``.

    With one value (a single training run, a closed-form result) the verdict
    is the value's side of the bound, and the evidence says it is one run.
    With several trials, it **holds** when the interval of their mean lies
    within the bounds, **does not hold** when it lies wholly outside one,
    and otherwise there are **not enough trials** to tell.

    With ``every_trial``, the claim is a property of every trial, not of the
    mean (a full-rank network is inverted exactly): it holds when every
    trial lies within the bounds and does not hold when one trial does not,
    whatever the mean; the evidence lists each trial and the worst.
    """
    if above is None and below is None:
        raise ValueError(f"{claim!r}: give a bound (above= and/or below=).")
    if not values:
        return Claim(claim, source, NOT_TESTED, "no trials in this run")
    if every_trial:
        return _every_trial_claim(claim, source, values, above, below, unit, what)
    s = spread(values, confidence)
    low, high = (s.mean, s.mean) if s.n < 2 else (s.low, s.high)
    bounds = []
    if above is not None:
        bounds.append(f"above {above:g}")
    if below is not None:
        bounds.append(f"below {below:g}")
    u = f" {unit}" if unit else ""
    evidence = f"{what + ': ' if what else ''}{s.describe(unit)}; claimed " + (
        " and ".join(bounds) + u
    )
    inside = (above is None or low > above) and (below is None or high < below)
    outside = (above is not None and high <= above) or (
        below is not None and low >= below
    )
    verdict = HOLDS if inside else DOES_NOT_HOLD if outside else NOT_ENOUGH_TRIALS
    return Claim(claim, source, verdict, evidence)


def _every_trial_claim(
    claim: str,
    source: str,
    values: Sequence[float],
    above: float | None,
    below: float | None,
    unit: str,
    what: str,
) -> Claim:
    """:func:`bound_claim` with ``every_trial``: the worst trial decides."""
    u = f" {unit}" if unit else ""
    listed = ", ".join(f"{v:.3g}" for v in values)
    trials = f"{len(values)} trial{'s' if len(values) != 1 else ''}"
    worst, claimed = [], []
    if above is not None:
        worst.append(f"lowest {min(values):.3g}{u}")
        claimed.append(f"above {above:g}")
    if below is not None:
        worst.append(f"highest {max(values):.3g}{u}")
        claimed.append(f"below {below:g}")
    inside = all(
        (above is None or v > above) and (below is None or v < below) for v in values
    )
    evidence = (
        f"{what + ': ' if what else ''}{listed}{u} ({trials}); {', '.join(worst)}; "
        f"claimed {' and '.join(claimed)}{u} on every trial"
    )
    return Claim(claim, source, HOLDS if inside else DOES_NOT_HOLD, evidence)


def untested_claim(claim: str, source: str, why: str) -> Claim:
    """A claim this profile does not test, and why."""
    return Claim(claim, source, NOT_TESTED, why)


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
    claims: Sequence[Claim] = (),
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
        claims: the paper's claims with this run's verdicts.
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
        "claims": [asdict(claim) for claim in claims],
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
                "paper": "—" if r.paper is None else _significant(r.paper),
                "ours": _significant(r.ours),
                "paper source": _source_text(r),
                "within the paper's band": _band_text(r),
                "note": r.note,
            }
            for r in rows
        ]
    )


def _significant(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits (microseconds stay visible)."""
    if not math.isfinite(value) or value == 0:
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _source_text(row: ResultRow) -> str:
    if row.paper is None:
        return ""
    label = row.paper_confidence or "?"
    own = "" if label in PAPERS_OWN else ", not the paper's own"
    return f"{row.paper_source} [{label}{own}]"


def _band_text(row: ResultRow) -> str:
    inside = within_band(row)
    if inside is None:
        return "—"
    low, high = paper_band(row) or (math.nan, math.nan)
    return f"{'yes' if inside else 'no'} ({low:.4g} to {high:.4g})"


def claims_frame(claims: Sequence[Claim]):  # noqa: ANN201 - pandas imported lazily
    """Claims as a pandas DataFrame: the claim, where, the verdict, the numbers."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "the paper's claim": c.claim,
                "where": c.source,
                "verdict here": c.verdict,
                "this run": c.evidence,
            }
            for c in claims
        ]
    )


def claims_table(claims: Sequence[Claim]):  # noqa: ANN201 - IPython imported lazily
    """The claims table for a notebook: :func:`claims_frame` as HTML with
    every cell whole (pandas would cut long cells short)."""
    import pandas as pd
    from IPython.display import HTML

    with pd.option_context("display.max_colwidth", None):
        return HTML(claims_frame(claims).to_html(index=False))
