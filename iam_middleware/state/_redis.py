"""Redis-backed shared state: one ``StateStore`` seen by every process and machine of a deployment.

Layout under ``prefix`` (default ``iam:``)::

    <prefix>k:<key>      claim / advance / incr / get / set / delete
    <prefix>v:<name>     version counters (INCR)
    <prefix>versions     pub/sub channel; each bump publishes ``<name>:<new version>``

Keys and versions live in separate namespaces, as in ``MemoryStore``. Every method is one atomic
round trip. Any Redis failure becomes ``RedisUnavailableError`` (a ``StateUnavailableError``), so
callers fail closed; the message names the operation and the server, never its credentials.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

import redis
from redis.backoff import NoBackoff
from redis.connection import SSLConnection
from redis.exceptions import RedisError
from redis.retry import Retry

from .._exceptions import ConfigurationError
from ._protocol import StateUnavailableError

__all__ = ["RedisStore", "RedisUnavailableError"]

_T = TypeVar("_T")

# Seconds a pooled connection may sit idle before redis-py PINGs it on checkout; on the pub/sub connection it
# is also how often a silent (half-open) link is probed, so a lost subscription is noticed and re-made.
_HEALTH_CHECK_INTERVAL = 10
# How long a new subscription waits for its confirmation; how long the pub/sub thread blocks per read (bounds
# how long ``close()`` waits); how long it waits before reconnecting after an error (spares a down server).
_CONFIRM_TIMEOUT = 1.0
_LISTEN_TIMEOUT = 0.1
_RECONNECT_DELAY = 0.5
# Lua numbers are doubles: integers beyond 2**53 would compare inexactly, which for a replay guard is unsafe.
_MAX_EXACT_INT = 2**53

# Compare-and-set "greater than" with expiry. A stored non-number counts as absent, as in MemoryStore.
_ADVANCE_LUA = """
local current = tonumber(redis.call('GET', KEYS[1]))
if current and current >= tonumber(ARGV[1]) then
    return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# INCR and PUBLISH in one atomic step, so no bump is ever stored without being announced.
_BUMP_LUA = """
local version = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. ':' .. version)
return version
"""


class RedisUnavailableError(StateUnavailableError):
    """Redis did not answer ``operation`` (down, restarting, timed out, or refusing the command)."""

    def __init__(self, operation: str, location: str, cause: RedisError) -> None:
        self.operation = operation
        self.location = location
        super().__init__(
            f"Redis at {location} did not answer {operation} ({type(cause).__name__}); "
            "requests that need shared state are refused until it is reachable again"
        )


def _ttl_ms(ttl: float) -> int:
    """A TTL in whole milliseconds (at least 1); rejects TTLs that would never or always expire."""
    if not math.isfinite(ttl) or ttl <= 0:
        raise ValueError(f"ttl must be a positive, finite number of seconds (got {ttl!r})")
    return max(1, math.ceil(ttl * 1000))


def _location(client: redis.Redis) -> str:
    """Where ``client`` points, as a URL with any username or password replaced by ``***``."""
    kwargs = client.get_connection_kwargs()
    credentials = "***@" if kwargs.get("username") or kwargs.get("password") else ""
    db = kwargs.get("db", 0)
    if "path" in kwargs:
        return f"unix://{credentials}{kwargs['path']}?db={db}"
    scheme = "rediss" if issubclass(client.connection_pool.connection_class, SSLConnection) else "redis"
    return f"{scheme}://{credentials}{kwargs.get('host')}:{kwargs.get('port')}/{db}"


