"""One registration mechanism for every named thing ROZ looks up (datasets, class sets, template
sets, shift kinds, effective-robustness shift sets).

A :class:`Registry` is filled only by explicit calls: ``register(name, entry)``, or a *provider*
(a function that registers a group of entries) added with ``add_provider`` and run once, on the
first look-up. Importing a module never registers anything as a side effect. Higher layers add
their own entries into lower registries the same way: the ROZ-Mini world registers its class set
and shift set with :func:`roz.world.register`, which the api, the cli and the demo call.
"""

from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from roz.errors import RozError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind. ``error`` is the RozError subclass raised for unknown names."""

    def __init__(self, kind: str, error: type[RozError] = RozError, hint: str = ""):
        self.kind = kind
        self.error = error
        self.hint = hint
        self._entries: dict[str, T] = {}
        self._providers: list[Callable[[], None]] = []
        self._loading = False

    def register(self, name: str, entry: T) -> None:
        """Add (or replace) ``name``."""
        self._entries[name] = entry

    def add_provider(self, provider: Callable[[], None]) -> None:
        """``provider()`` registers a group of entries; it runs once, before the next look-up."""
        self._providers.append(provider)

    def _load(self) -> None:
        if self._loading:  # a provider looking names up while it registers
            return
        self._loading = True
        try:
            while self._providers:
                self._providers.pop(0)()
        finally:
            self._loading = False

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(list(self._entries))

    def names(self) -> list[str]:
        return sorted(self)

    def values(self) -> list[T]:
        self._load()
        return list(self._entries.values())

    def get(self, name: str) -> T:
        """The entry ``name``; an unknown name raises ``error`` with the close matches."""
        self._load()
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), list(self._entries), n=3)
            raise self.error(f"unknown {self.kind} {name!r}",
                             hint=(f"did you mean {', '.join(close)}? " if close else "") + (self.hint or
                                   f"registered: {', '.join(sorted(self._entries))}"))
        return self._entries[name]
