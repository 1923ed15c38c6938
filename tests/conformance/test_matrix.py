"""One table of requests through every shell: the same status, error code and caller for each.

Each shell serves the same API (``_apps.py``) over the same directory at the same instant. Requests are built
byte for byte (an ASGI scope, a WSGI environ), so nothing between the table and the shell normalizes them: a
lower-case method, a repeated query parameter or header reach the shell as a client sent them. Where a shell must
answer otherwise, the row says so and why (``differs``); every other cell is the row's one answer.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import anyio
import pyotp
import pytest
from adapters._support import ARN, NOW, PASSWORD, SEEDS, demo_iam

from iam_middleware import IAM
from iam_middleware.testing import session_token, sign_request, web_identity_token

from . import _apps, _gateways

SHELLS = ("starlette", "fastapi", "fastapi-alone", "flask", "django-wsgi", "django-asgi", "authz-nginx", "authz-envoy")
ASGI = ("starlette", "fastapi", "fastapi-alone", "django-asgi", "authz-nginx", "authz-envoy")
WSGI = ("flask", "django-wsgi")
PEER = "198.51.100.7"


@dataclass(frozen=True)
class Wire:
    """A request as it arrives: method and target as sent, headers in order (repeats kept), body."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    websocket: bool = False


ANY: Any = object()  # the row does not say who the endpoint saw


@dataclass(frozen=True)
class Answer:
    status: int
    code: str | None = None
    by: str | None = ANY
    body: Mapping[str, Any] = field(default_factory=dict)


# Callers -------------------------------------------------------------------------------------------------------


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def alice(iam: IAM) -> tuple[tuple[str, str], ...]:
    return bearer(session_token(iam, "alice"))


def bob(iam: IAM) -> tuple[tuple[str, str], ...]:
    return bearer(session_token(iam, "bob"))


def signed(iam: IAM, method: str, target: str, body: bytes = b"", user: str = "carol") -> tuple[tuple[str, str], ...]:
    request = sign_request(iam, method, f"http://testserver{target}", user=user, body=body)
    return tuple((k.lower(), v) for k, v in request.headers.items())


def tampered(iam: IAM, method: str, target: str) -> tuple[tuple[str, str], ...]:
    headers = dict(signed(iam, method, target))
    headers["authorization"] = headers["authorization"][:-4] + ("0000" if not headers["authorization"].endswith(
        "0000") else "1111")
    return tuple(headers.items())


def cookie(iam: IAM, user: str, origin: str | None) -> tuple[tuple[str, str], ...]:
    headers = [("cookie", f"{iam.settings.cookie_name}={session_token(iam, user)}")]
    if origin is not None:
        headers.append(("origin", origin))
    return tuple(headers)


def partner(iam: IAM) -> tuple[tuple[str, str], ...]:
    return bearer(web_identity_token(iam, subject="p-1", claims={"team": "blue"}))


JSON = (("content-type", "application/json"),)


def login_body(code: str) -> tuple[tuple[tuple[str, str], ...], bytes]:
    return JSON, json.dumps({"username": "alice", "password": PASSWORD, "code": code}).encode()


ASSUME_PARTNER = json.dumps({"RoleArn": "arn:app:iam::111122223333:role/partner", "RoleSessionName": "s1"}).encode()


# The table -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    request: Callable[[IAM], Wire]
    expect: Answer
    differs: Mapping[str, Answer | None] = field(default_factory=dict)  # None: the shell cannot take this request
    why: str = ""  # why the shells in ``differs`` must answer otherwise

    def expected(self, shell: str) -> Answer | None:
        return self.differs.get(shell, self.expect)


_ALONE = "without the middleware only routes that depend on Authorize are checked; FastAPI answers the rest"
_WSGI_JOINS = ("WSGI servers join a repeated header into one value, which the gate and the app then both read; so "
               "does Envoy for the authorizer (the upstream behind it reads the merged value too)")
NO_WS: dict[str, Answer | None] = {"flask": None, "django-wsgi": None, "django-asgi": None, "authz-nginx": None,
                                   "authz-envoy": None}
_NO_WS = ("Flask and Django (without Channels) have no websockets; the simulated gateways speak plain HTTP only "
          "(the authorizer's handshakes run through the real nginx: tests/gateways/test_nginx.py)")
_NO_BODY = ("nginx never forwards the body to auth_request: a signature over a payload is refused as unverifiable "
            "(docs/gateways.md)")
