"""The GradInversion notebook's experiments (Yin et al., CVPR 2021).

1. **Label restoration** against the batch size: the row-min rule (Yin), the
   row-sum rule (iDLG extended, the paper's baseline) and a count-aware rule
   (this book's), on unique-label batches (the paper's protocol) and on
   uniformly random batches (with repeats), for untrained and trained
   networks. The last layer's gradient is computed in closed form from one
   eval-mode feature pass (:func:`gi_lib.labels.last_layer_gradients`), so
   thousands of batches cost milliseconds.
2. **The prior ablation** (Tables 2 and 4) on a small BatchNorm ConvNet with
   the client in train mode: the gradient loss alone, plus the fidelity
   priors with running statistics (BN_approx), plus the fidelity priors with
   the batch's statistics recovered from the client's sent buffers
   (BN_exact), BN_exact alone (no gradient loss: the control for how much
   the statistics alone give away), and Inverting Gradients (cosine, signed
   Adam, TV; train-mode client) as prior art.
3. **Group consistency** (Table 2's last rows): ``group_seeds`` seeds of the
   BN_exact arm with the lazy (mean) and the translation-registered
   consensus; every seed, the consensus and the best seed by gradient loss.

The page's modules: :mod:`~gi_lib.experiments.gradinversion.params`
(parameters, arms and the third-party numbers),
:mod:`~gi_lib.experiments.gradinversion.labels` (part 1),
:mod:`~gi_lib.experiments.gradinversion.experiment` (parts 2 and 3, and the
run), :mod:`~gi_lib.experiments.gradinversion.figures` (tables and figures)
and :mod:`~gi_lib.experiments.gradinversion.report` (rows, claims, prose).
"""

from __future__ import annotations

from gi_lib.experiments.gradinversion.experiment import (
    Attacked,
    GradInversionRun,
    attack_arm,
    run,
    unique_batches,
)
from gi_lib.experiments.gradinversion.figures import (
    ablation_frame,
    examples_figure,
    group_figure,
    history_figure,
    label_figure,
    label_frame,
)
from gi_lib.experiments.gradinversion.labels import (
    LabelPoint,
    label_sweep,
)
from gi_lib.experiments.gradinversion.params import (
    ARMS,
    GROUP_ARMS,
    NOT_AVAILABLE,
    NOTEBOOK,
    PAPER_ABLATION,
    PAPER_LABELS,
    TABLE_1,
    TABLE_2,
    GradInversionParams,
    check,
)
from gi_lib.experiments.gradinversion.report import (
    claims,
    rows,
    summary_text,
    verdicts_text,
)

__all__ = [
    "ARMS",
    "Attacked",
    "GROUP_ARMS",
    "GradInversionParams",
    "GradInversionRun",
    "LabelPoint",
    "NOTEBOOK",
    "NOT_AVAILABLE",
    "PAPER_ABLATION",
    "PAPER_LABELS",
    "TABLE_1",
    "TABLE_2",
    "ablation_frame",
    "attack_arm",
    "check",
    "claims",
    "examples_figure",
    "group_figure",
    "history_figure",
    "label_figure",
    "label_frame",
    "label_sweep",
    "rows",
    "run",
    "summary_text",
    "unique_batches",
    "verdicts_text",
]
