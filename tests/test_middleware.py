"""IAMMiddleware end to end: a Starlette app over the example directory (examples/iam.toml), driven through
httpx.ASGITransport and, where the exact ASGI messages matter, by hand-built scopes.

Credentials are real: sessions from IAM.login with pyotp codes at a fixed clock, SigV4 from botocore's SigV4Auth
at the same instant, web identity tokens signed with the example provider's key. The helpers at the top are shared
with the other test_middleware_*.py files.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import ipaddress
import json
import logging
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import anyio
import botocore.auth
import httpx
import jwt
import pyotp
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.applications import Starlette
from starlette.authentication import UnauthenticatedUser
from starlette.endpoints import HTTPEndpoint
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from iam_middleware import IAM, PUBLIC, IAMCredentials, IAMMiddleware, Principal, Rule, RuleTable, permission, public
from iam_middleware._exceptions import ConfigurationError
from iam_middleware._request import RequestView
from iam_middleware._request import resolve_source_ip as source_ip
from iam_middleware.asgi_routing import REQUIREMENT_FINDERS
from iam_middleware.gate import render_permission
from iam_middleware.routing import MissingValueError, Permission
from iam_middleware.state import MemoryStore, StateUnavailableError
from iam_middleware.state._redis import RedisStore

# The example directory and its demo secrets ---------------------------------------------------------------------

NOW = datetime.datetime(2026, 1, 15, 12, 0, 0, tzinfo=datetime.UTC).timestamp()
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PASSWORD = "correct horse battery staple"
SEEDS = {"alice": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "bob": "S7OGSI66TRZN23GL34ETDX36DJYB2AJM",
         "carol": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ"}
KEYS = {
    "alice": ("AKIADEMOALICE0000001", "demo/alice/wJalrXUtnFEMI/K7MDENG/bPxRfiCY"),
    "carol": ("AKIADEMOCAROL0000001", "demo/carol/je7MtGbClwBF/2Zp9Utk/h3yCo8nvb"),
    "dave": ("AKIADEMODAVE00000001", "demo/dave/Zq3xNwV8yTgH/4LbKcRp9sJm2FdWh"),
}
IDP_SECRET = "demo-idp-hmac-secret-0123456789abcdef0123"
ACCOUNT = "111122223333"
ORDER = "arn:{partition}:orders::{account}:order/{order_id}"
ALL_ORDERS = "arn:{partition}:orders::{account}:order/*"
BASE_URL = "https://testserver"

# dave reads orders only from the office network, over TLS, before June, while tagged "ops"; deletes only the order
# named after himself; and lists orders when the request says it is for his team.
DAVE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "OfficeOverTLS", "Effect": "Allow", "Action": "orders:GetOrder",
            "Resource": f"arn:app:orders::{ACCOUNT}:order/*",
            "Condition": {
                "IpAddress": {"aws:SourceIp": "203.0.113.0/24"},
                "Bool": {"aws:SecureTransport": "true"},
                "DateLessThan": {"aws:CurrentTime": "2026-06-01T00:00:00Z"},
                "NumericGreaterThanEquals": {"aws:EpochTime": str(int(NOW))},
                "StringEquals": {"aws:PrincipalTag/team": "ops"},
            },
        },
        {"Sid": "OwnOrder", "Effect": "Allow", "Action": "orders:DeleteOrder",
         "Resource": f"arn:app:orders::{ACCOUNT}:order/${{aws:username}}"},
        {"Sid": "TeamList", "Effect": "Allow", "Action": "orders:ListOrders", "Resource": "*",
         "Condition": {"StringEquals": {"orders:Team": "ops"}}},
    ],
}


class Clock:
    """The injected clock: a fixed instant the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def directory() -> dict[str, Any]:
    """examples/iam.toml as data, plus user dave (access key, tag team=ops, DAVE_POLICY)."""
    data = tomllib.loads((EXAMPLES / "iam.toml").read_text())
    data = copy.deepcopy(data)
    data["policies"]["DaveOffice"] = {"document": DAVE_POLICY}
    data["users"]["dave"] = {"policies": ["DaveOffice"], "tags": {"team": "ops"},
                             "access_keys": [{"id": KEYS["dave"][0], "secret": KEYS["dave"][1]}]}
    return data


def make_iam(clock: Callable[[], float] | None = None, *, store: Any = None, **settings: Any) -> IAM:
    data = directory()
    data["settings"].update(settings)
    return IAM.from_dict(data, base_dir=EXAMPLES, clock=clock or Clock(), store=store)


def login(iam: IAM, user: str, *, now: float | None = None) -> str:
    """A session token from the real password + TOTP login (codes are single use: one login per user and step)."""
    at = iam.clock() if now is None else now
    return iam.login(user, PASSWORD, pyotp.TOTP(SEEDS[user]).at(at), now=at).token


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def web_identity_token(**claims: Any) -> str:
    """A token of the example outside provider (idp.example), mapped to role partner by its trust policy."""
    payload = {"iss": "https://idp.example", "aud": "orders-api", "sub": "partner-7", "iat": int(NOW),
               "exp": int(NOW) + 600, "team": "green"}
    payload.update(claims)
    return jwt.encode(payload, IDP_SECRET, algorithm="HS256")


def sigv4(method: str, url: str, *, user: str = "alice", body: bytes = b"", headers: Mapping[str, str] | None = None,
          key: tuple[str, str] | None = None, token: str | None = None, at: float = NOW) -> dict[str, str]:
    """The headers real botocore (SigV4Auth, service orders, region local) adds to sign a request at ``at``."""
    key_id, secret = key or KEYS[user]
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    when = datetime.datetime.fromtimestamp(at, datetime.UTC).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
        botocore.auth.SigV4Auth(Credentials(key_id, secret, token), "orders", "local").add_auth(request)
    return {name: value for name, value in request.headers.items()}