_ENVOY_JOINS = {"authz-envoy": Answer(401, "InvalidToken")}
_WS_CLOSE = ("the middleware answers a refused handshake with the refusal itself (the ASGI denial response); a "
             "dependency runs once the handshake is routed, so FastAPI alone closes it with 1008 and the code")

ROWS = [
    Row("anonymous", lambda iam: Wire("GET", "/orders/42"), Answer(401, "MissingAuthenticationToken")),
    Row("session bearer allowed", lambda iam: Wire("GET", "/orders/42", alice(iam)), Answer(200, by=ARN["alice"])),
    Row("session bearer denied", lambda iam: Wire("DELETE", "/orders/42", alice(iam)), Answer(403, "AccessDenied")),
    Row("session with MFA allowed", lambda iam: Wire("DELETE", "/orders/42", bob(iam)), Answer(200, by=ARN["bob"])),
    Row("bad bearer", lambda iam: Wire("GET", "/orders/42", bearer("abc.def.ghi")), Answer(401, "MalformedToken")),
    Row("two Authorization headers", lambda iam: Wire("GET", "/orders/42", alice(iam) + alice(iam)),
        Answer(401, "InvalidHeader"), {**{shell: Answer(401, "InvalidToken") for shell in WSGI}, **_ENVOY_JOINS},
        _WSGI_JOINS),
    Row("web identity token", lambda iam: Wire("GET", "/orders/42", partner(iam)),
        Answer(200, by="arn:app:sts::111122223333:assumed-role/partner/p-1")),
    Row("sigv4 allowed", lambda iam: Wire("GET", "/orders/42", signed(iam, "GET", "/orders/42")),
        Answer(200, by=ARN["carol"])),
    Row("sigv4 tampered", lambda iam: Wire("GET", "/orders/42", tampered(iam, "GET", "/orders/42")),
        Answer(401, "SignatureDoesNotMatch")),
    Row("sigv4 signed body", lambda iam: Wire("POST", "/orders/42/notes",
                                              signed(iam, "POST", "/orders/42/notes", b"note 1"), b"note 1"),
        Answer(200, by=ARN["carol"], body={"body": "note 1"}), {"authz-nginx": Answer(401, "PayloadNotForwarded")},
        _NO_BODY),
    Row("sigv4 body changed", lambda iam: Wire("POST", "/orders/42/notes",
                                               signed(iam, "POST", "/orders/42/notes", b"note 1"), b"note 2"),
        Answer(401, "SignatureDoesNotMatch"), {"authz-nginx": Answer(401, "PayloadNotForwarded")}, _NO_BODY),
    Row("cookie, cross-site unsafe", lambda iam: Wire("DELETE", "/orders/42", cookie(iam, "bob", "https://evil.example")),
        Answer(403, "CSRFCheckFailed")),
    Row("cookie, same site", lambda iam: Wire("DELETE", "/orders/42", cookie(iam, "bob", "http://127.0.0.1:8000")),
        Answer(200, by=ARN["bob"])),
    Row("public, anonymous", lambda iam: Wire("GET", "/health"), Answer(200, by=None)),
    Row("public, good credential", lambda iam: Wire("GET", "/health", alice(iam)), Answer(200, by=ARN["alice"]),
        {"fastapi-alone": Answer(200, by=None)}, _ALONE),
    Row("public, bad credential", lambda iam: Wire("GET", "/health", bearer("abc.def.ghi")), Answer(200, by=None)),
    Row("public, lower-case method", lambda iam: Wire("get", "/health"), Answer(400, "InvalidMethod"),
        {"fastapi-alone": Answer(405)}, _ALONE),
    Row("undeclared, anonymous", lambda iam: Wire("GET", "/undeclared"), Answer(401, "MissingAuthenticationToken"),
        {"fastapi-alone": Answer(200)}, _ALONE),
    Row("undeclared", lambda iam: Wire("GET", "/undeclared", alice(iam)), Answer(403, "AccessDenied"),
        {"fastapi-alone": Answer(200)}, _ALONE),
    Row("unknown path, anonymous", lambda iam: Wire("GET", "/nowhere"), Answer(401, "MissingAuthenticationToken"),
        {"fastapi-alone": Answer(404)}, _ALONE),
    Row("unknown path", lambda iam: Wire("GET", "/nowhere", alice(iam)), Answer(403, "AccessDenied"),
        {"fastapi-alone": Answer(404)}, _ALONE),
    Row("wrong method", lambda iam: Wire("PUT", "/orders/42", alice(iam)), Answer(403, "AccessDenied"),
        {"fastapi-alone": Answer(405)}, _ALONE),
    Row("HEAD as GET", lambda iam: Wire("HEAD", "/orders/42", alice(iam)), Answer(200),
        {"fastapi": Answer(403, "AccessDenied"), "fastapi-alone": Answer(405)},
        "FastAPI routes no HEAD to a GET route: the middleware finds no route, FastAPI alone answers 405"),
    Row("OPTIONS without preflight headers", lambda iam: Wire("OPTIONS", "/orders/42"),
        Answer(401, "MissingAuthenticationToken"), {"fastapi-alone": Answer(405)}, _ALONE),
    Row("lower-case method", lambda iam: Wire("get", "/orders/42", alice(iam)), Answer(400, "InvalidMethod"),
        {"fastapi-alone": Answer(405)}, _ALONE),
    Row("mixed-case delete", lambda iam: Wire("Delete", "/orders/42", bob(iam)), Answer(400, "InvalidMethod"),
        {"fastapi-alone": Answer(405)}, _ALONE),
    Row("ambiguous path", lambda iam: Wire("GET", "/orders/%2F42", alice(iam)), Answer(400, "InvalidPath"),
        {"fastapi-alone": Answer(404)}, _ALONE),
    Row("query parameter once", lambda iam: Wire("GET", "/search?team=red", alice(iam)),
        Answer(200, by=ARN["alice"], body={"team": "red"})),
    Row("query parameter twice", lambda iam: Wire("GET", "/search?team=red&team=blue", alice(iam)),
        Answer(400, "AmbiguousParameter")),
    Row("header once", lambda iam: Wire("GET", "/by-header", alice(iam) + (("x-team", "red"),)),
        Answer(200, body={"team": "red"})),
    Row("header twice", lambda iam: Wire("GET", "/by-header", alice(iam) + (("x-team", "red"), ("x-team", "blue"))),
        Answer(400, "AmbiguousParameter"),
        {shell: Answer(200, body={"team": "red,blue"}) for shell in (*WSGI, "authz-envoy")}, _WSGI_JOINS),
    Row("websocket with bearer", lambda iam: Wire("GET", "/ws", alice(iam), websocket=True), Answer(101),
        NO_WS, _NO_WS),
    Row("websocket anonymous", lambda iam: Wire("GET", "/ws", websocket=True),
        Answer(401, "MissingAuthenticationToken"),
        {**NO_WS, "fastapi-alone": Answer(1008, "MissingAuthenticationToken")}, _WS_CLOSE),
    Row("websocket cookie, cross-site", lambda iam: Wire("GET", "/ws", cookie(iam, "alice", "https://evil.example"),
                                                         websocket=True),
        Answer(403, "CSRFCheckFailed"), {**NO_WS, "fastapi-alone": Answer(1008, "CSRFCheckFailed")}, _WS_CLOSE),
    Row("websocket cookie, same site", lambda iam: Wire("GET", "/ws", cookie(iam, "alice", "http://127.0.0.1:8000"),
                                                        websocket=True), Answer(101), NO_WS, _NO_WS),
    Row("token service login", lambda iam: Wire("POST", "/sts/login", *login_body(pyotp.TOTP(SEEDS["alice"]).at(NOW))),
        Answer(200)),
    Row("token service wrong code", lambda iam: Wire("POST", "/sts/login", *login_body("000000")),
        Answer(401, "InvalidLogin")),
    Row("token service body too large", lambda iam: Wire("POST", "/sts/login", login_body("1")[0], b"x" * 70_000),
        Answer(413, "EntityTooLarge")),
    Row("token service AssumeRole", lambda iam: Wire("POST", "/sts/AssumeRole", alice(iam) + JSON, ASSUME_PARTNER),
        Answer(200)),
    Row("token service AssumeRole denied", lambda iam: Wire("POST", "/sts/AssumeRole", bob(iam) + JSON,
                                                            ASSUME_PARTNER), Answer(403, "AccessDenied")),
    Row("token service anonymous", lambda iam: Wire("POST", "/sts/AssumeRole", JSON, ASSUME_PARTNER),
        Answer(401, "MissingAuthenticationToken")),
    Row("token service wrong method", lambda iam: Wire("GET", "/sts/login"), Answer(405, "MethodNotAllowed")),
    Row("token service unknown operation", lambda iam: Wire("POST", "/sts/GetFederationToken", JSON, b"{}"),
        Answer(404, "NotFound")),
]


