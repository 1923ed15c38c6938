"""Shared state: single-use codes, counters, sessions, version bumps. Memory by default, Redis when configured."""

from __future__ import annotations

from typing import Any

from ._memory import MemoryStore
from ._protocol import StateStore, StateUnavailableError
from ._watch import StaleVersionError, Subscription, VersionFeed, VersionWatcher

__all__ = [
    "MemoryStore",
    "RedisStore",
    "RedisUnavailableError",
    "StaleVersionError",
    "StateStore",
    "StateUnavailableError",
    "Subscription",
    "VersionFeed",
    "VersionWatcher",
]


def __getattr__(name: str) -> Any:
    # redis is an optional extra: import it only when the Redis store is asked for.
    if name in ("RedisStore", "RedisUnavailableError"):
        from . import _redis

        return getattr(_redis, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
