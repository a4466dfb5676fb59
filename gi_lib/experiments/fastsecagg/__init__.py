"""The FastSecAgg notebook: measured scaling against SecAgg and SecAgg+,
privacy by rank over F_p, recovery under random and adversarial dropouts,
and what the server can and cannot invert.

Cost runs: for each number of clients (of the form 3 * 2**a, so that it
divides p - 1 and has a coprime grid), FastSecAgg, SecAgg and SecAgg+ sum
the same synthetic updates on the aggregation harness while the same share
of clients drops after sharing. Every party is timed by its own CPU seconds;
log-log slopes against N give the measured scaling. FastRecon's recovery
probability is a Monte-Carlo estimate over random dropout patterns (only the
pattern matters, so no protocol run is needed); the adversarial pattern is
the smallest stopping set of FastShare's product code.

The page's modules: :mod:`~gi_lib.experiments.fastsecagg.params`,
:mod:`~gi_lib.experiments.fastsecagg.experiment` (the run),
:mod:`~gi_lib.experiments.fastsecagg.report` (slopes, tables, rows, claims,
prose) and :mod:`~gi_lib.experiments.fastsecagg.figures`.
"""

from __future__ import annotations

from gi_lib.experiments.fastsecagg.experiment import (
    FastSecAggRun,
    SchemeCheck,
    cost_runs,
    run,
    scheme_check,
)
from gi_lib.experiments.fastsecagg.figures import (
    inversion_figure,
    recovery_figure,
    scaling_figure,
)
from gi_lib.experiments.fastsecagg.params import (
    ABSTRACT,
    FASTSECAGG_PHASES,
    NOTEBOOK,
    PROTOCOLS,
    FastSecAggParams,
    check,
)
from gi_lib.experiments.fastsecagg.report import (
    EXPECTED_ORDERS,
    claims,
    cost_table,
    rows,
    scheme_table,
    slope_table,
    slopes,
    summary_text,
)

__all__ = [
    "ABSTRACT",
    "EXPECTED_ORDERS",
    "FASTSECAGG_PHASES",
    "FastSecAggParams",
    "FastSecAggRun",
    "NOTEBOOK",
    "PROTOCOLS",
    "SchemeCheck",
    "check",
    "claims",
    "cost_runs",
    "cost_table",
    "inversion_figure",
    "recovery_figure",
    "rows",
    "run",
    "scaling_figure",
    "scheme_check",
    "scheme_table",
    "slope_table",
    "slopes",
    "summary_text",
]
