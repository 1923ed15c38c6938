"""Shared helpers for the adapter tests (no tests here): the demo directory at a fixed instant, logins with real
one-time codes, requests signed by real botocore, real servers on loopback ports, and raw HTTP for path tricks."""

from __future__ import annotations

import datetime
import http.client
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.simple_server import make_server as make_wsgiref_server

import botocore.auth
import pyotp
import pytest
import uvicorn
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.serving import make_server as make_werkzeug_server

from iam_middleware import IAM

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "iam.toml"
NOW = 1_780_000_000.0  # 2026-05-28T20:26:40Z
PASSWORD = "correct horse battery staple"
SEEDS = {
    "alice": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    "bob": "S7OGSI66TRZN23GL34ETDX36DJYB2AJM",
    "carol": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ",
}
KEYS = {
    "alice": ("AKIADEMOALICE0000001", "demo/alice/wJalrXUtnFEMI/K7MDENG/bPxRfiCY"),
    "carol": ("AKIADEMOCAROL0000001", "demo/carol/je7MtGbClwBF/2Zp9Utk/h3yCo8nvb"),
}
ORDER = "arn:app:orders::{account}:order/{order_id}"
ARN = {name: f"arn:app:iam::111122223333:user/{name}" for name in SEEDS}
#: What the protected /admin view answers; no path trick may ever get it.
ADMIN_BODY = "admin-view-ran"
ERROR_KEYS = {"error", "message", "request_id"}

#: docs/security.md R1-R5, R13: raw request targets that must never reach the /admin view as a caller it denies.
PATH_TRICKS = [
    "/admin%2F", "/admin%2f", "/%2Fadmin", "/admin%5C", "/%5Cadmin", "/admin%252F", "/%2561dmin", "/%61dmin",
    "/./admin", "/public/../admin", "/public/%2e%2e/admin", "/public/..;/admin", "/admin/.", "//admin", "///admin",
    "/admin//", "/ADMIN", "/Admin", "/admin%00", "/admin%00.json", "/admin;x=1", "/admin/", "/admin%3F", "/admin%23",
    "/%EF%BC%A1dmin", "/admin%20", "/admin..", "/admin?x=/admin",
]


#: Pieces of request targets aimed at /admin, for property tests: every join of them is a path trick or a miss.
PATH_PIECES = ["/", "admin", "ADMIN", "dmin", "%61", "%2F", "%2f", "%5C", "%25", "%2e", "%2E", ".", "..", ";",
               "%00", "%3F", "%23", "%20", "public", "x=1", "~", "%C3%A9", "%FF"]


async def asgi_get(app: Any, raw_path: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
    """Call an ASGI app with the scope uvicorn builds for this raw path (percent-decoded ``path``), no client in
    between to normalize it; return the status and body."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": unquote(raw_path.decode("ascii")), "raw_path": raw_path, "root_path": "", "query_string": b"",
        "headers": [(b"host", b"testserver"), *((k.lower().encode(), v.encode()) for k, v in headers.items())],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def demo_iam(clock: Any = None) -> IAM:
    """The demo directory, at the fixed instant NOW unless another clock is given."""
    return IAM.from_file(EXAMPLES, clock=clock or (lambda: NOW))


def login(iam: IAM, user: str) -> str:
    """A session token from a real password + TOTP login at the IAM's clock."""
    now = iam.clock()
    return iam.login(user, PASSWORD, pyotp.TOTP(SEEDS[user]).at(now), now=now).token


def freeze_botocore(monkeypatch: pytest.MonkeyPatch, now: float = NOW) -> None:
    """Make botocore sign at ``now`` (it reads the clock through ``botocore.auth.get_current_datetime``)."""
    when = datetime.datetime.fromtimestamp(now, datetime.UTC).replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: when)


def botocore_headers(method: str, url: str, user: str, *, body: bytes = b"",
                     headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """The headers real botocore's SigV4Auth sends for this request with ``user``'s demo key (orders, local)."""
    key, secret = KEYS[user]
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    botocore.auth.SigV4Auth(Credentials(key, secret), "orders", "local").add_auth(request)
    return {name: value for name, value in request.headers.items()}


def raw_request(port: int, method: str, target: str, headers: Mapping[str, str] | None = None,
                body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """Send the request target byte for byte (no client-side normalization) and read the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@contextmanager
def uvicorn_server(app: Any) -> Iterator[int]:
    """Serve an ASGI app with a real uvicorn on a free loopback port (lifespan on), in a thread; yield the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="none", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def werkzeug_server(app: Any) -> Iterator[int]:
    """Serve a WSGI app with Werkzeug's threaded server (it passes RAW_URI) on a free loopback port."""
    server = make_werkzeug_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.port
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        """No access log on stderr."""


@contextmanager
def wsgiref_server(app: Any) -> Iterator[int]:
    """Serve a WSGI app with the standard library's wsgiref (no RAW_URI: the raw path is rebuilt from PATH_INFO)."""
    server: WSGIServer = make_wsgiref_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
