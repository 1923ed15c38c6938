"""The StateStore contract, run against every implementation: MemoryStore (fake clock) and RedisStore on a real
server, a real 3-node cluster and a real Sentinel-managed primary (every answer waited for by its replica).

Expiry on Redis uses short real TTLs and bounded polling; nothing asserts on speed. "Not yet expired" is
never checked against the wall clock: a long TTL is compared with a short-lived sentinel key instead.
"""

from __future__ import annotations

import abc
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iam_middleware.state import MemoryStore, StateStore
from iam_middleware.state._redis import RedisStore

_T = TypeVar("_T")

LONG_TTL = 3600.0
THREADS = 16


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Backend(abc.ABC):
    """A store under test, more handles on the same shared state, and a way to let a short TTL pass."""

    def __init__(self, name: str, store: StateStore, short_ttl: float, peer: Callable[[], StateStore]) -> None:
        self.name = name
        self.store = store
        self.short_ttl = short_ttl
        self._peer = peer

    def peer(self) -> StateStore:
        """Another handle on the same state (for Redis: another client, as another process would have)."""
        return self._peer()

    @abc.abstractmethod
    def eventually(self, check: Callable[[], bool]) -> bool:
        """Let ``short_ttl`` pass, then report whether ``check()`` holds (polling, bounded, on a real server)."""


class MemoryBackend(Backend):
    def __init__(self) -> None:
        self.clock = FakeClock()
        store = MemoryStore(clock=self.clock)
        super().__init__("memory", store, short_ttl=1.0, peer=lambda: store)

    def eventually(self, check: Callable[[], bool]) -> bool:
        self.clock.advance(self.short_ttl)
        return check()


class RedisBackend(Backend):
    def __init__(self, name: str, url: str, **options: float) -> None:
        self._url, self._options = url, options
        self._stores = [RedisStore(url, **options)]
        super().__init__(name, self._stores[0], short_ttl=0.2, peer=self._new_store)

    def _new_store(self) -> RedisStore:
        self._stores.append(RedisStore(self._url, **self._options))
        return self._stores[-1]

    def eventually(self, check: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + 10.0
        while not check():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self) -> None:
        for store in self._stores:
            store.close()


# Sentinel: generous timeouts, so a busy machine's slow acknowledgement is never taken for a missing replica.
_REDIS_BACKENDS: dict[str, tuple[str, dict[str, float]]] = {
    "redis": ("redis_url", {}),
    "redis-cluster": ("redis_cluster_url", {}),
    "redis-sentinel": ("redis_sentinel_url", {"socket_timeout": 5.0, "wait_timeout": 4.0}),
}


@pytest.fixture(params=["memory", *_REDIS_BACKENDS])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    fixture, options = _REDIS_BACKENDS[request.param]
    redis_backend = RedisBackend(request.param, request.getfixturevalue(fixture), **options)
    try:
        yield redis_backend
    finally:
        redis_backend.close()


@pytest.fixture
def store(backend: Backend) -> StateStore:
    return backend.store


def key() -> str:
    return f"test:{uuid.uuid4().hex}"


def let_short_ttl_pass(backend: Backend) -> None:
    """Return only once a key set now with ``short_ttl`` has expired: every earlier short TTL has, too."""
    sentinel = key()
    assert backend.store.claim(sentinel, backend.short_ttl)
    assert backend.eventually(lambda: backend.store.claim(sentinel, backend.short_ttl))


