"""With shared state on Redis, a change committed by one process serving the directory wakes every other one's
poller at once (pub/sub), on SQLite shared by several processes as on PostgreSQL without LISTEN; a Redis that is
down costs only the announcement, never the change."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import pytest
from _redis_server import RedisServer, redis_server, redis_url  # noqa: F401 - fixtures

from iam_middleware.directory.sql import SQLDirectory, SQLDirectoryReloader
from iam_middleware.state import RedisStore

from .conftest import DEMO


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether ``condition()`` holds within ``timeout`` (a bound on a hang, not a speed requirement)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def pair(database_url: str, redis_url: str) -> Iterator[tuple[SQLDirectoryReloader, SQLDirectoryReloader]]:  # noqa: F811
    """Two processes' reloaders of one database, each with its own Redis connection; they poll once an hour and do
    not listen to PostgreSQL, so only Redis can carry a change between them."""
    SQLDirectory(database_url).import_file(DEMO)
    made = [SQLDirectoryReloader.open(SQLDirectory(database_url), store=RedisStore(redis_url), poll_interval=3600,
                                      listen=False) for _ in range(2)]
    for reloader in made:
        reloader.start()
    try:
        yield made[0], made[1]
    finally:
        for reloader in made:
            reloader.stop()
            reloader.directory.close()


def test_a_commit_reaches_the_other_process_through_redis(
        pair: tuple[SQLDirectoryReloader, SQLDirectoryReloader]) -> None:
    writer, reader = pair
    for team in ("green", "yellow"):
        with writer.directory.change() as draft:
            draft.tag_user("alice", {"team": team})
        assert eventually(lambda team=team: reader.iam.snapshot.user("alice").tags["team"] == team)  # type: ignore
    assert reader.last_refresh == "incremental"


def test_a_redis_that_is_down_costs_the_announcement_not_the_change(
        pair: tuple[SQLDirectoryReloader, SQLDirectoryReloader], redis_server: RedisServer,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    writer, reader = pair
    redis_server.stop()
    try:
        with caplog.at_level(logging.WARNING, "iam_middleware.reload"), writer.directory.change() as draft:
            draft.tag_user("alice", {"team": "green"})
        assert writer.iam.snapshot.user("alice").tags["team"] == "green"  # type: ignore[union-attr]
        assert "not announced" in caplog.text
        reader.poll()  # what its poller does within poll_interval
        assert reader.iam.snapshot.user("alice").tags["team"] == "green"  # type: ignore[union-attr]
    finally:
        redis_server.start()
