"""What the LightSecAgg and FastSecAgg pages share: their common parameters,
cost runs on the harness against SecAgg and SecAgg+, and the inversion check
of one client's upload.

Cost runs use synthetic updates (uniform draws of the right size; the
protocols' cost does not depend on the values) and time every party by its
own CPU seconds (:class:`gi_lib.defenses.aggregation.Transcript`); a
:class:`~gi_lib.defenses.aggregation.NetworkModel` turns a transcript into
modelled wall time. The inversion check runs one FedSGD round of real
clients (one image each) through a protocol, feeds one client's upload as
the server received it to Inverting Gradients, does the same with that
client's plaintext update, and checks that the decoded sum is the plaintext
fixed-point sum bit for bit.

The modules: :mod:`~gi_lib.experiments.coded_aggregation.params`,
:mod:`~gi_lib.experiments.coded_aggregation.costs`,
:mod:`~gi_lib.experiments.coded_aggregation.inversion` and
:mod:`~gi_lib.experiments.coded_aggregation.figures`.
"""

from __future__ import annotations

from gi_lib.experiments.coded_aggregation.costs import (
    SECAGG_MASKED_ROUND,
    SECAGG_PHASES,
    CostRecord,
    cost_frame,
    cost_run,
    drop_schedule,
    loglog_slope,
    records_of,
    secagg_baselines,
    synthetic_updates,
)
from gi_lib.experiments.coded_aggregation.figures import (
    inversion_figure,
    phase_figure,
    time_figure,
)
from gi_lib.experiments.coded_aggregation.inversion import (
    InversionDemo,
    LocalRound,
    inversion_demo,
    inversion_rows,
    inversion_summary,
    local_round,
    plaintext_sum,
    read_as_update,
    sum_mismatches,
    upload_observation,
)
from gi_lib.experiments.coded_aggregation.params import (
    CodedAggregationParams,
    check_page,
    network,
)

__all__ = [
    "CodedAggregationParams",
    "CostRecord",
    "InversionDemo",
    "LocalRound",
    "SECAGG_MASKED_ROUND",
    "SECAGG_PHASES",
    "check_page",
    "cost_frame",
    "cost_run",
    "drop_schedule",
    "inversion_demo",
    "inversion_figure",
    "inversion_rows",
    "inversion_summary",
    "local_round",
    "loglog_slope",
    "network",
    "phase_figure",
    "plaintext_sum",
    "read_as_update",
    "records_of",
    "secagg_baselines",
    "sum_mismatches",
    "synthetic_updates",
    "time_figure",
    "upload_observation",
]
