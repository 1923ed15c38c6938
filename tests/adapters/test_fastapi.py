"""The FastAPI adapter: install() + Authorize, with the middleware and alone, through httpx's ASGI transport and a
real uvicorn server; bearer sessions from real password + TOTP logins, SigV4 from real botocore and curl."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Security, WebSocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from iam_middleware import IAM, ConfigurationError, Principal, permission, public
from iam_middleware.asgi_routing import requirement_of
from iam_middleware_fastapi import Authorize, install

from ._support import (
    ADMIN_BODY,
    ARN,
    ERROR_KEYS,
    KEYS,
    NOW,
    ORDER,
    PATH_PIECES,
    PATH_TRICKS,
    asgi_get,
    botocore_headers,
    demo_iam,
    freeze_botocore,
    login,
    raw_request,
    uvicorn_server,
)

pytestmark = pytest.mark.anyio

BASE = "http://testserver"
# Module level: FastAPI evaluates string annotations (PEP 563) in the module's namespace.
WS_READ = Authorize("orders:ListOrders")
READ = Authorize("orders:GetOrder", ORDER)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class NewOrder(BaseModel):
    item: str
    quantity: int


def make_app(iam: IAM, *, middleware: bool = True, **options: Any) -> FastAPI:
    """The orders API: async and sync endpoints, Depends and Security, a router-level dependency, a body."""
    app = FastAPI()
    install(app, iam, middleware=middleware, public_docs=True, **options)
    deleted: list[str] = []
    app.state.deleted = deleted

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str,
                        principal: Principal = Depends(Authorize("orders:GetOrder", ORDER))) -> Any:  # noqa: B008
        # FastAPI's default-argument form, as the README shows it; the others use Annotated.
        return {"order": order_id, "by": principal.arn}

    @app.delete("/orders/{order_id}")
    def delete_order(order_id: str,
                     principal: Annotated[Principal, Security(Authorize("orders:DeleteOrder", ORDER))]) -> Any:
        deleted.append(order_id)
        return {"deleted": order_id, "by": principal.arn}

    @app.post("/orders")
    async def create_order(order: NewOrder, principal: Annotated[Principal, Depends(
            Authorize("orders:CreateOrder", "arn:app:orders::{account}:order/*"))]) -> Any:
        return {"created": order.item, "quantity": order.quantity, "by": principal.arn}

    @app.get("/admin")
    async def admin(principal: Annotated[Principal, Depends(Authorize("orders:AdminOrders"))]) -> Any:
        return ADMIN_BODY

    @app.get("/public")
    @public
    async def public_page() -> Any:
        return {"public": True}

    router = APIRouter(prefix="/v1", dependencies=[Depends(Authorize("orders:ListOrders"))])

    @router.get("/orders")
    def list_orders(request: Request) -> Any:
        return {"orders": [], "by": request.state.iam_principal.arn}

    app.include_router(router)
    return app


def decorated_app(iam: IAM) -> FastAPI:
    """Routes declared with the core decorators (sync and async endpoints), behind install()'s middleware."""
    app = FastAPI()
    install(app, iam)

    @app.get("/items/{order_id}")
    @permission("orders:GetOrder", ORDER)
    async def get_item(order_id: str, request: Request) -> Any:
        return {"item": order_id, "by": request.user.arn}

    @app.delete("/items/{order_id}")
    @permission("orders:DeleteOrder", ORDER)
    def delete_item(order_id: str, request: Request) -> Any:
        return {"deleted": order_id, "by": request.user.arn}

    @app.get("/undeclared")
    async def undeclared() -> Any:
        return "ran"

    return app


@pytest.fixture
def iam() -> IAM:
    return demo_iam()


