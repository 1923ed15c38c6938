"""The directory file's [[routes]] table protects an app whose code is not touched, in every shell."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from iam_middleware import IAM, ConfigurationError, IAMMiddleware
from iam_middleware.testing import AsyncRouteClient, RouteClient
from iam_middleware_flask import IAMFlask

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ROUTES = [
    {"method": "GET", "path": "/orders/{order_id}", "action": "orders:GetOrder",
     "resource": "arn:app:orders::{account}:order/{order_id}"},
    {"method": "DELETE", "path": "/orders/{order_id}", "action": "orders:DeleteOrder",
     "resource": "arn:app:orders::{account}:order/{order_id}"},
    {"method": "GET", "path": "/health", "public": True},
]


def _iam(routes: Any = ROUTES) -> IAM:
    data = tomllib.loads((EXAMPLES / "iam.toml").read_text())
    data["routes"] = routes
    return IAM.from_dict(data, base_dir=EXAMPLES)


async def untouched(request: Request) -> PlainTextResponse:  # an existing endpoint: no decorator
    return PlainTextResponse("ok")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_file_rules_protect_an_untouched_starlette_app(anyio_backend: str) -> None:
    iam = _iam()
    app = IAMMiddleware(Starlette(routes=[Route("/orders/{order_id}", untouched, methods=["GET", "DELETE"]),
                                          Route("/health", untouched)]), iam=iam, undeclared="error")
    async with AsyncRouteClient(app, iam) as client:
        await client.expect(200, "GET", "/health")
        await client.expect(401, "GET", "/orders/42")
        await client.expect(200, "GET", "/orders/42", user="alice", via="sigv4")
        await client.expect(403, "DELETE", "/orders/42", user="alice", via="sigv4")


def test_the_file_rules_protect_an_untouched_flask_app() -> None:
    iam = _iam()
    app = Flask(__name__)
    app.add_url_rule("/orders/<order_id>", "order", lambda order_id: "ok", methods=["GET", "DELETE"])
    app.add_url_rule("/health", "health", lambda: "ok")
    IAMFlask(app, iam)
    with RouteClient(app, iam) as client:
        client.expect(200, "GET", "/health")
        client.expect(200, "GET", "/orders/42", user="alice", via="sigv4")
        client.expect(403, "DELETE", "/orders/42", user="alice", via="sigv4")


def test_a_malformed_routes_table_is_refused_at_load() -> None:
    with pytest.raises(ConfigurationError, match=r"routes\[0\]"):
        _iam([{"method": "GET", "path": "/x"}])  # neither an action nor public
    with pytest.raises(ConfigurationError, match="array of tables"):
        _iam({"path": "/x"})


@pytest.mark.parametrize(("typo", "meant"), [("unsigned_payloads", "unsigned_payload"), ("resouce", "resource"),
                                            ("Public", "public"), ("methods", "method")])
def test_a_misspelt_route_key_is_refused_with_the_key_it_meant(typo: str, meant: str) -> None:
    # Ignored, each would silently change what the route requires (a resource of "*", a route no longer public).
    entry = {"method": "GET", "path": "/orders/{order_id}", "action": "orders:GetOrder", typo: True}
    with pytest.raises(ConfigurationError, match=rf"routes\[0\]: unknown key '{typo}' \(did you mean '{meant}'\?\)"):
        _iam([entry])


def test_without_routes_the_table_is_empty() -> None:
    data = tomllib.loads((EXAMPLES / "iam.toml").read_text())
    assert not IAM.from_dict(data, base_dir=EXAMPLES).rules


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_file_rules_protect_an_untouched_fastapi_app_with_public_docs(anyio_backend: str) -> None:
    from fastapi import FastAPI

    from iam_middleware_fastapi import install

    iam = _iam()
    app = FastAPI()
    app.add_api_route("/orders/{order_id}", untouched, methods=["GET"], operation_id="get_order")
    app.add_api_route("/orders/{order_id}", untouched, methods=["DELETE"], operation_id="delete_order")
    app.add_api_route("/health", untouched, operation_id="health")
    install(app, iam, public_docs=True)
    async with AsyncRouteClient(app, iam) as client:
        await client.expect(200, "GET", "/openapi.json")
        await client.expect(200, "GET", "/orders/42", user="alice", via="sigv4")
        await client.expect(403, "DELETE", "/orders/42", user="alice", via="sigv4")
