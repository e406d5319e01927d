"""A bounded least-recently-used cache of what was built from objects it holds.

The caches that make a sweep point cheap after the first (graphs, resolved layers, layer costs,
clusters, whole steps) key their entries by the identity of the objects a value was built from
(a model, a device, a link) and by plain values (a batch, options). Each entry holds those
objects, so that their ids are not reused by other objects while it lives, and a lookup hits
only if the very same objects are given again. Values are never changed after they are built;
a caller that hands out mutable values copies them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class HeldCache:
    """At most `size` entries, the least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] = OrderedDict()

    def _key(self, held: tuple[Any, ...], key: Hashable) -> tuple[Any, ...]:
        return (tuple(map(id, held)), key)

    def get(self, held: tuple[Any, ...], key: Hashable) -> Any | None:
        """The value built from the objects `held` with `key`, or None."""
        full = self._key(held, key)
        entry = self._entries.get(full)
        if entry is None or not all(a is b for a, b in zip(entry[0], held, strict=True)):
            return None
        self._entries.move_to_end(full)
        return entry[1]

    def put(self, held: tuple[Any, ...], key: Hashable, value: Any) -> None:
        self._entries[self._key(held, key)] = (held, value)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
