"""Pytest fixtures running a real Redis Cluster of three primaries (no replicas) on loopback ports.

``redis_cluster`` (session): the nodes, with ``.url`` (``redis+cluster://`` naming all three) and ``.nodes``.
``redis_cluster_url`` (function): that URL, after making sure every node runs and is empty. The slots are
assigned and the nodes introduced by hand (CLUSTER ADDSLOTS, CLUSTER MEET), so nothing but redis-server is needed.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from _redis_server import RedisServer, free_ports, redis_binary

__all__ = ["RedisClusterNodes", "redis_cluster", "redis_cluster_url"]

_SLOTS = 16384
_READY_TIMEOUT = 30.0
# Generous for loopback, so a busy machine never has a node voted out; it also sets how long a new cluster waits
# before it reports itself "ok" (at least 0.5 s), hence not larger.
_NODE_TIMEOUT_MS = 2000


class RedisClusterNodes:
    """Three cluster-mode redis-servers, each serving a third of the slots."""

    def __init__(self, binary: str, directory: Path) -> None:
        ports = free_ports(6)  # three for clients, three for the cluster bus
        self.nodes: list[RedisServer] = []
        self._bus_ports = ports[3:]
        for port, bus_port in zip(ports[:3], self._bus_ports, strict=True):
            home = directory / str(port)
            home.mkdir()
            self.nodes.append(RedisServer(binary, port, directory=home, extra=[
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", str(bus_port),
                "--cluster-node-timeout", str(_NODE_TIMEOUT_MS),
            ]))
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
        self._formed = False

    def start(self) -> None:
        """Start every node; the first time, form the cluster. Returns once every node sees all slots served."""
        for node in self.nodes:
            node.start()
        if not self._formed:
            self._form()
        self._wait_until_ok()

    def _form(self) -> None:
        clients = [redis.Redis(port=node.port) for node in self.nodes]
        try:
            share = _SLOTS // len(clients)
            for index, client in enumerate(clients):
                last = _SLOTS if index == len(clients) - 1 else (index + 1) * share
                client.execute_command("CLUSTER ADDSLOTS", *range(index * share, last))
            for node, bus_port in zip(self.nodes[1:], self._bus_ports[1:], strict=True):
                clients[0].execute_command("CLUSTER MEET", "127.0.0.1", node.port, bus_port)
        finally:
            for client in clients:
                client.close()
        self._formed = True

    def _wait_until_ok(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT
        for node in self.nodes:
            client = redis.Redis(port=node.port, socket_timeout=1.0)
            try:
                while True:
                    info = client.cluster("INFO")
                    if info["cluster_state"] == "ok" and int(info["cluster_known_nodes"]) == len(self.nodes):
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the test cluster did not form: {info}")
                    time.sleep(0.05)
            finally:
                client.close()

    def flush(self) -> None:
        """Make sure every node runs, then delete every key of every node."""
        self.start()
        for node in self.nodes:
            client = redis.Redis(port=node.port)
            try:
                client.flushall()
            finally:
                client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterNodes]:
    binary = redis_binary()
    with tempfile.TemporaryDirectory(prefix="iam-redis-cluster-") as directory:
        cluster = RedisClusterNodes(binary, Path(directory))
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture
def redis_cluster_url(redis_cluster: RedisClusterNodes) -> str:
    redis_cluster.flush()
    return redis_cluster.url
