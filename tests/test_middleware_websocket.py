"""IAMMiddleware on websocket scopes, driven by hand-built ASGI messages: the same decision as HTTP on the
handshake, refusal before accept (a 401/403 response where the server offers websocket.http.response, else close
1008), cross-site handshakes with the session cookie refused, and connections closed when their credential expires
(whether the app is waiting for a message or only sending)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from anyio.abc import TaskGroup
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Scope
from starlette.websockets import WebSocket, WebSocketDisconnect
from test_middleware import (
    ACCOUNT,
    NOW,
    Clock,
    bearer,
    endpoint,
    login,
    make_iam,
    protect,
    sigv4,
    web_identity_token,
)

from iam_middleware import IAM, Permission, Principal, Rule, RuleTable, permission, public

HTTP_RESPONSE: dict[str, Any] = {"websocket.http.response": {}}
# For plain ASGI apps (no router): one websocket path.
RULES = RuleTable([Rule("WEBSOCKET", "/raw", Permission("orders:ListOrders"))])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def ws_scope(path: str = "/feed", *, headers: dict[str, str] | None = None, extensions: dict[str, Any] | None = None,
             raw_path: bytes | None = None) -> Scope:
    return {
        "type": "websocket", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "wss", "path": path,
        "raw_path": raw_path if raw_path is not None else path.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"host", b"testserver"), *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items())],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 443), "subprotocols": [],
        "extensions": extensions if extensions is not None else {},
    }


class Connection:
    """The server side of one websocket: what the client sends in, and everything the app (through the
    middleware) sends out."""

    def __init__(self) -> None:
        self._in, self._in_reader = anyio.create_memory_object_stream[Message](16)
        self.sent: list[Message] = []
        self._changed = anyio.Event()

    async def receive(self) -> Message:
        return await self._in_reader.receive()

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        self._changed.set()
        self._changed = anyio.Event()

    async def client_sends(self, message: Message) -> None:
        await self._in.send(message)

    async def wait_for(self, kind: str, timeout: float = 5.0) -> Message:
        with anyio.fail_after(timeout):
            while True:
                for message in self.sent:
                    if message["type"] == kind:
                        return message
                await self._changed.wait()

    def types(self) -> list[str]:
        return [m["type"] for m in self.sent]


async def handshake(app: ASGIApp, scope: Scope) -> list[Message]:
    """Run a connection the client only opens: the refusal, or what the app sends until it returns."""
    connection = Connection()
    await connection.client_sends({"type": "websocket.connect"})
    with anyio.fail_after(5):
        await app(scope, connection.receive, connection.send)
    return connection.sent


@pytest.fixture
async def running() -> AsyncIterator[TaskGroup]:
    async with anyio.create_task_group() as group:
        yield group
        group.cancel_scope.cancel()


class LiveClock:
    """An injected clock that runs at real speed from ``at`` (the expiry watchdog must see time pass)."""

    def __init__(self, at: float) -> None:
        self.set(at)

    def set(self, at: float) -> None:
        self._base, self._start = at, time.monotonic()

    def __call__(self) -> float:
        return self._base + time.monotonic() - self._start


# The app ---------------------------------------------------------------------------------------------------------

calls: list[str] = []


@permission("orders:ListOrders", "arn:{partition}:orders::{account}:order/*")
async def feed(websocket: WebSocket) -> None:
    """Accepts, says who the caller is, then echoes until the client (or the middleware) disconnects."""
    calls.append("feed")
    await websocket.accept()
    principal = websocket.user
    decision = websocket.scope["state"]["iam_decision"]
    await websocket.send_json({"principal": principal.arn if isinstance(principal, Principal) else None,
                               "action": decision.action if decision else None})
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect as exc:
        calls.append(f"disconnect {exc.code}")


@permission("orders:ListOrders", "arn:{partition}:orders::{account}:order/*")
async def ticker(websocket: WebSocket) -> None:
    """Only sends, never reads: a push feed."""
    await websocket.accept()
    count = 0
    try:
        while True:
            await websocket.send_text(f"tick {count}")
            count += 1
            await anyio.sleep(0.01)
    except WebSocketDisconnect as exc:
        calls.append(f"ticker stopped {exc.code}")


@permission("orders:PurgeOrders", "arn:{partition}:orders::{account}:order/*")
async def purge_feed(websocket: WebSocket) -> None:
    calls.append("purge")
    await websocket.accept()
    await websocket.close()


@public
async def lobby(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"user_authenticated": websocket.user.is_authenticated})
    await websocket.close()


async def unrouted(websocket: WebSocket) -> None:
    calls.append("unrouted")
    await websocket.accept()
    await websocket.close()


def ws_app() -> Starlette:
    return Starlette(routes=[
        WebSocketRoute("/feed", feed), WebSocketRoute("/ticker", ticker), WebSocketRoute("/purge", purge_feed),
        WebSocketRoute("/lobby", lobby), WebSocketRoute("/unrouted", unrouted),
        Route("/orders", endpoint("orders", permission("orders:ListOrders"))),
    ])


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    calls.clear()


# Refusals before accept ------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_refused_handshake_is_an_http_response_where_the_server_offers_one() -> None:
    sent = await handshake(protect(ws_app()), ws_scope("/feed", extensions=HTTP_RESPONSE))
    assert sent[0]["type"] == "websocket.http.response.start"
    assert sent[0]["status"] == 401
    headers = dict(sent[0]["headers"])
    assert headers[b"www-authenticate"] == b'Bearer realm="iam-middleware", AWS4-HMAC-SHA256'
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert body["error"] == "MissingAuthenticationToken"
    assert "websocket.accept" not in [m["type"] for m in sent]
    assert calls == []


@pytest.mark.anyio
async def test_a_refused_handshake_is_close_1008_without_the_extension() -> None:
    sent = await handshake(protect(ws_app()), ws_scope("/feed"))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "MissingAuthenticationToken"}]
    assert calls == []


@pytest.mark.anyio
@pytest.mark.parametrize("extensions", [HTTP_RESPONSE, {}])
async def test_a_known_principal_without_permission_is_refused_with_403(extensions: dict[str, Any]) -> None:
    iam = make_iam()
    sent = await handshake(protect(ws_app(), iam=iam),
                           ws_scope("/purge", headers=bearer(login(iam, "carol")), extensions=extensions))
    if extensions:
        assert (sent[0]["type"], sent[0]["status"]) == ("websocket.http.response.start", 403)
        assert json.loads(sent[1]["body"])["error"] == "AccessDenied"
    else:
        assert sent == [{"type": "websocket.close", "code": 1008, "reason": "AccessDenied"}]
    assert calls == []


@pytest.mark.anyio
async def test_an_undeclared_websocket_route_is_denied() -> None:
    iam = make_iam()
    sent = await handshake(protect(ws_app(), iam=iam),
                           ws_scope("/unrouted", headers=bearer(login(iam, "carol")), extensions=HTTP_RESPONSE))
    assert sent[0]["status"] == 403
    assert "no permission is declared" in json.loads(sent[1]["body"])["message"]
    assert calls == []


@pytest.mark.anyio
async def test_an_http_route_is_not_a_websocket_route() -> None:
    # /orders answers GET over HTTP; a websocket to it matches no websocket route and is denied.
    sent = await handshake(protect(ws_app()), ws_scope("/orders", headers=sigv4("GET", "https://testserver/orders"),
                                                       extensions=HTTP_RESPONSE))
    assert sent[0]["status"] == 403


@pytest.mark.anyio
@pytest.mark.parametrize("raw", [b"/feed%2F", b"/x/../feed", b"//feed", b"/feed;x", b"/fe%00ed"])
async def test_an_ambiguous_websocket_path_is_refused(raw: bytes) -> None:
    from urllib.parse import unquote

    iam = make_iam()
    scope = ws_scope(unquote(raw.decode()), raw_path=raw, headers=bearer(login(iam, "alice")),
                     extensions=HTTP_RESPONSE)
    sent = await handshake(protect(ws_app(), iam=iam), scope)
    assert sent[0]["status"] == 400
    assert calls == []


# Accepted handshakes ---------------------------------------------------------------------------------------------


async def opened(app: ASGIApp, scope: Scope) -> list[Message]:
    """Open, read the greeting, say goodbye; what the app sent."""
    connection = Connection()
    await connection.client_sends({"type": "websocket.connect"})
    async def run() -> None:
        await app(scope, connection.receive, connection.send)

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        await connection.wait_for("websocket.send")
        await connection.client_sends({"type": "websocket.receive", "text": "hello"})
        await connection.client_sends({"type": "websocket.disconnect", "code": 1000})
    return connection.sent


@pytest.mark.anyio
@pytest.mark.parametrize("credential", ["session", "sigv4", "web-identity"])
async def test_the_handshake_is_decided_like_http_and_the_app_sees_the_principal(credential: str) -> None:
    iam = make_iam()
    headers = {
        "session": lambda: bearer(login(iam, "alice")),
        "sigv4": lambda: sigv4("GET", "https://testserver/feed"),
        "web-identity": lambda: bearer(web_identity_token()),
    }[credential]()
    sent = await opened(protect(ws_app(), iam=iam), ws_scope("/feed", headers=headers))
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.send"]
    greeting = json.loads(sent[1]["text"])
    expected = (f"arn:app:sts::{ACCOUNT}:assumed-role/partner/partner-7" if credential == "web-identity"
                else f"arn:app:iam::{ACCOUNT}:user/alice")
    assert greeting == {"principal": expected, "action": "orders:ListOrders"}
    assert sent[2]["text"] == "hello"
    assert calls == ["feed", "disconnect 1000"]


@pytest.mark.anyio
async def test_a_public_websocket_needs_no_credential() -> None:
    sent = await handshake(protect(ws_app()), ws_scope("/lobby"))
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert json.loads(sent[1]["text"]) == {"user_authenticated": False}


@pytest.mark.anyio
async def test_a_websocket_route_declared_in_the_rules_table() -> None:
    rules = RuleTable([Rule("WEBSOCKET", "/unrouted", Permission("orders:ListOrders"))])
    middleware = protect(ws_app(), rules=rules)
    assert "WEBSOCKET /unrouted" not in middleware.audit()
    sent = await handshake(middleware, ws_scope("/unrouted", headers=sigv4("GET", "https://testserver/unrouted")))
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]


# Cookie sessions and cross-site handshakes ------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        ("https://testserver", True),  # the service's own origin
        ("http://127.0.0.1:8000", True),  # an allowed origin (examples/iam.toml)
        ("https://evil.example", False),
        ("null", False),
        (None, False),
    ],
)
async def test_a_cookie_handshake_must_come_from_an_allowed_origin(origin: str | None, accepted: bool) -> None:
    # A page on any site can open a websocket to us, and the browser adds our session cookie to it.
    iam = make_iam()
    headers = {"cookie": f"{iam.settings.cookie_name}={login(iam, 'alice')}"}
    if origin is not None:
        headers["origin"] = origin
    scope = ws_scope("/feed", headers=headers, extensions=HTTP_RESPONSE)
    if accepted:
        sent = await opened(protect(ws_app(), iam=iam), scope)
        assert sent[0]["type"] == "websocket.accept"
    else:
        sent = await handshake(protect(ws_app(), iam=iam), scope)
        assert sent[0]["status"] == 403
        assert json.loads(sent[1]["body"])["error"] == "CSRFCheckFailed"
        assert calls == []


@pytest.mark.anyio
async def test_a_bearer_handshake_needs_no_origin() -> None:
    iam = make_iam()
    sent = await opened(protect(ws_app(), iam=iam), ws_scope("/feed", headers={
        **bearer(login(iam, "alice")), "origin": "https://evil.example"}))
    assert sent[0]["type"] == "websocket.accept"


# Expiry mid-connection ---------------------------------------------------------------------------------------------


def expiring_session(iam: IAM, clock: LiveClock, seconds_left: float) -> dict[str, str]:
    """A session of alice's (one hour), with the clock moved to ``seconds_left`` before it ends."""
    headers = bearer(login(iam, "alice", now=NOW))
    clock.set(NOW + iam.settings.session_ttl - seconds_left)
    return headers


