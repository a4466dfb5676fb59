"""Gradient inversion attacks: one module per paper, one loop and a registry.

Every attack is reachable by name with one contract (see
:mod:`gi_lib.attacks.registry`)::

    from gi_lib.attacks import build_attack

    attack = build_attack("inverting", max_iterations=200)
    reconstruction = attack.reconstruct(observation, seed=0)

The paper modules (``dlg``, ``idlg``, ``inverting``, ``bn_prior``, ``rgap``,
``cafe``, ``gias``) are imported when their attack is first built by name, or
directly (``from gi_lib.attacks import inverting``).
"""

from gi_lib.attacks.base import AttackDiverged, OptimConfig, Reconstruction
from gi_lib.attacks.priors import Prior
from gi_lib.attacks.registry import (
    Attack,
    AttackRun,
    attack_entry,
    attack_names,
    build_attack,
    register_attack,
)

__all__ = [
    "Attack",
    "AttackDiverged",
    "AttackRun",
    "OptimConfig",
    "Prior",
    "Reconstruction",
    "attack_entry",
    "attack_names",
    "build_attack",
    "register_attack",
]