def client(app: ASGIApp, *, base_url: str = BASE_URL, peer: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(peer, 50000)), base_url=base_url)


async def asgi_call(app: ASGIApp, scope: Scope, incoming: Sequence[Message] | None = None) -> list[Message]:
    """Run one ASGI call with hand-built messages; returns what the app sent."""
    queue = list(incoming or [{"type": "http.request", "body": b"", "more_body": False}])
    sent: list[Message] = []

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(10):
        await app(scope, receive, send)
    return sent


def http_scope(path: str, *, raw_path: bytes | None = None, method: str = "GET",
               headers: list[tuple[bytes, bytes]] | None = None, root_path: str = "",
               query_string: bytes = b"") -> Scope:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "https",
        "path": path, "raw_path": raw_path if raw_path is not None else path.encode(), "root_path": root_path,
        "query_string": query_string, "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 443),
    }


def status_of(sent: list[Message]) -> int:
    return int(next(m for m in sent if m["type"] in ("http.response.start", "websocket.http.response.start"))["status"])


def body_of(sent: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] in ("http.response.body",
                                                                       "websocket.http.response.body"))


# The app ----------------------------------------------------------------------------------------------------------


async def echo(request: Request) -> JSONResponse:
    """What the endpoint sees: the principal, the credentials, the decision, and the request as dispatched."""
    auth = request.auth
    decision = request.state.iam_decision
    return JSONResponse({
        "endpoint": request.scope["endpoint"].__name__,
        "principal": request.user.arn if isinstance(request.user, Principal) else None,
        "authenticated": request.user.is_authenticated,
        "kind": auth.kind.value if isinstance(auth, IAMCredentials) else None,
        "same_principal": isinstance(auth, IAMCredentials) and auth.principal is request.user,
        "action": decision.action if decision else None,
        "resource": decision.resource if decision else None,
        "decision": decision.kind.value if decision else None,
        "request_id": request.state.request_id,
        "method": request.method,
        "path_params": request.path_params,
        "body": (await request.body()).decode("latin-1"),
        "headers": sorted(request.headers.keys()),
    })


def endpoint(name: str, requirement: Callable[[Any], Any] | None) -> Callable[[Request], Awaitable[Response]]:
    async def view(request: Request) -> Response:
        return await echo(request)

    view.__name__ = view.__qualname__ = name
    return requirement(view) if requirement is not None else view


list_orders = endpoint("list_orders", permission("orders:ListOrders", ALL_ORDERS))
create_order = endpoint("create_order", permission("orders:CreateOrder", ALL_ORDERS))
get_order = endpoint("get_order", permission("orders:GetOrder", ORDER))
delete_order = endpoint("delete_order", permission("orders:DeleteOrder", ORDER))
get_file = endpoint("get_file", permission("orders:GetOrder", "arn:{partition}:orders::{account}:file/{name}"))
purge = endpoint("purge", permission("orders:PurgeOrders", ALL_ORDERS))
health = endpoint("health", public)
undeclared = endpoint("undeclared", None)
team_orders = endpoint("team_orders", permission("orders:ListOrders", ALL_ORDERS,
                                                 context={"orders:Team": "{header.x-team}"}))
search = endpoint("search", permission("orders:ListOrders", "arn:{partition}:orders::{account}:tenant/{query.tenant}"))
tenant_order = endpoint("tenant_order", permission(
    "orders:GetOrder", "arn:{partition}:orders::{account}:tenant/{tenant}/order/{order_id}"))


