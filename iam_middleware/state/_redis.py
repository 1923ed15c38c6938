"""Redis-backed shared state: one ``StateStore`` seen by every process and machine of a deployment.

One server, a Sentinel-managed primary or a Redis Cluster (URL forms: ``_redis_url``). Layout under ``prefix``
(default ``iam:``)::

    <prefix>k:<key>      claim / advance / incr / get / set / delete
    <prefix>v:<name>     version counters (INCR)
    <prefix>versions     pub/sub channel; each bump publishes ``<name>:<new version>``

Keys and versions live in separate namespaces, as in ``MemoryStore``. Every method is one atomic command on one
key (a cluster routes each by its slot) in one round trip. Any Redis failure becomes ``RedisUnavailableError`` (a
``StateUnavailableError``), so callers fail closed; the message names the operation and the server, never its
credentials. With ``wait_replicas``, each command is followed on the same connection by ``WAIT``, and its answer
counts only if that many replicas hold everything the connection wrote: a single-use record the store reported
stored survives a failover, and a primary that lost its replicas (replaced, or cut off) answers nothing.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import cast

import redis
from redis.exceptions import RedisClusterException, RedisError

from .._exceptions import ConfigurationError
from ._protocol import StateUnavailableError
from ._redis_clients import Client, check_options, close, connect, describe, is_sentinel_managed
from ._redis_url import MAX_WAIT_REPLICAS, WAIT_OPTION, parse_redis_url

__all__ = ["RedisStore", "RedisUnavailableError"]

# What redis-py raises when a server or a cluster cannot answer (a cluster client's own errors are not RedisErrors).
_ERRORS = (RedisError, RedisClusterException)
# How long a new subscription waits for its confirmation; how long the pub/sub thread blocks per read (bounds
# how long ``close()`` waits); how long it waits before reconnecting after an error (spares a down server).
_CONFIRM_TIMEOUT = 1.0
_LISTEN_TIMEOUT = 0.1
_RECONNECT_DELAY = 0.5
# Lua numbers are doubles: integers beyond 2**53 would compare inexactly, which for a replay guard is unsafe.
_MAX_EXACT_INT = 2**53

# A counter created at 0 with its expiry, then incremented: the expiry is set only by the call that creates it.
_INCR_LUA = """
redis.call('SET', KEYS[1], 0, 'NX', 'PX', ARGV[1])
return redis.call('INCR', KEYS[1])
"""

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
    """Redis did not answer ``operation`` (down, restarting, timed out, refusing the command, or too few of its
    replicas acknowledged)."""

    def __init__(self, operation: str, location: str, cause: Exception | str) -> None:
        self.operation = operation
        self.location = location
        detail = cause if isinstance(cause, str) else type(cause).__name__
        super().__init__(
            f"Redis at {location} did not answer {operation} ({detail}); "
            "requests that need shared state are refused until it is reachable again"
        )


def _ttl_ms(ttl: float) -> int:
    """A TTL in whole milliseconds (at least 1); rejects TTLs that would never or always expire."""
    if not math.isfinite(ttl) or ttl <= 0:
        raise ValueError(f"ttl must be a positive, finite number of seconds (got {ttl!r})")
    return max(1, math.ceil(ttl * 1000))


class _VersionListener:
    """A daemon thread relaying version announcements from the pub/sub channel to a callback.

    The subscription is confirmed before the constructor returns (when the server is up), so a bump
    made afterwards is never missed for want of a subscription. On any error the thread drops the
    subscription, waits and makes a new one: after a failover the channel is on another server (Sentinel
    says which when the new connection is made), and a cluster may serve it from another node. Messages
    sent while disconnected are lost, which is why ``VersionWatcher`` also polls.
    """

    def __init__(
        self, pubsub: Callable[[], redis.client.PubSub], channel: str, callback: Callable[[str, int], None]
    ) -> None:
        self._new_pubsub = pubsub
        self._pubsub: redis.client.PubSub | None = None
        self._callback = callback
        self._stopped = threading.Event()
        self._channel = channel
        self._subscribe()
        self._thread = threading.Thread(target=self._run, name=f"iam-middleware {channel}", daemon=True)
        self._thread.start()

    def _subscribe(self) -> bool:
        try:
            self._pubsub = self._new_pubsub()
            self._pubsub.subscribe(self._channel)
            self._pubsub.get_message(timeout=_CONFIRM_TIMEOUT)  # the "subscribe" confirmation
            return True
        except _ERRORS:
            self._drop()
            return False

    def _drop(self) -> None:
        if self._pubsub is not None:
            self._pubsub.close()
            self._pubsub = None

    def _run(self) -> None:
        while not self._stopped.is_set():
            if self._pubsub is None and not self._subscribe():
                self._stopped.wait(_RECONNECT_DELAY)
                continue
            try:
                message = cast("redis.client.PubSub", self._pubsub).get_message(timeout=_LISTEN_TIMEOUT)
            except _ERRORS:
                self._drop()
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
        self._drop()


class RedisStore:
    """``StateStore`` on Redis (redis-py, sync client), shared by every process pointing at the same server.

    ``client_or_url`` is a URL (``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://``,
    ``redis+cluster://``; docs/operations.md), or a ready ``redis.Redis`` (created with
    ``decode_responses=False``; its own timeouts and retry policy then apply), such as a Sentinel's
    ``master_for``. From a URL, the client gets short timeouts and one immediate retry on connection
    errors only: a stale connection after a restart or a failover is transparently replaced, while a
    timeout is never retried (a retried write could apply twice, and a slow server must not make
    callers wait twice). The client is made on first use (a cluster client reads the cluster's layout
    then), so a Redis that is down at start-up is a refusal, not a crash.

    ``wait_replicas`` (default: the URL's ``wait_replicas``; for a ready client, 1 if Sentinel manages it,
    else 0): how many replicas must hold everything a connection wrote, within ``wait_timeout`` seconds,
    before an answer counts; fewer is ``RedisUnavailableError``. Not available on a cluster.
    """

    def __init__(
        self,
        client_or_url: str | redis.Redis,
        *,
        prefix: str = "iam:",
        socket_timeout: float = 0.25,
        connect_timeout: float = 0.25,
        wait_replicas: int | None = None,
        wait_timeout: float = 0.2,
    ) -> None:
        timeout: float | None
        if isinstance(client_or_url, str):
            try:
                target = parse_redis_url(client_or_url)
                check_options(target)
            except ValueError as exc:
                raise ConfigurationError(f"RedisStore: the Redis URL {exc}") from None

            def connect_now() -> Client:
                return connect(target, socket_timeout=socket_timeout, connect_timeout=connect_timeout)

            self._connect = connect_now
            self._location = target.location
            self._owns_client = True
            cluster = target.topology == "cluster"
            default_wait, timeout = target.wait_replicas, socket_timeout
        else:
            given = client_or_url
            kwargs = given.get_connection_kwargs()
            if kwargs.get("decode_responses"):
                raise ConfigurationError("RedisStore needs a redis.Redis client created with decode_responses=False")
            self._connect = lambda: given
            self._location = describe(given)
            self._owns_client = False
            cluster = False
            default_wait, timeout = int(is_sentinel_managed(given)), kwargs.get("socket_timeout")
        self._wait_replicas = default_wait if wait_replicas is None else wait_replicas
        self._wait_timeout = wait_timeout
        self._check_wait(cluster, timeout)
        self._client: Client | None = None
        self._connect_lock = threading.Lock()
        self._prefix = prefix
        self._channel = f"{prefix}versions"
        #: Called with the operation's name (``get``, ``incr``...) for each one that fails (metrics: docs/metrics.md).
        self.on_failure: list[Callable[[str], None]] = []

    def _check_wait(self, cluster: bool, socket_timeout: float | None) -> None:
        if isinstance(self._wait_replicas, bool) or not 0 <= self._wait_replicas <= MAX_WAIT_REPLICAS:
            raise ConfigurationError(f"RedisStore: {WAIT_OPTION} must be a whole number from 0 to {MAX_WAIT_REPLICAS}")
        if not self._wait_replicas:
            return
        if cluster:
            raise ConfigurationError(f"RedisStore: {WAIT_OPTION} is not available with a Redis Cluster")
        # The WAIT must end before the socket gives up on its answer, or every slow acknowledgement would also
        # cost the connection.
        if not (0 < self._wait_timeout and (socket_timeout is None or self._wait_timeout < socket_timeout)):
            raise ConfigurationError(
                f"RedisStore: wait_timeout must be positive and shorter than socket_timeout ({socket_timeout!r})"
            )

    def __repr__(self) -> str:
        return f"RedisStore({self._location}, prefix={self._prefix!r})"

    def _connected(self) -> Client:
        client = self._client
        if client is None:
            with self._connect_lock:
                if self._client is None:
                    self._client = self._connect()
                client = self._client
        return client

    def _run(self, operation: str, command: Callable[[Client], object]) -> object:
        """The reply to ``command`` (one command, its reply returned unchanged), once ``wait_replicas`` replicas
        hold everything this connection wrote."""
        try:
            client = self._connected()
            if not self._wait_replicas:
                return command(client)
            # Never a cluster here (refused in __init__): one server, or a primary Sentinel names.
            primary = cast(redis.Redis, client)
            with primary.pipeline(transaction=False) as pipe:
                command(pipe)
                pipe.wait(self._wait_replicas, max(1, math.ceil(self._wait_timeout * 1000)))
                reply, acknowledged = pipe.execute()
        except _ERRORS as exc:
            raise self._failed(operation, exc) from exc
        if acknowledged < self._wait_replicas:
            # This primary lost its replicas, or one of them replaced it (a failover): drop the idle connections,
            # so the next call asks Sentinel again where the primary is.
            primary.connection_pool.disconnect(inuse_connections=False)
            raise self._failed(
                operation,
                f"{acknowledged} of {self._wait_replicas} replicas acknowledged within {self._wait_timeout:g}s",
            )
        return reply

    def _failed(self, operation: str, cause: Exception | str) -> RedisUnavailableError:
        """The error of a failed operation, once reported to ``on_failure``."""
        for hook in self.on_failure:
            hook(operation)
        return RedisUnavailableError(operation, self._location, cause)

    def _key(self, key: str) -> str:
        return f"{self._prefix}k:{key}"

    def _version_key(self, name: str) -> str:
        return f"{self._prefix}v:{name}"

    def claim(self, key: str, ttl: float) -> bool:
        """Set ``key`` if absent (SET NX PX). True if this call set it."""
        ms = _ttl_ms(ttl)
        return bool(self._run("claim", lambda c: c.set(self._key(key), b"1", nx=True, px=ms)))

    def advance(self, key: str, value: int, ttl: float) -> bool:
        """Store ``value`` if greater than the stored integer (Lua compare-and-set). True if stored."""
        if not -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
            raise ValueError(f"advance value must be within ±2**53 (got {value!r})")
        ms = _ttl_ms(ttl)
        return bool(self._run("advance", lambda c: c.eval(_ADVANCE_LUA, 1, self._key(key), value, ms)))

    def incr(self, key: str, ttl: float) -> int:
        """Increment a counter; the expiry is set only when this call creates it (Lua: SET NX PX, then INCR)."""
        ms = _ttl_ms(ttl)
        return cast(int, self._run("incr", lambda c: c.eval(_INCR_LUA, 1, self._key(key), ms)))

    def get(self, key: str) -> bytes | None:
        """The stored bytes, or ``None`` if absent or expired."""
        # Bytes, not str: the client never decodes responses (checked in __init__).
        return cast("bytes | None", self._run("get", lambda c: c.get(self._key(key))))

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value``, replacing any value and expiry; expires after ``ttl`` seconds, or never if ``None``."""
        ms = None if ttl is None else _ttl_ms(ttl)
        self._run("set", lambda c: c.set(self._key(key), value, px=ms))

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        self._run("delete", lambda c: c.delete(self._key(key)))

    def version(self, name: str) -> int:
        """The current value of a version counter (0 if never bumped)."""
        value = cast("bytes | None", self._run("version", lambda c: c.get(self._version_key(name))))
        return 0 if value is None else int(value)

    def bump(self, name: str) -> int:
        """Increment a version counter and publish ``<name>:<version>`` on ``<prefix>versions``, atomically."""
        version_key = self._version_key(name)
        return cast(int, self._run("bump", lambda c: c.eval(_BUMP_LUA, 1, version_key, self._channel, name)))

    def subscribe_versions(self, callback: Callable[[str, int], None]) -> _VersionListener:
        """Call ``callback(name, version)`` from a daemon thread for each bump announced; ``close()`` the result."""
        return _VersionListener(lambda: self._connected().pubsub(), self._channel, callback)

    def close(self) -> None:
        """Release the connections, if this store created the client."""
        if self._owns_client and self._client is not None:
            close(self._client)
