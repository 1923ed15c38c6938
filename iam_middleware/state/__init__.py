"""Shared state: single-use codes, counters, sessions, version bumps. Memory by default, Redis when configured."""

from __future__ import annotations

from ._memory import MemoryStore
from ._protocol import StateStore, StateUnavailableError

__all__ = ["MemoryStore", "StateStore", "StateUnavailableError"]
