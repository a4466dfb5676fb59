"""The shared loop's warm-up/cosine schedule and its per-step hook."""

from __future__ import annotations

import math

import pytest
import torch

from gi_lib.attacks.base import (
    OptimConfig,
    Problem,
    fixed_labels,
    optimize,
    pixel_space,
    warmup_cosine_factor,
)


def test_warmup_then_cosine_factor() -> None:
    assert warmup_cosine_factor(0, 100, 10, True) == pytest.approx(0.1)
    assert warmup_cosine_factor(9, 100, 10, True) == pytest.approx(1.0)
    assert warmup_cosine_factor(10, 100, 10, True) == pytest.approx(1.0)
    assert warmup_cosine_factor(55, 100, 10, True) == pytest.approx(0.5)
    assert warmup_cosine_factor(100, 100, 10, True) == pytest.approx(0.0, abs=1e-12)
    assert warmup_cosine_factor(50, 100, 0, False) == 1.0


def _problem(calls: list[tuple[int, float]]) -> Problem:
    target = torch.ones(3)

    def objective(variables: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        loss = ((variables[0] - target) ** 2).sum()
        return loss, loss

    def after_step(iteration: int, variables: list[torch.Tensor], lr: float) -> None:
        assert not torch.is_grad_enabled()
        assert variables[0].shape == (1, 3)
        calls.append((iteration, lr))

    return Problem(
        objective=objective,
        init=lambda _r: [torch.zeros(3)],
        labels=fixed_labels(torch.zeros(1)),
        space=pixel_space(torch.device("cpu")),
        after_step=after_step,
    )


def test_after_step_sees_every_step_and_its_step_size() -> None:
    calls: list[tuple[int, float]] = []
    config = OptimConfig(
        optimizer="adam",
        lr=0.2,
        max_iterations=20,
        warmup_iterations=5,
        cosine_decay=True,
    )
    optimize(_problem(calls), config)
    assert [i for i, _ in calls] == list(range(1, 21))
    expected = [0.2 * warmup_cosine_factor(t, 20, 5, True) for t in range(20)]
    assert [lr for _, lr in calls] == pytest.approx(expected)
    assert math.isclose(calls[4][1], 0.2)


def test_after_step_may_move_the_variables() -> None:
    target = torch.zeros(2)

    def objective(variables: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        loss = ((variables[0] - target) ** 2).sum() * 0
        return loss, loss + variables[0].sum() * 0

    def shift(_i: int, variables: list[torch.Tensor], _lr: float) -> None:
        variables[0].add_(1.0)

    problem = Problem(
        objective=objective,
        init=lambda _r: [torch.zeros(2)],
        labels=fixed_labels(torch.zeros(1)),
        space=pixel_space(torch.device("cpu")),
        after_step=shift,
    )
    out = optimize(problem, OptimConfig(optimizer="adam", lr=0.1, max_iterations=3))
    assert torch.allclose(out.images, torch.ones(2))  # clamped to [0, 1]


def test_schedules_are_checked() -> None:
    with pytest.raises(ValueError, match="one schedule"):
        OptimConfig(optimizer="adam", lr_decay=True, cosine_decay=True)
    with pytest.raises(ValueError, match="adam"):
        OptimConfig(optimizer="lbfgs", warmup_iterations=5)
    with pytest.raises(ValueError, match="warmup_iterations"):
        OptimConfig(optimizer="adam", warmup_iterations=-1)
