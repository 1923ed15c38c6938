"""VersionWatcher: prompt through pub/sub, correct through polling, closed once too stale.

Times are the ``now`` the tests pass, so which reads hit the store is deterministic; only pub/sub
delivery and server restarts are waited for, in bounded loops.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from _redis_server import RedisServer

from iam_middleware._exceptions import ConfigurationError
from iam_middleware.state import MemoryStore, StateUnavailableError
from iam_middleware.state._redis import RedisStore
from iam_middleware.state._watch import StaleVersionError, VersionWatcher

T0 = 1_700_000_000.0
NEVER = 3600.0  # a poll interval no test reaches: whatever changes the copy then is pub/sub


@pytest.fixture
def stores(redis_url: str) -> Iterator[Callable[[], RedisStore]]:
    """Makes RedisStores on the test server (each its own client, as separate processes would have)."""
    made: list[RedisStore] = []

    def make() -> RedisStore:
        made.append(RedisStore(redis_url))
        return made[-1]

    yield make
    for store in made:
        store.close()


def wait_for(check: Callable[[], bool], *, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def listener_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("iam-middleware ")]


# polling (any store)


def test_memory_store_changes_are_seen_once_the_copy_is_poll_interval_old() -> None:
    store = MemoryStore()
    with VersionWatcher(store, poll_interval=1.0) as watcher:
        assert watcher.current("policies", T0) == 0
        store.bump("policies")
        assert watcher.current("policies", T0 + 0.999) == 0
        assert watcher.current("policies", T0 + 1.0) == 1


def test_each_counter_is_tracked_on_its_own() -> None:
    store = MemoryStore()
    store.bump("principals")
    with VersionWatcher(store) as watcher:
        assert watcher.current("policies", T0) == 0
        assert watcher.current("principals", T0) == 1


def test_a_lost_announcement_is_caught_up_by_polling(stores: Callable[[], RedisStore], redis_url: str) -> None:
    with VersionWatcher(stores(), poll_interval=0.5) as watcher:
        assert watcher.current("policies", T0) == 0
        raw = redis.Redis.from_url(redis_url)
        raw.incr("iam:v:policies")  # a bump whose announcement never comes
        raw.close()
        assert watcher.current("policies", T0 + 0.49) == 0
        assert watcher.current("policies", T0 + 0.5) == 1


# pub/sub


def test_a_bump_elsewhere_is_seen_without_waiting_for_a_poll(stores: Callable[[], RedisStore]) -> None:
    with VersionWatcher(stores(), poll_interval=NEVER, max_staleness=NEVER) as watcher:
        assert watcher.current("policies", T0) == 0
        other_process = stores()
        assert other_process.bump("policies") == 1
        assert wait_for(lambda: watcher.current("policies", T0) == 1)
        assert watcher.current("principals", T0) == 0
        other_process.bump("principals")
        other_process.bump("policies")
        assert wait_for(lambda: watcher.current("policies", T0) == 2)
        assert watcher.current("principals", T0) == 1  # announced before the policies bump just seen


def test_announcements_resume_after_a_restart(redis_server: RedisServer, stores: Callable[[], RedisStore]) -> None:
    with VersionWatcher(stores(), poll_interval=NEVER, max_staleness=NEVER) as watcher:
        assert watcher.current("policies", T0) == 0
        redis_server.stop()
        redis_server.start()
        other_process = stores()

        def bump_is_announced() -> bool:
            version = other_process.bump("policies")
            return wait_for(lambda: watcher.current("policies", T0) == version, seconds=0.2)

        assert wait_for(bump_is_announced)


def test_malformed_announcements_are_ignored(stores: Callable[[], RedisStore], redis_url: str) -> None:
    with VersionWatcher(stores(), poll_interval=NEVER, max_staleness=NEVER) as watcher:
        assert watcher.current("policies", T0) == 0
        raw = redis.Redis.from_url(redis_url)
        for junk in (b"policies", b"policies:", b":7", b"policies:\xc2\xb2", b"policies:-3", b"\xff\xfe:x"):
            raw.publish("iam:versions", junk)
        raw.close()
        stores().bump("policies")  # announced after the junk: seen only if the listener survived it
        assert wait_for(lambda: watcher.current("policies", T0) == 1)


def test_close_stops_the_listener_thread(stores: Callable[[], RedisStore]) -> None:
    before = len(listener_threads())
    watcher = VersionWatcher(stores())
    assert len(listener_threads()) == before + 1
    watcher.close()
    assert len(listener_threads()) == before
    watcher.close()  # idempotent


# staleness


def test_a_stale_copy_is_served_until_max_staleness_then_refused(
    redis_server: RedisServer, stores: Callable[[], RedisStore]
) -> None:
    with VersionWatcher(stores(), poll_interval=1.0, max_staleness=3.0) as watcher:
        assert watcher.current("policies", T0) == 0
        redis_server.stop()
        try:
            assert watcher.current("policies", T0 + 1.5) == 0  # re-read failed; last value still trusted
            assert watcher.current("policies", T0 + 2.9) == 0
            with pytest.raises(StaleVersionError) as info:
                watcher.current("policies", T0 + 3.0)
            assert isinstance(info.value, StateUnavailableError)
            assert info.value.age == pytest.approx(3.0)
            assert "'policies'" in str(info.value)
            with pytest.raises(StaleVersionError):
                watcher.current("policies", T0 + 3.5)  # refused at once: the next try is a poll_interval later
        finally:
            redis_server.start()


def test_a_counter_never_read_is_refused_while_the_store_is_down(
    redis_server: RedisServer, stores: Callable[[], RedisStore]
) -> None:
    with VersionWatcher(stores()) as watcher:
        redis_server.stop()
        try:
            with pytest.raises(StaleVersionError, match="could not be read") as info:
                watcher.current("policies", T0)
            assert info.value.age is None
        finally:
            redis_server.start()


def test_reads_recover_after_a_restart(redis_server: RedisServer, stores: Callable[[], RedisStore]) -> None:
    with VersionWatcher(stores(), poll_interval=1.0, max_staleness=2.0) as watcher:
        store = stores()
        store.bump("policies")
        assert watcher.current("policies", T0) == 1
        redis_server.stop()
        with pytest.raises(StaleVersionError):
            watcher.current("policies", T0 + 2.0)
        redis_server.start()
        store.bump("policies")  # the restarted server forgot everything: this is version 1 again
        now = T0 + 3.0
        for _ in range(50):
            try:
                assert watcher.current("policies", now) == 1
                break
            except StaleVersionError:
                now += 1.0
        else:
            pytest.fail("the watcher did not recover")


def test_a_counter_that_went_back_is_reported_as_is(
    redis_server: RedisServer, stores: Callable[[], RedisStore]
) -> None:
    store = stores()
    for _ in range(3):
        store.bump("policies")
    with VersionWatcher(stores(), poll_interval=1.0) as watcher:
        assert watcher.current("policies", T0) == 3
        redis_server.stop()
        redis_server.start()  # no persistence: the counter is gone
        assert wait_for(lambda: store.version("policies") == 0)
        assert watcher.current("policies", T0 + 1.0) == 0


def test_a_watcher_made_while_redis_is_down_catches_up(
    redis_server: RedisServer, stores: Callable[[], RedisStore]
) -> None:
    store = stores()
    redis_server.stop()
    try:
        watcher = VersionWatcher(store, poll_interval=NEVER, max_staleness=NEVER)
    finally:
        redis_server.start()
    with watcher:
        assert watcher.current("policies", T0) == 0
        other_process = stores()

        def bump_is_announced() -> bool:
            version = other_process.bump("policies")
            return wait_for(lambda: watcher.current("policies", T0) == version, seconds=0.2)

        assert wait_for(bump_is_announced)


# configuration


@pytest.mark.parametrize(
    ("poll_interval", "max_staleness"),
    [(0.0, 5.0), (-1.0, 5.0), (6.0, 5.0), (math.nan, 5.0), (1.0, math.nan), (1.0, math.inf)],
)
def test_inconsistent_intervals_are_rejected(poll_interval: float, max_staleness: float) -> None:
    with pytest.raises(ConfigurationError, match="poll_interval"):
        VersionWatcher(MemoryStore(), poll_interval=poll_interval, max_staleness=max_staleness)
