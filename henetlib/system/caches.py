"""The process's in-memory caches, held in one registry with one rule.

Decoded splits, evaluators, data sets, published indexes and small constant tensors are kept for the life of
the process so that a sweep decodes each data set once. Every cache follows the same rule: it keeps at most
``size`` entries and drops the least recently used. ``henetlib.clear_caches()`` (``CACHES.clear()``) empties
them all: after changing a data set or ``published/`` on disk, or between tests.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any


class Cache:
    """A named least-recently-used cache of at most ``size`` entries."""

    def __init__(self, name: str, size: int):
        if size < 1:
            raise ValueError(f"cache {name!r}: size must be at least 1, got {size}.")
        self.name, self.size = name, size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The entry for ``key``, made by ``make()`` on a miss (after evicting to make room)."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        while len(self._items) >= self.size:
            self._items.popitem(last=False)  # evict first: a large split is freed before the next is decoded
        value = self._items[key] = make()
        return value

    def pop(self, key: Hashable) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items


class Registry:
    """Every cache of the process, by name."""

    def __init__(self) -> None:
        self._caches: dict[str, Cache] = {}

    def cache(self, name: str, size: int) -> Cache:
        if name in self._caches:
            raise ValueError(f"a cache named {name!r} exists already.")
        c = self._caches[name] = Cache(name, size)
        return c

    def clear(self) -> None:
        for c in self._caches.values():
            c.clear()

    def __iter__(self) -> Iterator[Cache]:
        return iter(self._caches.values())

    def summary(self) -> dict[str, str]:
        return {c.name: f"{len(c)} of {c.size}" for c in self}


CACHES = Registry()


def clear_caches() -> None:
    """Empty every in-memory cache of the process."""
    CACHES.clear()
