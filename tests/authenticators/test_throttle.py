"""Login throttling: growing delays, lockout after too many failures, expiry, escalation, per-address limits,
state shared through the store only, and failing closed when the store is down."""

from __future__ import annotations

import threading

import pytest

from iam_middleware._exceptions import ConfigurationError, LockedOutError, OTPError, ServiceUnavailableError
from iam_middleware.authenticators._throttle import LoginThrottle
from iam_middleware.state import MemoryStore, StateStore, StateUnavailableError

T0 = 1_700_000_000.0


class Clock:
    """The injected time, shared with the store so its expiries follow the same clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def store(clock: Clock) -> StateStore:
    return MemoryStore(clock=clock)


def locked_for(throttle: LoginThrottle, user: str, clock: Clock, source_ip: str | None = None) -> float | None:
    """Seconds left on the user's lock now, or None if a login may be tried."""
    try:
        throttle.check(user, now=clock.now, source_ip=source_ip)
    except LockedOutError as exc:
        return exc.retry_after
    return None


def fail(throttle: LoginThrottle, user: str, clock: Clock, times: int = 1, source_ip: str | None = None) -> None:
    for _ in range(times):
        throttle.record_failure(user, now=clock.now, source_ip=source_ip)


def test_no_failures_no_lock(store: StateStore, clock: Clock) -> None:
    assert locked_for(LoginThrottle(store), "alice", clock) is None


def test_each_failure_doubles_the_wait(store: StateStore, clock: Clock) -> None:
    throttle = LoginThrottle(store, base_delay=1.0)
    for expected in (1, 2, 4, 8):
        fail(throttle, "alice", clock)
        assert locked_for(throttle, "alice", clock) == expected
        clock.now += expected - 0.5
        assert locked_for(throttle, "alice", clock) == 0.5
        clock.now += 0.5
        assert locked_for(throttle, "alice", clock) is None


def test_lockout_after_max_failures_then_expiry(store: StateStore, clock: Clock) -> None:
    throttle = LoginThrottle(store, max_failures=5, lockout=900, base_delay=0)
    fail(throttle, "alice", clock, times=4)
    assert locked_for(throttle, "alice", clock) is None
    fail(throttle, "alice", clock)
    assert locked_for(throttle, "alice", clock) == 900
    clock.now += 899
    assert locked_for(throttle, "alice", clock) == 1
    clock.now += 1
    assert locked_for(throttle, "alice", clock) is None


def test_lockout_error_renders_retry_after(store: StateStore, clock: Clock) -> None:
    throttle = LoginThrottle(store, max_failures=1, lockout=90, base_delay=0)
    fail(throttle, "alice", clock)
    with pytest.raises(LockedOutError) as caught:
        throttle.check("alice", now=clock.now + 0.5)
    error = caught.value
    assert isinstance(error, OTPError) and error.status_code == 401
    assert error.retry_after == 89.5
    assert error.headers["Retry-After"] == "90"
    assert "90 seconds" in str(error)


def test_repeated_lockouts_grow_and_are_capped(store: StateStore, clock: Clock) -> None:
    throttle = LoginThrottle(store, max_failures=3, window=60, lockout=100, max_lockout=350, base_delay=0)
    fail(throttle, "alice", clock, times=3)
    durations = []
    for _ in range(4):
        left = locked_for(throttle, "alice", clock)
        assert left is not None
        durations.append(left)
        clock.now += left + 60  # wait out the lock and the failure window...
        fail(throttle, "alice", clock)  # ...one more failure is enough to lock again
    assert durations == [100, 200, 350, 350]


def test_lockout_history_is_forgotten_after_a_quiet_spell(store: StateStore, clock: Clock) -> None:
    throttle = LoginThrottle(store, max_failures=2, window=60, lockout=100, history=3600, base_delay=0)
    fail(throttle, "alice", clock, times=2)
    fail(throttle, "bob", clock, times=2)
    clock.now += 100 + 3599  # the lock, then almost the whole history period
    fail(throttle, "bob", clock)
    assert locked_for(throttle, "bob", clock) == 200
    clock.now += 1
    fail(throttle, "alice", clock)
    assert locked_for(throttle, "alice", clock) is None  # a fresh start: two failures allowed again
    fail(throttle, "alice", clock)
    assert locked_for(throttle, "alice", clock) == 100


