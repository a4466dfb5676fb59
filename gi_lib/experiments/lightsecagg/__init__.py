"""The LightSecAgg notebook: modelled time against SecAgg and SecAgg+, per
phase, and what the server can and cannot invert.

Cost runs: for each number of clients and dropout rate, LightSecAgg, SecAgg
and SecAgg+ sum the same synthetic updates on the aggregation harness; the
same clients drop after the offline phase (before uploading their masked
input), the worst case for SecAgg, whose server must then regenerate the
dropped clients' pairwise masks. The rate is capped just below one half so
that SecAgg's majority threshold can still be met. A
:class:`~gi_lib.defenses.aggregation.NetworkModel` turns each transcript into
modelled wall time, per phase.

The page's modules: :mod:`~gi_lib.experiments.lightsecagg.experiment`
(parameters and run) and :mod:`~gi_lib.experiments.lightsecagg.report`
(speedups, figures, rows, claims, prose).
"""

from __future__ import annotations

from gi_lib.experiments.lightsecagg.experiment import (
    LIGHTSECAGG_PHASES,
    MLSYS,
    NOTEBOOK,
    PROTOCOLS,
    SPEEDUP,
    V1,
    LightSecAggParams,
    LightSecAggRun,
    check,
    cost_runs,
    dropped_count,
    privacy_check,
    run,
)
from gi_lib.experiments.lightsecagg.report import (
    claims,
    cost_table,
    inversion_figure,
    largest_speedup,
    online_figure,
    phase_figure,
    rows,
    speedups,
    summary_text,
    time_figure,
)

__all__ = [
    "LIGHTSECAGG_PHASES",
    "LightSecAggParams",
    "LightSecAggRun",
    "MLSYS",
    "NOTEBOOK",
    "PROTOCOLS",
    "SPEEDUP",
    "V1",
    "check",
    "claims",
    "cost_runs",
    "cost_table",
    "dropped_count",
    "inversion_figure",
    "largest_speedup",
    "online_figure",
    "phase_figure",
    "privacy_check",
    "rows",
    "run",
    "speedups",
    "summary_text",
    "time_figure",
]
