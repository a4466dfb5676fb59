"""CAFE: Catastrophic Data Leakage in Vertical Federated Learning (Jin et al. 2021).

In vertical FL the server sees, at every training step, the batch's sample
indices and each party's batch-averaged gradient (:mod:`gi_lib.vertical`,
its observation). Each party's ``first_fc`` layer ``H = U W^T + b`` gives two linear
facts about the batch: ``dL/db = sum_n V_n`` and ``dL/dW = sum_n V_n U_n^T``
with ``V_n = dL/dH_n``. Because the server knows which samples each batch
holds, these facts accumulate over steps into per-sample unknowns:

1. **Step 1** recovers every sample's ``V_n`` from the bias gradients: the
   equations ``sum_{n in batch t} V_n = dL/db_t`` of the last ``window``
   steps form a linear system over all samples (a 0/1 matrix of batch
   memberships), solved by least squares after every step.
2. **Step 2** recovers every sample's first-layer input ``U_n`` from the
   weight gradient: least squares ``V_batch^T U_batch = dL/dW`` (needs the
   layer width at least the batch size).
3. **Step 3** recovers the data: per-sample Adam on the dummy features,
   minimising the distance of the dummy's first-layer input to ``U_n``, the
   gradient-matching loss, and total variation (the paper's regularisers).

All three steps run alongside training, one update per observed step
(:meth:`CAFE.update`); the attack reads only :class:`VerticalObservation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gi_lib.attacks.base import Reconstruction
from gi_lib.attacks.priors import total_variation
from gi_lib.attacks.registry import AttackRun, register_attack
from gi_lib.metrics import psnr
from gi_lib.vertical import (
    VerticalModel,
    VerticalObservation,
    join_features,
    vertical_gradients,
)

# Parameter positions in BottomModel: conv (weight, bias), first_fc, embed.
_FC_WEIGHT, _FC_BIAS = 2, 3


@dataclass(frozen=True)
class CAFEConfig:
    """CAFE's settings.

    Attributes:
        lr: Adam step size of step 3 (features live in [0, 1]).
        feature_weight: weight of the first-layer-input term of step 3.
        gradient_weight: weight of the gradient-matching term of step 3.
        tv_weight: weight of total variation.
        warmup_steps: observed steps before step 3 starts (steps 1 and 2 need
            a few passes over the data first).
        window: past steps whose bias-gradient equations step 1 keeps (the
            models drift as training goes on, so old equations go stale);
            ``None`` keeps twice as many as there are samples. Step 1 has one
            unknown per sample, so it needs at least that many equations.
    """

    lr: float = 0.05
    feature_weight: float = 1.0
    gradient_weight: float = 1e-2
    tv_weight: float = 1e-4
    warmup_steps: int = 0
    window: int | None = None


class _RowAdam:
    """Adam on the rows of one tensor, each row with its own step count."""

    def __init__(self, values: torch.Tensor, lr: float) -> None:
        self.values = values
        self.lr = lr
        self.m = torch.zeros_like(values)
        self.v = torch.zeros_like(values)
        self.t = torch.zeros(values.shape[0])

    def step(self, rows: torch.Tensor, gradient: torch.Tensor) -> None:
        beta1, beta2 = 0.9, 0.999
        self.t[rows] += 1
        t = self.t[rows].reshape(-1, *([1] * (gradient.ndim - 1)))
        self.m[rows] = beta1 * self.m[rows] + (1 - beta1) * gradient
        self.v[rows] = beta2 * self.v[rows] + (1 - beta2) * gradient**2
        m_hat = self.m[rows] / (1 - beta1**t)
        v_hat = self.v[rows] / (1 - beta2**t)
        self.values[rows] -= self.lr * m_hat / (v_hat.sqrt() + 1e-8)


class CAFE:
    """The attack, fed one :class:`VerticalObservation` per training step.

    Args:
        num_samples: samples in the training set (indices ``0..N-1``).
        slice_shapes: each party's feature shape (public: the model needs it).
        hidden: width of the parties' ``first_fc``.
        feature_size: input size of ``first_fc``.
        config: settings.
        seed: seeds the dummy initialisation.
    """

    def __init__(
        self,
        num_samples: int,
        slice_shapes: Sequence[tuple[int, int, int]],
        *,
        hidden: int,
        feature_size: int,
        config: CAFEConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.config = config or CAFEConfig()
        self.window = (
            2 * num_samples if self.config.window is None else self.config.window
        )
        if self.window < num_samples:
            raise ValueError(
                f"CAFE's step 1 keeps {self.window} bias-gradient equations for "
                f"{num_samples} unknown samples; it needs at least as many "
                "equations as samples (raise window, or leave it None)."
            )
        generator = torch.Generator().manual_seed(seed)
        parties = len(slice_shapes)
        self.output_gradients = [
            torch.zeros(num_samples, hidden) for _ in range(parties)
        ]
        self.first_inputs = [
            torch.zeros(num_samples, feature_size) for _ in range(parties)
        ]
        self.features = [
            torch.rand(num_samples, *shape, generator=generator)
            for shape in slice_shapes
        ]
        self._adam = [_RowAdam(f, self.config.lr) for f in self.features]
        self.num_samples = num_samples
        self._memberships: list[torch.Tensor] = []
        self._bias_gradients: list[list[torch.Tensor]] = [[] for _ in range(parties)]
        self.steps = 0

    @classmethod
    def for_model(
        cls,
        model: VerticalModel,
        num_samples: int,
        *,
        config: CAFEConfig | None = None,
        seed: int = 0,
    ) -> CAFE:
        """An attacker sized from what the server knows: the models and the
        number of samples."""
        first = model.parties[0].first_fc
        return cls(
            num_samples,
            model.slice_shapes,
            hidden=first.out_features,
            feature_size=first.in_features,
            config=config,
            seed=seed,
        )

    def update(self, observation: VerticalObservation) -> dict[str, float]:
        """Run steps 1, 2 and 3 once on the observed batch.

        Returns:
            Relative errors of steps 1 (the batch's bias equation before this
            step's solve) and 2 (the weight equation), and step 3's loss.
        """
        rows = observation.indices
        step1 = step2 = 0.0
        membership = torch.zeros(self.num_samples)
        membership[rows] = 1.0
        self._memberships = [*self._memberships, membership][-self.window :]
        memberships = torch.stack(self._memberships)  # (steps, N)
        for m, gradients in enumerate(observation.party_gradients):
            bias_gradient = gradients[_FC_BIAS]
            weight_gradient = gradients[_FC_WEIGHT]  # (hidden, feature_size)
            # Step 1: every sample's dL/dH from the kept bias-gradient equations.
            kept = self._bias_gradients[m]
            kept.append(bias_gradient)
            del kept[: -self.window]
            before = self.output_gradients[m][rows].sum(0) - bias_gradient
            step1 += float(before.norm() / bias_gradient.norm().clamp_min(1e-12))
            self.output_gradients[m] = torch.linalg.lstsq(
                memberships, torch.stack(kept)
            ).solution
            v = self.output_gradients[m]
            # Step 2: V_batch^T U_batch = dL/dW in least squares.
            solution = torch.linalg.lstsq(v[rows].T, weight_gradient).solution
            self.first_inputs[m][rows] = solution
            fit = v[rows].T @ solution - weight_gradient
            step2 += float(fit.norm() / weight_gradient.norm().clamp_min(1e-12))
        step3 = 0.0
        if self.steps >= self.config.warmup_steps:
            step3 = self._data_step(observation)
        self.steps += 1
        parties = observation.num_parties
        return {"step1": step1 / parties, "step2": step2 / parties, "step3": step3}

    def _data_step(self, observation: VerticalObservation) -> float:
        rows = observation.indices
        model = observation.model
        dummies = [f[rows].clone().requires_grad_(True) for f in self.features]
        config = self.config
        loss = torch.zeros(())
        for m, party in enumerate(model.parties):
            target = self.first_inputs[m][rows]
            loss = loss + config.feature_weight * (
                (party.features(dummies[m]) - target) ** 2
            ).sum() / target.pow(2).sum().clamp_min(1e-12)
            loss = loss + config.tv_weight * total_variation(dummies[m])
        if config.gradient_weight > 0:
            top, parties = vertical_gradients(model, dummies, observation.labels)
            observed = list(observation.top_gradients) + [
                g for p in observation.party_gradients for g in p
            ]
            simulated = list(top) + [g for p in parties for g in p]
            scale = sum(float((o * o).sum()) for o in observed)
            loss = loss + config.gradient_weight * sum(
                ((s - o) ** 2).sum() for s, o in zip(simulated, observed, strict=True)
            ) / max(scale, 1e-12)
        gradients = torch.autograd.grad(loss, dummies)
        with torch.no_grad():
            for adam, gradient, features in zip(
                self._adam, gradients, self.features, strict=True
            ):
                adam.step(rows, gradient)
                features[rows] = features[rows].clamp(0, 1)
        return float(loss.detach())

    def images(self) -> torch.Tensor:
        """The reconstructed samples, strips joined into images ``(N, C, H, W)``."""
        return join_features([f.clamp(0, 1) for f in self.features])


@dataclass(frozen=True)
class VerticalRecording:
    """What the server saw over a run of vertical training steps.

    Attributes:
        steps: the server's view of each step, in order.
        num_samples: samples in the training set (indices ``0..N-1``).
    """

    steps: tuple[VerticalObservation, ...]
    num_samples: int


@register_attack("cafe", config=CAFEConfig, observation="vertical")
def reconstruct(run: AttackRun[CAFEConfig]) -> Reconstruction:
    """CAFE: vertical FL, per-sample recovery from many batches' gradients.

    The attack contract over a recorded run (a :class:`VerticalRecording`):
    feed every step, return the data. The online form (:class:`CAFE`, one
    :meth:`CAFE.update` per training step) is what a notebook that trains and
    attacks side by side uses; this adapter replays a recording through it.
    ``labels`` are the labels the server saw for each sample (it holds them),
    ``-1`` for a sample never drawn; ``history`` holds the three steps' errors
    per observed step, plus PSNR when ``truth`` (all samples, ``(N, C, H, W)``)
    is given.
    """
    observation, config = run.observation, run.config
    if not observation.steps:
        raise ValueError("CAFE needs at least one observed training step.")
    attack = CAFE.for_model(
        observation.steps[0].model,
        observation.num_samples,
        config=config,
        seed=run.seed,
    )
    labels = torch.full((observation.num_samples,), -1, dtype=torch.long)
    history: list[dict[str, float]] = []
    for step in observation.steps:
        labels[step.indices] = step.labels
        record: dict[str, float] = {"iteration": float(step.step + 1)}
        errors = attack.update(step)
        record["loss"] = errors["step3"]
        record.update(errors)
        if run.truth is not None:
            record["psnr"] = float(psnr(attack.images(), run.truth).mean())
        history.append(record)
    return Reconstruction(
        images=attack.images(),
        labels=labels,
        loss=history[-1]["loss"],
        history=history,
        evaluations=len(observation.steps),
    )