@pytest.mark.anyio
async def test_a_connection_waiting_for_messages_is_closed_when_the_credential_expires() -> None:
    clock = LiveClock(NOW)
    iam = make_iam(clock)
    headers = expiring_session(iam, clock, 0.5)
    connection = Connection()
    await connection.client_sends({"type": "websocket.connect"})
    async with anyio.create_task_group() as group:
        group.start_soon(protect(ws_app(), iam=iam), ws_scope("/feed", headers=headers), connection.receive,
                         connection.send)
        await connection.wait_for("websocket.send")
        await connection.client_sends({"type": "websocket.receive", "text": "before"})
        close = await connection.wait_for("websocket.close", timeout=5)
    assert close == {"type": "websocket.close", "code": 1008, "reason": "CredentialExpired"}
    assert clock() >= NOW + iam.settings.session_ttl
    assert connection.types() == ["websocket.accept", "websocket.send", "websocket.send", "websocket.close"]
    assert calls == ["feed", "disconnect 1008"]


@pytest.mark.anyio
async def test_a_connection_that_only_sends_is_closed_when_the_credential_expires() -> None:
    clock = LiveClock(NOW)
    iam = make_iam(clock)
    headers = expiring_session(iam, clock, 0.3)
    connection = Connection()
    await connection.client_sends({"type": "websocket.connect"})
    with anyio.fail_after(5):
        await protect(ws_app(), iam=iam)(ws_scope("/ticker", headers=headers), connection.receive, connection.send)
    types = connection.types()
    assert types[0] == "websocket.accept" and types[-1] == "websocket.close"
    assert types.count("websocket.close") == 1 and set(types[1:-1]) == {"websocket.send"}
    assert connection.sent[-1]["code"] == 1008
    assert calls == ["ticker stopped 1006"]  # the app's send failed as for a client that went away


