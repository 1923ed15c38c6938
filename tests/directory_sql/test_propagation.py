"""Two IAMs on one database, as two processes would be: a change committed through one is served by the other,
through polling (SQLite, PostgreSQL) and at once through LISTEN/NOTIFY (PostgreSQL); a bad state is never served."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import update

from iam_middleware._reload import NoDirectoryError
from iam_middleware.directory.sql import SQLDirectory, SQLDirectoryReloader
from iam_middleware.directory.sql import _schema as schema
from iam_middleware.directory.sql._records import bump_revision

from .conftest import DEMO


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``condition()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not within {timeout}s")
        time.sleep(0.005)
    return time.monotonic() - start


@pytest.fixture
def other(demo: SQLDirectory) -> Iterator[SQLDirectoryReloader]:
    """A second process's view of the demo database: its own engine, its own IAM and reloader."""
    reloader = SQLDirectoryReloader.open(SQLDirectory(demo.url), poll_interval=0.1)
    try:
        yield reloader
    finally:
        reloader.stop()
        reloader.directory.close()


def tagged(reloader: SQLDirectoryReloader, value: str) -> bool:
    user = reloader.iam.snapshot.user("alice")
    return user is not None and user.tags.get("team") == value


def test_the_writing_process_serves_its_change_at_once(demo: SQLDirectory) -> None:
    mine = SQLDirectoryReloader.open(demo, poll_interval=3600)
    with demo.change() as draft:
        draft.tag_user("alice", {"team": "green"})
    assert tagged(mine, "green") and mine.revision == 2
    mine.stop()


def test_another_process_sees_a_change_by_polling(demo: SQLDirectory, other: SQLDirectoryReloader) -> None:
    other.start()
    assert other.revision == 1
    with demo.change() as draft:
        draft.tag_user("alice", {"team": "green"})
    assert wait_for(lambda: tagged(other, "green"), timeout=5) < 1.0
    assert other.revision == 2 and other.iam.snapshot.version == 2


def test_without_the_thread_the_request_path_polls(demo: SQLDirectory, other: SQLDirectoryReloader) -> None:
    with demo.change() as draft:
        draft.tag_user("alice", {"team": "green"})
    other.iam.snapshots.refresh(other.iam.clock() + 1)  # the first request after poll_interval reads the counter
    assert tagged(other, "green")


def test_postgresql_notifies_other_processes_at_once(postgres_url: str) -> None:
    writer = SQLDirectory(postgres_url)
    writer.import_file(DEMO)
    # Polling once an hour: only the notification can bring the change in time.
    reader = SQLDirectoryReloader.open(SQLDirectory(postgres_url), poll_interval=3600)
    try:
        reader.start()
        assert reader.wait_listening(5)
        for team in ("green", "yellow", "purple"):
            with writer.change() as draft:
                draft.tag_user("alice", {"team": team})
            assert wait_for(lambda team=team: tagged(reader, team), timeout=5) < 1.0  # type: ignore[misc]
    finally:
        reader.stop()
        reader.directory.close()
        writer.close()


def test_a_bad_state_keeps_the_last_good_snapshot(demo: SQLDirectory, other: SQLDirectoryReloader,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    served = other.iam.snapshot
    with demo.engine.begin() as connection:  # a hand edit that no action would make
        connection.execute(update(schema.users).where(schema.users.c.name == "bob").values(path="staff"))
        bump_revision(connection)
    with caplog.at_level(logging.ERROR, "iam_middleware.reload"):
        result = other.reload()
    assert not result.ok and result.version == 1 and other.iam.snapshot is served
    assert other.last_error is not None and "users.bob.path" in other.last_error
    assert "users.bob.path" in caplog.text
    other.poll()  # the same bad revision is not read again
    assert other.iam.snapshot is served and other.serving
    with demo.engine.begin() as connection:
        connection.execute(update(schema.users).where(schema.users.c.name == "bob").values(path="/"))
        bump_revision(connection)
    other.poll()
    assert other.iam.snapshot.version == 3 and other.last_error is None


def test_an_empty_database_refuses_requests_until_a_directory_arrives(directory: SQLDirectory) -> None:
    reloader = SQLDirectoryReloader.open(directory, poll_interval=0.05)
    assert not reloader.serving
    with pytest.raises(NoDirectoryError):
        reloader.iam.snapshots.refresh()
    directory.import_file(DEMO)
    # The settings were not there at start: they need a restart, and requests stay refused until then.
    assert not reloader.serving and reloader.restart_needed
    reloader.stop()


def test_a_settings_change_is_served_and_asks_for_a_restart(demo: SQLDirectory, other: SQLDirectoryReloader) -> None:
    with demo.change() as draft:
        draft.records["settings"]["session_ttl"] = 600
        draft.tag_user("alice", {"team": "green"})
    other.poll()
    assert tagged(other, "green") and other.restart_needed
