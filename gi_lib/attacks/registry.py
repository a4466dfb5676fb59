"""Attacks by name: one contract, one registry (as :mod:`gi_lib.models` has).

Every attack is called with one signature::

    reconstruct(observation, config=None, *, seed=0, truth=None) -> Reconstruction

written once here (:class:`AttackFn`): an attack module registers the body of
its attack, a function of one :class:`AttackRun`, with its config type. An
experiment, a defense page or the evaluation picks an attack through a
parameter::

    attack = build_attack("inverting", max_iterations=200, tv_weight=1e-4)
    reconstruction = attack.reconstruct(observation, seed=0)

Config overrides name fields of the attack's config, or of its ``optim``
loop settings (:class:`gi_lib.attacks.base.OptimConfig`) directly.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

from gi_lib._registry import Registry
from gi_lib.attacks.base import Reconstruction

C = TypeVar("C")
R = TypeVar("R", bound=Reconstruction)


@dataclass(frozen=True)
class AttackRun(Generic[C]):
    """One call of an attack, as the contract hands it to the attack's body.

    Attributes:
        observation: what the attacker sees (never the client's data).
        config: the attack's settings (its defaults when the caller gave none).
        seed: seeds the attack's randomness (restart ``r`` draws from
            :func:`gi_lib.attacks.base.attack_generator` ``(seed, r)``).
        truth: true images, only to record PSNR in the history for plots.
    """

    observation: Any
    config: C
    seed: int = 0
    truth: torch.Tensor | None = None


class AttackFn(Generic[C, R]):
    """An attack behind the one contract, written here once.

    :func:`register_attack` wraps an attack's body (a function of one
    :class:`AttackRun`) in this callable; calling it as
    ``reconstruct(observation, config=None, *, seed=0, truth=None)`` fills in
    the default config (``config_type()``), checks the config's type and the
    seed, and runs the body. Its name and docstring are the body's.
    """

    def __init__(
        self,
        body: Callable[[AttackRun[C]], R],
        config_type: type[C],
    ) -> None:
        functools.update_wrapper(self, body)
        # The contract's signature, with this attack's config and result types.
        observation, config, seed, truth = _CONTRACT.parameters.values()
        config = config.replace(annotation=f"{config_type.__name__} | None")
        self.__signature__ = _CONTRACT.replace(
            parameters=[observation, config, seed, truth],
            return_annotation=inspect.signature(body).return_annotation,
        )
        self.body = body
        self.config_type = config_type

    def __call__(
        self,
        observation: Any,
        config: C | None = None,
        *,
        seed: int = 0,
        truth: torch.Tensor | None = None,
    ) -> R:
        if config is None:
            config = self.config_type()
        elif not isinstance(config, self.config_type):
            raise TypeError(
                f"{self.__module__}.{self.__name__} takes a "
                f"{self.config_type.__name__}, got {type(config).__name__}."
            )
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be an integer, got {seed!r}.")
        return self.body(AttackRun(observation, config, int(seed), truth))

    def __repr__(self) -> str:
        return f"<attack {self.__module__}.{self.__qualname__}>"

    def __reduce__(self) -> tuple[Callable[[str, str], Any], tuple[str, str]]:
        # Pickled by reference, as a function is (a process pool's task).
        return _module_attribute, (self.__module__, self.__qualname__)


def _module_attribute(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


_CONTRACT = inspect.signature(AttackFn.__call__).replace(
    parameters=list(inspect.signature(AttackFn.__call__).parameters.values())[1:]
)


@dataclass(frozen=True)
class AttackEntry:
    """A registered attack.

    Attributes:
        name: the registry key.
        config_type: its frozen config dataclass (defaults: the paper's code).
        reconstruct: the attack, called with the contract's arguments.
        summary: one line for tables and error messages (the first line of the
            attack's docstring).
        observation: what it attacks: ``"fedsgd"`` / ``"fedavg"`` updates
            (:class:`gi_lib.fl.Observation`) or ``"vertical"`` training steps.
    """

    name: str
    config_type: type
    reconstruct: AttackFn[Any, Reconstruction]
    summary: str
    observation: str = "fedsgd"


ATTACKS: Registry[AttackEntry] = Registry("attack")

# Where the built-in attacks register themselves. The registry imports a
# module only when its attack is asked for, so importing gi_lib.attacks does
# not import every paper (and make reruns only the notebooks whose imports
# reach a changed module). A module that picks its attack by a parameter
# imports the candidates itself, so the dependency is visible.
BUILTIN_MODULES: dict[str, str] = {
    "dlg": "gi_lib.attacks.dlg",
    "idlg": "gi_lib.attacks.idlg",
    "inverting": "gi_lib.attacks.inverting",
    "l2_lbfgs": "gi_lib.attacks.inverting",
    "bn_prior": "gi_lib.attacks.bn_prior",
    "rgap": "gi_lib.attacks.rgap",
    "cafe": "gi_lib.attacks.cafe",
    "sum_labels": "gi_lib.attacks.sum_labels",
    "cocktail_party": "gi_lib.attacks.cocktail_party",
    "fastica": "gi_lib.attacks.cocktail_party",
    "robbing_the_fed": "gi_lib.attacks.imprint",
    "gradinversion": "gi_lib.attacks.gradinversion",
    "gi_z": "gi_lib.attacks.gias",
    "gias": "gi_lib.attacks.gias",
}


def register_attack(
    name: str,
    *,
    config: type[C],
    observation: str = "fedsgd",
) -> Callable[[Callable[[AttackRun[C]], R]], AttackFn[C, R]]:
    """Register an attack's body under ``name`` (a decorator).

    The body takes one :class:`AttackRun` (its config already filled in and
    checked) and returns a :class:`Reconstruction`; the decorator returns it
    behind the contract (:class:`AttackFn`). A caller that gives no config gets
    ``config()``, the paper's defaults; the first line of the body's docstring
    is the attack's one-line summary.
    """

    def decorator(body: Callable[[AttackRun[C]], R]) -> AttackFn[C, R]:
        doc = inspect.getdoc(body)
        if not doc:
            raise ValueError(f"attack {name!r} needs a docstring (its summary).")
        attack = AttackFn(body, config)
        summary = doc.splitlines()[0]
        ATTACKS.add(name, AttackEntry(name, config, attack, summary, observation))
        return attack

    return decorator


def attack_names() -> tuple[str, ...]:
    """The built-in attacks, then any others registered since."""
    return tuple(dict.fromkeys([*BUILTIN_MODULES, *ATTACKS]))


def attack_entry(name: str) -> AttackEntry:
    """The registered attack ``name`` or an error naming the choices."""
    if name not in ATTACKS and name in BUILTIN_MODULES:
        importlib.import_module(BUILTIN_MODULES[name])
    try:
        return ATTACKS[name]
    except KeyError:
        raise ValueError(
            f"Unknown attack {name!r}; choose one of {', '.join(attack_names())}."
        ) from None


def configure(config: Any, **overrides: Any) -> Any:
    """``config`` (an attack's config instance) with ``overrides`` applied.

    A name that is not a field of the config but of its ``optim`` loop
    settings is applied there, and ``<prior>_weight`` (``tv_weight``) sets
    the weight of that prior in the config's ``priors``.
    """
    names = {f.name for f in dataclasses.fields(config)}
    priors = getattr(config, "priors", None)
    if priors is not None:
        weights = {f"{p.name}_weight": p.name for p in priors}
        chosen = {k: overrides.pop(k) for k in list(overrides) if k in weights}
        if chosen:
            by_name = {weights[k]: float(v) for k, v in chosen.items()}
            overrides["priors"] = tuple(
                dataclasses.replace(p, weight=by_name.get(p.name, p.weight))
                for p in overrides.get("priors", priors)
            )
    direct = {k: v for k, v in overrides.items() if k in names}
    rest = {k: v for k, v in overrides.items() if k not in names}
    optim = getattr(config, "optim", None)
    optim_names = (
        {f.name for f in dataclasses.fields(optim)} if optim is not None else set()
    )
    unknown = sorted(set(rest) - optim_names)
    if unknown:
        valid = sorted(
            (names | optim_names | {f"{p.name}_weight" for p in priors or ()})
            - {"optim"}
        )
        raise ValueError(
            f"{type(config).__name__} has no setting "
            f"{', '.join(map(repr, unknown))}; its settings are: {', '.join(valid)}."
        )
    if rest:
        direct["optim"] = dataclasses.replace(direct.get("optim", optim), **rest)
    return dataclasses.replace(config, **direct) if direct else config


@dataclass(frozen=True)
class Attack:
    """An attack bound to its config; call :meth:`reconstruct`."""

    name: str
    config: Any
    entry: AttackEntry

    def reconstruct(
        self, observation: Any, *, seed: int = 0, truth: torch.Tensor | None = None
    ) -> Reconstruction:
        """Run the attack on what the attacker observed.

        Args:
            observation: what the attacker sees (never the client's data).
            seed: seeds the attack's randomness (dummy initialisation).
            truth: true images, only to record PSNR in the history for plots.
        """
        return self.entry.reconstruct(observation, self.config, seed=seed, truth=truth)


def build_attack(name: str, config: Any = None, **overrides: Any) -> Attack:
    """The attack ``name`` with its paper's defaults, a given config, or overrides.

    Raises:
        ValueError: an unknown attack or setting (the message names the valid
            ones), or a config of the wrong type.
    """
    entry = attack_entry(name)
    if config is not None:
        if not isinstance(config, entry.config_type):
            raise ValueError(
                f"attack {name!r} takes a {entry.config_type.__name__}, got "
                f"{type(config).__name__}."
            )
    else:
        config = entry.config_type()
    config = configure(config, **overrides)
    return Attack(name, config, entry)
