"""``users="lazy"``: a process holds no user until asked; a user's first request costs one indexed query, later
ones none; a change evicts exactly the users it changed; the cache never exceeds its bound; a database that cannot
answer refuses the request (503), never lets it pass. Queries are counted, never timed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, event
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from iam_middleware import IAM, IAMMiddleware, permission
from iam_middleware.authenticators import SigningCredential
from iam_middleware.directory.sql import SQLDirectory, SQLDirectoryReloader
from iam_middleware.directory.sql._lazy import DirectoryUnavailableError, LazyUsers
from iam_middleware.testing import AsyncRouteClient

from .conftest import DEMO

ALICE = SigningCredential("AKIADEMOALICE0000001", "demo/alice/wJalrXUtnFEMI/K7MDENG/bPxRfiCY")
BOB = SigningCredential("AKIADEMOBOB000000001", "demo/bob/Xq8vL2mNcR4tYp7Kz1Wd/Hs9bFgJeUa")


@permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")
async def get_order(request: Request) -> JSONResponse:
    return JSONResponse({"by": request.user.arn})


def call(iam: IAM, credential: SigningCredential) -> httpx.Response:
    """GET /orders/1 signed with ``credential``, through the middleware."""
    app = IAMMiddleware(Starlette(routes=[Route("/orders/{order_id}", get_order)]), iam=iam)

    async def send() -> httpx.Response:
        async with AsyncRouteClient(app, iam) as client:
            return await client.request("GET", "/orders/1", credential=credential)

    return asyncio.run(send())


class Queries:
    """The SELECT statements an engine runs (BEGIN and ROLLBACK are not queries)."""

    def __init__(self, directory: SQLDirectory) -> None:
        self.seen: list[str] = []
        event.listen(directory.engine, "before_cursor_execute", self._record)

    def _record(self, _connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.seen.append(statement)

    def count(self) -> int:
        found = len(self.seen)
        self.seen.clear()
        return found


@pytest.fixture
def lazy(demo: SQLDirectory) -> Iterator[SQLDirectoryReloader]:
    """Another process serving the demo database with users loaded on demand (polling only when told to)."""
    reloader = SQLDirectoryReloader.open(SQLDirectory(demo.url), poll_interval=3600, users="lazy", cache_size=100)
    try:
        yield reloader
    finally:
        reloader.stop()
        reloader.directory.close()


def test_the_snapshot_holds_no_user_but_everything_else(lazy: SQLDirectoryReloader) -> None:
    snapshot = lazy.iam.snapshot
    assert len(snapshot.users) == 0 and isinstance(snapshot.loader, LazyUsers)
    assert set(snapshot.policies) >= {"OrdersReadOnly", "AssumePartner"} and snapshot.role("partner") is not None


def test_a_first_request_costs_one_query_and_the_next_none(lazy: SQLDirectoryReloader) -> None:
    queries = Queries(lazy.directory)
    answer = call(lazy.iam, ALICE)
    assert answer.status_code == 200 and answer.json()["by"].endswith(":user/alice")
    assert queries.count() == 1
    assert call(lazy.iam, ALICE).status_code == 200
    assert queries.count() == 0
    snapshot = lazy.iam.snapshot
    assert snapshot.user("nobody") is None and queries.count() == 1
    assert snapshot.user("nobody") is None and queries.count() == 0  # a miss is remembered too
    assert snapshot.user_by_arn("arn:app:iam::111122223333:user/bob") is not None and queries.count() == 1
    assert snapshot.user_by_arn("arn:app:iam::111122223333:user/bob") is not None and queries.count() == 0


def test_a_users_query_never_runs_on_the_event_loop(lazy: SQLDirectoryReloader) -> None:
    # A query blocks for milliseconds: an async shell decides in a worker thread when users come from the database.
    threads: list[threading.Thread] = []
    event.listen(lazy.directory.engine, "before_cursor_execute",
                 lambda *_: threads.append(threading.current_thread()))
    loop_thread: list[threading.Thread] = []
    app = IAMMiddleware(Starlette(routes=[Route("/orders/{order_id}", get_order)]), iam=lazy.iam)

    async def send() -> httpx.Response:
        loop_thread.append(threading.current_thread())
        async with AsyncRouteClient(app, lazy.iam) as client:
            return await client.request("GET", "/orders/1", credential=ALICE)

    assert asyncio.run(send()).status_code == 200
    assert threads and loop_thread[0] not in threads


def test_a_change_evicts_exactly_the_changed_user(demo: SQLDirectory, lazy: SQLDirectoryReloader) -> None:
    queries = Queries(lazy.directory)
    assert call(lazy.iam, ALICE).status_code == 200 and call(lazy.iam, BOB).status_code == 200
    queries.count()
    with demo.change() as draft:
        draft.update_access_key("alice", ALICE.access_key_id, "Inactive")
    assert lazy.reload().ok and lazy.last_refresh == "incremental"
    queries.count()
    assert call(lazy.iam, BOB).status_code == 200 and queries.count() == 0  # bob did not change: still cached
    # Every way this process had found alice is forgotten: by ARN (what sessions use), by key, by name.
    alice = lazy.iam.snapshot.user_by_arn("arn:app:iam::111122223333:user/alice")
    assert alice is not None and not alice.access_keys[0].active and queries.count() == 1
    refused = call(lazy.iam, ALICE)
    assert refused.status_code in (401, 403) and queries.count() == 1  # read again: the key is now inactive


def test_a_deleted_user_is_refused_after_the_refresh(demo: SQLDirectory, lazy: SQLDirectoryReloader) -> None:
    with demo.change() as draft:
        draft.create_user("dave")
        draft.add_user_to_group("readers", "dave")
        key = draft.create_access_key("dave")
    dave = SigningCredential(key.access_key_id, key.secret_access_key)
    assert call(lazy.iam, dave).status_code == 200  # created after this process started: found on demand
    with demo.change() as draft:
        draft.delete_access_key("dave", key.access_key_id)
        draft.remove_user_from_group("readers", "dave")
        draft.delete_user("dave")
    lazy.reload()
    assert call(lazy.iam, dave).status_code in (401, 403)
    assert lazy.iam.snapshot.user("dave") is None


def test_a_new_user_under_a_name_that_found_nobody_is_found(demo: SQLDirectory, lazy: SQLDirectoryReloader) -> None:
    assert lazy.iam.snapshot.user("erin") is None  # remembered as nobody
    with demo.change() as draft:
        draft.create_user("erin")
    lazy.reload()
    assert lazy.iam.snapshot.user("erin") is not None


def test_this_process_commits_read_only_what_changed(lazy: SQLDirectoryReloader) -> None:
    with lazy.directory.change() as draft:
        draft.tag_user("alice", {"team": "green"})
    assert lazy.last_refresh == "incremental" and len(lazy.iam.snapshot.users) == 0
    assert lazy.iam.snapshot.user("alice").tags["team"] == "green"  # type: ignore[union-attr]


def test_an_unreachable_database_refuses_the_request(lazy: SQLDirectoryReloader, tmp_path: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    loader = lazy.iam.snapshot.loader
    assert isinstance(loader, LazyUsers)
    working = loader.engine
    monkeypatch.setattr(loader, "engine", create_engine(f"sqlite:///{tmp_path / 'missing' / 'iam.db'}"))
    answer = call(lazy.iam, ALICE)
    assert answer.status_code == 503 and "DirectoryUnavailable" in answer.text and "Retry-After" in answer.headers
    with pytest.raises(DirectoryUnavailableError):
        lazy.iam.snapshot.user("alice")
    monkeypatch.setattr(loader, "engine", working)  # nothing was remembered of the failure
    assert call(lazy.iam, ALICE).status_code == 200


NAMES = ["alice", "bob", "carol", "nobody", "ghost", "AKIADEMOBOB000000001", "AKIANOBODY",
         "arn:app:iam::111122223333:user/alice", "arn:app:iam::111122223333:user/ghost"]


def test_the_cache_never_exceeds_its_bound(sqlite_url: str) -> None:
    directory = SQLDirectory(sqlite_url)
    directory.import_file(DEMO)
    eager = directory.load().snapshot
    reloader = SQLDirectoryReloader.open(SQLDirectory(sqlite_url), poll_interval=3600, users="lazy", cache_size=3)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.sampled_from(NAMES), max_size=12))
    def check(asked: list[str]) -> None:
        snapshot = reloader.iam.snapshot
        loader = snapshot.loader
        assert isinstance(loader, LazyUsers)
        for name in asked:
            if name.startswith("AKIA"):
                found, expected = snapshot.access_key(name), eager.access_key(name)
                assert (found and found[1].arn) == (expected and expected[1].arn)
            elif name.startswith("arn:"):
                assert getattr(snapshot.user_by_arn(name), "arn", None) == getattr(eager.user_by_arn(name), "arn", None)
            else:
                assert getattr(snapshot.user(name), "arn", None) == getattr(eager.user(name), "arn", None)
            assert len(loader.cache) <= 3

    try:
        check()
    finally:
        reloader.stop()
        reloader.directory.close()
        directory.close()
