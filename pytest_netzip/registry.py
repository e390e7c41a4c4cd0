"""Entries of one kind known by name: the one registry that metrics and compressors both use.

A registry holds exactly the entries it is given, in the order their names were first given; a later
entry of a name already held replaces it in place (so a conftest's ``top1`` replaces the built-in one
and keeps its column). Under pytest the entries are what the ``pytest_netzip_*`` hook implementations
return, the plugin's own (``pytest_netzip.builtins``) first; each registry's subclass says what it
holds when built without any (the built-ins, for the Python API).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from pytest_netzip.naming import unknown_name_message


class Named(Protocol):
    """What a registry holds: anything with a ``name``."""

    @property
    def name(self) -> str:
        """The name the entry is known by (a marker's word, a JSON key)."""


T = TypeVar("T", bound=Named)
R = TypeVar("R", bound="Registry[Any]")


class Registry(Generic[T]):
    """Entries of type ``T`` by name; ``kind`` names them in errors (``unknown metric 'top2': did you mean ...``).

    A subclass sets ``kind`` and implements :meth:`check`: the entry as held, or TypeError.
    """

    kind: str = "entry"

    def __init__(self, entries: Iterable[object] = ()) -> None:
        self._by_name: dict[str, T] = {}
        self._add(entries)

    def check(self, entry: object) -> T:
        """``entry`` as this registry holds it; TypeError if it is not one."""
        raise NotImplementedError(f"{type(self).__name__} must implement check(entry)")

    def _add(self, entries: Iterable[object]) -> None:
        for entry in entries:
            checked = self.check(entry)
            self._by_name[checked.name] = checked

    @property
    def names(self) -> list[str]:
        """Every name, sorted (as error messages list them)."""
        return sorted(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> T:
        __tracebackhide__ = True  # pytest shows an unknown name's KeyError where it was asked for
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(self.unknown(name)) from None

    def get(self, name: str) -> T | None:
        """The entry named ``name``, or None."""
        return self._by_name.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def values(self) -> list[T]:
        """Every entry, in registration order."""
        return list(self._by_name.values())

    def unknown(self, name: object) -> str:
        """The message for a name this registry does not hold: a close match and every valid name."""
        return unknown_name_message(self.kind, name, self.names)

    def ordered(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` this registry holds, in registration order (stable table columns)."""
        wanted = set(names)
        return [name for name in self._by_name if name in wanted]

    def extended(self: R, entries: Iterable[object]) -> R:
        """A copy of this registry in which ``entries`` replace those of the same names (others are added last)."""
        copy = type(self)(())
        copy._by_name = dict(self._by_name)
        copy._add(entries)
        return copy

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {', '.join(self._by_name)}>"
