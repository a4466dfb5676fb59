"""The Secure Aggregation notebook: what SecAgg costs, and what it hides.

Four experiments on the protocol of :mod:`gi_lib.defenses.secagg`:

* **communication expansion** at the paper's sizes (2^10 clients and 2^20
  16-bit values, 2^14 and 2^24), from the byte model
  (:func:`~gi_lib.defenses.secagg.client_bytes`), which is first checked
  byte for byte against real runs at small sizes;
* **dropout tolerance**: with t = ceil(2n/3), floor(n/3) clients dropping
  after the key sharing (the worst moment) still gives the exact sum, one
  more stops the protocol;
* **CPU cost** of a client and of the server against the number of clients
  at several dropout rates (clients drop after sharing their keys, so the
  server must rebuild their pairwise masks), with fitted log-log slopes,
  for SecAgg and for SecAgg+ (a random k-regular neighbour graph);
* **the attack**: one client's masked upload, decoded as the server would
  decode an update, fed to Inverting Gradients, beside the same client's
  plaintext update and an unrelated image; and the check that the decoded
  sum equals the plaintext fixed-point sum bit for bit.

CPU seconds are per party (``time.process_time`` around each party's work),
not the wall time of the one-process simulation; modelled wall time adds a
:class:`~gi_lib.defenses.aggregation.NetworkModel`.

The page's modules: :mod:`~gi_lib.experiments.secagg.params`,
:mod:`~gi_lib.experiments.secagg.costs` (expansion, dropout tolerance, CPU
cost), :mod:`~gi_lib.experiments.secagg.attack`,
:mod:`~gi_lib.experiments.secagg.experiment` (the run),
:mod:`~gi_lib.experiments.secagg.report` (slopes, rows, claims, prose) and
:mod:`~gi_lib.experiments.secagg.figures`.
"""

from __future__ import annotations

from gi_lib.experiments.secagg.attack import (
    AttackTrial,
    attack_protocol,
    exact_mismatches,
    masked_upload,
    run_attacks,
    secure_round,
)
from gi_lib.experiments.secagg.costs import (
    CostPoint,
    ExpansionCheck,
    ToleranceCheck,
    check_tolerance,
    cost_point,
    integer_protocol,
    paper_expansions,
    run_costs,
    validate_bytes,
)
from gi_lib.experiments.secagg.experiment import SecAggRun, run
from gi_lib.experiments.secagg.figures import attack_figure, cost_figure, cost_table
from gi_lib.experiments.secagg.params import (
    COST_SOURCE,
    DROPOUT_SOURCE,
    EXPANSION_SOURCE,
    INPUT_BITS,
    NOTEBOOK,
    PAPER_EXPANSION,
    SECURITY_SOURCE,
    SecAggParams,
    check,
)
from gi_lib.experiments.secagg.report import (
    claims,
    rows,
    series,
    slope,
    slopes,
    summary_text,
)

__all__ = [
    "AttackTrial",
    "COST_SOURCE",
    "CostPoint",
    "DROPOUT_SOURCE",
    "EXPANSION_SOURCE",
    "ExpansionCheck",
    "INPUT_BITS",
    "NOTEBOOK",
    "PAPER_EXPANSION",
    "SECURITY_SOURCE",
    "SecAggParams",
    "SecAggRun",
    "ToleranceCheck",
    "attack_figure",
    "attack_protocol",
    "check",
    "check_tolerance",
    "claims",
    "cost_figure",
    "cost_point",
    "cost_table",
    "exact_mismatches",
    "integer_protocol",
    "masked_upload",
    "paper_expansions",
    "rows",
    "run",
    "run_attacks",
    "run_costs",
    "secure_round",
    "series",
    "slope",
    "slopes",
    "summary_text",
    "validate_bytes",
]
