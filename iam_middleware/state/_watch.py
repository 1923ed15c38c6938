"""Local copies of shared version counters, cheap to read on every request and never staler than a known bound.

A ``VersionWatcher`` lets a process notice, without a round trip per request, that another process bumped a
version (policies reloaded, a principal changed), so its local caches can be dropped. Announcements from the
store (Redis pub/sub) make it prompt; re-reading a counter once its copy is ``poll_interval`` old makes it
correct when an announcement is lost; and once a counter could not be read for ``max_staleness`` seconds,
reading it raises, so callers fail closed instead of trusting an old value.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from .._exceptions import ConfigurationError
from ._protocol import StateStore, StateUnavailableError

__all__ = ["StaleVersionError", "Subscription", "VersionFeed", "VersionWatcher"]


class Subscription(Protocol):
    """A running subscription; ``close()`` ends it."""

    def close(self) -> None: ...


@runtime_checkable
class VersionFeed(Protocol):
    """A store that announces bumps (``RedisStore``); a ``VersionWatcher`` subscribes to it when it can."""

    def subscribe_versions(self, callback: Callable[[str, int], None]) -> Subscription:
        """Call ``callback(name, version)`` for each bump until the returned subscription is closed."""
        ...


class StaleVersionError(StateUnavailableError):
    """A version counter could not be read for longer than ``max_staleness``; its local copy is not trusted."""

    def __init__(self, name: str, *, age: float | None, max_staleness: float) -> None:
        self.name = name
        self.age = age
        if age is None:
            detail = "could not be read: the state store is unavailable"
        else:
            detail = f"could not be re-read for {age:.1f}s (max_staleness {max_staleness:g}s)"
        super().__init__(f"version {name!r} {detail}; requests that depend on it are refused until the store answers")


class VersionWatcher:
    """Keeps local copies of version counters of ``store`` current; ``current(name, now)`` reads one.

    Each counter is read from the store on first use, then re-read when its copy is ``poll_interval``
    seconds old (by the ``now`` callers pass), so a missed announcement delays a change by at most
    ``poll_interval``. If ``store`` is a ``VersionFeed`` (``RedisStore``), a daemon thread applies
    announcements as they arrive. When re-reading fails, the last value is served until it is
    ``max_staleness`` old, then ``current`` raises ``StaleVersionError``; a failed counter is retried at
    most once per ``poll_interval``, so a down store does not slow every request. ``close()`` ends the
    subscription.
    """

    def __init__(self, store: StateStore, *, poll_interval: float = 1.0, max_staleness: float = 5.0) -> None:
        if not (math.isfinite(max_staleness) and 0 < poll_interval <= max_staleness):
            raise ConfigurationError(
                f"VersionWatcher needs 0 < poll_interval <= max_staleness, both finite "
                f"(got poll_interval={poll_interval!r}, max_staleness={max_staleness!r})"
            )
        self._store = store
        self._poll_interval = poll_interval
        self._max_staleness = max_staleness
        # name -> (value, fresh_until, stale_until): served as is before fresh_until, re-read after it,
        # and not served at all after stale_until. Tuples are replaced whole, so readers need no lock.
        self._entries: dict[str, tuple[int, float, float]] = {}
        # name -> earliest time to try again a counter whose last read failed past its staleness bound.
        self._retry_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._subscription = store.subscribe_versions(self._announced) if isinstance(store, VersionFeed) else None

    def __enter__(self) -> VersionWatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def current(self, name: str, now: float) -> int:
        """The value of counter ``name``, at most ``poll_interval`` stale; raises ``StaleVersionError``."""
        entry = self._entries.get(name)
        if entry is not None and now < entry[1]:
            return entry[0]
        return self._refresh(name, now)

    def _refresh(self, name: str, now: float) -> int:
        if not self._lock.acquire(blocking=False):
            # Another thread is reading the store: rather than queue behind it, serve a still-trusted copy.
            entry = self._entries.get(name)
            if entry is not None and now < entry[2]:
                return entry[0]
            self._lock.acquire()
        try:
            entry = self._entries.get(name)
            if entry is not None and now < entry[1]:
                return entry[0]
            if now < self._retry_at.get(name, -math.inf):
                raise self._stale(name, entry, now)
            try:
                value = self._store.version(name)
            except StateUnavailableError as exc:
                if entry is not None and now < entry[2]:
                    self._entries[name] = (entry[0], min(now + self._poll_interval, entry[2]), entry[2])
                    return entry[0]
                self._retry_at[name] = now + self._poll_interval
                raise self._stale(name, entry, now) from exc
            # The store's answer wins even if lower than the copy: a counter that went back (a Redis restart
            # without persistence) must still read as a change, or caches would never be dropped.
            self._entries[name] = (value, now + self._poll_interval, now + self._max_staleness)
            self._retry_at.pop(name, None)
            return value
        finally:
            self._lock.release()

    def _stale(self, name: str, entry: tuple[int, float, float] | None, now: float) -> StaleVersionError:
        age = None if entry is None else now - (entry[2] - self._max_staleness)
        return StaleVersionError(name, age=age, max_staleness=self._max_staleness)

    def seen(self, name: str, version: int) -> None:
        """Record a value this process wrote itself (what ``bump`` returned), so it is not taken for a change made
        elsewhere while its announcement is still on the way. Treated like an announcement."""
        self._announced(name, version)

    def _announced(self, name: str, version: int) -> None:
        # A higher value is applied at once. A lower one is either late (a re-read already saw a later bump) or
        # comes from a counter that started again (Redis lost its data): only the store can tell, so the copy is
        # re-read on its next use, without waiting for the poll.
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                return
            if version > entry[0]:
                self._entries[name] = (version, entry[1], entry[2])
            elif version < entry[0]:
                self._entries[name] = (entry[0], -math.inf, entry[2])

    def close(self) -> None:
        """Stop listening for announcements (polling still works if ``current`` is called afterwards)."""
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
