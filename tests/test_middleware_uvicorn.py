"""IAMMiddleware behind a real uvicorn server on a loopback port: httpx and real curl (--aws-sigv4) over HTTP, raw
request lines for path tricks, and the websockets client for handshakes, refusals and expiry. Also: a failed
start-up audit stops the server from serving at all."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from _redis_server import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from test_middleware import (
    ACCOUNT,
    KEYS,
    NOW,
    bearer,
    login,
    make_iam,
    order_routes,
    protect,
    sigv4,
)
from test_middleware_websocket import LiveClock, feed, purge_feed, ticker
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from iam_middleware import IAM, permission

SECRET = "the admin page"
admin_calls: list[str] = []


@permission("orders:PurgeOrders", "arn:{partition}:orders::{account}:admin")
async def admin(request: Request) -> Response:
    admin_calls.append(request.url.path)
    return PlainTextResponse(SECRET)


def app() -> Starlette:
    """The orders app of test_middleware, with the websocket feeds and a protected /admin."""
    routes = [r for r in order_routes() if getattr(r, "path", "") != "/admin"]
    return Starlette(routes=[*routes, Route("/admin", admin), WebSocketRoute("/feed", feed),
                             WebSocketRoute("/ticker", ticker), WebSocketRoute("/purge", purge_feed)])


class Server:
    """uvicorn in a thread on a free loopback port (the websockets-sansio protocol), stopped on exit."""

    def __init__(self, application: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(application, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                                ws="websockets-sansio", access_log=False)
        self.server = uvicorn.Server(config)
        self.exit_code: int | str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.http = f"http://127.0.0.1:{self.port}"
        self.ws = f"ws://127.0.0.1:{self.port}"

    def _run(self) -> None:
        try:
            self.server.run()
        except SystemExit as exc:  # uvicorn exits when the application's start-up fails
            self.exit_code = exc.code

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def clock() -> LiveClock:
    return LiveClock(NOW)


@pytest.fixture(scope="module")
def iam(clock: LiveClock) -> IAM:
    return make_iam(clock)


@pytest.fixture(scope="module")
def server(iam: IAM) -> Iterator[Server]:
    with Server(protect(app(), iam=iam)) as running:
        yield running


@pytest.fixture(scope="module")
def alice(iam: IAM, clock: LiveClock) -> str:
    return login(iam, "alice", now=clock())


@pytest.fixture(scope="module")
def carol(iam: IAM, clock: LiveClock) -> str:
    return login(iam, "carol", now=clock())


# HTTP --------------------------------------------------------------------------------------------------------------


def test_http_refusals_and_decisions_over_the_wire(server: Server, alice: str) -> None:
    with httpx.Client(base_url=server.http) as http:
        anonymous = http.get("/orders/42")
        allowed = http.get("/orders/42", headers=bearer(alice))
        head = http.head("/orders/42", headers=bearer(alice))
        write = http.post("/orders", headers=bearer(alice))
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="iam-middleware", AWS4-HMAC-SHA256'
    assert anonymous.json()["error"] == "MissingAuthenticationToken"
    assert allowed.status_code == 200 and allowed.json()["principal"] == f"arn:app:iam::{ACCOUNT}:user/alice"
    assert head.status_code == 200 and head.content == b""
    assert write.status_code == 403 and write.json()["error"] == "AccessDenied"


def test_botocore_signed_requests_over_the_wire(server: Server, clock: LiveClock) -> None:
    body = b'{"item": "widget"}'
    url = f"{server.http}/orders"
    with httpx.Client() as http:
        read = http.get(f"{url}/42", headers=sigv4("GET", f"{url}/42", at=clock()))
        write = http.post(url, content=body, headers=sigv4("POST", url, user="carol", body=body, at=clock()))
    assert read.status_code == 200 and read.json()["kind"] == "access-key"
    assert write.status_code == 200 and write.json()["body"] == body.decode()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_aws_sigv4_against_the_middleware() -> None:
    # curl signs with the real clock, so this server's IAM reads it too.
    with Server(protect(app(), iam=make_iam(time.time))) as server:
        def curl(user: str, *args: str) -> tuple[int, dict[str, Any]]:
            key_id, secret = KEYS[user]
            result = subprocess.run(
                ["curl", "-sS", "--aws-sigv4", "aws:amz:local:orders", "--user", f"{key_id}:{secret}",
                 "-w", "\n%{http_code}", *args], capture_output=True, text=True, timeout=30, check=True)
            text, _, status = result.stdout.rpartition("\n")
            return int(status), json.loads(text)

        status, read = curl("alice", f"{server.http}/orders/42")
        assert status == 200 and read["principal"] == f"arn:app:iam::{ACCOUNT}:user/alice"
        status, denied = curl("alice", "-X", "POST", "-H", "content-type: application/json", "-d", '{"a": 1}',
                              f"{server.http}/orders")
        assert status == 403 and denied["error"] == "AccessDenied"
        status, written = curl("carol", "-X", "POST", "-H", "content-type: application/json", "-d", '{"a": 1}',
                               f"{server.http}/orders")
        assert status == 200 and written["body"] == '{"a": 1}'


TRICKS = [b"/public/..%2Fadmin", b"//admin", b"/%61dmin", b"/admin%2F", b"/admin/", b"/x/../admin", b"/./admin",
          b"/admin;x=1", b"/admin%00", b"/ADMIN", b"/admin%3Fx", b"/admin%23", b"/x/..%5Cadmin", b"/%2561dmin",
          b"/admin\xff", b"/admin/..;/admin"]


def raw_request(port: int, target: bytes, headers: bytes = b"") -> tuple[int, bytes]:
    """Send one request line exactly as given; the status and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize("target", TRICKS, ids=[t.decode("latin-1") for t in TRICKS])
