"""RedisStore on a Sentinel-managed primary (tests/_redis_sentinel.py): failover keeps decisions correct.

While the primary is gone or being replaced every call is refused (never an allow); afterwards the same store
follows the new primary by itself, pub/sub included; and nothing single-use is used twice: with
``wait_replicas`` (1 by default with Sentinel) a claim or an advance counts only once the replica holds it, so
the replica Sentinel promotes has it. Outcomes are asserted, never timings: ``patient`` stores wait long for an
acknowledgement, for what must succeed; ``quick`` ones give up soon, for what must be refused anyway.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from _redis_sentinel import SERVICE, SentinelTopology
from _redis_server import free_port
from redis.sentinel import Sentinel

from iam_middleware.state import StateUnavailableError
from iam_middleware.state._redis import RedisStore, RedisUnavailableError

from ._redis_checks import assert_every_operation_is_refused, wait_until_usable

HOUR = 3600.0
QUICK = {"socket_timeout": 1.0, "wait_timeout": 0.1}  # for what must be refused anyway
PATIENT = {"socket_timeout": 10.0, "wait_timeout": 8.0}  # for what must succeed, however busy the machine


@pytest.fixture
def stores(redis_sentinel_url: str) -> Iterator[Callable[..., RedisStore]]:
    """Make stores on the Sentinel URL (closed at the end): ``stores()`` patient, ``stores(quick=True)`` quick."""
    made: list[RedisStore] = []

    def make(*, quick: bool = False, url: str = redis_sentinel_url) -> RedisStore:
        made.append(RedisStore(url, **(QUICK if quick else PATIENT)))
        return made[-1]

    try:
        yield make
    finally:
        for store in made:
            store.close()


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll ``condition``, for at most a generous 30 s."""
    for _ in range(600):
        if condition():
            return
        time.sleep(0.05)
    pytest.fail("the condition did not hold in time")


def a_bump_is_announced(store: RedisStore, announced: queue.Queue[tuple[str, int]]) -> bool:
    """Bump until an announcement of the latest bump arrives (bounded, generous)."""
    for _ in range(40):
        bumped = store.bump("policies")
        try:
            while announced.get(timeout=0.5) != ("policies", bumped):
                pass
            return True
        except queue.Empty:
            continue
    return False


def test_the_primary_is_found_through_sentinel_and_every_answer_waits_for_the_replica(
        redis_sentinel: SentinelTopology, stores: Callable[..., RedisStore]) -> None:
    store = stores()
    assert store.claim("code", HOUR) is True
    with redis.Redis(port=redis_sentinel.replica().port) as replica:
        assert replica.get("iam:k:code") == b"1"  # already there when claim returned: no replication race


