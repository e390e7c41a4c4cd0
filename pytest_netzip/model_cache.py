"""What a session computes once per user object: evaluation sets, references, compressed models, subjects."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

T = TypeVar("T")


class ModelCache:
    """Values made once per (kind, user objects, other key parts), for the rest of the session.

    The user's models and data are keyed by identity, as fixtures hand the same objects to every test;
    the cache holds on to them, so that an identity is never reused by another object while a value
    made for it lives.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[Hashable, ...], Any] = {}
        self._held: dict[int, object] = {}

    def once(self, kind: str, owners: tuple[object, ...], parts: tuple[Hashable, ...], make: Callable[[], T]) -> T:
        """The value of ``kind`` for ``owners`` (by identity) and ``parts`` (by value), made on the first call."""
        key = (kind, *(id(owner) for owner in owners), *parts)
        if key not in self._values:
            self._values[key] = make()
            self._held.update((id(owner), owner) for owner in owners)
        return cast(T, self._values[key])

    def values(self, kind: str) -> list[Any]:
        """Every value of ``kind`` made so far, in the order they were made."""
        return [value for key, value in self._values.items() if key[0] == kind]
