"""The paper's accountant example computed three ways: opacus's RDP
accountant, the paper's moments bound and a strong-composition bound."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from scipy.optimize import brentq
from scipy.stats import norm

from gi_lib.defenses.dpsgd import epsilon, moments_accountant_epsilon
from gi_lib.experiments.dpsgd.params import (
    ACCOUNTANT_DELTA,
    ACCOUNTANT_Q,
    ACCOUNTANT_SIGMA,
)


@dataclass(frozen=True)
class AccountantCheck:
    """The paper's accountant example, computed here.

    Attributes:
        epochs: training length (``steps = epochs / q``).
        rdp: opacus's RDP accountant (its Balle et al. 2020 conversion).
        moments: the paper's tail bound on the same Renyi divergences.
        strong: a strong-composition bound (:func:`strong_composition_epsilon`).
    """

    epochs: int
    rdp: float
    moments: float
    strong: float


def _gaussian_epsilon(delta: float, sigma: float) -> float:
    """Exact epsilon of one Gaussian release with sensitivity 1 at ``delta``
    (Balle and Wang, 2018, Theorem 8)."""

    def excess(eps: float) -> float:
        return (
            norm.cdf(0.5 / sigma - eps * sigma)
            - math.exp(eps) * norm.cdf(-0.5 / sigma - eps * sigma)
            - delta
        )

    return float(brentq(excess, 0.0, 200.0))


def strong_composition_epsilon(
    *, noise_multiplier: float, sample_rate: float, steps: int, delta: float
) -> float:
    """Epsilon of DP-SGD by the strong composition theorem.

    Each step is the Gaussian mechanism with its exact ``(eps0, delta0)``,
    amplified by sampling to ``(log(1 + q (e^eps0 - 1)), q delta0)``; ``steps``
    of them compose to ``eps0' sqrt(2 T log(1/delta')) + T eps0' (e^eps0' - 1)``
    with ``delta = T q delta0 + delta'`` (Dwork, Rothblum and Vadhan, 2010).
    The split of ``delta`` is chosen to minimise epsilon. The paper does not
    say which per-step bound its strong-composition numbers use, so this
    bound need not equal them.
    """
    best = math.inf
    for share in (i / 100 for i in range(1, 100)):
        spare = delta * share
        per_step = delta * (1 - share) / (steps * sample_rate)
        base = _gaussian_epsilon(per_step, noise_multiplier)
        step = math.log1p(sample_rate * math.expm1(base))
        total = step * math.sqrt(2 * steps * math.log(1 / spare))
        best = min(best, total + steps * step * math.expm1(step))
    return best


@functools.cache
def accountant_check(epochs: int) -> AccountantCheck:
    """The paper's accountant example (q 0.01, sigma 4, delta 1e-5) at ``epochs``."""
    setting = dict(
        noise_multiplier=ACCOUNTANT_SIGMA,
        sample_rate=ACCOUNTANT_Q,
        steps=round(epochs / ACCOUNTANT_Q),
        delta=ACCOUNTANT_DELTA,
    )
    return AccountantCheck(
        epochs=epochs,
        rdp=epsilon(**setting),  # type: ignore[arg-type]
        moments=moments_accountant_epsilon(**setting),  # type: ignore[arg-type]
        strong=strong_composition_epsilon(**setting),  # type: ignore[arg-type]
    )
