"""The small protocol behind all shared state: memory by default, Redis across processes and machines.

Every method is atomic on its own. Implementations raise ``StateUnavailableError`` when the backing
store cannot answer in time; callers turn that into a closed door (503), never into an allow.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .._exceptions import ServiceUnavailableError

__all__ = ["StateStore", "StateUnavailableError"]


class StateUnavailableError(ServiceUnavailableError, RuntimeError):
    """The backing store did not answer (down, slow past its timeout, or restarting).

    It renders as 503 with ``Retry-After`` wherever it escapes (every shell renders ``IAMError``), with a message
    that names no infrastructure; ``str(exc)`` keeps the detail for logs.
    """

    def __init__(self, detail: str, *, retry_after: float = 1.0) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.message = "Shared state needed to decide this request is unavailable; retry shortly."


@runtime_checkable
class StateStore(Protocol):
    """Shared, expiring key-value state with the few atomic operations authentication needs."""

    def claim(self, key: str, ttl: float) -> bool:
        """Set ``key`` if absent, expiring after ``ttl`` seconds. True if this call set it (first use wins)."""
        ...

    def advance(self, key: str, value: int, ttl: float) -> bool:
        """Store ``value`` if it is greater than the stored integer (or none is stored). True if stored.

        The compare-and-set behind single-use TOTP steps: a code's step is accepted only if it is
        later than the last accepted step of that user.
        """
        ...

    def incr(self, key: str, ttl: float) -> int:
        """Increment a counter (created at 0 with expiry ``ttl`` seconds) and return the new value."""
        ...

    def get(self, key: str) -> bytes | None:
        """The stored bytes, or ``None`` if absent or expired. An integer stored by ``advance`` or ``incr`` reads
        back as its decimal digits (``b"42"``); the login throttle and revoke-all rely on that."""
        ...

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value``, expiring after ``ttl`` seconds (never, if ``None``)."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        ...

    def version(self, name: str) -> int:
        """The current value of a version counter (0 if never bumped)."""
        ...

    def bump(self, name: str) -> int:
        """Increment a version counter and return the new value (announced to other processes)."""
        ...
