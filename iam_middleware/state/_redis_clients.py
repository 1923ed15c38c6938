"""redis-py clients for each URL form (one server, Sentinel, Cluster) with the store's timeouts and retry policy."""

from __future__ import annotations

from typing import TypeAlias, cast

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import SSLConnection, parse_url
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from ._redis_url import RedisTarget

__all__ = ["Client", "check_options", "close", "connect", "describe", "is_sentinel_managed"]

Client: TypeAlias = "redis.Redis | RedisCluster"

# Seconds a pooled connection may sit idle before redis-py PINGs it on checkout; on the pub/sub connection it
# is also how often a silent (half-open) link is probed, so a lost subscription is noticed and re-made.
_HEALTH_CHECK_INTERVAL = 10


def check_options(target: RedisTarget) -> None:
    """``ValueError`` if redis-py cannot read the options of a one-server URL, now rather than at the first call
    (which would otherwise fail with an error that is no ``RedisError``)."""
    if target.topology == "server":
        parse_url(target.server_url)  # type: ignore[no-untyped-call]


def connect(target: RedisTarget, *, socket_timeout: float, connect_timeout: float) -> Client:
    """A client for ``target``. A cluster client reads the cluster's layout here; the others connect on first use."""
    # One immediate retry, on a lost connection only: a stale connection after a restart, or one to a primary that a
    # failover demoted (redis-py turns its READONLY answer into a lost connection), is replaced within the call. A
    # timeout is never retried: a retried write could apply twice, and a slow server must not make callers wait twice.
    retry = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
    if target.topology == "server":
        return redis.Redis.from_url(target.server_url, socket_timeout=socket_timeout,
                                    socket_connect_timeout=connect_timeout,
                                    health_check_interval=_HEALTH_CHECK_INTERVAL, retry=retry)
    if target.topology == "sentinel":
        # The Sentinels are asked without credentials (they have their own) and without retries: an unreachable
        # one is skipped for the next.
        sentinels = Sentinel(list(target.nodes), sentinel_kwargs={
            "socket_timeout": socket_timeout, "socket_connect_timeout": connect_timeout, "ssl": target.tls,
            "retry": Retry(NoBackoff(), 0),
        })
        return cast(redis.Redis, sentinels.master_for(
            target.service_name, db=target.db, username=target.username, password=target.password, ssl=target.tls,
            socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout,
            health_check_interval=_HEALTH_CHECK_INTERVAL, retry=retry,
        ))
    # redis-py's cluster client also retries once after a timeout, with a fresh map of the slots: a repeated claim
    # or advance then answers "already used" and a counter counts twice, so the retry can only refuse, never allow.
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],  # type: ignore[no-untyped-call]
        username=target.username,
        password=target.password, ssl=target.tls, socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout, health_check_interval=_HEALTH_CHECK_INTERVAL,
        retry=Retry(NoBackoff(), 1),
    )


def is_sentinel_managed(client: redis.Redis) -> bool:
    """Whether ``client`` reaches its primary through Sentinel (``Sentinel.master_for``)."""
    return isinstance(client.connection_pool, SentinelConnectionPool)


def describe(client: redis.Redis) -> str:
    """Where ``client`` points, as a URL with any username or password replaced by ``***``."""
    kwargs = client.get_connection_kwargs()
    credentials = "***@" if kwargs.get("username") or kwargs.get("password") else ""
    db = kwargs.get("db", 0)
    if "path" in kwargs:
        return f"unix://{credentials}{kwargs['path']}?db={db}"
    pool = client.connection_pool
    scheme = "rediss" if issubclass(pool.connection_class, SSLConnection) else "redis"
    if isinstance(pool, SentinelConnectionPool):
        sentinels = ",".join(f"{s.get_connection_kwargs().get('host')}:{s.get_connection_kwargs().get('port')}"
                             for s in pool.sentinel_manager.sentinels)
        return f"{scheme}+sentinel://{credentials}{sentinels}/{pool.service_name}/{db}"
    return f"{scheme}://{credentials}{kwargs.get('host')}:{kwargs.get('port')}/{db}"


def close(client: Client) -> None:
    """Release ``client``'s connections, and those to the Sentinels that locate its primary."""
    if isinstance(client, redis.Redis) and isinstance(client.connection_pool, SentinelConnectionPool):
        for sentinel in client.connection_pool.sentinel_manager.sentinels:
            sentinel.close()
    client.close()
