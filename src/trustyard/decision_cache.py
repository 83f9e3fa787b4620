"""A short-lived, bounded cache of access decisions, emptied whenever the identity store changes.

The permission policy (actions per principal and repository) and the authenticator (Basic logins) both
reuse answers for a few seconds, because computing them costs a database round trip or an argon2 hash on
every request. Both must forget at once when an identity changes through this process (the store's
``version`` moves), and both must stay bounded whatever callers send. Entries older than ``ttl`` are misses;
changes made by another process are seen after ``ttl``. The authorization plugin keeps trustyard's image
verdicts in one too (``authz/verdicts.py``, a store that never changes). It lives outside ``trustyard.auth``
because importing that package loads the identity store and SQLAlchemy, which the plugin does not need.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

__all__ = ["DecisionCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


class DecisionCache(Generic[K, V]):
    """``get``/``put`` with a time to live, a size bound (emptied when full), and the store's version."""

    def __init__(
        self, store: _Versioned, *, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self.ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[K, tuple[float, V]] = {}
        self._version = store.version

    def get(self, key: K) -> V | None:
        """The fresh value under ``key``, or ``None``."""
        with self._lock:
            if self._version != self._store.version:
                self._entries.clear()
                self._version = self._store.version
            hit = self._entries.get(key)
        if hit is None or hit[0] <= self._clock():
            return None
        return hit[1]

    def put(self, key: K, value: V) -> None:
        """Remember ``value`` under ``key`` for ``ttl`` seconds."""
        expires = self._clock() + self.ttl
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key] = (expires, value)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
