"""One Registry type for every kind of plugin, filled by a decorator or by entry points.

`hardware`, `workload layer kinds`, `strategy`, `collective` and `cost_model` each get one
Registry. Registering a name twice is an error; looking up an unknown name lists the valid
ones. Third parties add plugins through entry points in the group `simulator.<kind>`.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable, Generic, TypeVar

from simulator.core.errors import unknown_name

T = TypeVar("T")


class DuplicateRegistration(Exception):
    """A second plugin tried to take a name that is already registered."""


class Registry(Generic[T]):
    """A name -> plugin mapping for one kind of plugin."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._entry_points_loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@hardware.register("gpu")` above a class or function."""

        def add(item: T) -> T:
            self.add(name, item)
            return item

        return add

    def add(self, name: str, item: T) -> None:
        if name in self._items and self._items[name] is not item:
            raise DuplicateRegistration(f"{self.kind} '{name}' is registered twice")
        self._items[name] = item

    def get(self, name: str) -> T:
        if name not in self._items:
            self._load_entry_points()
        if name not in self._items:
            raise unknown_name(self.kind, name, self.names())
        return self._items[name]

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=f"simulator.{self.kind}"):
            item = ep.load()
            if self._items.get(ep.name) is not item:
                self.add(ep.name, item)
