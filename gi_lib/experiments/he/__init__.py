"""The homomorphic-encryption notebook: Aono/Phong et al.'s system, its costs,
its accuracy, and what the server and the participants can invert.

Four parts, all on :mod:`gi_lib.defenses.he`:

1. **Cost of one update.** CPU seconds to encrypt, add and decrypt one flat
   update of ``n_gd`` values with the paper's LWE scheme (beside the
   paper's Table 3, one thread), packed Paillier and CKKS; the bytes of a
   ciphertext against 4 bytes per float32 value.
2. **One round on the aggregation harness** per backend: bytes each client
   sends and receives, per-party CPU seconds, and the decrypted sum against
   the plaintext fixed-point sum.
3. **Accuracy.** The paper's MNIST network (an MLP 784-128-64-10: 109,386
   parameters, the paper's MNIST ``n_gd``) trained with the paper's
   asynchronous SGD three ways on the same mini-batches: in plaintext
   (float), in fixed point without encryption, and under LWE encryption.
4. **Attacks.** One participant uploads the gradient of one private image.
   Inverting Gradients on the plaintext update (what the server would see
   without encryption); on the server's actual view, the LWE ciphertext
   decoded as if it were the message; and on what another participant gets
   by decrypting the model before and after that upload.

The page's modules: :mod:`~gi_lib.experiments.he.params` (parameters and the
paper's numbers), :mod:`~gi_lib.experiments.he.costs` (parts 1 and 2),
:mod:`~gi_lib.experiments.he.learning` (parts 3 and 4),
:mod:`~gi_lib.experiments.he.experiment` (the run),
:mod:`~gi_lib.experiments.he.report` (rows, claims, prose) and
:mod:`~gi_lib.experiments.he.figures`.
"""

from __future__ import annotations

from gi_lib.experiments.he.costs import HarnessRound
from gi_lib.experiments.he.experiment import HERun, run
from gi_lib.experiments.he.figures import attack_figure, bytes_figure, cost_figure
from gi_lib.experiments.he.learning import AttackTrial, Training, build_mlp
from gi_lib.experiments.he.params import (
    ABSTRACT,
    BACKEND_TITLES,
    HARDWARE_NOTE,
    MNIST_NGD,
    NOTEBOOK,
    PAPER,
    PAPER_TABLE3,
    PSNR_MARGIN,
    TABLE3,
    HEParams,
    check,
)
from gi_lib.experiments.he.report import (
    claims,
    harness_frame,
    lwe_layout_note,
    papers_parameters,
    rows,
    summary_text,
    table3_comparison,
    table3_frame,
)

__all__ = [
    "ABSTRACT",
    "AttackTrial",
    "BACKEND_TITLES",
    "HARDWARE_NOTE",
    "HEParams",
    "HERun",
    "HarnessRound",
    "MNIST_NGD",
    "NOTEBOOK",
    "PAPER",
    "PAPER_TABLE3",
    "PSNR_MARGIN",
    "TABLE3",
    "Training",
    "attack_figure",
    "build_mlp",
    "bytes_figure",
    "check",
    "claims",
    "cost_figure",
    "harness_frame",
    "lwe_layout_note",
    "papers_parameters",
    "rows",
    "run",
    "summary_text",
    "table3_comparison",
    "table3_frame",
]