@pytest.mark.anyio
async def test_an_outside_token_closes_the_connection_at_its_own_expiry() -> None:
    clock = LiveClock(NOW + 600 - 0.3)  # the token expires at NOW + 600
    iam = make_iam(clock)
    connection = Connection()
    await connection.client_sends({"type": "websocket.connect"})
    with anyio.fail_after(5):
        await protect(ws_app(), iam=iam)(ws_scope("/ticker", headers=bearer(web_identity_token())),
                                         connection.receive, connection.send)
    assert connection.sent[-1] == {"type": "websocket.close", "code": 1008, "reason": "CredentialExpired"}


@pytest.mark.anyio
async def test_an_app_that_closes_first_is_not_closed_again_and_does_not_wait_for_expiry() -> None:
    # alice's session has an hour left; the app closes at once, and the call returns at once.
    iam = make_iam(Clock())
    rules = RuleTable([Rule("WEBSOCKET", "/unrouted", Permission("orders:ListOrders"))])
    sent = await handshake(protect(ws_app(), iam=iam, rules=rules),
                           ws_scope("/unrouted", headers=bearer(login(iam, "alice"))))
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]


@pytest.mark.anyio
async def test_after_expiry_the_app_only_hears_disconnects_and_its_close_is_absorbed() -> None:
    clock = LiveClock(NOW)
    iam = make_iam(clock)
    headers = expiring_session(iam, clock, 0.3)
    heard: list[Message] = []

    async def stubborn(scope: Scope, receive: Any, send: Any) -> None:
        heard.append(await receive())  # websocket.connect
        await send({"type": "websocket.accept"})
        heard.append(await receive())  # the expiry
        heard.append(await receive())  # and again
        await send({"type": "websocket.close", "code": 1000})  # too late: already closed

    connection = Connection()
    await connection.client_sends({"type": "websocket.connect"})
    with anyio.fail_after(5):
        await protect(stubborn, iam=iam, rules=RULES)(ws_scope("/raw", headers=headers), connection.receive,
                                                      connection.send)
    assert [m["type"] for m in heard] == ["websocket.connect", "websocket.disconnect", "websocket.disconnect"]
    assert connection.sent == [{"type": "websocket.accept"},
                               {"type": "websocket.close", "code": 1008, "reason": "CredentialExpired"}]


@pytest.mark.anyio
async def test_an_app_that_closed_itself_is_not_closed_again_at_expiry() -> None:
    clock = LiveClock(NOW)
    iam = make_iam(clock)
    headers = expiring_session(iam, clock, 0.2)

    async def lingering(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        await anyio.sleep(0.5)  # still running when the credential expires

    sent = await handshake(protect(lingering, iam=iam, rules=RULES), ws_scope("/raw", headers=headers))
    assert sent == [{"type": "websocket.accept"}, {"type": "websocket.close", "code": 1000}]


@pytest.mark.anyio
async def test_long_term_keys_have_no_expiry_to_enforce() -> None:
    sent = await opened(protect(ws_app()), ws_scope("/feed", headers=sigv4("GET", "https://testserver/feed")))
    assert "websocket.close" not in [m["type"] for m in sent]
