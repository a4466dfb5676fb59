"""Inverting Gradients (Geiping et al., NeurIPS 2020), the experiments.

1. Trained vs untrained network, L2 + L-BFGS (DLG-style) vs cosine + signed
   Adam + TV (the paper's attack), PSNR per victim image; the same images
   and seeds in every cell, so the cells compare as paired trials. The same
   attack on untrained ConvNets of other widths, on the same images.
2. FedAvg: PSNR as the client's local epochs, number of local images and
   local learning rate vary (one factor at a time around a base setting),
   the same base update attacked as if it were a gradient, and the setting
   with the most local steps repeated on ``num_trials`` image sets.
3. Batch size: reconstruction quality as images per update grow.
4. An ImageNet-size example when a local ImageNet copy exists
   (:func:`gi_lib.data.load_dataset`).

Every PSNR can be read against the data set's mean colour: the flat image
an attacker would guess without the update (:func:`mean_colour_psnr`).

Every attack here knows the labels (all of the paper's experiments pass the
true labels); BatchNorm is in eval mode throughout. The notebook's figures,
tables and rows are in :mod:`gi_lib.experiments.inverting_gradients`.

The modules: :mod:`~gi_lib.experiments.inverting_experiments.params`,
:mod:`~gi_lib.experiments.inverting_experiments.trials` (experiment 1),
:mod:`~gi_lib.experiments.inverting_experiments.fedavg` (experiment 2) and
:mod:`~gi_lib.experiments.inverting_experiments.experiment` (3, 4 and the
whole run).
"""

from __future__ import annotations

from gi_lib.experiments.inverting_experiments.experiment import (
    IGRun,
    run_all,
    run_batches,
    run_imagenet,
)
from gi_lib.experiments.inverting_experiments.fedavg import (
    FedAvgRun,
    as_gradient,
    fedavg_settings,
    most_steps,
    run_fedavg,
)
from gi_lib.experiments.inverting_experiments.params import (
    CONVNET_WIDTHS,
    FEDAVG_SEED_STRIDE,
    IGParams,
    convnet_name,
    convnet_width,
)
from gi_lib.experiments.inverting_experiments.trials import (
    distinct_label_victims,
    mean_colour_psnr,
    run_table,
    run_widths,
    trained_network,
)

__all__ = [
    "CONVNET_WIDTHS",
    "FEDAVG_SEED_STRIDE",
    "FedAvgRun",
    "IGParams",
    "IGRun",
    "as_gradient",
    "convnet_name",
    "convnet_width",
    "distinct_label_victims",
    "fedavg_settings",
    "mean_colour_psnr",
    "most_steps",
    "run_all",
    "run_batches",
    "run_fedavg",
    "run_imagenet",
    "run_table",
    "run_widths",
    "trained_network",
]
