"""Checking a notebook's parameters.

Papermill only warns about a parameter name the notebook does not have; here
an unknown name, a wrong type or an impossible value is an error whose message
names the valid choices, raised before any work starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from gi_lib.data import DATASETS
from gi_lib.models import model_names
from gi_lib.profiles import profile_names

DEVICES = ("auto", "cpu", "cuda")


class ParameterError(ValueError):
    """A notebook parameter is unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class Param:
    """What one parameter accepts.

    Attributes:
        kind: ``int``, ``float``, ``str`` or ``bool``.
        minimum, maximum: inclusive bounds for numbers.
        choices: allowed strings; with ``multiple`` a comma-separated list of them.
        multiple: the value is a comma-separated list of ``choices``.
        help: one line shown in error messages.
    """

    kind: type
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    multiple: bool = False
    help: str = ""


def common_parameters(*, multiple_datasets: bool = False) -> dict[str, Param]:
    """The parameters every paper notebook takes (the notebook contract)."""
    return {
        "profile": Param(
            str,
            choices=profile_names(),
            help="run profile that set these values (a file in notebooks/profiles)",
        ),
        "dataset": Param(
            str,
            choices=tuple(DATASETS),
            multiple=multiple_datasets,
            help="data set" + (" (comma-separated list)" if multiple_datasets else ""),
        ),
        "model": Param(str, choices=model_names(), help="a name from gi_lib.models"),
        "num_trials": Param(int, minimum=1, help="victim images (or batches) attacked"),
        "seed": Param(int, minimum=0, help="seeds all randomness"),
        "device": Param(str, choices=DEVICES, help="where to compute"),
    }


def _describe(name: str, spec: Param) -> str:
    parts = [spec.kind.__name__]
    if spec.choices is not None:
        parts.append("one of " + ", ".join(spec.choices))
    if spec.minimum is not None:
        parts.append(f">= {spec.minimum:g}")
    if spec.maximum is not None:
        parts.append(f"<= {spec.maximum:g}")
    return f"{name} ({'; '.join(parts)})"


def _check_one(name: str, value: Any, spec: Param) -> Any:
    expected = spec.kind
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if (
        expected is not bool
        and isinstance(value, bool)
        or not isinstance(value, expected)
    ):
        raise ParameterError(
            f"Parameter {name!r} must be of type {expected.__name__}, got "
            f"{value!r} ({type(value).__name__}). Expected {_describe(name, spec)}."
        )
    if spec.minimum is not None and value < spec.minimum:
        raise ParameterError(
            f"Parameter {name!r} = {value!r} is too small; "
            f"it must be >= {spec.minimum:g}."
        )
    if spec.maximum is not None and value > spec.maximum:
        raise ParameterError(
            f"Parameter {name!r} = {value!r} is too large; "
            f"it must be <= {spec.maximum:g}."
        )
    if spec.choices is not None:
        items = [v.strip() for v in value.split(",")] if spec.multiple else [value]
        if not items or any(not item for item in items):
            raise ParameterError(f"Parameter {name!r} = {value!r} names nothing.")
        for item in items:
            if item not in spec.choices:
                raise ParameterError(
                    f"Parameter {name!r} has unknown value {item!r}; choose "
                    f"{'from' if spec.multiple else 'one of'}: "
                    f"{', '.join(spec.choices)}."
                )
        if len(set(items)) != len(items):
            raise ParameterError(f"Parameter {name!r} = {value!r} repeats a value.")
    return value


def check_parameters(
    values: Mapping[str, Any], spec: Mapping[str, Param], *, notebook: str
) -> dict[str, Any]:
    """Validate ``values`` against ``spec``; return them (ints promoted for floats).

    Raises:
        ParameterError: on an unknown or missing name, a wrong type or a value
            out of range; the message says what to change.
    """
    unknown = sorted(set(values) - set(spec))
    if unknown:
        valid = "\n  ".join(_describe(n, s) for n, s in spec.items())
        raise ParameterError(
            f"Notebook {notebook!r} has no parameter named "
            f"{', '.join(map(repr, unknown))}. "
            f"Its parameters are:\n  {valid}"
        )
    missing = sorted(set(spec) - set(values))
    if missing:
        raise ParameterError(
            f"Notebook {notebook!r} is missing parameters: {', '.join(missing)}."
        )
    return {name: _check_one(name, values[name], spec[name]) for name in spec}


def new_names(namespace: Mapping[str, Any], baseline: Iterable[str]) -> dict[str, Any]:
    """Variables defined after ``baseline`` was taken, without private names.

    A notebook takes ``baseline = set(globals())`` before its parameters cell;
    the names that appear afterwards are the parameters, including any that
    papermill injected, so an unknown injected name is caught.
    """
    before = set(baseline)
    return {
        k: v for k, v in namespace.items() if k not in before and not k.startswith("_")
    }


def split_list(value: str) -> list[str]:
    """Items of a comma-separated parameter."""
    return [item.strip() for item in value.split(",") if item.strip()]


def positive_numbers(name: str, value: str, kind: type = int) -> list[Any]:
    """Parse a comma-separated parameter of positive numbers (``"1,2,4"``).

    Raises:
        ParameterError: when it names nothing, an item is not of ``kind``, or
            an item is not positive.
    """
    items = split_list(value)
    if not items:
        raise ParameterError(f"Parameter {name!r} = {value!r} names nothing.")
    try:
        numbers = [kind(item) for item in items]
    except ValueError:
        raise ParameterError(
            f"Parameter {name!r} = {value!r} must be a comma-separated list of "
            f"{kind.__name__} values."
        ) from None
    if any(n <= 0 for n in numbers):
        raise ParameterError(f"Parameter {name!r} = {value!r} must be positive.")
    return numbers


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is an error."""
    if device not in DEVICES:
        raise ParameterError(
            f"device must be one of {', '.join(DEVICES)}, got {device!r}."
        )
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ParameterError(
            "device='cuda' was asked for but no CUDA device is available; "
            "use 'auto' or 'cpu'."
        )
    return torch.device(device)