def run_together(count: int, task: Callable[[int], _T]) -> list[_T]:
    """Run ``task(i)`` for i in range(count) in threads released at the same instant; return the results."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = task(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_implements_the_protocol(store: StateStore) -> None:
    assert isinstance(store, StateStore)


# claim


def test_claim_first_use_wins(store: StateStore) -> None:
    k = key()
    assert store.claim(k, LONG_TTL) is True
    assert store.claim(k, LONG_TTL) is False
    assert store.claim(key(), LONG_TTL) is True


def test_claim_is_seen_by_every_handle(backend: Backend) -> None:
    k = key()
    assert backend.store.claim(k, LONG_TTL)
    assert backend.peer().claim(k, LONG_TTL) is False


def test_claim_can_be_made_again_once_expired(backend: Backend) -> None:
    k = key()
    assert backend.store.claim(k, backend.short_ttl)
    assert backend.eventually(lambda: backend.store.claim(k, LONG_TTL))
    assert backend.store.claim(k, LONG_TTL) is False


def test_claim_outlives_a_shorter_ttl(backend: Backend) -> None:
    k = key()
    assert backend.store.claim(k, LONG_TTL)
    let_short_ttl_pass(backend)
    assert backend.store.claim(k, LONG_TTL) is False


def test_claimed_key_reads_as_set_and_can_be_released(store: StateStore) -> None:
    k = key()
    store.claim(k, LONG_TTL)
    assert store.get(k) is not None
    store.delete(k)
    assert store.claim(k, LONG_TTL) is True


def test_only_one_of_many_concurrent_claims_wins(backend: Backend) -> None:
    handles = [backend.peer() for _ in range(THREADS)]
    for _ in range(5):  # several rounds: one round rarely hits the window of a non-atomic claim
        k = key()
        results = run_together(THREADS, lambda i, k=k: handles[i].claim(k, LONG_TTL))
        assert results.count(True) == 1
        assert results.count(False) == THREADS - 1


def test_a_memory_claim_is_atomic_even_when_the_check_is_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    """The interleaving forced: every claimer pauses after looking. A claim whose look and write are not one
    atomic step lets several claimers in here every time."""
    store = MemoryStore()
    look = store._live

    def slow_look(k: str) -> Any:
        found = look(k)
        time.sleep(0.002)
        return found

    monkeypatch.setattr(store, "_live", slow_look)
    k = key()
    results = run_together(8, lambda i: store.claim(k, LONG_TTL))
    assert results.count(True) == 1


# advance


def test_advance_accepts_only_strictly_greater_values(store: StateStore) -> None:
    k = key()
    assert store.advance(k, 10, LONG_TTL) is True
    assert store.advance(k, 10, LONG_TTL) is False
    assert store.advance(k, 9, LONG_TTL) is False
    assert store.advance(k, 11, LONG_TTL) is True
    assert store.advance(k, 10, LONG_TTL) is False
    assert store.get(k) == b"11"


def test_advance_on_an_absent_key_accepts_any_value(store: StateStore) -> None:
    assert store.advance(key(), -5, LONG_TTL) is True
    assert store.advance(key(), 0, LONG_TTL) is True


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.integers(min_value=-(2**40), max_value=2**40), min_size=1, max_size=20))
def test_advance_is_a_running_maximum(store: StateStore, values: list[int]) -> None:
    k = key()
    highest: int | None = None
    for value in values:
        accepted = store.advance(k, value, LONG_TTL)
        assert accepted == (highest is None or value > highest)
        if accepted:
            highest = value
    assert store.get(k) == str(highest).encode()


def test_advance_forgets_the_value_once_expired(backend: Backend) -> None:
    k = key()
    assert backend.store.advance(k, 100, backend.short_ttl)
    assert backend.eventually(lambda: backend.store.advance(k, 1, LONG_TTL))


def test_a_rejected_advance_keeps_the_stored_expiry(backend: Backend) -> None:
    k = key()
    assert backend.store.advance(k, 100, LONG_TTL)
    assert backend.store.advance(k, 50, backend.short_ttl) is False
    let_short_ttl_pass(backend)
    assert backend.store.advance(k, 100, LONG_TTL) is False


def test_only_one_of_many_concurrent_advances_to_the_same_value_wins(backend: Backend) -> None:
    k = key()
    backend.store.advance(k, 41, LONG_TTL)
    handles = [backend.peer() for _ in range(THREADS)]
    results = run_together(THREADS, lambda i: handles[i].advance(k, 42, LONG_TTL))
    assert results.count(True) == 1
    assert backend.store.get(k) == b"42"


def test_concurrent_advances_leave_the_maximum(backend: Backend) -> None:
    k = key()
    handles = [backend.peer() for _ in range(THREADS)]
    results = run_together(THREADS, lambda i: handles[i].advance(k, i, LONG_TTL))
    assert results[THREADS - 1] is True
    assert backend.store.get(k) == str(THREADS - 1).encode()
    assert backend.store.advance(k, THREADS - 1, LONG_TTL) is False


# incr


def test_incr_counts_from_one(store: StateStore) -> None:
    k = key()
    assert [store.incr(k, LONG_TTL) for _ in range(3)] == [1, 2, 3]
    assert store.get(k) == b"3"
    assert store.incr(key(), LONG_TTL) == 1


def test_incr_counter_expires_with_the_ttl_given_at_creation(backend: Backend) -> None:
    k = key()
    assert backend.store.incr(k, backend.short_ttl) == 1
    # Every increment before expiry passes a long TTL: it must not extend the first one.
    assert backend.eventually(lambda: backend.store.incr(k, LONG_TTL) == 1)


def test_incr_does_not_shorten_the_ttl_of_an_existing_counter(backend: Backend) -> None:
    k = key()
    assert backend.store.incr(k, LONG_TTL) == 1
    assert backend.store.incr(k, backend.short_ttl) == 2
    let_short_ttl_pass(backend)
    assert backend.store.incr(k, LONG_TTL) == 3


def test_concurrent_increments_are_all_counted(backend: Backend) -> None:
    k = key()
    handles = [backend.peer() for _ in range(THREADS)]
    results = run_together(THREADS, lambda i: handles[i].incr(k, LONG_TTL))
    assert sorted(results) == list(range(1, THREADS + 1))


# get / set / delete


def test_get_of_an_absent_key_is_none(store: StateStore) -> None:
    assert store.get(key()) is None


def test_set_then_get_round_trips_bytes(store: StateStore) -> None:
    k = key()
    for value in (b"", b"\x00\xff binary \r\n", b"x" * 4096):
        store.set(k, value, LONG_TTL)
        assert store.get(k) == value


def test_set_is_seen_by_every_handle(backend: Backend) -> None:
    k = key()
    backend.store.set(k, b"shared")
    assert backend.peer().get(k) == b"shared"


def test_set_with_ttl_expires(backend: Backend) -> None:
    k = key()
    backend.store.set(k, b"v", backend.short_ttl)
    assert backend.eventually(lambda: backend.store.get(k) is None)


def test_set_without_ttl_never_expires(backend: Backend) -> None:
    k = key()
    backend.store.set(k, b"forever")
    let_short_ttl_pass(backend)
    assert backend.store.get(k) == b"forever"


def test_set_replaces_the_value_and_the_expiry(backend: Backend) -> None:
    k = key()
    backend.store.set(k, b"old", backend.short_ttl)
    backend.store.set(k, b"new")
    let_short_ttl_pass(backend)
    assert backend.store.get(k) == b"new"


def test_delete_removes_and_tolerates_absent_keys(store: StateStore) -> None:
    k = key()
    store.set(k, b"v")
    store.delete(k)
    assert store.get(k) is None
    store.delete(k)
    store.delete(key())


@pytest.mark.parametrize("ttl", [0.0, -1.0, math.nan, math.inf])
def test_a_ttl_that_is_not_positive_and_finite_is_refused(store: StateStore, ttl: float) -> None:
    k = key()
    with pytest.raises(ValueError):
        store.claim(k, ttl)
    with pytest.raises(ValueError):
        store.advance(k, 1, ttl)
    with pytest.raises(ValueError):
        store.incr(k, ttl)
    with pytest.raises(ValueError):
        store.set(k, b"v", ttl)
    assert store.get(k) is None


# version / bump


def test_version_starts_at_zero_and_bump_counts_up(store: StateStore) -> None:
    assert store.version("policies") == 0
    assert store.bump("policies") == 1
    assert store.bump("policies") == 2
    assert store.version("policies") == 2
    assert store.version("principals") == 0


def test_versions_are_shared_by_every_handle(backend: Backend) -> None:
    backend.store.bump("policies")
    peer = backend.peer()
    assert peer.version("policies") == 1
    assert peer.bump("policies") == 2
    assert backend.store.version("policies") == 2


def test_versions_and_keys_do_not_collide(store: StateStore) -> None:
    store.set("policies", b"not a version")
    assert store.version("policies") == 0
    store.bump("policies")
    assert store.get("policies") == b"not a version"
    store.delete("policies")
    assert store.version("policies") == 1


def test_versions_never_expire(backend: Backend) -> None:
    backend.store.bump("policies")
    let_short_ttl_pass(backend)
    assert backend.store.version("policies") == 1


def test_concurrent_bumps_each_get_a_distinct_version(backend: Backend) -> None:
    handles = [backend.peer() for _ in range(THREADS)]
    results = run_together(THREADS, lambda i: handles[i].bump("policies"))
    assert sorted(results) == list(range(1, THREADS + 1))
    assert backend.store.version("policies") == THREADS


# every operation together, against a model

_CLAIM_KEYS = ["c1", "c2"]
_COUNTER_KEYS = ["n1", "n2"]
_VALUE_KEYS = ["v1", "v2"]
_NAMES = ["c1", "n1", "v1"]  # the same strings as keys: versions must live apart from them

_operations = st.one_of(
    st.tuples(st.just("claim"), st.sampled_from(_CLAIM_KEYS)),
    st.tuples(st.just("advance"), st.sampled_from(_COUNTER_KEYS), st.integers(min_value=-5, max_value=5)),
    st.tuples(st.just("incr"), st.sampled_from(_COUNTER_KEYS)),
    st.tuples(st.just("set"), st.sampled_from(_VALUE_KEYS), st.binary(max_size=8)),
    st.tuples(st.just("get"), st.sampled_from(_CLAIM_KEYS + _COUNTER_KEYS + _VALUE_KEYS)),
    st.tuples(st.just("delete"), st.sampled_from(_CLAIM_KEYS + _COUNTER_KEYS + _VALUE_KEYS)),
    st.tuples(st.just("bump"), st.sampled_from(_NAMES)),
    st.tuples(st.just("version"), st.sampled_from(_NAMES)),
)


class Model:
    """The contract, restated as plain Python (no expiry: every TTL here is long)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes | int] = {}
        self.versions: dict[str, int] = {}

    def apply(self, operation: tuple[Any, ...]) -> object:
        name, target, *args = operation
        current = self.data.get(target)
        if name == "claim":
            if current is not None:
                return False
            self.data[target] = b"1"
            return True
        if name == "advance":
            if isinstance(current, int) and current >= args[0]:
                return False
            self.data[target] = args[0]
            return True
        if name == "incr":
            self.data[target] = (current if isinstance(current, int) else 0) + 1
            return self.data[target]
        if name == "set":
            self.data[target] = args[0]
            return None
        if name == "get":
            return str(current).encode() if isinstance(current, int) else current
        if name == "delete":
            self.data.pop(target, None)
            return None
        if name == "bump":
            self.versions[target] = self.versions.get(target, 0) + 1
            return self.versions[target]
        return self.versions.get(target, 0)


def apply(store: StateStore, prefix: str, operation: tuple[Any, ...]) -> object:
    name, target, *args = operation
    if name in ("bump", "version"):
        return getattr(store, name)(prefix + target)
    if name == "set":
        store.set(prefix + target, args[0], LONG_TTL)
        return None
    if name in ("get", "delete"):
        return getattr(store, name)(prefix + target)
    return getattr(store, name)(prefix + target, *args, LONG_TTL)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(_operations, max_size=30))
def test_any_sequence_of_operations_matches_the_model(store: StateStore, operations: list[tuple[Any, ...]]) -> None:
    prefix = f"{uuid.uuid4().hex}:"
    model = Model()
    for operation in operations:
        assert apply(store, prefix, operation) == model.apply(operation), operation
