"""Plaintext defenses: they change what a client sends or what it trains on.

Each is a :class:`~gi_lib.defenses.base.Defense` that
:func:`gi_lib.fl.observe_fedsgd` (``defense=``) and the utility trainer
(:func:`~gi_lib.defenses.utility.train_with_defense`) apply the same way.
"""

from gi_lib.defenses.base import Combined, Defense, NoDefense
from gi_lib.defenses.dpsgd import DPSGD
from gi_lib.defenses.instahide import InstaHide
from gi_lib.defenses.mixup import MixUp
from gi_lib.defenses.pruning import GradientPruning

__all__ = [
    "DPSGD",
    "Combined",
    "Defense",
    "GradientPruning",
    "InstaHide",
    "MixUp",
    "NoDefense",
]
