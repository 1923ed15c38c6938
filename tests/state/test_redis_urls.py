"""The forms ``redis_url`` takes (docs/operations.md): one server, Sentinel, Cluster, each understood as written;
anything else refused at load with the setting named; and a password never shown, whether in a refusal, a store's
repr or any error of any form. No server is needed here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _redis_server import free_ports

from iam_middleware import ConfigurationError, Settings
from iam_middleware.state._redis import RedisStore
from iam_middleware.state._redis_url import _SCHEMES, RedisTarget, parse_redis_url

from ._redis_checks import SECRET, assert_every_operation_is_refused, everything_in

CREDENTIALS = f"alice:{SECRET}@"
OPERATIONS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://127.0.0.1:6380/2", RedisTarget("server", False, "redis://127.0.0.1:6380/2", db=2,
                                             server_url="redis://127.0.0.1:6380/2")),
    (f"rediss://{CREDENTIALS}cache.internal?wait_replicas=1&ssl_cert_reqs=required",
     RedisTarget("server", True, "rediss://***@cache.internal:6379/0", wait_replicas=1,
                 server_url=f"rediss://{CREDENTIALS}cache.internal?ssl_cert_reqs=required")),
    ("unix:///run/redis.sock?db=3", RedisTarget("server", False, "unix:///run/redis.sock?db=3", db=3,
                                                server_url="unix:///run/redis.sock?db=3")),
    (f"redis+sentinel://{CREDENTIALS}10.0.0.1,10.0.0.2:26380,[::1]/mymaster/4",
     RedisTarget("sentinel", False, "redis+sentinel://***@10.0.0.1:26379,10.0.0.2:26380,[::1]:26379/mymaster/4",
                 (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26379)), "mymaster", 4, 1, username="alice",
                 password=SECRET)),
    ("rediss+sentinel://:pa%2Fss@s1:26379/mymaster?wait_replicas=0",
     RedisTarget("sentinel", True, "rediss+sentinel://***@s1:26379/mymaster/0", (("s1", 26379),), "mymaster",
                 password="pa/ss")),
    ("redis+cluster://n1:7000,n2:7001,n3", RedisTarget("cluster", False, "redis+cluster://n1:7000,n2:7001,n3:6379",
                                                        (("n1", 7000), ("n2", 7001), ("n3", 6379)))),
    (f"rediss+cluster://{CREDENTIALS}n1/", RedisTarget("cluster", True, "rediss+cluster://***@n1:6379",
                                                       (("n1", 6379),), username="alice", password=SECRET)),
])
def test_each_documented_form_is_understood(url: str, expected: RedisTarget) -> None:
    assert parse_redis_url(url) == expected
    assert Settings.from_mapping({"redis_url": url}).redis_url == url
    assert SECRET not in repr(expected)


@pytest.mark.parametrize(("url", "why"), [
    ("http://cache:6379", "must start with one of redis://"),
    ("redis+sentinel://s1:26379", "must name the Sentinel service"),
    (f"redis+sentinel://{CREDENTIALS}s1:26379/", "must name the Sentinel service"),
    # An unescaped "/" in the password splits the URL in the wrong place: still nothing of it is shown.
    ("redis+sentinel://alice:hunter2/Sup3rSecret@s1/mymaster", "address 1 of 1 has a port that is not"),
    (f"redis+sentinel://{CREDENTIALS}s1:99999/mymaster", "address 1 of 1 has a port that is not a number"),
    (f"redis+sentinel://{CREDENTIALS}s1,,s2/mymaster", "address 2 of 3 is not host[:port]"),
    (f"redis+sentinel://{CREDENTIALS}s1/mymaster?wait_replicas=many", "wait_replicas must be a whole number"),
    (f"redis+sentinel://{CREDENTIALS}s1/mymaster?wait_replicas=1&wait_replicas=2", "more than once"),
    (f"redis+sentinel://{CREDENTIALS}s1/mymaster?{SECRET}=1", "an option this form does not take"),
    (f"redis+cluster://{CREDENTIALS}n1:7000?wait_replicas=1", "not available with a Redis Cluster"),
    (f"redis+cluster://{CREDENTIALS}n1:7000/3", "only database 0"),
    (f"redis://{CREDENTIALS}cache:port/0", "the port must be a number"),
    (f"redis://{CREDENTIALS}cache/zero", "the database must be a whole number"),
])
def test_a_bad_url_is_refused_at_load_with_the_setting_named_and_none_of_it_shown(url: str, why: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"redis_url": url})
    message = everything_in(info.value)
    assert "settings.redis_url: " in str(info.value) and why in str(info.value)
    assert SECRET not in message and "Sup3rSecret" not in message
    with pytest.raises(ConfigurationError, match="RedisStore: the Redis URL"):
        RedisStore(url)


def test_an_option_redis_py_cannot_read_is_refused_when_the_store_is_made_not_at_first_use() -> None:
    with pytest.raises(ConfigurationError, match="socket_connect_timeout") as info:
        RedisStore(f"redis://{CREDENTIALS}127.0.0.1:6379/0?socket_connect_timeout=soon")
    assert SECRET not in everything_in(info.value)


@pytest.mark.parametrize("form", ["redis://{c}127.0.0.1:{p}/0", "redis+sentinel://{c}127.0.0.1:{p},127.0.0.1:{q}/m",
                                  "redis+cluster://{c}127.0.0.1:{p},127.0.0.1:{q}"])
def test_no_password_in_the_repr_or_any_error_of_any_form(form: str) -> None:
    first, second = free_ports(2)  # nobody listens: every operation is refused
    store = RedisStore(form.format(c=CREDENTIALS, p=first, q=second))
    try:
        assert SECRET not in repr(store) and "***@" in repr(store)
        for error in assert_every_operation_is_refused(store):
            assert SECRET not in everything_in(error)
            assert f"127.0.0.1:{first}" in str(error)  # names where to look, so an operator can act
    finally:
        store.close()


def test_waiting_for_replicas_needs_a_server_that_has_them_and_time_to_wait() -> None:
    with pytest.raises(ConfigurationError, match="not available with a Redis Cluster"):
        RedisStore("redis+cluster://127.0.0.1:7000", wait_replicas=1)
    with pytest.raises(ConfigurationError, match="shorter than socket_timeout"):
        RedisStore("redis+sentinel://127.0.0.1/mymaster", socket_timeout=0.25, wait_timeout=0.25)
    with pytest.raises(ConfigurationError, match="from 0 to 16"):
        RedisStore("redis://127.0.0.1/0", wait_replicas=17)
    RedisStore("redis+sentinel://127.0.0.1/mymaster", wait_replicas=0, wait_timeout=5.0).close()


def test_the_docs_show_every_form_and_only_urls_that_load() -> None:
    text = OPERATIONS_PAGE.read_text()
    for scheme in _SCHEMES:
        assert f"`{scheme}://" in text
    shown = re.findall(r'redis_url = "((?:redis|rediss|unix)[^"]*)"', text)
    assert len(shown) >= 2
    for url in shown:
        assert Settings.from_mapping({"redis_url": url}).redis_url == url
