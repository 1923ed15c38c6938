"""RedisStore when Redis is down, hung, restarted, unreachable or misused: it fails closed and recovers by itself.

Every test runs against a real redis-server (tests/_redis_server.py). Errors are asserted, never timings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from _redis_server import RedisServer, free_port

from iam_middleware._exceptions import ConfigurationError
from iam_middleware.state import StateUnavailableError
from iam_middleware.state._redis import RedisStore

from ._redis_checks import OPERATIONS, SECRET, assert_every_operation_is_refused, everything_in, wait_until_usable


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    store = RedisStore(redis_url)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def closed_port_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


# down, restarted


def test_every_operation_fails_closed_while_the_server_is_down(redis_server: RedisServer, store: RedisStore) -> None:
    store.set("k", b"v")
    redis_server.stop()
    try:
        assert_every_operation_is_refused(store)
    finally:
        redis_server.start()


def test_the_same_store_works_again_after_a_restart(redis_server: RedisServer, store: RedisStore) -> None:
    for operation in OPERATIONS.values():
        operation(store)  # every connection and server-side script in use before the restart
    redis_server.stop()
    with pytest.raises(StateUnavailableError):
        store.get("k")
    redis_server.start()
    wait_until_usable(store)
    # The server kept nothing (no persistence), and the Lua scripts must be loaded again transparently.
    assert store.get("k") is None
    assert store.claim("k", 60) is True
    assert store.advance("step", 1, 60) is True
    assert store.incr("n", 60) == 1
    assert store.version("policies") == 0
    assert store.bump("policies") == 1


def test_a_restart_between_two_calls_is_invisible(redis_server: RedisServer, store: RedisStore) -> None:
    store.set("k", b"v")
    redis_server.stop()
    redis_server.start()
    # The pooled connection is dead; redis-py notices on checkout and reconnects within the same call.
    assert store.get("k") is None
    assert store.advance("step", 1, 60) is True


# hung


def test_a_hung_server_times_out_into_state_unavailable(redis_url: str, raw: redis.Redis) -> None:
    store = RedisStore(redis_url, socket_timeout=0.05)
    try:
        store.get("warm-up")
        raw.client_pause(2000, all=True)  # the server accepts connections but answers nothing for 2 s
        errors = assert_every_operation_is_refused(store)
        assert all(isinstance(error.__cause__, redis.TimeoutError) for error in errors)
        wait_until_usable(store)
        assert store.claim("k", 60) is True
    finally:
        store.close()


# never reachable, credentials


def test_a_server_that_never_existed_is_unavailable(closed_port_url: str) -> None:
    store = RedisStore(closed_port_url)
    try:
        assert_every_operation_is_refused(store)
    finally:
        store.close()


@pytest.mark.parametrize("credentials", [f":{SECRET}", f"alice:{SECRET}"])
def test_no_password_in_repr_or_errors(credentials: str) -> None:
    port = free_port()
    store = RedisStore(f"redis://{credentials}@127.0.0.1:{port}/0")
    try:
        assert SECRET not in repr(store)
        assert repr(store) == f"RedisStore(redis://***@127.0.0.1:{port}/0, prefix='iam:')"
        for error in assert_every_operation_is_refused(store):
            assert SECRET not in everything_in(error)
            assert f"127.0.0.1:{port}" in str(error)  # names where to look, so an operator can act
    finally:
        store.close()


def test_a_rejected_login_is_unavailable_and_hides_the_password(redis_server: RedisServer) -> None:
    store = RedisStore(f"redis://alice:{SECRET}@127.0.0.1:{redis_server.port}/0")
    try:
        with pytest.raises(StateUnavailableError) as info:
            store.claim("k", 60)
        assert isinstance(info.value.__cause__, redis.AuthenticationError)
        assert SECRET not in everything_in(info.value)
    finally:
        store.close()


def test_repr_of_a_store_on_a_given_client_hides_the_password(redis_server: RedisServer) -> None:
    client = redis.Redis(host="127.0.0.1", port=redis_server.port, db=3, password=SECRET)
    try:
        assert repr(RedisStore(client, prefix="app:")) == (
            f"RedisStore(redis://***@127.0.0.1:{redis_server.port}/3, prefix='app:')"
        )
    finally:
        client.close()


# misuse and configuration


def test_a_key_of_the_wrong_type_is_refused_not_misread(store: RedisStore, raw: redis.Redis) -> None:
    raw.lpush("iam:k:k", b"planted")
    operations: list[Callable[[], object]] = [
        lambda: store.get("k"),
        lambda: store.advance("k", 1, 60),
        lambda: store.incr("k", 60),
    ]
    for operation in operations:
        with pytest.raises(StateUnavailableError):
            operation()
    assert store.claim("k", 60) is False  # taken, whatever it holds


def test_a_client_that_decodes_responses_is_rejected(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ConfigurationError, match="decode_responses=False"):
            RedisStore(client)
    finally:
        client.close()


def test_a_given_client_is_used_and_left_open(redis_url: str, raw: redis.Redis) -> None:
    store = RedisStore(raw)
    assert store.claim("k", 60) is True
    store.close()
    assert raw.get("iam:k:k") == b"1"


def test_stores_with_different_prefixes_share_nothing(redis_url: str) -> None:
    first, second = RedisStore(redis_url, prefix="app1:"), RedisStore(redis_url, prefix="app2:")
    try:
        assert first.claim("k", 60) and second.claim("k", 60)
        first.bump("policies")
        assert second.version("policies") == 0
    finally:
        first.close()
        second.close()


def test_advance_refuses_integers_lua_cannot_compare_exactly(store: RedisStore) -> None:
    assert store.advance("step", 2**53, 60) is True
    with pytest.raises(ValueError, match="2\\*\\*53"):
        store.advance("step", 2**53 + 1, 60)
    with pytest.raises(ValueError):
        store.advance("step", -(2**53) - 1, 60)