def test_one_more_failure_right_after_a_lockout_locks_again_for_longer(store: StateStore, clock: Clock) -> None:
    throttle = LoginThrottle(store, max_failures=3, window=900, lockout=60, base_delay=0)
    fail(throttle, "alice", clock, times=3)
    assert locked_for(throttle, "alice", clock) == 60
    clock.now += 60  # the lock is over, the failure window is still open
    fail(throttle, "alice", clock)
    assert locked_for(throttle, "alice", clock) == 120


def test_failures_outside_the_window_are_forgotten(store: StateStore, clock: Clock) -> None:
    throttle = LoginThrottle(store, max_failures=3, window=60, base_delay=0)
    fail(throttle, "alice", clock, times=2)
    clock.now += 60
    fail(throttle, "alice", clock, times=2)
    assert locked_for(throttle, "alice", clock) is None


def test_success_resets_failures_and_history(store: StateStore, clock: Clock) -> None:
    throttle = LoginThrottle(store, max_failures=3, lockout=100, base_delay=0)
    fail(throttle, "alice", clock, times=3)
    throttle.record_success("alice")
    assert locked_for(throttle, "alice", clock) is None
    fail(throttle, "alice", clock, times=2)
    assert locked_for(throttle, "alice", clock) is None
    fail(throttle, "alice", clock)
    assert locked_for(throttle, "alice", clock) == 100  # not 200: the earlier lockout was forgotten


def test_users_are_counted_separately(store: StateStore, clock: Clock) -> None:
    throttle = LoginThrottle(store, max_failures=2, base_delay=0)
    fail(throttle, "alice", clock, times=2)
    assert locked_for(throttle, "alice", clock) is not None
    assert locked_for(throttle, "bob", clock) is None


def test_lockout_holds_across_instances_sharing_a_store(store: StateStore, clock: Clock) -> None:
    # Each instance stands for one worker process; only the store is shared.
    workers = [LoginThrottle(store, max_failures=4, base_delay=0) for _ in range(4)]
    for worker in workers:
        fail(worker, "alice", clock)
    for worker in workers:
        assert locked_for(worker, "alice", clock) == 900
    assert locked_for(LoginThrottle(store), "alice", clock) == 900


def test_concurrent_failures_all_count(store: StateStore, clock: Clock) -> None:
    throttle = LoginThrottle(store, max_failures=40, base_delay=0)
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        fail(throttle, "alice", clock, times=5)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert locked_for(throttle, "alice", clock) == 900


def test_online_guessing_of_a_six_digit_code_is_hopeless(store: StateStore, clock: Clock) -> None:
    """RFC 4226 §7.3 / NIST SP 800-63B: an attacker retrying as fast as allowed for a year, with defaults."""
    throttle = LoginThrottle(store)
    attempts, end = 0, clock.now + 365 * 86400
    while clock.now < end:
        left = locked_for(throttle, "alice", clock)
        if left is not None:
            clock.now += left
            continue
        attempts += 1
        fail(throttle, "alice", clock)
    # A dozen on the first day (far under NIST's 100 consecutive failures), then one a day.
    assert attempts <= 12 + 365
    # Each try matches with probability 3/10**6 (the current code and one step either side).
    assert attempts * 3 / 10**6 < 0.002


def test_per_address_limit_catches_spraying_across_users(store: StateStore, clock: Clock) -> None:
    throttle = LoginThrottle(store, max_failures=5, max_failures_per_ip=3, lockout=600, base_delay=0)
    for user in ("alice", "bob", "carol"):
        fail(throttle, user, clock, source_ip="203.0.113.7")
    assert locked_for(throttle, "dave", clock, source_ip="203.0.113.7") == 600
    assert locked_for(throttle, "dave", clock, source_ip="203.0.113.8") is None
    assert locked_for(throttle, "dave", clock) is None  # no address given: only the user is checked