@permission("orders:ListOrders", ALL_ORDERS)
class Reports(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        return await echo(request)

    @permission("orders:CreateOrder", ALL_ORDERS)
    async def post(self, request: Request) -> Response:
        return await echo(request)


@permission("orders:ListOrders", ALL_ORDERS)
async def order_feed(websocket: WebSocket) -> None:
    await websocket.accept()
    principal = websocket.user
    await websocket.send_json({"principal": principal.arn if isinstance(principal, Principal) else None})
    await websocket.close()


def order_routes() -> list[BaseRoute]:
    return [
        Route("/orders", list_orders, methods=["GET"]),
        Route("/orders", create_order, methods=["POST"]),
        Route("/orders/{order_id}", get_order, methods=["GET"]),
        Route("/orders/{order_id}", delete_order, methods=["DELETE"]),
        Route("/files/{name:path}", get_file),
        Route("/team-orders", team_orders),
        Route("/search", search),
        Route("/admin", purge),
        Route("/health", health),
        Route("/undeclared", undeclared),
        Route("/reports", Reports),
        Mount("/tenants/{tenant}", routes=[Route("/orders/{order_id}", tenant_order)]),
        WebSocketRoute("/ws/orders", order_feed),
    ]


def orders_app(**options: Any) -> Starlette:
    return Starlette(routes=order_routes(), **options)


def protect(app: ASGIApp | None = None, *, iam: IAM | None = None, **options: Any) -> IAMMiddleware:
    return IAMMiddleware(app if app is not None else orders_app(), iam=iam or make_iam(), **options)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def decisions(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog, capturing the decision log at INFO."""
    with caplog.at_level(logging.INFO, logger="iam_middleware.decisions"):
        yield caplog


def decision_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.iam for r in caplog.records if r.name == "iam_middleware.decisions"]  # type: ignore[attr-defined]


# Scopes ----------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_lifespan_passes_through_after_the_audit() -> None:
    started: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started.append("up")
        yield

    middleware = protect(Starlette(routes=order_routes(), lifespan=lifespan))
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent = await asgi_call(middleware, {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, incoming)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert started == ["up"]
    assert middleware._audited


@pytest.mark.anyio
async def test_a_failed_audit_fails_the_start_up_instead_of_serving() -> None:
    inner_called = False

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal inner_called
        inner_called = True

    middleware = IAMMiddleware(app, iam=make_iam(), routes_from=orders_app(), undeclared="error")
    sent = await asgi_call(middleware, {"type": "lifespan", "asgi": {"version": "3.0"}}, [{"type": "lifespan.startup"}])
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "GET /undeclared" in sent[0]["message"]
    assert not inner_called


@pytest.mark.anyio
async def test_other_scope_types_pass_through_untouched() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    scope: Scope = {"type": "custom.thing", "payload": 1}
    await asgi_call(IAMMiddleware(app, iam=make_iam()), scope)
    assert seen == [scope] and seen[0] is scope and scope == {"type": "custom.thing", "payload": 1}


# 401: no credential or a bad one ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_no_credential_is_401_with_both_challenges() -> None:
    async with client(protect()) as http:
        response = await http.get("/orders/42")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="iam-middleware", AWS4-HMAC-SHA256'
    body = response.json()
    assert body == {"error": "MissingAuthenticationToken", "message": "This resource requires authentication.",
                    "request_id": response.headers["x-request-id"]}
    assert response.headers["content-type"] == "application/json"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        ("Bearer not-a-jwt", "invalid_token"),
        ("Bearer " + jwt.encode({"sub": "x"}, "a-key-that-is-not-the-session-secret-000", algorithm="HS256",
                                headers={"typ": "iam-session+jwt"}), "invalid_token"),
        ("Bearer two words", "invalid_request"),
    ],
)
async def test_a_bad_bearer_token_is_401_per_rfc_6750(authorization: str, error: str) -> None:
    async with client(protect()) as http:
        response = await http.get("/orders/42", headers={"authorization": authorization})
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(f'Bearer realm="iam-middleware", error="{error}", error_description="')
    description = challenge.split('error_description="', 1)[1][:-1]
    assert description and all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in description)
    assert response.json()["message"]


@pytest.mark.anyio
async def test_an_expired_session_is_401_and_says_so() -> None:
    clock = Clock()
    iam = make_iam(clock)
    token = login(iam, "bob")
    clock.now = NOW + 3600 + 120
    async with client(protect(iam=iam)) as http:
        response = await http.get("/orders/42", headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "expired" in response.json()["message"].lower()


@pytest.mark.anyio
async def test_a_bad_signature_is_401_with_the_sigv4_scheme() -> None:
    headers = sigv4("GET", f"{BASE_URL}/orders/42")
    headers["Authorization"] = headers["Authorization"][:-4] + "0000"
    async with client(protect()) as http:
        response = await http.get("/orders/42", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "AWS4-HMAC-SHA256"
    assert response.json()["error"] == "SignatureDoesNotMatch"


@pytest.mark.anyio
async def test_a_signature_from_another_instant_is_401() -> None:
    headers = sigv4("GET", f"{BASE_URL}/orders/42", at=NOW - 3600)
    async with client(protect()) as http:
        response = await http.get("/orders/42", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "AWS4-HMAC-SHA256"


@pytest.mark.anyio
async def test_an_outside_token_for_another_audience_is_401() -> None:
    async with client(protect()) as http:
        response = await http.get("/orders", headers=bearer(web_identity_token(aud="someone-else")))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


# Allowed: what the app sees ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_session_reaches_the_app_with_principal_credentials_and_decision() -> None:
    iam = make_iam()
    async with client(protect(iam=iam)) as http:
        response = await http.get("/orders/42", headers=bearer(login(iam, "bob")))
    assert response.status_code == 200
    seen = response.json()
    assert seen["principal"] == f"arn:app:iam::{ACCOUNT}:user/bob"
    assert seen["authenticated"] and seen["same_principal"]
    assert seen["kind"] == "session"
    assert (seen["action"], seen["resource"], seen["decision"]) == (
        "orders:GetOrder", f"arn:app:orders::{ACCOUNT}:order/42", "Allowed")


@pytest.mark.anyio
async def test_an_access_key_signed_by_botocore_reaches_the_app() -> None:
    async with client(protect()) as http:
        response = await http.get("/orders/42", headers=sigv4("GET", f"{BASE_URL}/orders/42"))
    assert response.status_code == 200
    assert response.json()["principal"] == f"arn:app:iam::{ACCOUNT}:user/alice"
    assert response.json()["kind"] == "access-key"


@pytest.mark.anyio
async def test_a_signed_body_is_verified_and_still_reaches_the_app_whole() -> None:
    body = json.dumps({"item": "widget", "quantity": 3}).encode()
    headers = sigv4("POST", f"{BASE_URL}/orders", user="carol", body=body,
                    headers={"content-type": "application/json"})
    async with client(protect()) as http:
        response = await http.post("/orders", content=body, headers=headers)
        tampered = await http.post("/orders", content=body.replace(b"3", b"9"), headers=headers)
    assert response.status_code == 200
    assert response.json()["body"] == body.decode()
    assert response.json()["action"] == "orders:CreateOrder"
    assert tampered.status_code == 401


@pytest.mark.anyio
async def test_after_the_replayed_body_the_app_receives_from_the_server() -> None:
    # The body was read to verify the signature; the app gets it once, then the server's own messages.
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        seen.append(await receive())
        await PlainTextResponse("ok")(scope, receive, send)

    headers = sigv4("POST", f"{BASE_URL}/orders", user="carol", body=b"abc")
    scope = http_scope("/orders", method="POST", headers=[(k.lower().encode(), v.encode()) for k, v in headers.items()])
    incoming: list[Message] = [{"type": "http.request", "body": b"abc", "more_body": False},
                               {"type": "http.disconnect"}]
    sent = await asgi_call(IAMMiddleware(app, iam=make_iam(), routes_from=orders_app()), scope, incoming)
    assert status_of(sent) == 200
    assert seen == [{"type": "http.request", "body": b"abc", "more_body": False}, {"type": "http.disconnect"}]


@pytest.mark.anyio
async def test_a_body_larger_than_the_limit_is_413_before_the_app() -> None:
    body = b"x" * 2048
    headers = sigv4("POST", f"{BASE_URL}/orders", user="carol", body=body)
    async with client(protect(max_body_bytes=1024)) as http:
        response = await http.post("/orders", content=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"] == "EntityTooLarge"


@pytest.mark.anyio
async def test_a_client_that_disconnects_mid_body_is_400() -> None:
    headers = sigv4("POST", f"{BASE_URL}/orders", user="carol", body=b"abc")
    scope = http_scope("/orders", method="POST",
                       headers=[(k.lower().encode(), v.encode()) for k, v in headers.items()])
    incoming: list[Message] = [{"type": "http.request", "body": b"a", "more_body": True},
                               {"type": "http.disconnect"}]
    sent = await asgi_call(protect(), scope, incoming)
    assert status_of(sent) == 400
    assert json.loads(body_of(sent))["error"] == "IncompleteBody"


@pytest.mark.anyio
async def test_a_presigned_url_from_botocore_reaches_the_app() -> None:
    request = AWSRequest(method="GET", url=f"{BASE_URL}/orders/42")
    when = datetime.datetime.fromtimestamp(NOW, datetime.UTC).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
        botocore.auth.SigV4QueryAuth(Credentials(*KEYS["alice"]), "orders", "local", expires=300).add_auth(request)
    async with client(protect()) as http:
        response = await http.get(request.url)
    assert response.status_code == 200
    assert response.json()["principal"] == f"arn:app:iam::{ACCOUNT}:user/alice"


@pytest.mark.anyio
async def test_an_outside_token_acts_as_the_role_its_trust_policy_allows() -> None:
    async with client(protect()) as http:
        allowed = await http.get("/orders", headers=bearer(web_identity_token()))
        denied = await http.post("/orders", headers=bearer(web_identity_token()))
    assert allowed.status_code == 200
    assert allowed.json()["principal"] == f"arn:app:sts::{ACCOUNT}:assumed-role/partner/partner-7"
    assert allowed.json()["kind"] == "web-identity"
    assert denied.status_code == 403


@pytest.mark.anyio
async def test_public_routes_need_no_credential_and_consult_no_policy(
        decisions: pytest.LogCaptureFixture) -> None:
    async with client(protect()) as http:
        response = await http.get("/health")
        with_junk = await http.get("/health", headers={"authorization": "Bearer junk"})
    assert response.status_code == with_junk.status_code == 200
    assert response.json()["principal"] is None and response.json()["decision"] is None
    assert [r["decision"] for r in decision_records(decisions)] == ["Public", "Public"]


@pytest.mark.anyio
async def test_public_routes_leave_an_unauthenticated_user() -> None:
    seen: list[Any] = []

    @public
    async def who(request: Request) -> Response:
        seen.append((request.user, request.auth.scopes))
        return PlainTextResponse("ok")

    async with client(protect(Starlette(routes=[Route("/who", who)]))) as http:
        assert (await http.get("/who")).status_code == 200
    assert isinstance(seen[0][0], UnauthenticatedUser) and seen[0][1] == []


@pytest.mark.anyio
async def test_the_request_id_is_the_callers_when_it_is_a_plain_token() -> None:
    async with client(protect()) as http:
        given = await http.get("/orders", headers={"x-request-id": "trace-0042"})
        refused = await http.get("/orders", headers={"x-request-id": "<script>"})
    assert given.headers["x-request-id"] == given.json()["request_id"] == "trace-0042"
    assert refused.headers["x-request-id"] != "<script>"
    assert len(refused.json()["request_id"]) == 32


# 403: known principal, not allowed -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_reader_may_not_write_and_the_message_is_in_aws_form() -> None:
    body = b'{"item": "widget"}'
    async with client(protect()) as http:
        response = await http.post("/orders", content=body, headers=sigv4("POST", f"{BASE_URL}/orders", body=body))
    assert response.status_code == 403
    assert response.json()["error"] == "AccessDenied"
    assert response.json()["message"] == (
        f"User: arn:app:iam::{ACCOUNT}:user/alice is not authorized to perform: orders:CreateOrder on resource: "
        f"arn:app:orders::{ACCOUNT}:order/* because no identity-based policy allows the orders:CreateOrder action")
    assert "www-authenticate" not in response.headers


@pytest.mark.anyio
async def test_a_write_without_mfa_says_mfa_would_allow_it() -> None:
    iam = make_iam()
    # bob's temporary credentials from GetSessionToken without a one-time code: no MFA in the session.
    temporary = iam.credentials.temporary.issue(kind="user", arn=f"arn:app:iam::{ACCOUNT}:user/bob", session_name="bob",
                                    now=NOW, duration=3600)
    headers = sigv4("POST", f"{BASE_URL}/orders", key=(temporary.access_key_id, temporary.secret_access_key),
                    token=temporary.session_token)
    async with client(protect(iam=iam)) as http:
        without_mfa = await http.post("/orders", headers=headers)
        with_mfa = await http.post("/orders", headers=bearer(login(iam, "bob")))
    assert without_mfa.status_code == 403
    assert without_mfa.json()["error"] == "MultiFactorAuthRequired"
    assert "multi-factor authentication would allow it" in without_mfa.json()["message"]
    assert with_mfa.status_code == 200


@pytest.mark.anyio
async def test_an_mfa_login_older_than_the_policy_allows_is_denied() -> None:
    # bob's write statement asks for aws:MultiFactorAuthAge < 3600; his session lives two hours.
    clock = Clock()
    iam = make_iam(clock, session_ttl=7200)
    token = login(iam, "bob")
    async with client(protect(iam=iam)) as http:
        clock.now = NOW + 3599
        fresh = await http.delete("/orders/7", headers=bearer(token))
        clock.now = NOW + 3601
        stale = await http.delete("/orders/7", headers=bearer(token))
    assert fresh.status_code == 200
    assert stale.status_code == 403


@pytest.mark.anyio
async def test_explicit_denies_in_a_guardrail_and_a_boundary_win() -> None:
    async with client(protect()) as http:
        purge_response = await http.get("/admin", headers=sigv4("GET", f"{BASE_URL}/admin", user="carol"))
        archived = await http.delete("/orders/archived-1",
                                     headers=sigv4("DELETE", f"{BASE_URL}/orders/archived-1", user="carol"))
        current = await http.delete("/orders/7", headers=sigv4("DELETE", f"{BASE_URL}/orders/7", user="carol"))
    assert purge_response.status_code == 403 and "with an explicit deny" in purge_response.json()["message"]
    assert archived.status_code == 403 and "permissions boundary" in archived.json()["message"]
    assert current.status_code == 200


@pytest.mark.anyio
async def test_the_explanation_is_opt_in_twice() -> None:
    headers = sigv4("GET", f"{BASE_URL}/admin", user="carol")
    async with client(protect(explain=True)) as http:
        asked = await http.get("/admin", headers={**headers, "x-iam-explain": "1"})
        not_asked = await http.get("/admin", headers=headers)
    async with client(protect()) as http:
        not_enabled = await http.get("/admin", headers={**headers, "x-iam-explain": "1"})
    explanation = asked.json()["explanation"]
    assert explanation["decision"] == "ExplicitlyDenied"
    assert {"policy": "AcmeGuardrail", "sid": "NoOrderPurge"}.items() <= explanation["matched"][-1].items()
    assert "explanation" not in not_asked.json() and "explanation" not in not_enabled.json()


# The request context ----------------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("base_url", "peer", "forwarded", "status"),
    [
        ("https://testserver", "203.0.113.5", None, 200),
        ("https://testserver", "198.51.100.1", None, 403),
        ("http://testserver", "203.0.113.5", None, 403),  # aws:SecureTransport false
        ("https://testserver", "198.51.100.1", "203.0.113.5", 403),  # forwarded by an untrusted peer: ignored
    ],
)
async def test_source_ip_and_secure_transport(base_url: str, peer: str, forwarded: str | None, status: int) -> None:
    headers = sigv4("GET", f"{base_url}/orders/42", user="dave")
    if forwarded is not None:
        headers["x-forwarded-for"] = forwarded
    async with client(protect(), base_url=base_url, peer=peer) as http:
        response = await http.get("/orders/42", headers=headers)
    assert response.status_code == status


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("forwarded", "status"),
    [
        ("198.51.100.9, 203.0.113.5", 200),  # the right-most hop our proxy saw is the client
        ("203.0.113.5, 198.51.100.9", 403),  # the left-most is whatever the client wrote
        ("203.0.113.5, 10.0.0.7", 200),  # trusted hops are skipped
        ("203.0.113.5, not-an-address", 403),  # an unreadable chain gives no source address, not the proxy's
        (None, 403),  # no header: the proxy itself
    ],
)
async def test_a_forwarded_address_counts_only_from_trusted_proxies(forwarded: str | None, status: int) -> None:
    headers = sigv4("GET", f"{BASE_URL}/orders/42", user="dave")
    if forwarded is not None:
        headers["x-forwarded-for"] = forwarded
    iam = make_iam(trusted_proxies=["10.0.0.0/8"])
    async with client(protect(iam=iam), peer="10.0.0.2") as http:
        response = await http.get("/orders/42", headers=headers)
    assert response.status_code == status


@pytest.mark.anyio
@pytest.mark.parametrize(("offset", "status"), [(0, 200), (-60, 403), (140 * 86400, 403)])
async def test_current_time_and_epoch_time_come_from_the_clock(offset: float, status: int) -> None:
    at = NOW + offset
    headers = sigv4("GET", f"{BASE_URL}/orders/42", user="dave", at=at)
    async with client(protect(iam=make_iam(Clock(at))), peer="203.0.113.5") as http:
        response = await http.get("/orders/42", headers=headers)
    assert response.status_code == status


@pytest.mark.anyio
async def test_principal_keys_reach_the_policy() -> None:
    # ${aws:username} in dave's policy: he may delete the order named after him and no other.
    async with client(protect()) as http:
        own = await http.delete("/orders/dave", headers=sigv4("DELETE", f"{BASE_URL}/orders/dave", user="dave"))
        other = await http.delete("/orders/carol", headers=sigv4("DELETE", f"{BASE_URL}/orders/carol", user="dave"))
    assert (own.status_code, other.status_code) == (200, 403)


@pytest.mark.anyio
async def test_a_permission_adds_context_from_the_request() -> None:
    async with client(protect()) as http:
        ops = await http.get("/team-orders", headers={**sigv4("GET", f"{BASE_URL}/team-orders", user="dave"),
                                                      "x-team": "ops"})
        other = await http.get("/team-orders", headers={**sigv4("GET", f"{BASE_URL}/team-orders", user="dave"),
                                                        "x-team": "red"})
        absent = await http.get("/team-orders", headers=sigv4("GET", f"{BASE_URL}/team-orders", user="dave"))
    assert (ops.status_code, other.status_code, absent.status_code) == (200, 403, 403)


@pytest.mark.anyio
async def test_request_context_cannot_replace_what_the_credential_says() -> None:
    # A web identity's claims (idp.example:aud) are the credential's; a permission naming the same key gets the
    # credential's value, never the request's.
    seen: list[Any] = []

    @permission("orders:ListOrders", ALL_ORDERS, context={"idp.example:aud": "{header.x-aud}"})
    async def view(request: Request) -> Response:
        seen.append(request.state.iam_decision)
        return PlainTextResponse("ok")

    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {
        "StringNotEquals": {"idp.example:aud": "orders-api"}}}]}
    data = directory()
    data["policies"]["OnlyOrdersApi"] = {"document": policy}
    data["roles"]["partner"]["policies"].append("OnlyOrdersApi")
    iam = IAM.from_dict(data, base_dir=EXAMPLES, clock=Clock())
    async with client(protect(Starlette(routes=[Route("/v", view)]), iam=iam)) as http:
        response = await http.get("/v", headers={**bearer(web_identity_token()), "x-aud": "forged"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.5", None, "203.0.113.5"),
        ("10.0.0.2", "10.0.0.9, 10.0.0.3", "10.0.0.9"),  # every hop one of ours: the left-most sent it
        ("10.0.0.2", "2001:db8::1", "2001:db8::1"),
        ("testclient", "203.0.113.5", "testclient"),  # a peer that is no address is no trusted proxy
        (None, "203.0.113.5", None),
    ],
)
def test_source_ip(peer: str | None, forwarded: str | None, expected: str | None) -> None:
    headers = (("x-forwarded-for", forwarded),) if forwarded is not None else ()
    view = RequestView("GET", b"/", headers=headers, client_host=peer)
    assert source_ip(view, (ipaddress.ip_network("10.0.0.0/8"),)) == expected
    assert source_ip(view, ()) == peer


def test_render_permission_refuses_a_path_parameter_it_was_not_given() -> None:
    iam = make_iam()
    principal = iam.authenticate(RequestView("GET", b"/", headers=tuple(bearer(login(iam, "alice")).items())))
    assert principal is not None
    with pytest.raises(MissingValueError, match="order_id"):
        render_permission(iam, RequestView("GET", b"/"), Permission("orders:GetOrder", ORDER), {}, principal)


# HEAD, OPTIONS and method overrides --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_head_is_authorized_as_the_routes_get() -> None:
    async with client(protect()) as http:
        head = await http.head("/orders/42", headers=sigv4("HEAD", f"{BASE_URL}/orders/42"))
        head_report = await http.head("/reports", headers=sigv4("HEAD", f"{BASE_URL}/reports"))
        head_admin = await http.head("/admin", headers=sigv4("HEAD", f"{BASE_URL}/admin"))
        anonymous = await http.head("/orders/42")
    assert head.status_code == head_report.status_code == 200
    assert head_admin.status_code == 403
    assert anonymous.status_code == 401


@pytest.mark.anyio
async def test_class_endpoints_are_authorized_per_method() -> None:
    async with client(protect()) as http:
        read = await http.get("/reports", headers=sigv4("GET", f"{BASE_URL}/reports"))
        write = await http.post("/reports", headers=sigv4("POST", f"{BASE_URL}/reports"))
    assert read.status_code == 200 and read.json()["action"] == "orders:ListOrders"
    assert write.status_code == 403 and "orders:CreateOrder" in write.json()["message"]


PREFLIGHT = {"origin": "https://shop.example", "access-control-request-method": "POST"}


@pytest.mark.anyio
async def test_preflights_pass_only_where_cors_is_configured() -> None:
    cors = [Middleware(CORSMiddleware, allow_origins=["https://shop.example"], allow_methods=["GET", "POST"])]
    async with client(protect(orders_app(middleware=cors), cors_preflight=True)) as http:
        preflight = await http.options("/orders", headers=PREFLIGHT)
        plain_options = await http.options("/orders", headers={"origin": "https://shop.example"})
        no_origin = await http.options("/orders", headers={"access-control-request-method": "POST"})
    async with client(protect(orders_app(middleware=cors))) as http:
        not_configured = await http.options("/orders", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
    assert plain_options.status_code == no_origin.status_code == not_configured.status_code == 401


@pytest.mark.anyio
async def test_a_route_that_handles_options_is_never_exempt() -> None:
    @permission("orders:PurgeOrders")
    async def options_handler(request: Request) -> Response:
        return PlainTextResponse("secret options")

    app = Starlette(routes=[Route("/things", options_handler, methods=["OPTIONS"])])
    async with client(protect(app, cors_preflight=True)) as http:
        response = await http.options("/things", headers=PREFLIGHT)
    assert response.status_code == 401
    assert b"secret" not in response.content


class OverrideMethod:
    """A method-override middleware inside the app, of the kind docs/security.md R9 warns about."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope.get("headers", ()):
            if name in (b"x-http-method-override", b"x-http-method", b"x-method-override"):
                scope = {**scope, "method": value.decode().upper()}
        await self.app(scope, receive, send)


@pytest.mark.anyio
@pytest.mark.parametrize("header", ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"])
async def test_method_override_headers_never_change_the_action(header: str) -> None:
    app = protect(orders_app(middleware=[Middleware(OverrideMethod)]))
    async with client(app) as http:
        # alice may read order 7: read it is what happens, not a delete.
        response = await http.get("/orders/7", headers={**sigv4("GET", f"{BASE_URL}/orders/7"), header: "DELETE"})
        # alice may not create: a POST asking to be treated as GET is still a CreateOrder.
        post = await http.post("/orders", headers={**sigv4("POST", f"{BASE_URL}/orders"), header: "GET"})
    assert response.status_code == 200
    assert (response.json()["endpoint"], response.json()["method"]) == ("get_order", "GET")
    assert header.lower() not in response.json()["headers"]
    assert post.status_code == 403 and "orders:CreateOrder" in post.json()["message"]


# Unmapped routes and the start-up audit ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_undeclared_and_unknown_routes_are_denied() -> None:
    headers = {"/undeclared": sigv4("GET", f"{BASE_URL}/undeclared", user="carol"),
               "/nowhere": sigv4("GET", f"{BASE_URL}/nowhere", user="carol")}
    async with client(protect()) as http:
        for path in headers:
            anonymous = await http.get(path)
            known = await http.get(path, headers=headers[path])
            assert anonymous.status_code == 401
            assert known.status_code == 403
            assert "no permission is declared" in known.json()["message"]
            assert b'"endpoint"' not in known.content


def test_an_app_without_router_or_rules_is_flagged(caplog: pytest.LogCaptureFixture) -> None:
    async def bare(scope: Scope, receive: Receive, send: Send) -> None: ...

    with caplog.at_level(logging.WARNING, logger="iam_middleware"):
        assert IAMMiddleware(bare, iam=make_iam()).audit() == []
    assert "every request is denied" in caplog.text


@pytest.mark.anyio
async def test_a_second_lifespan_is_not_audited_again() -> None:
    middleware = protect()
    middleware.audit()
    middleware.rules = RuleTable([Rule("GET", "/orders/{order_id}", Permission("orders:GetOrder", ORDER))])
    # Declared twice now, but the audit already ran: the lifespan passes straight through.
    sent = await asgi_call(middleware, {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                           [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_the_audit_lists_undeclared_routes(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="iam_middleware"):
        listed = protect().audit()
    assert listed == ["GET /undeclared"]
    assert "GET /undeclared" in caplog.text
    with pytest.raises(ConfigurationError, match="GET /undeclared"):
        protect(undeclared="error").audit()
    with pytest.raises(ConfigurationError, match="'warn' or 'error'"):
        protect(undeclared="ignore")


def test_the_audit_sees_websocket_class_and_mounted_routes() -> None:
    class Bare(HTTPEndpoint):
        async def get(self, request: Request) -> Response:
            return PlainTextResponse("")

        async def put(self, request: Request) -> Response:
            return PlainTextResponse("")

    async def feed(websocket: WebSocket) -> None: ...

    async def opaque(scope: Scope, receive: Receive, send: Send) -> None: ...

    class AnyMethod:  # an ASGI app as a route's endpoint answers every method
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...

    app = Starlette(routes=[Route("/bare", Bare), WebSocketRoute("/feed", feed), Mount("/raw", app=opaque),
                            Route("/asgi", AnyMethod()), Mount("/v1", routes=[Route("/inner/{x}", undeclared)])])
    assert protect(app).audit() == ["GET /bare", "PUT /bare", "WEBSOCKET /feed", "* /raw", "* /asgi",
                                    "GET /v1/inner/{x}"]
    rules = RuleTable([Rule("WEBSOCKET", "/feed", Permission("orders:ListOrders")), Rule("*", "/raw", PUBLIC),
                       Rule("*", "/bare", Permission("orders:ListOrders")), Rule("*", "/asgi", PUBLIC),
                       Rule("GET", "/v1/inner/{x}", Permission("orders:GetOrder", "order/{x}"))])
    assert protect(app, rules=rules).audit() == []


def test_a_route_declared_in_two_places_is_an_error() -> None:
    rules = RuleTable([Rule("GET", "/orders/{order_id}", Permission("orders:GetOrder", ORDER))])
    with pytest.raises(ConfigurationError, match="declared both"):
        protect(rules=rules).audit()


def test_a_finder_and_a_decorator_disagreeing_is_an_error() -> None:
    def finder(route: BaseRoute, method: str) -> Permission | None:
        return Permission("orders:DeleteOrder") if getattr(route, "path", "") == "/orders/{order_id}" else None

    REQUIREMENT_FINDERS.append(finder)
    try:
        with pytest.raises(ConfigurationError, match="two places"):
            protect().audit()
    finally:
        REQUIREMENT_FINDERS.remove(finder)


def test_a_permission_naming_a_parameter_the_route_lacks_is_an_error_at_start_up() -> None:
    wrong = endpoint("wrong", permission("orders:GetOrder", "arn:{partition}:orders::{account}:order/{id}"))
    with pytest.raises(ConfigurationError, match=r"names \{id\}, which is not a parameter"):
        protect(Starlette(routes=[Route("/orders/{order_id}", wrong)])).audit()


@pytest.mark.anyio
async def test_the_rules_table_declares_routes_the_code_does_not() -> None:
    rules = RuleTable([Rule("GET", "/undeclared", Permission("orders:GetOrder", ALL_ORDERS))])
    async with client(protect(rules=rules)) as http:
        response = await http.get("/undeclared", headers=sigv4("GET", f"{BASE_URL}/undeclared"))
    assert response.status_code == 200 and response.json()["action"] == "orders:GetOrder"


@pytest.mark.anyio
async def test_mounted_routes_render_the_mounts_parameters_too() -> None:
    async with client(protect()) as http:
        response = await http.get("/tenants/acme/orders/9",
                                  headers=sigv4("GET", f"{BASE_URL}/tenants/acme/orders/9", user="carol"))
    assert response.status_code == 200
    assert response.json()["resource"] == f"arn:app:orders::{ACCOUNT}:tenant/acme/order/9"


# Never a 500 -----------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_permission_naming_a_missing_parameter_is_a_deny_not_a_500() -> None:
    wrong = endpoint("wrong", permission("orders:GetOrder", "arn:{partition}:orders::{account}:order/{id}"))
    async with client(protect(Starlette(routes=[Route("/orders/{order_id}", wrong)]))) as http:
        response = await http.get("/orders/1", headers=sigv4("GET", f"{BASE_URL}/orders/1", user="carol"))
    assert response.status_code == 403
    assert response.json()["error"] == "AuthorizationFailed"


@pytest.mark.anyio
async def test_a_query_parameter_the_resource_needs_is_a_400_naming_it() -> None:
    async with client(protect()) as http:
        missing = await http.get("/search", headers=sigv4("GET", f"{BASE_URL}/search", user="carol"))
        given = await http.get("/search?tenant=a*b",
                               headers=sigv4("GET", f"{BASE_URL}/search?tenant=a*b", user="carol"))
    assert missing.status_code == 400
    assert missing.json()["error"] == "MissingParameter"
    assert missing.json()["message"] == "This request needs the query parameter 'tenant'."
    assert given.status_code == 200
    assert given.json()["resource"] == f"arn:app:orders::{ACCOUNT}:tenant/a%2Ab"


class BrokenStore(MemoryStore):
    """A store whose reads fail: ``error`` says how."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
        self.broken = False

    def get(self, key: str) -> bytes | None:
        if self.broken:
            raise self.error
        return super().get(key)


@pytest.mark.anyio
@pytest.mark.parametrize(("error", "status"), [
    (StateUnavailableError("store down"), 503),
    (RuntimeError("the store's own bug"), 403),
])
async def test_a_store_that_raises_is_503_or_a_deny_never_a_500(error: Exception, status: int,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="iam_middleware")
    store = BrokenStore(error)
    iam = make_iam(store=store)
    token = login(iam, "bob")
    store.broken = True
    async with client(protect(iam=iam)) as http:
        response = await http.get("/orders/1", headers=bearer(token))
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert token not in response.text
    assert our_log(caplog) and not any(token.split(".")[2] in text for text in our_log(caplog))


@pytest.mark.anyio
async def test_a_finder_that_raises_is_a_deny() -> None:
    def finder(route: BaseRoute, method: str) -> Permission | None:
        raise RuntimeError("finder bug")

    middleware = protect()
    middleware._audited = True  # audited before the finder broke
    REQUIREMENT_FINDERS.append(finder)
    try:
        async with client(middleware) as http:
            response = await http.get("/orders/1", headers=sigv4("GET", f"{BASE_URL}/orders/1"))
    finally:
        REQUIREMENT_FINDERS.remove(finder)
    assert response.status_code == 403 and response.json()["error"] == "AuthorizationFailed"


@pytest.mark.anyio
async def test_sessions_in_redis_work_and_an_outage_is_503(redis_server: Any, redis_url: str,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="iam_middleware")
    store = RedisStore(redis_url)
    clock = Clock()
    iam = make_iam(clock, store=store)
    token = login(iam, "bob")
    async with client(protect(iam=iam)) as http:
        up = await http.get("/orders/1", headers=bearer(token))
        redis_server.stop()
        clock.now += 60  # past any cached check of the session
        try:
            down = await http.get("/orders/1", headers=bearer(token))
        finally:
            redis_server.start()
    store.close()
    assert up.status_code == 200
    assert down.status_code == 503
    assert down.headers["retry-after"]
    assert token not in down.text
    assert not any(token.split(".")[2] in text for text in our_log(caplog))


# The decision log --------------------------------------------------------------------------------------------------


def our_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every record the package logged (any level captured), as text, with its structured fields."""
    return [f"{r.getMessage()} {getattr(r, 'iam', '')} {r.exc_text or ''}" for r in caplog.records
            if r.name.startswith("iam_middleware")]


@pytest.mark.anyio
async def test_one_record_per_decision_and_never_a_credential(decisions: pytest.LogCaptureFixture) -> None:
    decisions.set_level(logging.DEBUG, logger="iam_middleware")
    iam = make_iam()
    token = login(iam, "bob")
    outside = web_identity_token()
    signed = sigv4("GET", f"{BASE_URL}/orders/42")
    forged = dict(signed, Authorization=signed["Authorization"][:-4] + "0000")
    body = b"order body"
    write = sigv4("POST", f"{BASE_URL}/orders", body=body)
    requests = [
        ("GET", "/orders/42", bearer(token), b""),
        ("GET", "/orders/42", signed, b""),
        ("GET", "/orders/42", forged, b""),
        ("POST", "/orders", write, body),
        ("GET", "/orders", bearer(outside), b""),
        ("GET", "/orders", bearer(token + "x"), b""),
        ("GET", "/health", bearer(token), b""),
        ("GET", "/undeclared", bearer(token), b""),
        ("GET", "/orders", {}, b""),
    ]
    bodies = []
    async with client(protect(iam=iam, explain=True)) as http:
        for method, path, headers, content in requests:
            response = await http.request(method, path, headers={**headers, "x-iam-explain": "1"}, content=content)
            bodies.append(response.text)
    records = decision_records(decisions)
    assert len(records) == len(requests)
    assert [r["decision"] for r in records] == [
        "Allowed", "Allowed", "Refused", "ImplicitlyDenied", "Allowed", "Refused", "Public", "Denied", "Refused"]
    assert records[0]["principal"] == f"arn:app:iam::{ACCOUNT}:user/bob"
    assert records[0]["action"] == "orders:GetOrder"
    assert records[0]["resource"] == f"arn:app:orders::{ACCOUNT}:order/42"
    assert records[3]["status"] == 403 and records[3]["principal"] == f"arn:app:iam::{ACCOUNT}:user/alice"
    assert records[7]["principal"] == f"arn:app:iam::{ACCOUNT}:user/bob"  # known before the route was refused
    secrets = [token, token.split(".")[2], outside, outside.split(".")[2], KEYS["alice"][1], PASSWORD, IDP_SECRET,
               signed["Authorization"].rsplit("=", 1)[1], write["Authorization"].rsplit("=", 1)[1],
               forged["Authorization"].rsplit("=", 1)[1], iam.settings.session_secret.decode()]
    logged = our_log(decisions) + [json.dumps(r) for r in records]
    for secret in secrets:
        assert not any(secret in text for text in logged + bodies)


@pytest.mark.anyio
async def test_no_record_when_the_decision_log_is_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="iam_middleware.decisions"):
        async with client(protect()) as http:
            assert (await http.get("/orders")).status_code == 401
    assert not [r for r in caplog.records if r.name == "iam_middleware.decisions"]
