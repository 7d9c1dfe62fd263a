"""Slow down guessing at sign-in: after a few failures for one email or from one address,
further tries are refused at once, without checking (or hashing) the password.

Kept in memory per process: cheap enough that a flood of wrong passwords costs the server
almost nothing, so the kiosks' taps are never starved of threads or CPU behind it."""

from __future__ import annotations

import threading
import time
from collections import deque


class Throttle:
    """Failures per key within a sliding window; a key over its limit is refused."""

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def blocked(self, keys: list[str], now: float | None = None) -> bool:
        """Say whether any of the keys has used up its failures in the window."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            return any(len(self._recent(key, moment)) >= self.limit for key in keys)

    def failed(self, keys: list[str], now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        with self._lock:
            for key in keys:
                self._recent(key, moment).append(moment)
            if len(self._failures) > 10_000:  # forget keys with nothing recent
                for key in [k for k, v in self._failures.items() if not self._recent(k, moment)]:
                    del self._failures[key]

    def succeeded(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