def test_a_dead_sentinel_in_the_list_is_skipped(redis_sentinel: SentinelTopology,
                                                stores: Callable[..., RedisStore]) -> None:
    store = stores(url=f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{redis_sentinel.sentinel.port}/{SERVICE}")
    assert store.claim("code", HOUR) is True
    assert store.claim("code", HOUR) is False


def test_a_write_the_replica_does_not_acknowledge_is_refused_not_reported_stored(
        redis_sentinel: SentinelTopology, stores: Callable[..., RedisStore]) -> None:
    quick, patient = stores(quick=True), stores()
    wait_until_usable(patient)
    redis_sentinel.replica().pause()
    try:
        with pytest.raises(RedisUnavailableError, match=r"claim \(0 of 1 replicas acknowledged"):
            quick.claim("code", HOUR)
        assert_every_operation_is_refused(quick)  # reads too: what this connection wrote is not on the replica
    finally:
        redis_sentinel.replica().resume()
    wait_until_usable(patient)
    # The refused claim may still sit on the primary: the code was never honoured, and now reads as used. Both
    # answers refuse it: failing closed costs the user one code, never lets one through twice.
    assert patient.claim("code", HOUR) is False
    assert patient.claim("another code", HOUR) is True


def test_without_waiting_a_failover_forgets_a_claim(redis_sentinel: SentinelTopology,
                                                    stores: Callable[..., RedisStore]) -> None:
    """Why ``wait_replicas`` exists: acknowledged by the primary alone, a claim dies with it and the same code is
    accepted again once the replica takes over. The test above shows the same write refused when waited for."""
    store = stores(url=f"{redis_sentinel.url}?wait_replicas=0")
    wait_until_usable(store)
    old, replica = redis_sentinel.primary(), redis_sentinel.replica()
    replica.pause()
    with redis.Redis(port=old.port) as primary:
        # Cut the replica off (frozen, it cannot come back): a paused replica's socket would still take the write.
        primary.execute_command("CLIENT KILL TYPE replica")
    assert store.claim("code", HOUR) is True  # acknowledged by the primary alone
    old.kill()
    replica.resume()
    redis_sentinel.failover()
    redis_sentinel.wait_until_whole()
    wait_until_usable(store)
    assert store.claim("code", HOUR) is True  # used twice


def test_while_the_primary_is_down_every_call_is_refused_then_the_store_follows_the_new_one(
        redis_sentinel: SentinelTopology, stores: Callable[..., RedisStore]) -> None:
    patient, quick = stores(), stores(quick=True)
    assert patient.claim("code", HOUR) is True
    assert patient.advance("totp-step", 5, HOUR) is True
    announced: queue.Queue[tuple[str, int]] = queue.Queue()
    listener = patient.subscribe_versions(lambda name, version: announced.put((name, version)))
    try:
        old = redis_sentinel.primary()
        old.kill()
        assert_every_operation_is_refused(quick)  # Sentinel still names the dead primary
        redis_sentinel.failover()
        assert_every_operation_is_refused(quick)  # the new primary has no replica until the old one is back
        old.start()
        redis_sentinel.wait_until_whole()  # the old primary is now the new one's replica
        wait_until_usable(patient)
        assert redis_sentinel.primary() is not old
        assert patient.claim("code", HOUR) is False
        assert patient.advance("totp-step", 5, HOUR) is False
        assert patient.claim("another code", HOUR) is True
        # The subscription made before the crash is made again, on the new primary. (Announcements sent while it
        # is being made again are lost, as documented: VersionWatcher also polls.)
        assert a_bump_is_announced(patient, announced)
    finally:
        listener.close()


def test_a_failover_under_load_never_lets_an_acknowledged_claim_be_used_twice(
        redis_sentinel: SentinelTopology, stores: Callable[..., RedisStore]) -> None:
    """Sentinel replaces a running primary while claims and advances keep coming (the old primary keeps answering
    its clients until Sentinel turns it into a replica). Each call may be refused, never anything else; whatever was
    acknowledged before, during or after the switch is refused when tried again."""
    hammer, patient = stores(quick=True), stores()
    wait_until_usable(patient)
    acknowledged: list[str] = []
    steps: list[int] = []
    unexpected: list[BaseException] = []
    stop = threading.Event()

    def load() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            try:
                if hammer.claim(f"code-{number}", HOUR):
                    acknowledged.append(f"code-{number}")
                if hammer.advance("totp-step", number, HOUR):
                    steps.append(number)
            except StateUnavailableError:
                pass  # refused: the caller answers 503
            except BaseException as exc:
                unexpected.append(exc)
                return
            stop.wait(0.002)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        wait_for(lambda: len(acknowledged) >= 20 or bool(unexpected))
        old = redis_sentinel.failover()
        redis_sentinel.wait_until_whole()
        switched = len(acknowledged)
        wait_for(lambda: len(acknowledged) >= switched + 20 or bool(unexpected))  # and on against the new primary
    finally:
        stop.set()
        worker.join()
    assert not unexpected, unexpected
    assert redis_sentinel.primary() is not old
    assert [key for key in acknowledged if patient.claim(key, HOUR)] == []
    assert steps and patient.advance("totp-step", max(steps), HOUR) is False


def test_a_ready_sentinel_client_waits_for_one_replica_by_default(redis_sentinel: SentinelTopology,
                                                                  redis_sentinel_url: str) -> None:
    sentinel = Sentinel([("127.0.0.1", redis_sentinel.sentinel.port)])
    client = sentinel.master_for(SERVICE, socket_timeout=10.0)
    try:
        store = RedisStore(client, wait_timeout=8.0)
        assert repr(store) == f"RedisStore(redis+sentinel://127.0.0.1:{redis_sentinel.sentinel.port}/{SERVICE}/0, " \
                              "prefix='iam:')"
        redis_sentinel.replica().pause()
        try:
            with pytest.raises(RedisUnavailableError, match="0 of 1 replicas"):
                RedisStore(client, wait_timeout=0.2).claim("code", HOUR)
        finally:
            redis_sentinel.replica().resume()
        redis_sentinel.wait_until_whole()
        assert store.claim("another code", HOUR) is True
    finally:
        client.close()
        for each in sentinel.sentinels:
            each.close()
        for each in sentinel.sentinels:
            each.close()