class _VersionListener:
    """A daemon thread relaying version announcements from the pub/sub channel to a callback.

    The subscription is confirmed before the constructor returns (when the server is up), so a bump
    made afterwards is never missed for want of a subscription. On any error the thread waits and
    reconnects; redis-py re-subscribes on reconnect. Messages sent while disconnected are lost, which
    is why ``VersionWatcher`` also polls.
    """

    def __init__(self, client: redis.Redis, channel: str, callback: Callable[[str, int], None]) -> None:
        self._callback = callback
        self._stopped = threading.Event()
        self._pubsub = client.pubsub()
        self._channel = channel
        try:
            self._pubsub.subscribe(channel)
            self._pubsub.get_message(timeout=_CONFIRM_TIMEOUT)  # the "subscribe" confirmation
            self._subscribed = True
        except RedisError:
            self._subscribed = False
        self._thread = threading.Thread(target=self._run, name=f"iam-middleware {channel}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                if not self._subscribed:
                    self._pubsub.subscribe(self._channel)
                    self._subscribed = True
                message = self._pubsub.get_message(timeout=_LISTEN_TIMEOUT)
            except RedisError:
                self._stopped.wait(_RECONNECT_DELAY)
                continue
            if message is not None and message["type"] == "message":
                self._dispatch(message["data"])

    def _dispatch(self, data: bytes) -> None:
        # Anyone who can PUBLISH may write here: a malformed message is dropped, never allowed to end the thread.
        name, _, version = data.decode("utf-8", "replace").rpartition(":")
        if name and version.isascii() and version.isdigit():
            self._callback(name, int(version))

    def close(self) -> None:
        """Stop the thread and drop the subscription."""
        self._stopped.set()
        self._thread.join()
        self._pubsub.close()


class RedisStore:
    """``StateStore`` on Redis (redis-py, sync client), shared by every process pointing at the same server.

    ``client_or_url`` is a ``redis://`` / ``rediss://`` / ``unix://`` URL, or a ready ``redis.Redis``
    (created with ``decode_responses=False``; its own timeouts and retry policy then apply). From a URL,
    the client gets short timeouts and one immediate retry on connection errors only: a stale connection
    after a server restart is transparently replaced, while a timeout is never retried (a retried write
    could apply twice, and a slow server must not make callers wait twice).
    """

    def __init__(
        self,
        client_or_url: str | redis.Redis,
        *,
        prefix: str = "iam:",
        socket_timeout: float = 0.25,
        connect_timeout: float = 0.25,
    ) -> None:
        if isinstance(client_or_url, str):
            self._client = redis.Redis.from_url(
                client_or_url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=connect_timeout,
                health_check_interval=_HEALTH_CHECK_INTERVAL,
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            )
            self._owns_client = True
        else:
            if client_or_url.get_connection_kwargs().get("decode_responses"):
                raise ConfigurationError("RedisStore needs a redis.Redis client created with decode_responses=False")
            self._client = client_or_url
            self._owns_client = False
        self._prefix = prefix
        self._channel = f"{prefix}versions"
        self._location = _location(self._client)
        self._advance = self._client.register_script(_ADVANCE_LUA)
        self._bump = self._client.register_script(_BUMP_LUA)

    def __repr__(self) -> str:
        return f"RedisStore({self._location}, prefix={self._prefix!r})"

    def _call(self, operation: str, command: Callable[[], _T]) -> _T:
        try:
            return command()
        except RedisError as exc:
            raise RedisUnavailableError(operation, self._location, exc) from exc

    def _key(self, key: str) -> str:
        return f"{self._prefix}k:{key}"

    def _version_key(self, name: str) -> str:
        return f"{self._prefix}v:{name}"

    def claim(self, key: str, ttl: float) -> bool:
        """Set ``key`` if absent (SET NX PX). True if this call set it."""
        ms = _ttl_ms(ttl)
        return bool(self._call("claim", lambda: self._client.set(self._key(key), b"1", nx=True, px=ms)))

    def advance(self, key: str, value: int, ttl: float) -> bool:
        """Store ``value`` if greater than the stored integer (Lua compare-and-set). True if stored."""
        if not -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
            raise ValueError(f"advance value must be within ±2**53 (got {value!r})")
        ms = _ttl_ms(ttl)
        return bool(self._call("advance", lambda: self._advance(keys=[self._key(key)], args=[value, ms])))

    def incr(self, key: str, ttl: float) -> int:
        """Increment a counter; the expiry is set only when this call creates it (SET NX PX + INCR in MULTI)."""
        ms = _ttl_ms(ttl)
        full_key = self._key(key)

        def transaction() -> Any:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.set(full_key, 0, nx=True, px=ms)
                pipe.incr(full_key)
                return pipe.execute()

        return int(self._call("incr", transaction)[1])

    def get(self, key: str) -> bytes | None:
        """The stored bytes, or ``None`` if absent or expired."""
        # Bytes, not str: the client never decodes responses (checked in __init__).
        return cast("bytes | None", self._call("get", lambda: self._client.get(self._key(key))))

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value``, replacing any value and expiry; expires after ``ttl`` seconds, or never if ``None``."""
        ms = None if ttl is None else _ttl_ms(ttl)
        self._call("set", lambda: self._client.set(self._key(key), value, px=ms))

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        self._call("delete", lambda: self._client.delete(self._key(key)))

    def version(self, name: str) -> int:
        """The current value of a version counter (0 if never bumped)."""
        value = self._call("version", lambda: self._client.get(self._version_key(name)))
        return 0 if value is None else int(value)

    def bump(self, name: str) -> int:
        """Increment a version counter and publish ``<name>:<version>`` on ``<prefix>versions``, atomically."""
        return int(self._call("bump", lambda: self._bump(keys=[self._version_key(name)], args=[self._channel, name])))

    def subscribe_versions(self, callback: Callable[[str, int], None]) -> _VersionListener:
        """Call ``callback(name, version)`` from a daemon thread for each bump announced; ``close()`` the result."""
        return _VersionListener(self._client, self._channel, callback)

    def close(self) -> None:
        """Release the connections, if this store created the client."""
        if self._owns_client:
            self._client.close()
