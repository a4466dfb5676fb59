"""Gradient inversion attacks: one module per paper, a shared loop in ``base``."""

from gi_lib.attacks.base import AttackDiverged, OptimConfig, Reconstruction

__all__ = ["AttackDiverged", "OptimConfig", "Reconstruction"]
