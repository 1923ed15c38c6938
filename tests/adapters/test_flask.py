"""The Flask extension: IAMFlask(app, iam) and init_app, view decorators, blueprints, g.principal, JSON 401/403
bodies identical to the middleware's; through app.test_client() and real WSGI servers (Werkzeug, wsgiref)."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from flask import Blueprint, Flask, g, request
from flask.views import MethodView
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from iam_middleware import (
    IAM,
    PUBLIC,
    ConfigurationError,
    IAMMiddleware,
    Permission,
    Rule,
    RuleTable,
    permission,
    public,
)
from iam_middleware_flask import IAMFlask

from ._support import (
    ADMIN_BODY,
    ARN,
    ERROR_KEYS,
    EXAMPLES,
    KEYS,
    ORDER,
    PATH_PIECES,
    PATH_TRICKS,
    botocore_headers,
    demo_iam,
    freeze_botocore,
    login,
    raw_request,
    werkzeug_server,
    wsgiref_server,
)

BASE = "http://localhost"


def make_app(iam: IAM | None = None, **options: Any) -> tuple[Flask, IAMFlask]:
    """The orders API as a Flask app: app views, a blueprint, a class-based view, sync and async views."""
    app = Flask(__name__)
    guard = IAMFlask(app, iam, **options)
    deleted: list[str] = []
    app.config["DELETED"] = deleted

    @app.get("/orders/<order_id>")
    @guard.permission("orders:GetOrder", resource=ORDER)
    def get_order(order_id: str) -> Any:
        return {"order": order_id, "by": g.principal.arn, "action": g.iam_decision.action,
                "override": request.headers.get("X-HTTP-Method-Override")}

    @app.delete("/orders/<order_id>")
    @guard.permission("orders:DeleteOrder", resource=ORDER)
    def delete_order(order_id: str) -> Any:
        deleted.append(order_id)
        return {"deleted": order_id, "by": g.principal.arn}

    @app.post("/orders")
    @permission("orders:CreateOrder", "arn:app:orders::{account}:order/*")
    def create_order() -> Any:
        order = request.get_json()
        return {"created": order["item"], "by": g.principal.arn}

    @app.get("/admin")
    @guard.permission("orders:AdminOrders")
    def admin() -> Any:
        return ADMIN_BODY

    @app.get("/async/<order_id>")
    @guard.permission("orders:GetOrder", resource=ORDER)
    async def get_order_async(order_id: str) -> Any:
        await asyncio.sleep(0)
        return {"order": order_id, "by": g.principal.arn}

    @app.get("/public")
    @guard.public
    def public_page() -> Any:
        return {"public": True, "principal": g.principal}

    @app.get("/undeclared")
    def undeclared() -> Any:
        return "ran"

    @app.route("/dir/")
    @public
    def directory() -> Any:
        return "dir"

    bp = Blueprint("shop", __name__, url_prefix="/shop")

    @bp.get("/orders/<order_id>")
    @guard.permission("orders:GetOrder", resource=ORDER)
    def shop_order(order_id: str) -> Any:
        return {"shop": order_id, "by": g.principal.arn}

    @bp.get("/secret")
    def shop_secret() -> Any:
        return "secret"

    app.register_blueprint(bp)

    class Items(MethodView):
        @permission("orders:GetOrder", ORDER)
        def get(self, order_id: str) -> Any:
            return {"item": order_id, "by": g.principal.arn}

        @permission("orders:DeleteOrder", ORDER)
        def delete(self, order_id: str) -> Any:
            return {"deleted": order_id}

    app.add_url_rule("/items/<order_id>", view_func=Items.as_view("items"))
    return app, guard


@pytest.fixture
def iam() -> IAM:
    return demo_iam()


@pytest.fixture
def app(iam: IAM) -> Flask:
    return make_app(iam)[0]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Principals and decisions ------------------------------------------------------------------------------------------


def test_session_login_puts_the_principal_in_g(app: Flask, iam: IAM) -> None:
    response = app.test_client().get("/orders/42", headers=bearer(login(iam, "bob")))
    assert response.status_code == 200
    assert response.get_json()["by"] == ARN["bob"]
    assert response.get_json()["action"] == "orders:GetOrder"


def test_anonymous_gets_401_json_with_a_challenge(app: Flask) -> None:
    response = app.test_client().get("/orders/1", headers={"X-Request-ID": "req-9"})
    assert response.status_code == 401
    assert response.content_type == "application/json"
    body = response.get_json()
    assert set(body) == ERROR_KEYS and body["error"] == "MissingAuthenticationToken"
    assert body["request_id"] == "req-9" == response.headers["X-Request-ID"]
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="iam-middleware", AWS4-HMAC-SHA256'


def test_denied_caller_gets_403_and_the_view_never_runs(app: Flask, iam: IAM) -> None:
    response = app.test_client().delete("/orders/7", headers=bearer(login(iam, "alice")))
    assert response.status_code == 403
    body = response.get_json()
    assert set(body) == ERROR_KEYS and body["error"] == "AccessDenied"
    assert "orders:DeleteOrder" in body["message"] and ARN["alice"] in body["message"]
    assert app.config["DELETED"] == []


def test_bodies_and_headers_are_those_of_the_asgi_middleware(app: Flask, iam: IAM) -> None:
    # The same refusals from a Starlette app behind IAMMiddleware and from the Flask extension.
    @permission("orders:DeleteOrder", ORDER)
    async def delete_order(request: Request) -> JSONResponse:
        return JSONResponse({})

    starlette_app = Starlette(routes=[Route("/orders/{order_id}", delete_order, methods=["DELETE"])])
    starlette_app.add_middleware(IAMMiddleware, iam=iam, routes_from=starlette_app)
    alice = login(iam, "alice")
    cases = [{}, bearer(alice), bearer(alice + "x"), {"Authorization": "Basic YWxpY2U6cHc="}]

    async def from_starlette() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=starlette_app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            return [await client.delete("/orders/7", headers={**h, "X-Request-ID": "same"}) for h in cases]

    expected = asyncio.run(from_starlette())
    client = app.test_client()
    for headers, want in zip(cases, expected, strict=True):
        got = client.delete("/orders/7", headers={**headers, "X-Request-ID": "same"})
        assert got.status_code == want.status_code
        assert got.get_json() == want.json()
        assert got.headers.get("WWW-Authenticate") == want.headers.get("www-authenticate")
        assert got.headers["Content-Type"] == want.headers["content-type"]


def test_resource_comes_from_the_view_args(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_botocore(monkeypatch)
    client = app.test_client()
    for order, status in (("archived-1", 403), ("1", 200)):
        url = f"{BASE}/orders/{order}"
        assert client.delete(url, headers=botocore_headers("DELETE", url, "carol")).status_code == status


def test_public_view_needs_no_credential(app: Flask) -> None:
    response = app.test_client().get("/public")
    assert response.status_code == 200
    assert response.get_json() == {"public": True, "principal": None}


def test_undeclared_views_are_denied(app: Flask, iam: IAM) -> None:
    client = app.test_client()
    assert client.get("/undeclared").status_code == 401
    response = client.get("/undeclared", headers=bearer(login(iam, "carol")))
    assert response.status_code == 403
    assert "no permission is declared" in response.get_json()["message"]


def test_async_view(app: Flask, iam: IAM) -> None:
    pytest.importorskip("asgiref", reason="Flask runs async views with asgiref (flask[async])")
    client = app.test_client()
    assert client.get("/async/3").status_code == 401
    response = client.get("/async/3", headers=bearer(login(iam, "alice")))
    assert response.status_code == 200 and response.get_json() == {"order": "3", "by": ARN["alice"]}


def test_blueprint_views(app: Flask, iam: IAM) -> None:
    client = app.test_client()
    token = login(iam, "alice")
    assert client.get("/shop/orders/1").status_code == 401
    assert client.get("/shop/orders/1", headers=bearer(token)).get_json() == {"shop": "1", "by": ARN["alice"]}
    assert client.get("/shop/secret", headers=bearer(token)).status_code == 403


def test_class_based_view_per_method(app: Flask, iam: IAM) -> None:
    client = app.test_client()
    token = login(iam, "alice")
    assert client.get("/items/4", headers=bearer(token)).get_json() == {"item": "4", "by": ARN["alice"]}
    assert client.delete("/items/4", headers=bearer(token)).status_code == 403


def test_init_app_with_the_directory_file_from_config() -> None:
    guard = IAMFlask()

    def create_app() -> Flask:
        app = Flask(__name__)
        app.config["IAM_FILE"] = str(EXAMPLES)
        guard.init_app(app)

        @app.get("/orders/<order_id>")
        @guard.permission("orders:GetOrder", resource=ORDER)
        def get_order(order_id: str) -> Any:
            return g.principal.arn

        return app

    first, second = create_app(), create_app()
    assert first.extensions["iam_middleware"].iam is not second.extensions["iam_middleware"].iam
    assert first.test_client().get("/orders/1").status_code == 401
    assert second.test_client().get("/orders/1").status_code == 401


def test_init_app_without_an_iam_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="IAM_FILE"):
        IAMFlask(Flask(__name__))


def test_init_app_twice_is_a_configuration_error(app: Flask, iam: IAM) -> None:
    with pytest.raises(ConfigurationError, match="already set up"):
        IAMFlask(app, iam)


def test_authorization_runs_before_the_apps_own_before_request(iam: IAM) -> None:
    app = Flask(__name__)
    seen: list[str] = []

    @app.before_request
    def load_user() -> None:
        seen.append("app hook ran")

    IAMFlask(app, iam)

    @app.get("/x")
    @permission("orders:GetOrder")
    def x() -> Any:
        return "x"

    assert app.test_client().get("/x").status_code == 401
    assert seen == []


def test_rules_table_declares_views_by_template(iam: IAM) -> None:
    rules = RuleTable([Rule("GET", "/ruled/{order_id}", Permission("orders:GetOrder", ORDER)),
                       Rule("GET", "/health", PUBLIC)])
    app = Flask(__name__)
    IAMFlask(app, iam, rules=rules)

    @app.get("/ruled/<int:order_id>")
    def ruled(order_id: int) -> Any:
        return {"order": order_id, "by": g.principal.arn}

    @app.get("/health")
    def health() -> Any:
        return "ok"

    client = app.test_client()
    assert client.get("/health").status_code == 200
    assert client.get("/ruled/5").status_code == 401
    assert client.get("/ruled/5", headers=bearer(login(iam, "alice"))).get_json() == {"order": 5, "by": ARN["alice"]}


def test_declared_twice_is_a_configuration_error(iam: IAM) -> None:
    app = Flask(__name__)
    guard = IAMFlask(app, iam, rules=RuleTable([Rule("GET", "/x", PUBLIC)]))

    @app.get("/x")
    @permission("orders:GetOrder")
    def x() -> Any:
        return "x"

    with pytest.raises(ConfigurationError, match="declare it once"):
        guard.audit(app)
    # At run time the same error fails closed.
    assert app.test_client().get("/x").status_code == 403


def test_audit_lists_undeclared_endpoints_and_can_refuse(iam: IAM) -> None:
    app, guard = make_app(iam)
    assert sorted(guard.audit(app)) == ["GET /shop/secret", "GET /static/<path:filename>", "GET /undeclared"]
    strict, _ = make_app(demo_iam(), undeclared="error")
    response = strict.test_client().get("/public")
    assert response.status_code == 403 and response.get_json()["error"] == "AuthorizationFailed"


def test_explanation_only_when_enabled_and_asked(iam: IAM) -> None:
    token = login(iam, "alice")
    plain, _ = make_app(iam)
    assert "explanation" not in plain.test_client().delete(
        "/orders/1", headers={**bearer(token), "X-IAM-Explain": "1"}).get_json()
    explaining, _ = make_app(iam, explain=True)
    body = explaining.test_client().delete("/orders/1", headers={**bearer(token), "X-IAM-Explain": "1"}).get_json()
    assert body["explanation"]["decision"] == "ImplicitlyDenied"


def test_every_decision_is_logged_without_credentials(app: Flask, iam: IAM,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    token = login(iam, "alice")
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="iam_middleware.decisions"):
        client.get("/orders/1", headers={**bearer(token), "X-Request-ID": "allowed-1"})
        client.delete("/orders/1", headers={**bearer(token), "X-Request-ID": "denied-1"})
        client.get("/public", headers={"X-Request-ID": "public-1"})
        client.get("/orders/1", headers={"X-Request-ID": "anonymous-1"})
    records = {r.iam["request_id"]: r.iam for r in caplog.records if hasattr(r, "iam")}
    assert records["allowed-1"]["decision"] == "Allowed"
    assert records["allowed-1"]["resource"] == "arn:app:orders::111122223333:order/1"
    assert records["allowed-1"]["principal"] == ARN["alice"]
    assert records["denied-1"]["decision"] == "ImplicitlyDenied" and records["denied-1"]["status"] == 403
    assert records["denied-1"]["principal"] == ARN["alice"]
    assert records["public-1"]["decision"] == "Public"
    assert records["anonymous-1"]["decision"] == "Refused" and records["anonymous-1"]["status"] == 401
    assert token not in caplog.text


# Paths and methods no route serves ----------------------------------------------------------------------------------


def test_unknown_paths_and_methods_are_refused_as_every_shell_refuses_them(app: Flask, iam: IAM) -> None:
    """As the ASGI middleware answers: 401 without a credential, 403 with one (no route is revealed by a 404)."""
    client = app.test_client()
    for headers, status, code in (({}, 401, "MissingAuthenticationToken"),
                                  (bearer(login(iam, "alice")), 403, "AccessDenied")):
        for response in (client.get("/nowhere", headers=headers), client.put("/orders/1", headers=headers)):
            assert response.status_code == status
            assert response.get_json()["error"] == code


def test_head_is_authorized_as_get(app: Flask, iam: IAM) -> None:
    client = app.test_client()
    token = login(iam, "alice")
    assert client.head("/orders/1").status_code == 401
    assert client.head("/orders/1", headers=bearer(token)).status_code == 200
    assert client.head("/admin", headers=bearer(token)).status_code == 403


def test_automatic_options_needs_the_routes_permission(app: Flask, iam: IAM) -> None:
    client = app.test_client()
    alice = bearer(login(iam, "alice"))
    preflight = {"Origin": "http://127.0.0.1:8000", "Access-Control-Request-Method": "GET"}
    assert client.options("/admin").status_code == 401
    assert client.options("/admin", headers=preflight).status_code == 401
    assert client.options("/admin", headers=alice).status_code == 403
    response = client.options("/orders/1", headers=alice)
    assert response.status_code == 200 and "GET" in response.headers["Allow"]


def test_cors_preflight_option_lets_only_real_preflights_through(iam: IAM) -> None:
    app, _ = make_app(iam, cors_preflight=True)

    @app.route("/handles-options", methods=["OPTIONS"])
    @permission("orders:AdminOrders")
    def handles_options() -> Any:
        return ADMIN_BODY

    client = app.test_client()
    preflight = {"Origin": "http://127.0.0.1:8000", "Access-Control-Request-Method": "GET"}
    assert client.options("/admin", headers=preflight).status_code == 200
    assert client.options("/admin", headers={"Origin": "http://127.0.0.1:8000"}).status_code == 401
    assert client.options("/admin").status_code == 401
    # A view that handles OPTIONS itself is never exempt.
    response = client.options("/handles-options", headers=preflight)
    assert response.status_code == 401 and ADMIN_BODY not in response.get_data(as_text=True)


def test_trailing_slash_redirect_is_authorized_when_followed(app: Flask, iam: IAM) -> None:
    client = app.test_client()
    response = client.get("/dir")
    assert response.status_code == 308 and response.headers["Location"].endswith("/dir/")
    # No route serves /admin/: refused as every shell refuses an unknown path.
    assert client.get("/admin/", headers=bearer(login(iam, "alice"))).status_code == 403


def test_static_files_are_denied_unless_declared_public(iam: IAM, tmp_path: Path) -> None:
    (tmp_path / "site.css").write_text("body {}")
    for public_static, status in ((False, 401), (True, 200)):
        app = Flask(__name__, static_folder=str(tmp_path), static_url_path="/static")
        IAMFlask(app, iam, public_static=public_static)
        response = app.test_client().get("/static/site.css")
        assert response.status_code == status
        response.close()


# SigV4 -------------------------------------------------------------------------------------------------------------


def test_botocore_signed_body_reaches_the_view(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_botocore(monkeypatch)
    url = f"{BASE}/orders"
    body = json.dumps({"item": "tea"}).encode()
    headers = botocore_headers("POST", url, "carol", body=body, headers={"Content-Type": "application/json"})
    client = app.test_client()
    response = client.post(url, headers=headers, data=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"created": "tea", "by": ARN["carol"]}
    response = client.post(url, headers=headers, data=body.replace(b"tea", b"gin"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("AWS4-HMAC-SHA256")


def test_signed_body_over_the_limit_is_413(iam: IAM, monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_botocore(monkeypatch)
    app, _ = make_app(iam, max_body_bytes=16)
    url = f"{BASE}/orders"
    body = json.dumps({"item": "a" * 64}).encode()
    headers = botocore_headers("POST", url, "carol", body=body, headers={"Content-Type": "application/json"})
    response = app.test_client().post(url, headers=headers, data=body)
    assert response.status_code == 413
    assert response.get_json()["error"] == "EntityTooLarge"


# Route-matching bypasses (docs/security.md section 4) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[int, int, str, str]]:
    """The app served by Werkzeug and by wsgiref: (werkzeug port, wsgiref port, alice's token, carol's token)."""
    iam = demo_iam()
    app, _ = make_app(iam)
    with werkzeug_server(app) as werkzeug_port, wsgiref_server(app) as wsgiref_port:
        yield werkzeug_port, wsgiref_port, login(iam, "alice"), login(iam, "carol")


@pytest.mark.parametrize("target", PATH_TRICKS)
def test_path_tricks_never_reach_the_protected_view(live: tuple[int, int, str, str], target: str) -> None:
    for port in live[:2]:
        for headers in ({}, bearer(live[2])):
            status, _, body = raw_request(port, "GET", target, headers)
            assert ADMIN_BODY.encode() not in body, (port, target, headers)
            assert status in (400, 401, 403, 404, 405), (port, target, status)


@pytest.mark.parametrize("target", PATH_TRICKS)
def test_path_tricks_through_the_test_client(app: Flask, iam: IAM, target: str) -> None:
    path, _, query = target.partition("?")
    environ = {"PATH_INFO": unquote(path, "latin-1"), "RAW_URI": target, "REQUEST_URI": target}
    client = app.test_client()
    for headers in ({}, bearer(login(iam, "alice"))):
        response = client.get("/", query_string=query, headers=headers, environ_overrides=environ)
        assert ADMIN_BODY not in response.get_data(as_text=True)
        assert response.status_code in (400, 401, 403, 404, 405), (target, response.status_code)


@pytest.fixture(scope="module")
def in_process() -> tuple[Flask, str]:
    iam = demo_iam()
    return make_app(iam)[0], login(iam, "alice")


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.sampled_from(PATH_PIECES), min_size=1, max_size=8))
def test_no_request_target_reaches_the_protected_view(in_process: tuple[Flask, str], pieces: list[str]) -> None:
    # PATH_INFO as Werkzeug's server decodes it (UTF-8, then the WSGI latin-1 dance), the raw target alongside.
    raw = "/" + "".join(pieces)
    environ = {"PATH_INFO": unquote(raw).encode("utf-8", "surrogateescape").decode("latin-1"), "RAW_URI": raw,
               "REQUEST_URI": raw}
    app, alice = in_process
    client = app.test_client()
    for headers in ({}, bearer(alice)):
        response = client.get("/", headers=headers, environ_overrides=environ)
        assert ADMIN_BODY not in response.get_data(as_text=True), (raw, response.status_code)


def test_double_slash_is_authorized_as_the_route_flask_dispatches_to(live: tuple[int, int, str, str]) -> None:
    # Werkzeug routes //admin to /admin: the decision is /admin's, for the allowed and the denied alike.
    for port in live[:2]:
        for target in ("//admin", "///admin"):
            status, _, body = raw_request(port, "GET", target, bearer(live[3]))
            assert status == 200 and ADMIN_BODY.encode() in body
            status, _, body = raw_request(port, "GET", target, bearer(live[2]))
            assert status == 403 and json.loads(body)["error"] == "AccessDenied"


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE"])
def test_other_methods_never_reach_the_protected_view(live: tuple[int, int, str, str], method: str) -> None:
    for port in live[:2]:
        for headers in ({}, bearer(live[2])):
            status, _, body = raw_request(port, method, "/admin", headers)
            assert status in (401, 403, 405), (method, status)
            assert ADMIN_BODY.encode() not in body


@pytest.mark.parametrize("header", ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"])
def test_method_override_headers_never_change_the_action(app: Flask, iam: IAM, header: str) -> None:
    client = app.test_client()
    token = login(iam, "alice")
    response = client.get("/orders/5", headers={**bearer(token), header: "DELETE"})
    assert response.status_code == 200
    assert response.get_json()["action"] == "orders:GetOrder"
    assert response.get_json()["override"] is None
    # No route serves POST here: refused (never the DELETE the override asks for).
    assert client.post("/orders/5?_method=DELETE", headers={**bearer(token), header: "DELETE"}).status_code == 403
    assert app.config["DELETED"] == []


def test_botocore_signed_requests_over_real_servers(live: tuple[int, int, str, str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_botocore(monkeypatch)
    for port in live[:2]:
        for path in ("/orders/77", "/shop/orders/a%20b", "/orders/x?view=full&a=1"):
            url = f"http://127.0.0.1:{port}{path}"
            response = httpx.get(url, headers=botocore_headers("GET", url, "alice"))
            assert response.status_code == 200, (port, path, response.text)
            assert response.json()["by"] == ARN["alice"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_aws_sigv4_over_werkzeug() -> None:
    # curl signs with the wall clock, so this server's IAM reads it too.
    app, _ = make_app(demo_iam(clock=time.time))
    key, secret = KEYS["alice"]
    with werkzeug_server(app) as port:
        for method, status in (("GET", "200"), ("DELETE", "403")):
            done = subprocess.run(
                ["curl", "-sS", "-X", method, "--aws-sigv4", "aws:amz:local:orders", "--user", f"{key}:{secret}",
                 f"http://127.0.0.1:{port}/orders/12", "-w", "\n%{http_code}"],
                capture_output=True, text=True, timeout=30, check=True,
            )
            body, _, code = done.stdout.rpartition("\n")
            assert code == status, body
            if status == "200":
                assert json.loads(body)["by"] == ARN["alice"]