def test_success_does_not_reset_the_address(store: StateStore, clock: Clock) -> None:
    throttle = LoginThrottle(store, max_failures_per_ip=3, base_delay=0)
    fail(throttle, "alice", clock, times=2, source_ip="203.0.113.7")
    throttle.record_success("mallory")
    fail(throttle, "bob", clock, source_ip="203.0.113.7")
    assert locked_for(throttle, "carol", clock, source_ip="203.0.113.7") is not None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9"),  # one /64, one customer
        ("::ffff:203.0.113.7", "203.0.113.7"),  # IPv4-mapped
        ("2001:DB8::1", "2001:db8::1"),
    ],
)
def test_addresses_are_grouped_as_one_source(store: StateStore, clock: Clock, first: str, second: str) -> None:
    throttle = LoginThrottle(store, max_failures_per_ip=2, base_delay=0)
    fail(throttle, "alice", clock, source_ip=first)
    fail(throttle, "bob", clock, source_ip=second)
    assert locked_for(throttle, "carol", clock, source_ip=first) is not None


def test_address_gets_a_fresh_budget_after_its_window_but_a_longer_lockout(store: StateStore, clock: Clock) -> None:
    throttle = LoginThrottle(store, max_failures_per_ip=3, window=60, lockout=100, base_delay=0)
    users = iter(f"user{n}" for n in range(100))
    for _ in range(3):
        fail(throttle, next(users), clock, source_ip="203.0.113.7")
    assert locked_for(throttle, "x", clock, source_ip="203.0.113.7") == 100
    clock.now += 100
    for _ in range(2):
        fail(throttle, next(users), clock, source_ip="203.0.113.7")
    assert locked_for(throttle, "x", clock, source_ip="203.0.113.7") is None
    fail(throttle, next(users), clock, source_ip="203.0.113.7")
    assert locked_for(throttle, "x", clock, source_ip="203.0.113.7") == 200


def test_other_ipv6_prefix_is_another_source(store: StateStore, clock: Clock) -> None:
    throttle = LoginThrottle(store, max_failures_per_ip=2, base_delay=0)
    fail(throttle, "alice", clock, times=2, source_ip="2001:db8:1:2::1")
    assert locked_for(throttle, "carol", clock, source_ip="2001:db8:1:3::1") is None


def test_per_address_limit_is_off_by_default(store: StateStore, clock: Clock) -> None:
    throttle = LoginThrottle(store, base_delay=0)
    for n in range(20):
        fail(throttle, f"user{n}", clock, source_ip="203.0.113.7")
    assert locked_for(throttle, "dave", clock, source_ip="203.0.113.7") is None


def test_unreadable_lock_state_stays_locked(store: StateStore, clock: Clock) -> None:
    throttle = LoginThrottle(store, lockout=300, key_prefix="t:")
    store.set("t:lock:user:alice", b"not a number")
    assert locked_for(throttle, "alice", clock) == 300


class DownStore(MemoryStore):
    """Every call fails, as a RedisStore does while Redis is down."""

    def get(self, key: str) -> bytes | None:
        raise StateUnavailableError("down")

    def incr(self, key: str, ttl: float) -> int:
        raise StateUnavailableError("down")

    def delete(self, key: str) -> None:
        raise StateUnavailableError("down")


def test_unreachable_store_refuses_with_503() -> None:
    throttle = LoginThrottle(DownStore())
    with pytest.raises(ServiceUnavailableError):
        throttle.check("alice", now=T0)
    with pytest.raises(ServiceUnavailableError):
        throttle.record_failure("alice", now=T0)
    with pytest.raises(ServiceUnavailableError):
        throttle.record_success("alice")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_failures": 0},
        {"max_failures": True},
        {"max_failures_per_ip": 0},
        {"window": 0},
        {"lockout": -1},
        {"history": 0},
        {"base_delay": -1},
        {"lockout": 900, "max_lockout": 60},
    ],
)
def test_invalid_configuration_is_refused(store: StateStore, kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        LoginThrottle(store, **kwargs)  # type: ignore[arg-type]
