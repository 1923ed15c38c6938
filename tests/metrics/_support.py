"""Shared helpers of the metrics and traces tests (no tests here): the demo directory, one Starlette app behind
IAMMiddleware and one Flask app behind IAMFlask with the same routes, the token service, and the credentials each
kind of caller sends (good and bad)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
from flask import Flask, g
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Mount, Route

from iam_middleware import IAM, IAMMiddleware, permission, public
from iam_middleware.sts import token_service
from iam_middleware.testing import sign_request
from iam_middleware_flask import IAMFlask

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T0 = 1_800_000_000.0
BASE = "https://api.example"
ALICE = "arn:app:iam::111122223333:user/alice"
PASSWORD = "correct horse battery staple"  # the demo users' password


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def make_iam(clock: Clock, folder: Path | None = None, **options: Any) -> IAM:
    """The demo directory (or a copy of it in ``folder``, for reloads) at ``clock``."""
    if folder is not None:
        shutil.copytree(EXAMPLES, folder)
    return IAM.from_file((folder or EXAMPLES) / "iam.toml", clock=clock, **options)


@permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")
async def get_order(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.user.arn)


@permission("orders:DeleteOrder", resource="arn:app:orders::{account}:order/{order_id}")
async def delete_order(request: Request) -> PlainTextResponse:
    return PlainTextResponse("deleted")


@public
async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def starlette_app(iam: IAM, *routes: BaseRoute, undeclared: str = "error") -> IAMMiddleware:
    """GET and DELETE /orders/{order_id}, public /health, the token service at /sts, and ``routes``; audited."""
    app = IAMMiddleware(Starlette(routes=[
        Route("/orders/{order_id}", get_order, methods=["GET"]),
        Route("/orders/{order_id}", delete_order, methods=["DELETE"]),
        Route("/health", health),
        Mount("/sts", app=public(token_service(iam))),
        *routes,
    ]), iam=iam, undeclared=undeclared)
    app.audit()
    return app


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


def flask_app(iam: IAM) -> Flask:
    """The same order routes and public /health, in Flask behind IAMFlask."""
    app = Flask(__name__)
    guard = IAMFlask(app, iam)

    @app.get("/orders/<order_id>")
    @guard.permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")
    def flask_get_order(order_id: str) -> str:
        return str(g.principal.arn)

    @app.delete("/orders/<order_id>")
    @guard.permission("orders:DeleteOrder", resource="arn:app:orders::{account}:order/{order_id}")
    def flask_delete_order(order_id: str) -> str:
        return "deleted"

    @app.get("/health")
    @guard.public
    def flask_health() -> str:
        return "ok"

    return app


def bad_signature(iam: IAM, path: str = "/orders/1") -> dict[str, str]:
    """Alice's SigV4 headers for GET ``path`` with the signature's last character changed."""
    signed = dict(sign_request(iam, "GET", BASE + path, user="alice").headers)
    authorization = signed["Authorization"]
    signed["Authorization"] = authorization[:-1] + ("0" if authorization[-1] != "0" else "1")
    return signed


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """A sample's value in the registry, 0 when the series does not exist (yet)."""
    return registry.get_sample_value(name, labels) or 0.0