def test_path_tricks_over_the_wire_never_reach_the_protected_route(server: Server, carol: str, target: bytes) -> None:
    admin_calls.clear()
    for headers in (b"", f"Authorization: Bearer {carol}\r\n".encode()):
        status, body = raw_request(server.port, target, headers)
        assert status in (400, 401, 403, 404), (target, status, body)
        assert SECRET.encode() not in body
    assert admin_calls == []


# WebSocket ---------------------------------------------------------------------------------------------------------


def test_a_websocket_with_a_credential_is_accepted_and_sees_its_principal(server: Server, alice: str) -> None:
    with connect(f"{server.ws}/feed", additional_headers=bearer(alice), open_timeout=5) as ws:
        greeting = json.loads(ws.recv(timeout=5))
        ws.send("hello")
        echoed = ws.recv(timeout=5)
    assert greeting == {"principal": f"arn:app:iam::{ACCOUNT}:user/alice", "action": "orders:ListOrders"}
    assert echoed == "hello"


@pytest.mark.parametrize(("who", "path", "status", "error"), [
    (None, "/feed", 401, "MissingAuthenticationToken"),
    ("junk", "/feed", 401, "MalformedToken"),
    ("carol", "/purge", 403, "AccessDenied"),  # carol may not purge, websocket or not
])
def test_a_refused_websocket_handshake_is_an_http_answer(server: Server, carol: str, who: str | None, path: str,
                                                         status: int, error: str) -> None:
    headers = {None: {}, "junk": bearer("not-a-token"), "carol": bearer(carol)}[who]
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{server.ws}{path}", additional_headers=headers, open_timeout=5)
    response = refused.value.response
    assert response.status_code == status
    assert json.loads(response.body)["error"] == error
    assert ("WWW-Authenticate" in response.headers) == (status == 401)


def test_a_cross_site_websocket_with_the_session_cookie_is_refused(server: Server, iam: IAM, clock: LiveClock) -> None:
    cookie = {"Cookie": f"{iam.settings.cookie_name}={login(iam, 'bob', now=clock())}"}
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{server.ws}/feed", additional_headers=cookie, origin=Origin("https://evil.example"), open_timeout=5)
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body)["error"] == "CSRFCheckFailed"
    with connect(f"{server.ws}/feed", additional_headers=cookie, origin=Origin(server.http), open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["principal"] == f"arn:app:iam::{ACCOUNT}:user/bob"


@pytest.mark.parametrize("path", ["/feed", "/ticker"])
def test_the_server_closes_a_websocket_when_its_credential_expires(path: str) -> None:
    clock = LiveClock(NOW)
    iam = make_iam(clock)
    token = login(iam, "alice", now=NOW)
    clock.set(NOW + iam.settings.session_ttl - 1.0)
    with Server(protect(app(), iam=iam)) as server:
        with connect(f"{server.ws}{path}", additional_headers=bearer(token), open_timeout=5) as ws:
            started = time.monotonic()
            with pytest.raises(ConnectionClosedError) as closed:
                while time.monotonic() - started < 10:  # a ticker that is never closed would run forever
                    ws.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "CredentialExpired")
        assert time.monotonic() - started < 5


# Start-up --------------------------------------------------------------------------------------------------------


def test_a_failed_start_up_audit_keeps_the_server_from_serving() -> None:
    middleware = protect(app(), undeclared="error")
    server = Server(middleware)
    with pytest.raises(RuntimeError, match="did not start"):
        server.__enter__()
    server.thread.join(10)
    assert not server.thread.is_alive()
    assert server.exit_code == 3  # uvicorn's start-up failure
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
