"""Hot reload in one process: explicit, on a file change, on SIGHUP, through the authorized admin endpoint; an invalid
file keeps the last good directory; no valid directory at all refuses everything and says why; requests in flight
finish; a store that cannot answer never stops credentials that do not need it.

Requests go through the real middleware (httpx's ASGI transport), signed by real botocore; Redis is a real server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from _redis_server import RedisServer, free_port
from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from iam_middleware import IAM, CredentialKind, IAMMiddleware, permission, public
from iam_middleware._admin import admin_app
from iam_middleware._reload import DirectoryReloader, NoDirectoryError
from iam_middleware.state import MemoryStore, StateUnavailableError
from iam_middleware.state._redis import RedisStore

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ACCOUNT = "111122223333"
BASE = "http://testserver"
ALICE_KEY = ("AKIADEMOALICE0000001", "demo/alice/wJalrXUtnFEMI/K7MDENG/bPxRfiCY")
OPS_KEY = ("AKIATESTOPS000000001", "test/ops/3nQ7pX9vL2mR8sT4wY6zB1cD5fG0hJ")
DIRECTORY = f"arn:app:iam::{ACCOUNT}:directory"  # what the admin endpoint's permissions name
OPS = f"""
[policies.DirectoryAdmin]
document = {{ Version = "2012-10-17", Statement = [
    {{ Effect = "Allow", Action = ["iam:ReloadDirectory", "iam:GetDirectoryStatus"], Resource = "{DIRECTORY}" }},
] }}

