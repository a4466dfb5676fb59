"""The GIAS notebook's experiments: a cached DCGAN and its checks, GI-x
against GI-z against GIAS at one step budget, a harder setting (gradient
pruning), the stress test with a generator that never saw the attacked
classes, and the paper's claims checked on paired trials.

Every batch holds ``batch_size`` test images of distinct classes drawn from
``attacked_classes`` (the paper's batches have unique known labels). The
main generator saw every class; the stress test's saw only
``generator_classes`` (ours, not the paper's). The attacked batches are the
same in every setting, so each comparison is paired.

Budget: every arm spends ``budget = restarts * latent_steps + gias_steps``
gradient evaluations. GI-x (Inverting Gradients: signed Adam, TV, boxed) runs
one restart of ``budget`` steps; GI-z runs ``restarts`` restarts of
``budget / restarts`` steps; GIAS runs ``restarts`` restarts of
``latent_steps`` (its own GI-z, reported as "GI-z (GIAS's first phase)")
and then ``gias_steps`` on the generator copies.

The page's modules: :mod:`~gi_lib.experiments.gias.params` (parameters,
arm and setting names), :mod:`~gi_lib.experiments.gias.experiment` (the
run), :mod:`~gi_lib.experiments.gias.figures` and
:mod:`~gi_lib.experiments.gias.report` (prose, rows, claims).
"""

from __future__ import annotations

from gi_lib.experiments.gias.experiment import (
    GIASResult,
    Setting,
    attacked_batches,
    run,
)
from gi_lib.experiments.gias.figures import (
    examples_figure,
    psnr_figure,
    samples_figure,
)
from gi_lib.experiments.gias.params import (
    GIAS,
    GIX,
    GIZ,
    GIZ_PHASE,
    HARD,
    MAIN,
    NOTEBOOK,
    STRESS,
    GIASParams,
    check,
)
from gi_lib.experiments.gias.report import (
    claims,
    rows,
    summary_text,
)

__all__ = [
    "GIAS",
    "GIASParams",
    "GIASResult",
    "GIX",
    "GIZ",
    "GIZ_PHASE",
    "HARD",
    "MAIN",
    "NOTEBOOK",
    "STRESS",
    "Setting",
    "attacked_batches",
    "check",
    "claims",
    "examples_figure",
    "psnr_figure",
    "rows",
    "run",
    "samples_figure",
    "summary_text",
]
