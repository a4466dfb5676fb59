"""The loop's render hook: attacks whose variables are not the images."""

import pytest
import torch

from gi_lib.attacks.base import (
    OptimConfig,
    Problem,
    fixed_labels,
    optimize,
    pixel_space,
)

SHAPE = (2, 1, 4, 4)


def _problem(render: bool, target: torch.Tensor) -> Problem:
    """Fit ``target`` through a fixed linear map of an 8-dim code (render on)
    or directly in pixels (render off)."""
    basis = torch.randn(8, 32, generator=torch.Generator().manual_seed(1))

    def to_images(variables: list[torch.Tensor]) -> torch.Tensor:
        return (variables[0] @ basis).reshape(SHAPE)

    def objective(variables: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        images = to_images(variables) if render else variables[0]
        loss = ((images - target) ** 2).sum()
        return loss, loss

    def init(restart: int) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(restart)
        shape = (8,) if render else SHAPE
        return [torch.randn(shape, generator=generator)]

    return Problem(
        objective=objective,
        init=init,
        labels=fixed_labels(torch.zeros(2, dtype=torch.long)),
        space=pixel_space(torch.device("cpu")),
        vmappable=True,
        render=to_images if render else None,
    )


def test_rendered_images_are_returned_monitored_and_snapshotted():
    target = torch.rand(SHAPE, generator=torch.Generator().manual_seed(0))
    config = OptimConfig(
        optimizer="adam",
        lr=0.05,
        max_iterations=30,
        restarts=2,
        batched_restarts=True,
        snapshot_iterations=(10,),
        monitor_every=10,
    )
    problem = _problem(True, target)
    result = optimize(problem, config, truth=target)
    assert result.images.shape == SHAPE  # images, not the 8-dim code
    (code,) = result.variables  # the returned restart's code
    assert code.shape == (8,)
    torch.testing.assert_close(result.images, problem.render([code]).clamp(0, 1))
    assert result.snapshots[10].shape == SHAPE
    assert [h["iteration"] for h in result.history if "psnr" in h] == [0, 10, 20, 30]
    # Adam on the code lowers the loss of the rendered images.
    assert result.history[-1]["loss"] < result.history[1]["loss"]


def test_no_render_keeps_the_images_as_the_first_variable():
    target = torch.rand(SHAPE, generator=torch.Generator().manual_seed(0))
    config = OptimConfig(optimizer="adam", lr=0.05, max_iterations=5)
    problem = _problem(False, target)
    assert problem.render is None
    result = optimize(problem, config)
    start = problem.init(0)[0]
    assert result.images.shape == SHAPE and not torch.equal(result.images, start)


def test_the_box_constraint_refuses_rendered_images():
    target = torch.rand(SHAPE)
    config = OptimConfig(optimizer="adam", max_iterations=2, box_constraint=True)
    with pytest.raises(ValueError, match="box_constraint=False"):
        optimize(_problem(True, target), config)