[users.ops]
policies = ["DirectoryAdmin"]
access_keys = [{{ id = "{OPS_KEY[0]}", secret = "{OPS_KEY[1]}" }}]
"""
ALICE_OFF = (f'id = "{ALICE_KEY[0]}",', f'id = "{ALICE_KEY[0]}", active = false,')
POLL = 2.0


# Fixtures and helpers --------------------------------------------------------------------------------------------
class Directory:
    """A private copy of examples/ (plus an operator allowed to reload) that a test edits."""

    def __init__(self, root: Path) -> None:
        shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
        self.path = root / "iam.toml"
        self.good = self.path.read_text() + OPS
        self.write(self.good)

    def write(self, text: str, path: Path | None = None) -> None:
        """Replace a file and move its modification time on, so a change is seen even within one clock tick."""
        target = path or self.path
        before = target.stat().st_mtime_ns if target.exists() else 0
        target.write_text(text)
        after = target.stat().st_mtime_ns
        if after <= before:
            os.utime(target, ns=(before + 1_000_000, before + 1_000_000))

    def without_alice_key(self) -> str:
        assert ALICE_OFF[0] in self.good
        return self.good.replace(*ALICE_OFF)


@pytest.fixture
def directory(tmp_path: Path) -> Directory:
    return Directory(tmp_path / "examples")


@pytest.fixture
def iam(directory: Directory) -> IAM:
    return IAM.from_file(directory.path, store=MemoryStore())


@pytest.fixture
def reloader(iam: IAM) -> Iterator[DirectoryReloader]:
    reloader = DirectoryReloader(iam, poll_interval=POLL)
    yield reloader
    reloader.stop()


entered = threading.Event()
release = threading.Event()


@public
def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")
def get_order(request: Request) -> JSONResponse:
    return JSONResponse({"order": request.path_params["order_id"]})


@permission("orders:GetOrder", resource="arn:app:orders::{account}:order/slow")
def slow(request: Request) -> JSONResponse:
    entered.set()
    release.wait(10)
    return JSONResponse({"finished": True})


class Client:
    """A synchronous HTTP client over the ASGI app (httpx's ASGI transport); safe to use from several threads."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE) as client:
                return await client.request(method, path, headers=headers)

        return asyncio.run(send())

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.request("GET", path, headers)

    def post(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.request("POST", path, headers)


def serve(iam: IAM, reloader: DirectoryReloader) -> Client:
    """The admin endpoint at /admin and a small protected API, as a deployment would mount them."""
    api = IAMMiddleware(Starlette(routes=[Route("/health", health), Route("/orders/slow", slow),
                                          Route("/orders/{order_id}", get_order)]), iam=iam, undeclared="error")
    return Client(Starlette(routes=[Mount("/admin", app=admin_app(iam, reloader)), Mount("/", app=api)]))


def sign(method: str, path: str, key: tuple[str, str]) -> dict[str, str]:
    aws = AWSRequest(method=method, url=f"{BASE}{path}")
    SigV4Auth(Credentials(*key), "orders", "local").add_auth(aws)
    return dict(aws.headers.items())


def call(client: Client, method: str, path: str, key: tuple[str, str] | None = ALICE_KEY) -> int:
    headers = sign(method, path, key) if key is not None else {}
    return client.request(method, path, headers=headers).status_code


def alice_key_active(iam: IAM) -> bool:
    found = iam.snapshot.access_key(ALICE_KEY[0])
    assert found is not None
    return found[0].active


def alice_may(iam: IAM, action: str) -> bool:
    alice = iam.snapshot.user("alice")
    assert alice is not None
    principal = iam.snapshot.user_principal(alice, CredentialKind.ACCESS_KEY, access_key_id=ALICE_KEY[0])
    return iam.authorize(principal, action, f"arn:app:orders::{ACCOUNT}:order/42").allowed


def version_is(iam: IAM, version: int) -> Callable[[], bool]:
    return lambda: iam.snapshot.version == version


def after_check(reloader: DirectoryReloader, condition: Callable[[], bool]) -> Callable[[], bool]:
    """A probe for ``wait_for``: let ``reloader`` look for changes (as a request would), then test ``condition``."""

    def probe() -> bool:
        reloader.check(time.time())
        return condition()

    return probe


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# Explicit reload and file changes --------------------------------------------------------------------------------
def test_an_explicit_reload_puts_the_new_file_in_force(directory: Directory, iam: IAM,
                                                       reloader: DirectoryReloader) -> None:
    client = serve(iam, reloader)
    assert call(client, "GET", "/orders/42") == 200
    directory.write(directory.without_alice_key())
    assert call(client, "GET", "/orders/42") == 200  # nothing changes until the reload (or the next poll)
    result = reloader.reload()
    assert result.ok and result.errors is None
    assert result.version == iam.snapshot.version == 2
    assert call(client, "GET", "/orders/42") == 401


def test_a_changed_file_is_loaded_by_the_first_check_after_poll_interval(directory: Directory, iam: IAM,
                                                                         reloader: DirectoryReloader) -> None:
    now = time.time()
    directory.write(directory.without_alice_key())
    reloader.check(now)
    assert alice_key_active(iam)  # looked at no more than every poll_interval
    reloader.check(now + POLL)
    assert not alice_key_active(iam)
    assert iam.snapshot.version == 2
    reloader.check(now + 2 * POLL)
    assert iam.snapshot.version == 2  # an unchanged file is not loaded again


def test_a_changed_policy_file_the_directory_names_is_loaded_too(directory: Directory, iam: IAM,
                                                                 reloader: DirectoryReloader) -> None:
    assert not alice_may(iam, "orders:DeleteOrder")
    policy = directory.path.parent / "policies" / "orders-read-only.json"
    directory.write(policy.read_text().replace('"orders:ListOrders"', '"orders:ListOrders", "orders:DeleteOrder"'),
                    policy)
    reloader.check(time.time() + POLL)
    assert iam.snapshot.version == 2
    assert alice_may(iam, "orders:DeleteOrder")


def test_the_background_thread_loads_a_change_without_any_request(directory: Directory, iam: IAM) -> None:
    reloader = DirectoryReloader(iam, poll_interval=0.05, max_staleness=1.0)
    reloader.start()
    try:
        directory.write(directory.without_alice_key())
        assert wait_for(lambda: not alice_key_active(iam))
    finally:
        reloader.stop()


# Invalid files ---------------------------------------------------------------------------------------------------
def test_an_invalid_file_is_refused_with_its_errors_logged_and_the_last_good_stays(
    directory: Directory, iam: IAM, reloader: DirectoryReloader, caplog: pytest.LogCaptureFixture
) -> None:
    good = iam.snapshot
    broken = directory.without_alice_key().replace('groups = ["readers"]', 'groups = ["no-such-group"]', 1)
    directory.write(broken)
    with caplog.at_level(logging.ERROR, logger="iam_middleware.reload"):
        result = reloader.reload()
    assert not result.ok
    assert result.version == 1
    assert result.errors is not None and "no-such-group" in result.errors
    assert "no-such-group" in caplog.text and "stays in force" in caplog.text
    assert reloader.last_error == result.errors
    assert iam.snapshot is good  # the valid part of the file (alice's key switched off) is not applied either
    assert alice_key_active(iam)

    directory.write(directory.without_alice_key())
    assert reloader.reload().ok
    assert reloader.last_error is None
    assert not alice_key_active(iam)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda text: text.replace('service = "orders"', 'service = "orders"\nno_such_setting = 1'), "no_such_setting"),
        (lambda text: text.replace('session_secret = "', 'session_secret = "short"\n# "'), "session_secret"),
        (lambda text: text + "\n[users.eve]\naccess_keys = [{ id = 12 }]\n", "users.eve"),
        (lambda text: text.replace("[users.bob]", "[users.bob\n"), "TOML"),
    ],
    ids=["unknown-setting", "weak-session-secret", "bad-access-key", "toml-syntax"],
)
def test_every_part_of_the_file_is_validated_before_anything_is_swapped(
    directory: Directory, iam: IAM, reloader: DirectoryReloader, change: Callable[[str], str], named: str
) -> None:
    good = iam.snapshot
    directory.write(change(directory.without_alice_key()))
    result = reloader.reload()
    assert not result.ok
    assert result.errors is not None and named in result.errors
    assert iam.snapshot is good


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(min_value=0.0, max_value=1.0))
def test_a_file_caught_half_written_is_never_half_applied(directory: Directory, iam: IAM,
                                                          reloader: DirectoryReloader, cut: float) -> None:
    text = directory.without_alice_key()
    before = iam.snapshot
    directory.write(text[: int(len(text) * cut)])
    try:
        expected: IAM | None = IAM.from_file(directory.path)  # what a fresh start would make of the file
    except ValueError:
        expected = None
    result = reloader.reload()
    assert result.ok is (expected is not None)
    if expected is None:
        assert iam.snapshot is before
    else:
        assert set(iam.snapshot.users) == set(expected.snapshot.users)
        assert iam.snapshot.version == before.version + 1


