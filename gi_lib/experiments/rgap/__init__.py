"""The R-GAP notebook's experiments: R-GAP against DLG, and rank versus quality.

The page's modules: :mod:`~gi_lib.experiments.rgap.experiment` (parameters
and run), :mod:`~gi_lib.experiments.rgap.figures` and
:mod:`~gi_lib.experiments.rgap.report` (rows, claims, prose).
"""

from __future__ import annotations

from gi_lib.experiments.rgap.experiment import (
    DEVICES,
    NOTEBOOK,
    RGAP_MODELS,
    RGAPParams,
    RGAPRun,
    RGAPTrial,
    SweepPoint,
    attack_image,
    check,
    run,
    swept_network,
)
from gi_lib.experiments.rgap.figures import (
    examples_figure,
    rank_frame,
    sweep_figure,
    sweep_frame,
)
from gi_lib.experiments.rgap.report import (
    FOLLOW_UP_NOTE,
    claims,
    claims_text,
    rows,
    summary_text,
)

__all__ = [
    "DEVICES",
    "FOLLOW_UP_NOTE",
    "NOTEBOOK",
    "RGAPParams",
    "RGAPRun",
    "RGAPTrial",
    "RGAP_MODELS",
    "SweepPoint",
    "attack_image",
    "check",
    "claims",
    "claims_text",
    "examples_figure",
    "rank_frame",
    "rows",
    "run",
    "summary_text",
    "sweep_figure",
    "sweep_frame",
    "swept_network",
]
