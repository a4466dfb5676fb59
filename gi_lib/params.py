"""Declaring and checking a notebook's parameters.

Each experiment declares its parameters once, as a frozen dataclass that
subclasses :class:`ExperimentParams` (the notebook contract's common
parameters). Every field carries its type annotation and, through
:func:`param`, a :class:`Param` spec with its bounds, choices and help::

    @dataclass(frozen=True, kw_only=True)
    class PruningParams(ExperimentParams):
        ratios: tuple[float, ...] = param("pruning ratios", minimum=0, maximum=1)
        max_iterations: int = param("DLG's L-BFGS iterations", minimum=1)

:func:`check_parameters` turns a notebook's values into an instance of that
class. Notebook parameters stay primitive values: a field annotated
``tuple[int, ...]``, ``tuple[float, ...]`` or ``tuple[str, ...]`` accepts a
comma-separated string (``"0.5,0.9"``) and becomes a tuple of that type.
Papermill only warns about a parameter name the notebook does not have; here
an unknown name, a wrong type or an impossible value is a
:class:`ParameterError` whose message names the valid choices, raised before
any work starts.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from gi_lib.data import DATASETS
from gi_lib.models import model_names
from gi_lib.profiles import profile_names

DEVICES = ("auto", "cpu", "cuda")
SEPARATOR = ","
_METADATA_KEY = "gi_lib.param"
_ITEM_KINDS = (int, float, str, bool)

P = TypeVar("P", bound="ExperimentParams")
T = TypeVar("T")


class ParameterError(ValueError):
    """A notebook parameter is unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class Param:
    """What one parameter accepts; its type is the field's annotation.

    For a list parameter (annotated ``tuple[X, ...]``) the bounds and choices
    apply to each item.

    Attributes:
        help: one line shown in error messages.
        minimum, maximum: inclusive bounds for numbers.
        above, below: exclusive bounds for numbers (``above=0``: positive).
        choices: the allowed strings, or a function that returns them when a
            value is checked (for registries and files that can change).
        unique: a list may not name an item twice.
    """

    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    choices: tuple[str, ...] | Callable[[], Iterable[str]] | None = None
    unique: bool = False

    def allowed(self) -> tuple[str, ...] | None:
        """The allowed strings, looked up now, or None when any string goes."""
        if self.choices is None:
            return None
        if callable(self.choices):
            return tuple(self.choices())
        return tuple(self.choices)

    def bounds(self) -> list[str]:
        """The bounds as text: ``[">= 0", "<= 1"]``."""
        out = []
        for sign, bound in (
            (">=", self.minimum),
            (">", self.above),
            ("<=", self.maximum),
            ("<", self.below),
        ):
            if bound is not None:
                out.append(f"{sign} {bound:g}")
        return out


def param(
    help: str = "",
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
    choices: tuple[str, ...] | Callable[[], Iterable[str]] | None = None,
    unique: bool = False,
) -> Any:
    """A dataclass field (without default) that carries its :class:`Param`.

    Use it as ``name: int = param("what it is", minimum=1)``; the arguments
    are :class:`Param`'s.
    """
    spec = Param(
        help=help,
        minimum=minimum,
        maximum=maximum,
        above=above,
        below=below,
        choices=choices,
        unique=unique,
    )
    return field(metadata={_METADATA_KEY: spec})


@dataclass(frozen=True)
class Spec:
    """One declared parameter: its name, item type, whether a list, its Param."""

    name: str
    kind: type
    is_list: bool
    param: Param

    def describe(self) -> str:
        """``name (type; bounds or choices): help``, for error messages."""
        kind = self.kind.__name__
        parts = [f"comma-separated list of {kind}" if self.is_list else kind]
        allowed = self.param.allowed()
        if allowed is not None:
            parts.append(
                ("each " if self.is_list else "") + "one of " + ", ".join(allowed)
            )
        bounds = self.param.bounds()
        if bounds:
            parts.append(("each " if self.is_list else "") + ", ".join(bounds))
        if self.param.unique:
            parts.append("no repeats")
        text = f"{self.name} ({'; '.join(parts)})"
        return f"{text}: {self.param.help}" if self.param.help else text


def _kind(owner: type, name: str, annotation: Any) -> tuple[type, bool]:
    if annotation in _ITEM_KINDS:
        return annotation, False
    arguments = typing.get_args(annotation)
    if (
        typing.get_origin(annotation) is tuple
        and len(arguments) == 2
        and arguments[1] is Ellipsis
        and arguments[0] in (int, float, str)
    ):
        return arguments[0], True
    raise TypeError(
        f"{owner.__name__}.{name} is annotated {annotation!r}; a parameter is "
        "int, float, str, bool, or tuple[int, ...], tuple[float, ...] or "
        "tuple[str, ...]."
    )