def test_a_settings_change_is_reported_and_applies_at_the_next_restart(
    directory: Directory, iam: IAM, reloader: DirectoryReloader, caplog: pytest.LogCaptureFixture
) -> None:
    directory.write(directory.without_alice_key().replace('service = "orders"', 'service = "shop"'))
    with caplog.at_level(logging.WARNING, logger="iam_middleware.reload"):
        result = reloader.reload()
    assert result.ok  # the directory part is applied: a revocation must not wait for a restart
    assert not alice_key_active(iam)
    assert reloader.restart_needed
    assert iam.settings.service == "orders"
    assert "next restart" in caplog.text


# Signal ----------------------------------------------------------------------------------------------------------
@pytest.fixture
def sighup() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGHUP)
    yield
    signal.signal(signal.SIGHUP, previous)


@pytest.mark.usefixtures("sighup")
def test_sighup_reloads(directory: Directory, iam: IAM, reloader: DirectoryReloader) -> None:
    reloader.install_signal_handler()
    directory.write(directory.without_alice_key())
    os.kill(os.getpid(), signal.SIGHUP)
    assert wait_for(lambda: not alice_key_active(iam))


@pytest.mark.usefixtures("sighup")
def test_sighup_during_a_reload_waits_for_it_instead_of_hanging(directory: Directory, iam: IAM,
                                                                 reloader: DirectoryReloader) -> None:
    reloader.install_signal_handler()
    directory.write(directory.without_alice_key())
    # The handler runs on the main thread between two bytecodes; here the main thread is inside a reload (holds
    # its lock), as it is on the request path of a single-threaded server. Reloading in the handler would hang.
    with reloader._lock:
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.05)
        assert alice_key_active(iam)
    assert wait_for(lambda: not alice_key_active(iam))


# Admin endpoint --------------------------------------------------------------------------------------------------
def test_the_admin_endpoint_reloads_for_an_authorized_operator_only(directory: Directory, iam: IAM,
                                                                    reloader: DirectoryReloader) -> None:
    client = serve(iam, reloader)
    directory.write(directory.without_alice_key())
    assert call(client, "POST", "/admin/reload", key=None) == 401
    assert call(client, "POST", "/admin/reload", key=ALICE_KEY) == 403
    assert call(client, "GET", "/admin/status", key=ALICE_KEY) == 403
    assert alice_key_active(iam)

    answer = client.post("/admin/reload", headers=sign("POST", "/admin/reload", OPS_KEY))
    assert answer.status_code == 200
    assert answer.json() == {"reloaded": True, "version": 2}
    assert call(client, "GET", "/orders/42") == 401
    status = client.get("/admin/status", headers=sign("GET", "/admin/status", OPS_KEY)).json()
    assert status == {"version": 2, "source": str(directory.path), "serving": True, "last_error": None,
                      "restart_needed": False}


