"""Defenses: plaintext ones change what a client sends; aggregation protocols
change who sees it.

* Plaintext defenses (DP-SGD, gradient pruning, MixUp, InstaHide) are each a
  :class:`~gi_lib.defenses.base.Defense` that :func:`gi_lib.fl.client_fedsgd`
  (``defense=``) and the utility trainer
  (:func:`~gi_lib.defenses.utility.train_with_defense`) apply the same way.
* Aggregation protocols (:mod:`gi_lib.defenses.aggregation`) run a server
  and several clients that exchange serialised messages, return the sum of
  the surviving clients' updates and a transcript of what each party saw
  and what it cost; :class:`PlaintextSum` is the unprotected baseline.
"""

from gi_lib.defenses.aggregation import (
    AggregationProtocol,
    AggregationResult,
    DropoutSchedule,
    Message,
    NetworkModel,
    PlaintextSum,
    ProtocolAbort,
    ServerView,
    Transcript,
)
from gi_lib.defenses.base import Combined, Defense, NoDefense
from gi_lib.defenses.dpsgd import DPSGD
from gi_lib.defenses.instahide import InstaHide
from gi_lib.defenses.mixup import MixUp
from gi_lib.defenses.pruning import GradientPruning

__all__ = [
    "DPSGD",
    "AggregationProtocol",
    "AggregationResult",
    "Combined",
    "Defense",
    "DropoutSchedule",
    "GradientPruning",
    "InstaHide",
    "Message",
    "MixUp",
    "NetworkModel",
    "NoDefense",
    "PlaintextSum",
    "ProtocolAbort",
    "ServerView",
    "Transcript",
]
