"""The Inverting Gradients notebook: its parameters, run, figures, tables
and results rows.

The four experiments themselves are in
:mod:`gi_lib.experiments.inverting_experiments`.

The page's modules: :mod:`~gi_lib.experiments.inverting_gradients.experiment`
(check and run), :mod:`~gi_lib.experiments.inverting_gradients.figures`,
:mod:`~gi_lib.experiments.inverting_gradients.report` (rows, prose) and
:mod:`~gi_lib.experiments.inverting_gradients.claims`.
"""

from __future__ import annotations

from gi_lib.experiments.inverting_gradients.claims import (
    ABSTRACT,
    TABLE_1,
    WIDTH_SOURCE,
    ClaimTrials,
    claim_trials,
    claims,
    judge,
    verdicts_text,
)
from gi_lib.experiments.inverting_gradients.experiment import (
    NOTEBOOK,
    PAPER_SETTING,
    UNVERIFIED,
    check,
    run,
)
from gi_lib.experiments.inverting_gradients.figures import (
    TABLE_LABELS,
    batch_curve,
    batch_figure,
    examples_figure,
    fedavg_figure,
    fedavg_frame,
    table_frame,
    width_frame,
)
from gi_lib.experiments.inverting_gradients.report import (
    fedavg_experiment,
    network_text,
    rows,
    summary_text,
)

__all__ = [
    "ABSTRACT",
    "ClaimTrials",
    "NOTEBOOK",
    "PAPER_SETTING",
    "TABLE_1",
    "TABLE_LABELS",
    "UNVERIFIED",
    "WIDTH_SOURCE",
    "batch_curve",
    "batch_figure",
    "check",
    "claim_trials",
    "claims",
    "examples_figure",
    "fedavg_experiment",
    "fedavg_figure",
    "fedavg_frame",
    "judge",
    "network_text",
    "rows",
    "run",
    "summary_text",
    "table_frame",
    "verdicts_text",
    "width_frame",
]