@functools.cache
def parameter_specs(cls: type[ExperimentParams]) -> dict[str, Spec]:
    """The declared parameters of ``cls``, by name, in declaration order.

    Raises:
        TypeError: a field lacks its :func:`param` spec or has a type a
            notebook parameter cannot have (a programming error).
    """
    hints = typing.get_type_hints(cls)
    specs = {}
    for item in dataclasses.fields(cls):
        spec = item.metadata.get(_METADATA_KEY)
        if spec is None:
            raise TypeError(
                f"{cls.__name__}.{item.name} must be declared with gi_lib.params.param."
            )
        kind, is_list = _kind(cls, item.name, hints[item.name])
        specs[item.name] = Spec(item.name, kind, is_list, spec)
    return specs


def _type_error(spec: Spec, value: Any, what: str = "") -> ParameterError:
    return ParameterError(
        f"Parameter {spec.name!r}{what} must be of type {spec.kind.__name__}, got "
        f"{value!r} ({type(value).__name__}). Expected {spec.describe()}."
    )


def _check_item(spec: Spec, value: Any, what: str = "") -> Any:
    """Check one value (or one list item) against type, bounds and choices."""
    kind = spec.kind
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if (kind is not bool and isinstance(value, bool)) or not isinstance(value, kind):
        raise _type_error(spec, value, what)
    if kind is float and not math.isfinite(value):
        raise ParameterError(
            f"Parameter {spec.name!r}{what} = {value!r} must be a finite number."
        )
    if kind in (int, float):
        each = "each item " if spec.is_list else "it "
        p = spec.param
        if (p.minimum is not None and value < p.minimum) or (
            p.above is not None and value <= p.above
        ):
            raise ParameterError(
                f"Parameter {spec.name!r}{what} = {value!r} is too small; "
                f"{each}must be {', '.join(p.bounds())}."
            )
        if (p.maximum is not None and value > p.maximum) or (
            p.below is not None and value >= p.below
        ):
            raise ParameterError(
                f"Parameter {spec.name!r}{what} = {value!r} is too large; "
                f"{each}must be {', '.join(p.bounds())}."
            )
    allowed = spec.param.allowed()
    if allowed is not None and value not in allowed:
        raise ParameterError(
            f"Parameter {spec.name!r} has unknown value {value!r}; choose "
            f"{'from' if spec.is_list else 'one of'}: {', '.join(allowed)}."
        )
    return value


def _parse_item(spec: Spec, text: str, position: int) -> Any:
    if spec.kind is str:
        return text
    try:
        return spec.kind(text)
    except ValueError:
        raise ParameterError(
            f"Parameter {spec.name!r} item {position} = {text!r} is not "
            f"{'an' if spec.kind is int else 'a'} {spec.kind.__name__}. Expected "
            f"{spec.describe()}."
        ) from None


def _check_list(spec: Spec, value: Any) -> tuple[Any, ...]:
    """A comma-separated string (or a list or tuple) as a checked tuple."""
    if isinstance(value, str):
        texts = [item.strip() for item in value.split(SEPARATOR)]
        if not value.strip():
            texts = []
        if any(not text for text in texts):
            example = "a,b" if spec.kind is str else "1,2"
            raise ParameterError(
                f"Parameter {spec.name!r} = {value!r} has an empty item; "
                f"separate the items by single commas, e.g. {example!r}."
            )
        items = [_parse_item(spec, text, i + 1) for i, text in enumerate(texts)]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ParameterError(
            f"Parameter {spec.name!r} must be a comma-separated string, got "
            f"{value!r} ({type(value).__name__}). Expected {spec.describe()}."
        )
    if not items:
        raise ParameterError(f"Parameter {spec.name!r} = {value!r} names nothing.")
    checked = tuple(
        _check_item(spec, item, f" item {i + 1}") for i, item in enumerate(items)
    )
    if spec.param.unique and len(set(checked)) != len(checked):
        raise ParameterError(f"Parameter {spec.name!r} = {value!r} repeats a value.")
    return checked


def check_value(spec: Spec, value: Any) -> Any:
    """Check one parameter's value; return it typed (a tuple for a list kind).

    Raises:
        ParameterError: the value has the wrong type or is out of range.
    """
    if spec.is_list:
        return _check_list(spec, value)
    return _check_item(spec, value)


