"""What encrypted aggregation still leaks: the book's own evaluation page.

The encrypted protocols (SecAgg, LightSecAgg, FastSecAgg, homomorphic
encryption) let the server learn the sum of the survivors' updates and
nothing else. This page runs the attacks on what they reveal (sections 1, 3
and 6 over ``num_trials`` paired trials, the exact ones once):

1. one client's masked upload, inverted (noise) beside its plaintext update;
2. the round's label counts from the summed last-layer bias gradient
   (Wainakh et al., PETS 2022) against the number of clients;
3. Inverting Gradients on the aggregate of N one-image clients;
4. the Cocktail Party Attack (Kariyappa et al., ICML 2023) and FastICA on the
   first FC layer's summed gradient, against the samples in the sum;
5. Robbing the Fed (Fowl et al., ICLR 2022): an imprint layer, read off the
   sum (plaintext and through SecAgg), beside the expected singleton bins;
6. model inconsistency (Pasquini et al., CCS 2022): dead-ReLU models for the
   non-targets make the secure sum the target's update, inverted on the
   ConvNet and read exactly off the first layer of an FC-2 network;
7. collusion at the threshold (SecAgg: t colluders, LightSecAgg: U, with the
   rank of what T+1.. colluders learn) and differencing two rounds (Lam et
   al., ICML 2021);
8. homomorphic encryption: the server's view, and a participant's two
   decryptions around another's upload.

Every section uses the protocols' public interface only.

The page's modules: :mod:`~gi_lib.experiments.aggregation_leakage.params`
(parameters, the papers' sources, the run's record),
:mod:`~gi_lib.experiments.aggregation_leakage.inversions` (sections 1, 3
and 6), :mod:`~gi_lib.experiments.aggregation_leakage.sections` (sections 2,
4, 5, 7 and 8), :mod:`~gi_lib.experiments.aggregation_leakage.experiment`
(the run), :mod:`~gi_lib.experiments.aggregation_leakage.report` (table,
prose, rows, claims) and
:mod:`~gi_lib.experiments.aggregation_leakage.figures`.
"""

from __future__ import annotations

from gi_lib.experiments.aggregation_leakage.experiment import run
from gi_lib.experiments.aggregation_leakage.figures import (
    curves_figure,
    examples_figure,
)
from gi_lib.experiments.aggregation_leakage.inversions import (
    _analytic_first_layer,  # noqa: F401 - the tests check it by this name
)
from gi_lib.experiments.aggregation_leakage.params import (
    NOTEBOOK,
    LeakageParams,
    LeakageRun,
    check,
)
from gi_lib.experiments.aggregation_leakage.report import (
    claims,
    leak_table,
    rows,
    summary_text,
)

__all__ = [
    "NOTEBOOK",
    "LeakageParams",
    "LeakageRun",
    "check",
    "claims",
    "curves_figure",
    "examples_figure",
    "leak_table",
    "rows",
    "run",
    "summary_text",
]
