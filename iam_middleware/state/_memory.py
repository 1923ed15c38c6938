"""In-process shared state: the embedded default, for one process (tests, single-worker deployments)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["MemoryStore"]


class MemoryStore:
    """A thread-safe, expiring dict implementing ``StateStore``. Not shared across processes."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._data: dict[str, tuple[bytes | int, float | None]] = {}
        self._versions: dict[str, int] = {}

    def _live(self, key: str) -> bytes | int | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and self._clock() >= expires:
            del self._data[key]
            return None
        return value

    def _expiry(self, ttl: float | None) -> float | None:
        if ttl is None:
            return None
        # A zero, negative or non-finite TTL would silently disable a replay guard (claim always succeeding).
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
            raise ValueError(f"ttl must be a positive, finite number of seconds, got {ttl!r}")
        return self._clock() + ttl

    def claim(self, key: str, ttl: float) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._data[key] = (b"1", self._expiry(ttl))
            return True

    def advance(self, key: str, value: int, ttl: float) -> bool:
        with self._lock:
            current = self._live(key)
            if isinstance(current, int) and current >= value:
                return False
            self._data[key] = (value, self._expiry(ttl))
            return True

    def incr(self, key: str, ttl: float) -> int:
        with self._lock:
            current = self._live(key)
            if isinstance(current, int):
                _, expires = self._data[key]
                self._data[key] = (current + 1, expires)
                return current + 1
            self._data[key] = (1, self._expiry(ttl))
            return 1

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._live(key)
            if value is None:
                return None
            return value if isinstance(value, bytes) else str(value).encode()

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        with self._lock:
            self._data[key] = (value, self._expiry(ttl))

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def version(self, name: str) -> int:
        with self._lock:
            return self._versions.get(name, 0)

    def bump(self, name: str) -> int:
        with self._lock:
            self._versions[name] = self._versions.get(name, 0) + 1
            return self._versions[name]