# Drivers -------------------------------------------------------------------------------------------------------


def _split(target: str) -> tuple[str, str]:
    path, _, query = target.partition("?")
    return path, query


async def _asgi(app: Any, wire: Wire) -> Answer:
    path, query = _split(wire.target)
    headers = [(b"host", b"testserver"), *((k.encode("latin-1"), v.encode("latin-1")) for k, v in wire.headers)]
    scope: dict[str, Any] = {
        "type": "websocket" if wire.websocket else "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": wire.method, "scheme": "ws" if wire.websocket else "http", "path": unquote(path),
        "raw_path": path.encode("latin-1"), "root_path": "", "query_string": query.encode("latin-1"),
        "headers": headers, "client": (PEER, 50000), "server": ("testserver", 80), "subprotocols": [],
        "extensions": {"websocket.http.response": {}} if wire.websocket else {},
    }
    incoming = ([{"type": "websocket.connect"}] if wire.websocket
                else [{"type": "http.request", "body": wire.body, "more_body": False}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        if not wire.websocket:
            await anyio.sleep_forever()  # the client waits for its answer (Django listens for a disconnect)
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if wire.websocket:
        kinds = [m["type"] for m in sent]
        if kinds and kinds[0] == "websocket.accept":
            data = json.loads(next(m["text"] for m in sent if m["type"] == "websocket.send"))
            return Answer(101, by=data.get("by"))
        start = next((m for m in sent if m["type"] == "websocket.http.response.start"), None)
        if start is None:
            close = next(m for m in sent if m["type"] == "websocket.close")
            return Answer(close["code"], close.get("reason"))
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "websocket.http.response.body")
        return _answer(start["status"], body)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return _answer(start["status"], body)


def _wsgi(app: Any, wire: Wire) -> Answer:
    path, query = _split(wire.target)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": wire.method, "SCRIPT_NAME": "", "PATH_INFO": unquote(path, encoding="latin-1"),
        "RAW_URI": wire.target, "QUERY_STRING": query, "SERVER_NAME": "testserver", "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": PEER, "HTTP_HOST": "testserver",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(wire.body),
        "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(wire.body)),
    }
    for name, value in wire.headers:
        key = name.upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"
        # As WSGI servers do (PEP 3333 leaves it to them): a repeated header arrives as one comma-joined value.
        environ[key] = f"{environ[key]},{value}" if key in environ and key.startswith("HTTP_") else value
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        status.append(line)
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return _answer(int(status[0].split()[0]), body)