@pytest.fixture(params=[True, False], ids=["middleware", "alone"])
def middleware(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
async def client(iam: IAM, middleware: bool) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(iam, middleware=middleware)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Principals and decisions ------------------------------------------------------------------------------------------


async def test_session_login_hands_the_endpoint_its_principal(client: httpx.AsyncClient, iam: IAM) -> None:
    response = await client.get("/orders/42", headers=bearer(login(iam, "bob")))
    assert response.status_code == 200
    assert response.json() == {"order": "42", "by": ARN["bob"]}


async def test_sync_endpoint_with_security_dependency(client: httpx.AsyncClient, iam: IAM) -> None:
    # bob may delete only with MFA, which a password + TOTP session carries.
    response = await client.delete("/orders/7", headers=bearer(login(iam, "bob")))
    assert response.status_code == 200
    assert response.json() == {"deleted": "7", "by": ARN["bob"]}


async def test_anonymous_gets_401_json_with_a_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/orders/1", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["error"] == "MissingAuthenticationToken"
    assert body["request_id"] == "req-123" == response.headers["x-request-id"]
    assert "Bearer" in response.headers["www-authenticate"]
    assert "AWS4-HMAC-SHA256" in response.headers["www-authenticate"]


async def test_bad_token_gets_401_invalid_token(client: httpx.AsyncClient, iam: IAM) -> None:
    token = login(iam, "bob")
    response = await client.get("/orders/1", headers=bearer(token[:-2] + ("AA" if token[-2:] != "AA" else "BB")))
    assert response.status_code == 401
    assert set(response.json()) == ERROR_KEYS
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert token not in response.text


async def test_denied_caller_gets_403_naming_the_action(client: httpx.AsyncClient, iam: IAM) -> None:
    response = await client.delete("/orders/7", headers=bearer(login(iam, "alice")))
    assert response.status_code == 403
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["error"] == "AccessDenied"
    assert ARN["alice"] in body["message"] and "orders:DeleteOrder" in body["message"]
    assert "order/7" in body["message"]


async def test_resource_comes_from_the_path(client: httpx.AsyncClient, iam: IAM, monkeypatch: pytest.MonkeyPatch,
                                            middleware: bool) -> None:
    # carol's boundary denies deleting archived orders: the resource rendered from {order_id} decides.
    freeze_botocore(monkeypatch)
    for order, status in (("archived-1", 403), ("1", 200)):
        url = f"{BASE}/orders/{order}"
        response = await client.delete(url, headers=botocore_headers("DELETE", url, "carol"))
        assert response.status_code == status, response.text


async def test_router_level_dependency_protects_its_routes(client: httpx.AsyncClient, iam: IAM) -> None:
    assert (await client.get("/v1/orders")).status_code == 401
    response = await client.get("/v1/orders", headers=bearer(login(iam, "alice")))
    assert response.status_code == 200
    assert response.json()["by"] == ARN["alice"]


async def test_public_route_needs_no_credential(client: httpx.AsyncClient) -> None:
    response = await client.get("/public")
    assert response.status_code == 200
    assert response.json() == {"public": True}


async def test_every_decision_is_logged_without_credentials(client: httpx.AsyncClient, iam: IAM,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    token = login(iam, "alice")
    with caplog.at_level(logging.INFO, logger="iam_middleware.decisions"):
        await client.get("/orders/1", headers={**bearer(token), "X-Request-ID": "allowed-1"})
        await client.delete("/orders/1", headers={**bearer(token), "X-Request-ID": "denied-1"})
    records = {r.iam["request_id"]: r.iam for r in caplog.records if hasattr(r, "iam")}
    assert records["allowed-1"]["decision"] == "Allowed"
    assert records["allowed-1"]["action"] == "orders:GetOrder"
    assert records["allowed-1"]["resource"] == "arn:app:orders::111122223333:order/1"
    assert records["allowed-1"]["principal"] == ARN["alice"]
    assert records["denied-1"]["decision"] == "ImplicitlyDenied" and records["denied-1"]["status"] == 403
    assert token not in caplog.text


# SigV4 -------------------------------------------------------------------------------------------------------------


async def test_botocore_signed_get(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_botocore(monkeypatch)
    url = f"{BASE}/orders/9?view=full"
    response = await client.get(url, headers=botocore_headers("GET", url, "alice"))
    assert response.status_code == 200, response.text
    assert response.json()["by"] == ARN["alice"]


async def test_botocore_signed_body_reaches_the_endpoint(client: httpx.AsyncClient,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_botocore(monkeypatch)
    url = f"{BASE}/orders"
    body = json.dumps({"item": "tea", "quantity": 3}).encode()
    headers = botocore_headers("POST", url, "carol", body=body, headers={"Content-Type": "application/json"})
    response = await client.post(url, headers=headers, content=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"created": "tea", "quantity": 3, "by": ARN["carol"]}
    tampered = body.replace(b"3", b"9")
    response = await client.post(url, headers=headers, content=tampered)
    assert response.status_code == 401
    assert response.json()["error"] in {"SignatureDoesNotMatch", "XAmzContentSHA256Mismatch"}
    assert response.headers["www-authenticate"].startswith("AWS4-HMAC-SHA256")


async def test_signature_from_another_time_is_refused(client: httpx.AsyncClient,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_botocore(monkeypatch, NOW - 3600)
    url = f"{BASE}/orders/1"
    response = await client.get(url, headers=botocore_headers("GET", url, "alice"))
    assert response.status_code == 401
    assert set(response.json()) == ERROR_KEYS


# The middleware and the dependency together -----------------------------------------------------------------------


async def test_with_middleware_undeclared_routes_are_denied(iam: IAM) -> None:
    app = decorated_app(iam)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        assert (await c.get("/undeclared")).status_code == 401
        response = await c.get("/undeclared", headers=bearer(login(iam, "carol")))
        assert response.status_code == 403
        assert "no permission is declared" in response.json()["message"]


async def test_core_decorators_on_sync_and_async_endpoints(iam: IAM) -> None:
    app = decorated_app(iam)
    token = login(iam, "alice")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        response = await c.get("/items/5", headers=bearer(token))
        assert response.status_code == 200
        assert response.json() == {"item": "5", "by": ARN["alice"]}
        assert (await c.delete("/items/5", headers=bearer(token))).status_code == 403
        assert (await c.delete("/items/5")).status_code == 401


async def test_without_middleware_only_authorize_routes_are_checked(iam: IAM) -> None:
    app = make_app(iam, middleware=False)

    @app.get("/open")
    async def open_route() -> Any:
        return "open"

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        assert (await c.get("/open")).status_code == 200
        assert (await c.get("/admin")).status_code == 401


async def test_authorize_with_explicit_iam_needs_no_install(iam: IAM) -> None:
    app = FastAPI()

    # A default value, not Annotated: the annotation is a string (PEP 563) that cannot see this local ``iam``.
    @app.get("/orders/{order_id}")
    async def get_order(order_id: str,
                        principal: Principal = Depends(Authorize("orders:GetOrder", ORDER, iam=iam))) -> Any:  # noqa: B008
        return principal.arn

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        response = await c.get("/orders/1", headers=bearer(login(iam, "alice")))
        assert response.json() == ARN["alice"]


async def test_middleware_decision_is_reused_not_repeated(iam: IAM) -> None:
    calls: list[str] = []
    original = iam.decisions.decide

    def counting_decide(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1])
        return original(*args, **kwargs)

    iam.decisions.decide = counting_decide  # type: ignore[method-assign]
    app = make_app(iam, middleware=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        assert (await c.get("/orders/3", headers=bearer(login(iam, "alice")))).status_code == 200
    assert calls == ["orders:GetOrder"]


async def test_mounted_app_behind_the_parents_middleware(iam: IAM) -> None:
    # The sub-app never called install(): the parent's middleware decides, the dependency hands over the principal.
    inner = FastAPI()

    @inner.get("/orders/{order_id}")
    async def get_order(order_id: str, principal: Annotated[Principal, Depends(READ)]) -> Any:
        return {"order": order_id, "by": principal.arn}

    outer = FastAPI()
    install(outer, iam)
    outer.mount("/inner", inner)
    token = login(iam, "alice")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=outer), base_url=BASE) as c:
        assert (await c.get("/inner/orders/3")).status_code == 401
        response = await c.get("/inner/orders/3", headers=bearer(token))
        assert response.status_code == 200 and response.json() == {"order": "3", "by": ARN["alice"]}


def test_permission_and_authorize_disagreeing_is_a_configuration_error(iam: IAM) -> None:
    app = FastAPI()
    install(app, iam)

    @app.get("/orders/{order_id}")
    @permission("orders:GetOrder", ORDER)
    async def get_order(order_id: str,
                        principal: Annotated[Principal, Depends(Authorize("orders:DeleteOrder", ORDER))]) -> Any:
        return "ran"

    route = next(r for r in app.routes if getattr(r, "path", "") == "/orders/{order_id}")
    with pytest.raises(ConfigurationError, match="two places"):
        requirement_of(route, "GET")


def test_permission_and_authorize_agreeing_is_fine(iam: IAM) -> None:
    app = FastAPI()
    install(app, iam)

    @app.get("/orders/{order_id}")
    @permission("orders:GetOrder", ORDER)
    async def get_order(order_id: str,
                        principal: Annotated[Principal, Depends(Authorize("orders:GetOrder", ORDER))]) -> Any:
        return "ran"

    route = next(r for r in app.routes if getattr(r, "path", "") == "/orders/{order_id}")
    requirement = requirement_of(route, "GET")
    assert requirement is not None and getattr(requirement, "action", None) == "orders:GetOrder"


def test_two_authorize_permissions_on_one_route_is_a_configuration_error(iam: IAM) -> None:
    app = FastAPI()
    install(app, iam)

    @app.get("/x", dependencies=[Depends(Authorize("orders:ListOrders"))])
    async def x(principal: Annotated[Principal, Depends(Authorize("orders:GetOrder"))]) -> Any:
        return "ran"

    route = next(r for r in app.routes if getattr(r, "path", "") == "/x")
    with pytest.raises(ConfigurationError, match="one action"):
        requirement_of(route, "GET")


@pytest.mark.parametrize("middleware", [True, False], ids=["middleware", "alone"])
async def test_conflicting_declarations_never_run_the_view(iam: IAM, middleware: bool) -> None:
    app = FastAPI()
    install(app, iam, middleware=middleware)
    ran: list[str] = []

    @app.get("/orders/{order_id}")
    @permission("orders:GetOrder", ORDER)
    async def get_order(order_id: str,
                        principal: Annotated[Principal, Depends(Authorize("orders:DeleteOrder", ORDER))]) -> Any:
        ran.append(order_id)
        return "ran"

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        response = await c.get("/orders/1", headers=bearer(login(iam, "carol")))
    assert response.status_code in (403, 500)
    assert ran == []


async def ws_handshake(app: FastAPI, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Open a websocket on /ws the way a server does (raw ASGI), send one message; return what the app sent."""
    scope = {"type": "websocket", "asgi": {"version": "3.0"}, "path": "/ws", "raw_path": b"/ws", "root_path": "",
             "query_string": b"", "scheme": "ws", "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
             "headers": [(b"host", b"testserver"), *((k.lower().encode(), v.encode()) for k, v in headers.items())],
             "subprotocols": []}
    inbox = [{"type": "websocket.connect"}, {"type": "websocket.receive", "text": "hi"},
             {"type": "websocket.disconnect", "code": 1000}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_websocket_dependency_alone_closes_refused_handshakes(iam: IAM) -> None:
    app = FastAPI()
    install(app, iam, middleware=False)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, principal: Annotated[Principal, Depends(WS_READ)]) -> None:
        await websocket.accept()
        await websocket.send_text(principal.arn)
        await websocket.close()

    refused = await ws_handshake(app, {})
    assert refused == [{"type": "websocket.close", "code": 1008, "reason": "MissingAuthenticationToken"}]
    accepted = await ws_handshake(app, bearer(login(iam, "alice")))
    assert [m["type"] for m in accepted][:2] == ["websocket.accept", "websocket.send"]
    assert accepted[1]["text"] == ARN["alice"]


# OpenAPI -----------------------------------------------------------------------------------------------------------


async def test_openapi_shows_security_schemes_and_actions(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["sigv4"]["type"] == "apiKey" and schemes["sigv4"]["in"] == "header"
    assert schemes["sigv4"]["name"] == "Authorization"
    assert schemes["session"] == {**schemes["session"], "type": "apiKey", "in": "cookie", "name": "iam_session"}
    get_order = schema["paths"]["/orders/{order_id}"]["get"]
    assert get_order["x-iam-action"] == "orders:GetOrder"
    assert get_order["x-iam-resource"] == ORDER
    assert get_order["security"] == [{"bearer": []}, {"sigv4": []}, {"session": []}]
    assert schema["paths"]["/orders/{order_id}"]["delete"]["x-iam-action"] == "orders:DeleteOrder"
    assert schema["paths"]["/v1/orders"]["get"]["x-iam-action"] == "orders:ListOrders"
    assert schema["paths"]["/public"]["get"]["security"] == []
    assert "x-iam-action" not in schema["paths"]["/public"]["get"]


async def test_openapi_of_core_decorators(iam: IAM) -> None:
    app = decorated_app(iam)
    schema = app.openapi()
    assert schema["paths"]["/items/{order_id}"]["delete"]["x-iam-action"] == "orders:DeleteOrder"
    assert "x-iam-action" not in schema["paths"]["/undeclared"]["get"]


async def test_docs_are_denied_unless_declared_public(iam: IAM) -> None:
    app = FastAPI()
    install(app, iam)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        assert (await c.get("/openapi.json")).status_code == 401
        assert (await c.get("/docs")).status_code == 401


# Route-matching bypasses (docs/security.md section 4) over a real uvicorn server -------------------------------------


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[int, int, str, str]]:
    """Both variants served by real uvicorn: (port with middleware, port alone, alice's token, carol's token)."""
    iam = demo_iam()
    with uvicorn_server(make_app(iam, middleware=True)) as with_mw, uvicorn_server(make_app(iam, middleware=False)) \
            as alone:
        yield with_mw, alone, login(iam, "alice"), login(iam, "carol")


@pytest.mark.parametrize("target", PATH_TRICKS)
def test_path_tricks_never_reach_the_protected_view(live: tuple[int, int, str, str], target: str) -> None:
    with_mw, alone, alice, _ = live
    for port in (with_mw, alone):
        for headers in ({}, bearer(alice)):
            status, answer, body = raw_request(port, "GET", target, headers)
            assert ADMIN_BODY.encode() not in body, (port, target, headers)
            assert status in (307, 400, 401, 403, 404, 405), (target, status, body)
            if status == 307:
                # Starlette's trailing-slash redirect: the target is authorized again when followed.
                location = answer["location"].split("://", 1)[1].partition("/")[2]
                status, _, body = raw_request(port, "GET", "/" + location, headers)
                assert status in (401, 403, 404) and ADMIN_BODY.encode() not in body


def test_the_protected_view_is_reachable_by_whom_policies_allow(live: tuple[int, int, str, str]) -> None:
    with_mw, alone, _, carol = live
    for port in (with_mw, alone):
        status, _, body = raw_request(port, "GET", "/admin", bearer(carol))
        assert status == 200 and ADMIN_BODY.encode() in body


@pytest.fixture(scope="module")
def in_process() -> tuple[FastAPI, FastAPI, str]:
    iam = demo_iam()
    return make_app(iam, middleware=True), make_app(iam, middleware=False), login(iam, "alice")


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.sampled_from(PATH_PIECES), min_size=1, max_size=8))
def test_no_request_target_reaches_the_protected_view(in_process: tuple[FastAPI, FastAPI, str],
                                                       pieces: list[str]) -> None:
    raw = ("/" + "".join(pieces)).encode()
    with_mw, alone, alice = in_process
    for app in (with_mw, alone):
        for headers in ({}, bearer(alice)):
            status, body = asyncio.run(asgi_get(app, raw, headers))
            assert ADMIN_BODY.encode() not in body, (raw, status)


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE"])
def test_other_methods_never_reach_the_protected_view(live: tuple[int, int, str, str], method: str) -> None:
    with_mw, alone, alice, _ = live
    for port in (with_mw, alone):
        for headers in ({}, bearer(alice), {**bearer(alice), "Origin": "http://evil.example",
                                            "Access-Control-Request-Method": "GET"}):
            status, _, body = raw_request(port, method, "/admin", headers)
            assert status in (401, 403, 404, 405), (method, status)
            assert ADMIN_BODY.encode() not in body


@pytest.mark.parametrize("header", ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"])
def test_method_override_headers_never_change_the_action(live: tuple[int, int, str, str], header: str) -> None:
    with_mw, alone, alice, _ = live
    for port in (with_mw, alone):
        status, _, body = raw_request(port, "GET", "/orders/5", {**bearer(alice), header: "DELETE"})
        assert status == 200
        assert json.loads(body) == {"order": "5", "by": ARN["alice"]}
        status, _, _ = raw_request(port, "POST", "/orders/5?_method=DELETE", {**bearer(alice), header: "DELETE"})
        assert status in (401, 403, 405)


def test_encoded_slash_cannot_smuggle_a_path_parameter(live: tuple[int, int, str, str]) -> None:
    with_mw, alone, alice, _ = live
    for port in (with_mw, alone):
        for target in ("/orders/..%2Fadmin", "/orders/a%2Fb", "/orders/%2E%2E"):
            status, _, body = raw_request(port, "DELETE", target, bearer(alice))
            assert status in (400, 403, 404, 405), (target, status)


def test_botocore_signed_request_over_uvicorn(live: tuple[int, int, str, str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_botocore(monkeypatch)
    with_mw, alone, _, _ = live
    for port in (with_mw, alone):
        url = f"http://127.0.0.1:{port}/orders/77"
        response = httpx.get(url, headers=botocore_headers("GET", url, "alice"))
        assert response.status_code == 200, response.text
        assert response.json() == {"order": "77", "by": ARN["alice"]}


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_aws_sigv4_over_uvicorn() -> None:
    # curl signs with the wall clock, so this server's IAM reads it too.
    iam = demo_iam(clock=time.time)
    key, secret = KEYS["alice"]
    with uvicorn_server(make_app(iam)) as port:
        done = subprocess.run(
            ["curl", "-sS", "--aws-sigv4", "aws:amz:local:orders", "--user", f"{key}:{secret}",
             f"http://127.0.0.1:{port}/orders/12", "-w", "\n%{http_code}"],
            capture_output=True, text=True, timeout=30, check=True,
        )
        body, _, status = done.stdout.rpartition("\n")
        assert status == "200", body
        assert json.loads(body) == {"order": "12", "by": ARN["alice"]}
        denied = subprocess.run(
            ["curl", "-sS", "-X", "DELETE", "--aws-sigv4", "aws:amz:local:orders", "--user", f"{key}:{secret}",
             f"http://127.0.0.1:{port}/orders/12", "-w", "\n%{http_code}"],
            capture_output=True, text=True, timeout=30, check=True,
        )
        body, _, status = denied.stdout.rpartition("\n")
        assert status == "403" and json.loads(body)["error"] == "AccessDenied"
