"""RedisStore on a real 3-node Redis Cluster (tests/_redis_cluster.py): the same keys and scripts, spread by slot.

The contract itself runs in test_contract.py (backend ``redis-cluster``); here, what only a cluster can show: the
keys really land on every node, and a bump announced by whichever node holds its counter reaches a subscriber
connected to another one.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import pytest
import redis
from _redis_cluster import RedisClusterNodes
from redis.cluster import RedisCluster

from iam_middleware.state import VersionWatcher
from iam_middleware.state._redis import RedisStore


@pytest.fixture
def store(redis_cluster_url: str) -> Iterator[RedisStore]:
    store = RedisStore(redis_cluster_url)
    try:
        yield store
    finally:
        store.close()


def keys_per_node(cluster: RedisClusterNodes) -> list[int]:
    counts = []
    for node in cluster.nodes:
        with redis.Redis(port=node.port) as client:
            counts.append(client.dbsize())
    return counts


def test_records_and_counters_are_spread_over_every_node(redis_cluster: RedisClusterNodes,
                                                         store: RedisStore) -> None:
    for number in range(30):
        assert store.claim(f"code-{number}", 60) is True
        assert store.advance(f"user-{number}", number, 60) is True
        assert store.incr(f"failures-{number}", 60) == 1
        assert store.bump(f"version-{number}") == 1
    assert all(count > 0 for count in keys_per_node(redis_cluster))
    assert store.claim("code-7", 60) is False
    assert store.advance("user-7", 7, 60) is False
    assert store.get("failures-7") == b"1"
    assert store.version("version-7") == 1


def test_a_bump_reaches_a_subscriber_whichever_node_holds_the_counter(redis_cluster: RedisClusterNodes,
                                                                      store: RedisStore) -> None:
    with RedisCluster(host="127.0.0.1", port=redis_cluster.nodes[0].port) as probe:
        names: dict[int, str] = {}
        for number in range(100):  # one counter name per node
            names.setdefault(probe.get_node_from_key(f"iam:v:name-{number}").port, f"name-{number}")
    assert len(names) == len(redis_cluster.nodes)
    announced: queue.Queue[tuple[str, int]] = queue.Queue()
    listener = store.subscribe_versions(lambda name, version: announced.put((name, version)))
    other = RedisStore(redis_cluster.url)  # the bumps come from "another process"
    try:
        for name in names.values():
            assert other.bump(name) == 1
        assert sorted(announced.get(timeout=10) for _ in names) == sorted((name, 1) for name in names.values())
    finally:
        listener.close()
        other.close()


def test_a_version_watcher_hears_of_a_bump_made_elsewhere_on_the_cluster(store: RedisStore,
                                                                          redis_cluster_url: str) -> None:
    other = RedisStore(redis_cluster_url)
    try:
        with VersionWatcher(store, poll_interval=60.0, max_staleness=120.0) as watcher:
            assert watcher.current("policies", 0.0) == 0
            bumped = other.bump("policies")
            # Read at "now" 1.0 s: the copy is fresh for 60 s, so only the announcement can change it.
            for _ in range(200):
                if watcher.current("policies", 1.0) == bumped:
                    break
                time.sleep(0.05)
            assert watcher.current("policies", 1.0) == bumped
    finally:
        other.close()
