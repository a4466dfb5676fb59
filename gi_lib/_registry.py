"""Entries by name: the one lookup behind the library's named choices.

Models, data sets, image priors, matching distances and vertical models are
each chosen by a name in a notebook's parameters. A :class:`Registry` holds
one such table: it refuses a name registered twice, and a lookup of a name
it lacks fails with a :class:`ValueError` that names the choices (the
message a notebook's reader sees for a typo).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """A read-only mapping from names to entries, filled by :meth:`add`.

    Indexing (``registry[name]``) is plain mapping access (a KeyError for an
    unknown name); :meth:`lookup` is the checked access for names a user
    typed. Names iterate in the order they were registered.

    Args:
        kind: what an entry is, for messages (``"model"``, ``"prior"``).
        entries: the first entries, in order.
    """

    def __init__(self, kind: str, entries: Mapping[str, T] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        for name, entry in (entries or {}).items():
            self.add(name, entry)

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name`` and return it.

        Raises:
            ValueError: ``name`` is registered already.
        """
        if name in self._entries:
            raise ValueError(f"Cannot register two {self.kind}s named {name!r}.")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@registry.register("name")``."""

        def decorator(entry: T) -> T:
            return self.add(name, entry)

        return decorator

    def lookup(self, name: str) -> T:
        """The entry ``name``.

        Raises:
            ValueError: ``name`` is not registered (the message names the
                choices).
        """
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(
                f"Unknown {self.kind} {name!r}; choose one of {', '.join(self)}."
            ) from None

    def copy(self) -> Registry[T]:
        """A registry of the same kind with the same entries (registering in
        the copy leaves this one alone)."""
        return Registry(self.kind, self._entries)

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={list(self._entries)})"
