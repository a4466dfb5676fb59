"""The CAFE notebook's experiments: PSNR against batch size and parties, CAFE
against DLG in the same vertical setting, and the paper's claims checked.

The page's modules: :mod:`~gi_lib.experiments.cafe.experiment` (parameters
and run) and :mod:`~gi_lib.experiments.cafe.report` (figures, rows, claims,
prose).
"""

from __future__ import annotations

from gi_lib.experiments.cafe.experiment import (
    DEVICES,
    DLG_BATCHES,
    NOTEBOOK,
    CAFEExperiment,
    CAFEParams,
    CAFERun,
    check,
    run,
    run_cafe,
    setup,
)
from gi_lib.experiments.cafe.report import (
    BATCH_MARGIN,
    RECOVERED_PSNR,
    claims,
    examples_figure,
    rows,
    summary_text,
    sweep_figure,
)

__all__ = [
    "BATCH_MARGIN",
    "CAFEExperiment",
    "CAFEParams",
    "CAFERun",
    "DEVICES",
    "DLG_BATCHES",
    "NOTEBOOK",
    "RECOVERED_PSNR",
    "check",
    "claims",
    "examples_figure",
    "rows",
    "run",
    "run_cafe",
    "setup",
    "summary_text",
    "sweep_figure",
]