def test_the_admin_endpoint_answers_422_with_the_errors_of_an_invalid_file(directory: Directory, iam: IAM,
                                                                           reloader: DirectoryReloader) -> None:
    client = serve(iam, reloader)
    directory.write(directory.good.replace('groups = ["readers"]', 'groups = ["no-such-group"]', 1))
    answer = client.post("/admin/reload", headers=sign("POST", "/admin/reload", OPS_KEY))
    assert answer.status_code == 422
    body = answer.json()
    assert body["reloaded"] is False and body["version"] == 1
    assert any("no-such-group" in line for line in body["errors"])
    status = client.get("/admin/status", headers=sign("GET", "/admin/status", OPS_KEY)).json()
    assert "no-such-group" in status["last_error"]
    assert call(client, "GET", "/orders/42") == 200  # the last good directory serves on


# In-flight requests ----------------------------------------------------------------------------------------------
def test_a_request_in_flight_finishes_and_the_next_one_sees_the_reload(directory: Directory, iam: IAM,
                                                                       reloader: DirectoryReloader) -> None:
    client = serve(iam, reloader)
    entered.clear()
    release.clear()
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(call, client, "GET", "/orders/slow")
        assert entered.wait(10)  # authorized, and running in the endpoint
        directory.write(directory.without_alice_key())
        assert reloader.reload().ok
        release.set()
        assert in_flight.result(10) == 200
    assert call(client, "GET", "/orders/42") == 401


def test_requests_racing_reloads_are_decided_by_one_whole_directory_each(directory: Directory, iam: IAM,
                                                                         reloader: DirectoryReloader) -> None:
    texts = [directory.good, directory.without_alice_key()]
    client = serve(iam, reloader)
    stop = threading.Event()

    def flip() -> int:
        flips = 0
        while not stop.is_set():
            flips += 1
            directory.write(texts[flips % 2])
            assert reloader.reload().ok
        return flips

    with ThreadPoolExecutor(1) as pool:
        flipper = pool.submit(flip)
        statuses = [call(client, "GET", "/orders/42") for _ in range(200)]
        stop.set()
        assert flipper.result(10) > 0
    assert set(statuses) <= {200, 401}  # allowed by one directory, refused by the other; never an error


# No valid directory at all ---------------------------------------------------------------------------------------
def test_without_any_valid_directory_everything_is_refused_with_the_reason(
    directory: Directory, caplog: pytest.LogCaptureFixture
) -> None:
    directory.write(directory.good.replace('groups = ["readers"]', 'groups = ["no-such-group"]', 1))
    with caplog.at_level(logging.ERROR, logger="iam_middleware.reload"):
        reloader = DirectoryReloader.open(directory.path, store=MemoryStore(), poll_interval=POLL)
    try:
        assert "no-such-group" in caplog.text
        assert not reloader.serving
        iam = reloader.iam
        client = serve(iam, reloader)
        assert call(client, "GET", "/health", key=None) == 200  # public routes need no directory
        for key in (ALICE_KEY, OPS_KEY, None):
            answer = client.get("/orders/42", headers=sign("GET", "/orders/42", key) if key else {})
            assert answer.status_code == 503
            assert answer.json()["error"] == "NoValidDirectory"
            assert "directory" in answer.json()["message"]
            assert "no-such-group" not in answer.text  # the operator's log has the details, not the caller
            assert int(answer.headers["retry-after"]) >= 1
        with pytest.raises(NoDirectoryError):
            iam.login("bob", "correct horse battery staple", "123456")

        directory.write(directory.good)
        reloader.check(time.time() + POLL)
        assert reloader.serving
        assert call(client, "GET", "/orders/42") == 200
        assert call(client, "GET", "/admin/status", key=OPS_KEY) == 200
    finally:
        reloader.stop()


