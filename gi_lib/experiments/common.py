"""What the experiments share: the CPU threads a run uses, and the
declarations of parameters that several experiments take."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch

from gi_lib.params import ExperimentParams, ParameterError, param

R = TypeVar("R")

MAX_MIXED = 8
"""The most images MixUp and InstaHide mix in these experiments."""


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Let torch use ``count`` CPU threads inside the block (restored afterwards).

    Every notebook's default is one thread: it keeps CPU runs repeatable, and
    LeNet-sized layers are too small for intra-op parallelism to pay; on a
    busy machine torch's threads wait on each other (a DLG step measured 28
    times slower with two threads than with one on a loaded 2-core machine).

    Raises:
        ParameterError: ``count`` is below 1.
    """
    if count < 1:
        raise ParameterError(f"num_threads must be at least 1, got {count}.")
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def uses_num_threads(run: Callable[..., R]) -> Callable[..., R]:
    """Run an experiment's ``run(params, ...)`` on ``params.num_threads`` threads.

    The results file records the same value (``parameters.num_threads``).
    """

    @functools.wraps(run)
    def wrapper(params: ExperimentParams, *args: Any, **kwargs: Any) -> R:
        with torch_threads(params.num_threads):
            return run(params, *args, **kwargs)

    return wrapper


def threads_text(count: int) -> str:
    """``one CPU thread`` or ``4 CPU threads``, for notes beside timings."""
    return "one CPU thread" if count == 1 else f"{count} CPU threads"


def ratio_param(help: str) -> Any:
    """A gradient pruning ratio (or a list of them): the share of entries
    zeroed, in [0, 1]."""
    return param(help, minimum=0.0, maximum=1.0)


def mixed_param(help: str) -> Any:
    """How many images MixUp or InstaHide mix into one (2 to :data:`MAX_MIXED`)."""
    return param(help, minimum=2, maximum=MAX_MIXED)


def upper_param(help: str = "largest coefficient c_2") -> Any:
    """MixUp's and InstaHide's bound on each mixing coefficient, in (0, 1].

    Whether ``k`` coefficients summing to one fit under it depends on ``k``:
    check that with :func:`check_upper`.
    """
    return param(help, above=0.0, maximum=1.0)


def check_upper(upper: float, **counts: int) -> None:
    """Check ``upper >= 1/k`` for each mixed-image count, given by field name.

    Example: ``check_upper(params.upper, k=params.k)``.

    Raises:
        ParameterError: ``k`` coefficients summing to one cannot all stay at
            or below ``upper``.
    """
    for name, k in counts.items():
        if upper < 1 / k:
            raise ParameterError(
                f"upper = {upper:g} is below 1/{name} = {1 / k:.3f}: {k} "
                "coefficients summing to 1 cannot all stay at or below it; "
                f"raise upper or lower {name}."
            )