def check_parameters(values: Mapping[str, Any], cls: type[P], *, notebook: str) -> P:
    """Check ``values`` against the parameters ``cls`` declares; return an instance.

    Ints are promoted where a float is declared, and comma-separated strings
    become tuples where a list is declared.

    Raises:
        ParameterError: on an unknown or missing name, a wrong type or a value
            out of range; the message says what to change.
    """
    specs = parameter_specs(cls)
    unknown = sorted(set(values) - set(specs))
    if unknown:
        valid = "\n  ".join(spec.describe() for spec in specs.values())
        raise ParameterError(
            f"Notebook {notebook!r} has no parameter named "
            f"{', '.join(map(repr, unknown))}. "
            f"Its parameters are:\n  {valid}"
        )
    missing = [name for name in specs if name not in values]
    if missing:
        raise ParameterError(
            f"Notebook {notebook!r} is missing parameters: {', '.join(missing)}."
        )
    checked = {name: check_value(spec, values[name]) for name, spec in specs.items()}
    return cls(**checked)


@dataclass(frozen=True, kw_only=True)
class ExperimentParams:
    """The parameters every paper notebook takes (the notebook contract).

    An experiment subclasses this with its own fields; a subclass may
    redeclare a common field to narrow it (a list of data sets, fewer
    models or devices). Build instances with :func:`check_parameters`.
    """

    profile: str = param(
        "run profile that set these values (a file in notebooks/profiles)",
        choices=profile_names,
    )
    dataset: str = param("data set", choices=tuple(DATASETS))
    model: str = param("a name from gi_lib.models", choices=model_names)
    num_trials: int = param("victim images (or batches) attacked", minimum=1)
    seed: int = param("seeds all randomness", minimum=0)
    device: str = param("where to compute (auto: CUDA when present)", choices=DEVICES)
    num_threads: int = param("CPU threads torch uses during the run", minimum=1)


def datasets_param(help: str = "data sets, each run in turn") -> Any:
    """The ``dataset`` field of a notebook that runs on several data sets."""
    return param(help, choices=tuple(DATASETS), unique=True)


def new_names(namespace: Mapping[str, Any], baseline: Iterable[str]) -> dict[str, Any]:
    """Variables defined after ``baseline`` was taken, without private names.

    A notebook's page (:class:`gi_lib.notebook.Page`) takes the baseline
    before the parameters cell; the names that appear afterwards are the
    parameters, including any that papermill injected, so an unknown injected
    name is caught.
    """
    before = set(baseline)
    return {
        k: v for k, v in namespace.items() if k not in before and not k.startswith("_")
    }


def call_with_fields(target: Callable[..., T], source: object, /, **given: Any) -> T:
    """Call ``target`` with the attributes of ``source`` that its keywords name.

    Every keyword parameter of ``target`` (a function, or a class such as a
    settings dataclass) that ``source`` (checked parameters, parsed command-line
    arguments) has an attribute of the same name receives that attribute,
    unless ``given`` names it; ``given`` supplies the rest: renamed fields and
    values computed by the caller. It stands for
    ``target(clip_norm=params.clip_norm, lot_size=params.lot_size, ...)``, so a
    name shared by the parameters and the call is written once.

    A parameter of ``target`` that neither names keeps its default, or is
    missing (a ``TypeError`` from ``target``).
    """
    keywords = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    taken = {
        name: getattr(source, name)
        for name, parameter in inspect.signature(target).parameters.items()
        if parameter.kind in keywords and name not in given and hasattr(source, name)
    }
    return target(**taken, **given)


def resolve_device(
    device: str, *, supported: tuple[str, ...] = ("cpu", "cuda")
) -> torch.device:
    """The device to compute on.

    Args:
        device: ``auto``, ``cpu`` or ``cuda``.
        supported: the devices the experiment can run on; ``auto`` picks
            CUDA when it is supported and present, else the CPU.

    Raises:
        ParameterError: an unknown device, one the experiment does not
            support, or CUDA asked for where there is none.
    """
    if device not in DEVICES:
        raise ParameterError(
            f"device must be one of {', '.join(DEVICES)}, got {device!r}."
        )
    if device == "auto":
        cuda = "cuda" in supported and torch.cuda.is_available()
        return torch.device("cuda" if cuda else "cpu")
    if device not in supported:
        raise ParameterError(
            f"device={device!r} is not supported here; use "
            f"{' or '.join(('auto', *supported))}."
        )
    if device == "cuda" and not torch.cuda.is_available():
        raise ParameterError(
            "device='cuda' was asked for but no CUDA device is available; "
            "use 'auto' or 'cpu'."
        )
    return torch.device(device)