def test_without_readable_settings_at_start_a_fixed_file_asks_for_a_restart(
    directory: Directory, caplog: pytest.LogCaptureFixture
) -> None:
    directory.write(directory.good.replace("[users.bob]", "[users.bob\n"))
    reloader = DirectoryReloader.open(directory.path, store=MemoryStore(), poll_interval=POLL)
    try:
        client = serve(reloader.iam, reloader)
        directory.write(directory.good)
        with caplog.at_level(logging.ERROR, logger="iam_middleware.reload"), pytest.raises(NoDirectoryError):
            reloader.check(time.time() + POLL)
        assert "restart" in caplog.text
        assert not reloader.serving and reloader.restart_needed
        assert client.get("/orders/42", headers=sign("GET", "/orders/42", ALICE_KEY)).status_code == 503
    finally:
        reloader.stop()


# Shared state ----------------------------------------------------------------------------------------------------
def test_a_reload_in_one_process_is_seen_by_another_through_redis(directory: Directory, redis_url: str) -> None:
    stores = [RedisStore(redis_url), RedisStore(redis_url)]
    first, second = (IAM.from_file(directory.path, store=store) for store in stores)
    # Hour-long polls: only the announcement can tell the second process.
    reloaders = [DirectoryReloader(iam, poll_interval=3600, max_staleness=3600) for iam in (first, second)]
    try:
        directory.write(directory.without_alice_key())
        assert reloaders[0].reload().ok
        assert wait_for(after_check(reloaders[1], lambda: not alice_key_active(second)))
        assert second.snapshot.version == 2
    finally:
        for reloader in reloaders:
            reloader.stop()
        for store in stores:
            store.close()


def test_announcements_are_seen_after_redis_restarts_empty(directory: Directory, redis_server: RedisServer,
                                                           redis_url: str) -> None:
    stores = [RedisStore(redis_url), RedisStore(redis_url)]
    first, second = (IAM.from_file(directory.path, store=store) for store in stores)
    reloaders = [DirectoryReloader(iam, poll_interval=3600, max_staleness=3600) for iam in (first, second)]
    try:
        for round_ in range(3):  # the shared counter climbs to 3, and the second process follows each step ...
            assert reloaders[0].reload().ok
            assert wait_for(after_check(reloaders[1], version_is(second, round_ + 2)))
        redis_server.stop()  # ... and starts again from 0: a lower number must still read as a change
        redis_server.start()
        directory.write(directory.without_alice_key())

        def announced() -> bool:
            # The second process re-subscribes within a second of the restart; a reload announced before that is
            # seen at its next poll instead, so announce until one gets through.
            assert reloaders[0].reload().ok
            return wait_for(after_check(reloaders[1], lambda: not alice_key_active(second)), 0.3)

        assert wait_for(announced)
    finally:
        for reloader in reloaders:
            reloader.stop()
        for store in stores:
            store.close()


def test_while_redis_is_down_file_changes_load_and_signed_requests_pass(
    directory: Directory, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")  # nobody listens there
    iam = IAM.from_file(directory.path, store=store)
    reloader = DirectoryReloader(iam, poll_interval=POLL, max_staleness=2 * POLL)
    try:
        client = serve(iam, reloader)
        with caplog.at_level(logging.WARNING, logger="iam_middleware.reload"):
            for step in range(1, 5):  # well past max_staleness
                reloader.check(time.time() + step * POLL)
            assert call(client, "GET", "/orders/42") == 200
        assert caplog.text.count("cannot be seen") == 1  # said once, not on every request
        directory.write(directory.without_alice_key())
        reloader.check(time.time() + 10 * POLL)
        assert not alice_key_active(iam)
        assert call(client, "GET", "/orders/42") == 401
    finally:
        reloader.stop()
        store.close()


def test_a_store_failure_escaping_authentication_is_a_503_with_retry_after(iam: IAM,
                                                                          reloader: DirectoryReloader) -> None:
    def unreachable(now: float) -> None:
        raise StateUnavailableError("the test store does not answer")

    iam.snapshots.refresh_hooks.append(unreachable)
    answer = serve(iam, reloader).get("/orders/42", headers=sign("GET", "/orders/42", ALICE_KEY))
    assert answer.status_code == 503
    assert answer.json()["error"] == "ServiceUnavailable"
    assert int(answer.headers["retry-after"]) >= 1
    assert "test store" not in answer.text
