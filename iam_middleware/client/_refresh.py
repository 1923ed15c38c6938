"""A value that expires (temporary credentials, a session token), cached and renewed by one caller at a time.

Every caller, sync or async, in any thread or event loop, shares one cache:

- fresh (more than ``margin`` seconds left, or no known expiry): returned at once;
- in its margin but usable (more than ``_LAST_SECONDS`` left): one caller renews it; the others keep using it
  meanwhile, and after a failed renewal everyone keeps using it for ``_RETRY_AFTER`` seconds before the next try;
- missing, invalidated or in its last seconds: one caller renews it and the others wait for that result (or its
  error).

So however many requests start together, the token service sees one call. The flight is a
``concurrent.futures.Future``: threads wait on it, asyncio tasks through ``asyncio.wrap_future``. A sync caller must
not wait on the event loop's own thread while an async caller there renews (the usual rule: no blocking calls on
the loop).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Generic, TypeVar, cast

__all__ = ["Refresher"]

logger = logging.getLogger("iam_middleware.client")

T = TypeVar("T")

# A request signed in the last seconds of a credential may reach the server after it ends: never used that late.
_LAST_SECONDS = 5.0
_RETRY_AFTER = 10.0


class _Abandoned(Exception):
    """The renewing caller was cancelled: a waiter renews itself instead."""


class Refresher(Generic[T]):
    """Caches what ``fetch`` (sync callers) or ``afetch`` (async callers) returns until ``expires_at(value)`` minus
    ``margin``; ``clock`` gives epoch seconds and is injectable so tests move time by hand."""

    def __init__(self, fetch: Callable[[], T], afetch: Callable[[], Awaitable[T]],
                 expires_at: Callable[[T], float | None], *, margin: float, clock: Callable[[], float],
                 what: str) -> None:
        if not margin >= 0:
            raise ValueError(f"margin must be a number of seconds, at least 0 (got {margin!r})")
        self._fetch = fetch
        self._afetch = afetch
        self._expires_at = expires_at
        self.margin = float(margin)
        self._clock = clock
        self._what = what
        self._lock = threading.Lock()
        self._value: T | None = None
        self._flight: Future[T] | None = None
        self._retry_at = -math.inf

    def __repr__(self) -> str:
        return f"Refresher({self._what}, margin={self.margin:g})"

    def get(self) -> T:
        """The current value, renewed first when needed (blocking)."""
        while True:
            value, flight, lead = self._plan()
            if flight is None:
                return cast(T, value)  # no flight: _plan returned the value to use
            if lead:
                break
            try:
                return flight.result()
            except _Abandoned:
                continue
        try:
            fresh = self._fetch()
        except BaseException as error:
            return self._failed(flight, error)
        return self._succeeded(flight, fresh)

    async def aget(self) -> T:
        """The current value, renewed first when needed (awaiting; other tasks keep running)."""
        while True:
            value, flight, lead = self._plan()
            if flight is None:
                return cast(T, value)  # no flight: _plan returned the value to use
            if lead:
                break
            try:
                return await asyncio.wrap_future(flight)
            except _Abandoned:
                continue
        try:
            fresh = await self._afetch()
        except BaseException as error:
            return self._failed(flight, error)
        return self._succeeded(flight, fresh)

    def invalidate(self, refused: Callable[[T], bool]) -> None:
        """Forget the cached value if ``refused(value)`` (a server refused it), so the next caller renews it."""
        with self._lock:
            if self._value is not None and refused(self._value):
                self._value = None
                self._retry_at = -math.inf

    def _plan(self) -> tuple[T | None, Future[T] | None, bool]:
        """(the value to use now, or the flight to wait for, and whether this caller runs that flight)."""
        now = self._clock()
        with self._lock:
            value = self._value
            left = -math.inf if value is None else self._left(value, now)
            if left > max(self.margin, _LAST_SECONDS):
                return value, None, False
            usable = left > _LAST_SECONDS
            if usable and (self._flight is not None or now < self._retry_at):
                return value, None, False
            if self._flight is not None:
                return None, self._flight, False
            flight: Future[T] = Future()
            flight.set_running_or_notify_cancel()  # a cancelled waiter's wrap_future cannot cancel it for others
            self._flight = flight
            return None, flight, True

    def _left(self, value: T, now: float) -> float:
        expires = self._expires_at(value)
        return math.inf if expires is None else expires - now

    def _succeeded(self, flight: Future[T], fresh: T) -> T:
        with self._lock:
            self._value = fresh
            self._flight = None
            self._retry_at = -math.inf
        flight.set_result(fresh)
        return fresh

    def _failed(self, flight: Future[T], error: BaseException) -> T:
        if not isinstance(error, Exception):  # cancelled or interrupted: a waiter takes over
            with self._lock:
                self._flight = None
            flight.set_exception(_Abandoned())
            raise error
        now = self._clock()
        with self._lock:
            self._flight = None
            value = self._value
            left = -math.inf if value is None else self._left(value, now)
            if left > _LAST_SECONDS:
                self._retry_at = now + _RETRY_AFTER
        flight.set_exception(error)
        if value is None or left <= _LAST_SECONDS:
            raise error
        # The error names the token service's answer (code and message), never a secret.
        logger.warning("renewing %s failed (%s: %s); the cached value stays in use (it expires at %s)", self._what,
                       type(error).__name__, error, _iso(now + left))
        return value


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
