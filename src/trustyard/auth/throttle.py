"""Login throttling: after too many failed logins for one (username, client address), refuse further tries.

A sliding window per key: when ``max_failures`` failures fall within ``window`` seconds, ``check`` raises
``ThrottledError`` whose ``retry_after`` is when the oldest of them leaves the window. A successful login
resets the key. In memory and thread-safe; one process's view only (workers > 1 each count separately).

Not here: persistence across restarts, per-address limits over all usernames, audit logging of failures.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from trustyard.auth.errors import ThrottledError
from trustyard.config import Settings

__all__ = ["LoginThrottle"]

_PRUNE_ABOVE: Final = 10_000


class LoginThrottle:
    """Counts failed logins per (username, address) and refuses logins once the limit is reached."""

    def __init__(self, *, max_failures: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        """``clock`` returns seconds from any fixed origin; tests inject a fake one."""
        if max_failures < 1 or window <= 0:
            raise ValueError("max_failures must be >= 1 and window > 0")
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], deque[float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginThrottle:
        """The throttle configured by ``login_max_failures`` and ``login_failure_window``."""
        return cls(max_failures=settings.login_max_failures, window=settings.login_failure_window)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def check(self, username: str, address: str) -> None:
        """Raise ``ThrottledError`` if this username may not try to log in from this address now."""
        with self._lock:
            now = self._clock()
            failures = self._recent((username, address), now)
            if failures is not None and len(failures) >= self.max_failures:
                retry_after = failures[-self.max_failures] + self.window - now
                raise ThrottledError("too many failed logins; try again later", retry_after=max(retry_after, 0.0))

    def record_failure(self, username: str, address: str) -> None:
        """Count one failed login."""
        with self._lock:
            now = self._clock()
            if len(self._failures) > _PRUNE_ABOVE:
                for key in list(self._failures):
                    self._recent(key, now)
            failures = self._failures.setdefault((username, address), deque())
            failures.append(now)
            while len(failures) > self.max_failures:
                failures.popleft()

    def record_success(self, username: str, address: str) -> None:
        """A successful login forgets the failures of this username and address."""
        with self._lock:
            self._failures.pop((username, address), None)
