"""Pytest fixtures running a Sentinel-managed primary and replica on loopback ports, for failover tests.

``redis_sentinel`` (session): a ``SentinelTopology``: two redis-servers (one primary, one replica) and one
Sentinel (quorum 1) watching them as service ``SERVICE``, with ``.url``, ``.primary()``, ``.replica()`` and
``.failover()``. ``redis_sentinel_url`` (function): the URL, once the
topology is whole again (every process running, a primary with an up-to-date replica that Sentinel could
promote) and empty. Sentinel's timers are shortened (``SENTINEL DEBUG``) so a failover, and a demoted or
restarted primary's return as a replica, take about a second instead of ten.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from _redis_server import RedisServer, free_ports, redis_binary

__all__ = ["SERVICE", "SentinelTopology", "redis_sentinel", "redis_sentinel_url"]

SERVICE = "iam-test"
_READY_TIMEOUT = 30.0
# A failover is always asked for (SENTINEL FAILOVER), never waited for: Sentinel takes a primary for down only after
# this long without an answer, so a busy machine never has a new primary voted out and an empty one promoted.
_DOWN_AFTER_MS = 5000
# How often Sentinel reads each server's INFO and announces itself: a restarted or demoted primary becomes a replica
# 4 announcement periods after Sentinel sees it again. A replica is promoted only if its INFO is younger than 3 INFO
# periods, and one whose primary is gone is read once a second whatever is set here: hence not below 400 ms.
_SENTINEL_TIMERS = ("info-period", 400, "publish-period", 200)


class SentinelTopology:
    """A primary, its replica and a Sentinel. Which server is primary changes with each failover."""

    def __init__(self, binary: str, directory: Path) -> None:
        first, second, sentinel = free_ports(3)
        self.servers = [self._server(binary, directory, port) for port in (first, second)]
        config = directory / "sentinel.conf"
        config.write_text(
            f"sentinel monitor {SERVICE} 127.0.0.1 {first} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} {_DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
            # Known from the start, so the replica can be promoted without waiting for a first look at the primary.
            f"sentinel known-replica {SERVICE} 127.0.0.1 {second}\n"
        )
        self.sentinel = RedisServer(binary, sentinel, config=config, directory=directory, extra=["--sentinel"])
        self.url = f"redis+sentinel://127.0.0.1:{sentinel}/{SERVICE}"

    @staticmethod
    def _server(binary: str, directory: Path, port: int) -> RedisServer:
        home = directory / str(port)
        home.mkdir()
        # A replica's first copy starts at once, not after the default 5 s wait for more replicas.
        return RedisServer(binary, port, directory=home, extra=["--repl-diskless-sync-delay", "0"])

    def start(self) -> None:
        """Start both servers and make the second a replica of the first, then (once it has its copy) the Sentinel.
        A server restarted later starts as a primary, and Sentinel turns it into a replica."""
        first, second = self.servers
        first.start()
        second.start()
        with self._client(second) as client:
            client.replicaof("127.0.0.1", first.port)
        self._wait(lambda: self._info(second).get("master_link_status") == "up", "the replica did not sync")
        self.sentinel.start()
        with self._client(self.sentinel) as client:
            try:
                client.execute_command("SENTINEL DEBUG", *_SENTINEL_TIMERS)
            except redis.ResponseError:
                pass  # a Redis before 7.0: the same steps, at Sentinel's default pace
        self.wait_until_whole()

    def primary(self) -> RedisServer:
        """The server Sentinel names as primary now."""
        with self._client(self.sentinel) as client:
            _, port = client.sentinel_get_master_addr_by_name(SERVICE)
        return next(server for server in self.servers if server.port == int(port))

    def replica(self) -> RedisServer:
        """The other server."""
        primary = self.primary()
        return next(server for server in self.servers if server is not primary)

    def failover(self) -> RedisServer:
        """Have Sentinel promote the replica now (SENTINEL FAILOVER), whether the primary runs, is paused or was
        killed; return the old primary once Sentinel names the new one."""
        old = self.primary()
        with self._client(self.sentinel) as client:
            client.execute_command("SENTINEL FAILOVER", SERVICE)
        self._wait(lambda: self.primary() is not old, "Sentinel did not switch to the replica")
        return old

    def wait_until_whole(self) -> None:
        """Start whatever is not running, resume whatever is paused, and return once the primary has an up-to-date
        replica that Sentinel sees as healthy and no failover is under way."""
        for server in (*self.servers, self.sentinel):
            server.resume()
            server.start()
        self._wait(self._whole, "the Sentinel topology did not come back whole")

    def _whole(self) -> bool:
        with self._client(self.sentinel) as client:
            master = client.sentinel_master(SERVICE)
            replicas = client.sentinel_slaves(SERVICE)
        primary, replica = self.primary(), self.replica()
        copying = self._info(replica)
        return (
            _flags(master) == {"master"}
            and any(int(entry["port"]) == replica.port and _flags(entry) == {"slave"} for entry in replicas)
            and self._info(primary).get("role") == "master"
            and copying.get("master_port") == primary.port
            and copying.get("master_link_status") == "up"
        )

    def flush(self) -> None:
        """Make the topology whole, then delete every key (on the primary, and so on the replica)."""
        self.wait_until_whole()
        with self._client(self.primary()) as client:
            client.flushall()
            client.wait(1, 5000)

    def stop(self) -> None:
        for server in (self.sentinel, *self.servers):
            server.stop()

    @staticmethod
    def _client(server: RedisServer) -> redis.Redis:
        return redis.Redis(port=server.port, socket_timeout=2.0, socket_connect_timeout=2.0)

    def _info(self, server: RedisServer) -> dict[str, object]:
        try:
            with self._client(server) as client:
                info: dict[str, object] = client.info("replication")
                return info
        except redis.RedisError:
            return {}

    @staticmethod
    def _wait(condition: Callable[[], bool], failure: str) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT
        while True:
            try:
                if condition():
                    return
            except redis.RedisError:
                pass  # a server between two roles, or not accepting connections yet
            if time.monotonic() > deadline:
                raise RuntimeError(failure)
            time.sleep(0.05)


def _flags(state: dict[str, object]) -> set[str]:
    """Sentinel's flags for an instance (redis-py gives a set or the comma-separated text, by version)."""
    flags = state["flags"]
    return set(flags) if isinstance(flags, (set, frozenset)) else set(str(flags).split(","))


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelTopology]:
    binary = redis_binary()
    with tempfile.TemporaryDirectory(prefix="iam-redis-sentinel-") as directory:
        topology = SentinelTopology(binary, Path(directory))
        try:
            topology.start()
            yield topology
        finally:
            topology.stop()


@pytest.fixture
def redis_sentinel_url(redis_sentinel: SentinelTopology) -> str:
    redis_sentinel.flush()
    return redis_sentinel.url