def _answer(status: int, body: bytes) -> Answer:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    return Answer(status, data.get("error") if status >= 400 else None, data.get("by"), data)


def _app(shell: str, iam: IAM) -> Any:
    if shell == "starlette":
        return _apps.starlette_app(iam)
    if shell == "fastapi":
        return _apps.fastapi_app(iam, middleware=True)
    if shell == "fastapi-alone":
        return _apps.fastapi_app(iam, middleware=False)
    if shell.startswith("django"):
        return _apps.django_app(iam, asgi=shell == "django-asgi")
    if shell.startswith("authz-"):
        return _gateways.gateway_app(shell.removeprefix("authz-"), iam)
    return _apps.flask_app(iam)


def _call(shell: str, app: Any, wire: Wire) -> Answer:
    if shell in ASGI:
        return anyio.run(_asgi, app, wire)
    return _wsgi(app, wire)


CELLS = [pytest.param(row, shell, id=f"{row.name}-{shell}") for row in ROWS for shell in SHELLS
         if row.expected(shell) is not None]


@pytest.mark.parametrize(("row", "shell"), CELLS)
def test_every_shell_answers_alike(row: Row, shell: str) -> None:
    expected = row.expected(shell)
    assert expected is not None
    iam = demo_iam()
    answer = _call(shell, _app(shell, iam), row.request(iam))
    assert answer.status == expected.status, answer.body
    assert answer.code == expected.code, answer.body
    if expected.by is not ANY:
        assert answer.by == expected.by, answer.body
    for key, value in expected.body.items():
        assert answer.body.get(key) == value, answer.body


def test_every_row_runs_in_every_shell_that_can_take_it() -> None:
    """A row leaves a shell out only where the shell cannot take the request at all (Flask has no websockets),
    and every difference says why."""
    left_out = {(row.name, shell) for row in ROWS for shell in SHELLS if row.expected(shell) is None}
    assert {shell for _, shell in left_out} <= set(NO_WS)
    assert all(name.startswith("websocket") for name, _ in left_out)
    assert all(row.why for row in ROWS if row.differs)
    assert len({row.name for row in ROWS}) == len(ROWS)
