"""Shared helpers for the outbound client tests (no tests here): the API and the token service in process, behind
IAMMiddleware (ASGI, for async clients) and IAMFlask (WSGI, for sync clients), transports that count token-service
calls, and botocore's signature of the request httpx actually sent."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Awaitable, Callable

import botocore.auth
import httpx
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials as BotocoreCredentials
from flask import Flask, g, request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from iam_middleware import IAM, IAMMiddleware, permission
from iam_middleware._request import RequestView
from iam_middleware.client import Credentials
from iam_middleware.sts import token_service
from iam_middleware_flask import IAMFlask, token_service_blueprint

BASE = "https://api.example"
STS = BASE + "/sts"
ORDER = "arn:app:orders::{account}:order/{order_id}"
#: Headers the signer sets; everything else botocore is given as httpx sent it.
SIGNING = (b"authorization", b"x-amz-date", b"x-amz-security-token")


def asgi_app(iam: IAM) -> IAMMiddleware:
    """An API route that reports who called and what body it got, and the token service at /sts."""

    @permission("orders:GetOrder", resource=ORDER)
    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse({"caller": request.user.arn, "mfa": request.user.mfa_present,
                             "sha256": hashlib.sha256(body).hexdigest()})

    api = Starlette(routes=[Mount("/sts", app=token_service(iam)),
                            Route("/orders/{order_id}", echo, methods=["GET", "POST", "PUT"])])
    return IAMMiddleware(api, iam=iam)


def wsgi_app(iam: IAM) -> Flask:
    """The same API and token service in Flask (IAMFlask and the token service blueprint)."""
    app = Flask(__name__)
    guard = IAMFlask(app, iam)
    app.register_blueprint(token_service_blueprint(iam), url_prefix="/sts")

    @app.route("/orders/<order_id>", methods=["GET", "POST", "PUT"])
    @guard.permission("orders:GetOrder", resource=ORDER)
    def echo(order_id: str) -> dict[str, object]:
        return {"caller": g.principal.arn, "mfa": g.principal.mfa_present,
                "sha256": hashlib.sha256(request.get_data()).hexdigest()}

    return app


class Counting(httpx.BaseTransport):
    """A sync transport that counts the token service calls and can hold them at ``hold`` (a test's barrier)."""

    def __init__(self, inner: httpx.BaseTransport, hold: Callable[[], None] = lambda: None) -> None:
        self.inner = inner
        self.hold = hold
        self.paths: list[str] = []
        self._lock = threading.Lock()

    @property
    def calls(self) -> list[str]:
        return [path for path in self.paths if path.startswith("/sts/")]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.paths.append(request.url.path)
        if request.url.path.startswith("/sts/"):
            self.hold()
        return self.inner.handle_request(request)


class AsyncCounting(httpx.AsyncBaseTransport):
    """``Counting`` for async clients; ``hold`` is awaited."""

    def __init__(self, inner: httpx.AsyncBaseTransport, hold: Callable[[], Awaitable[None]] | None = None) -> None:
        self.inner = inner
        self.hold = hold
        self.paths: list[str] = []

    @property
    def calls(self) -> list[str]:
        return [path for path in self.paths if path.startswith("/sts/")]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.url.path.startswith("/sts/"):
            if self.hold is not None:
                await self.hold()
        return await self.inner.handle_async_request(request)


def asgi_transport(iam: IAM) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=asgi_app(iam), client=("203.0.113.7", 50000))


def wsgi_transport(iam: IAM) -> httpx.WSGITransport:
    return httpx.WSGITransport(app=wsgi_app(iam), remote_addr="203.0.113.7")


def botocore_authorization(sent: httpx.Request, credentials: Credentials, *, service: str, region: str,
                           unsigned_payload: bool = False) -> str:
    """The Authorization header botocore's SigV4Auth computes for the request httpx sent (its clock frozen by the
    caller), given the same method, URL, headers and body."""
    headers = HTTPHeaders()
    for name, value in sent.headers.raw:
        if name.lower() not in SIGNING and not (unsigned_payload and name.lower() == b"x-amz-content-sha256"):
            headers[name.decode("latin-1")] = value.decode("latin-1")
    body = b"" if unsigned_payload else sent.content
    aws = AWSRequest(method=sent.method, url=str(sent.url), data=body, headers=headers)
    if unsigned_payload:
        aws.context["payload_signing_enabled"] = False
    key = BotocoreCredentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token)
    botocore.auth.SigV4Auth(key, service, region).add_auth(aws)
    return str(aws.headers["Authorization"])


def view_of(sent: httpx.Request, body: bytes | None = None) -> RequestView:
    """The RequestView a server shell builds from what httpx sent (headers as Latin-1, as the shells decode them)."""
    path, _, query = sent.url.raw_path.partition(b"?")
    headers = tuple((name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in sent.headers.raw)
    return RequestView(method=sent.method, raw_path=path, query_string=query, headers=headers,
                       client_host="203.0.113.7", scheme=sent.url.scheme,
                       body=sent.content if body is None else body)


class Capture:
    """A mock transport that keeps every request as sent (after the auth flow), its streamed body read."""

    def __init__(self, status: int = 200) -> None:
        self.sent: list[httpx.Request] = []
        self.bodies: list[bytes] = []
        self.status = status

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.read())
        self.sent.append(request)
        return httpx.Response(self.status)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(await request.aread())
        self.sent.append(request)
        return httpx.Response(self.status)
