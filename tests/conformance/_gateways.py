"""The external authorizer as shells of the conformance matrix: a gateway, simulated as docs/gateways.md configures
nginx and Envoy, in front of an upstream that trusts the principal headers (tests/gateways runs the real nginx).

The simulated gateway is an ASGI app: from the client's request it builds the subrequest (nginx) or the check
request (Envoy), asks the authorizer, and then either calls the upstream with the authorizer's principal headers
(and no client's own) or answers the refusal as the client gets it (nginx through the configuration's
``error_page``, Envoy as it is). The upstream serves the API of ``_apps`` without any IAM of its own, the token
service (which decides its calls itself) behind a public rule, as the rules table below declares it.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from iam_middleware import IAM, RuleTable
from iam_middleware.authz import BODY_DECLARATION, PRINCIPAL_HEADERS, Authorizer
from iam_middleware.sts import token_service

from ._apps import ALL_ORDERS, ORDER

RULES = RuleTable.from_config([
    {"method": "GET", "path": "/orders/{order_id}", "action": "orders:GetOrder", "resource": ORDER},
    {"method": "DELETE", "path": "/orders/{order_id}", "action": "orders:DeleteOrder", "resource": ORDER},
    {"method": "POST", "path": "/orders/{order_id}/notes", "action": "orders:CreateOrder", "resource": ORDER},
    {"method": "GET", "path": "/search", "action": "orders:ListOrders", "resource": ALL_ORDERS,
     "context": {"orders:Team": "{query.team}"}},
    {"method": "GET", "path": "/by-header", "action": "orders:ListOrders", "resource": ALL_ORDERS,
     "context": {"orders:Team": "{header.x-team}"}},
    {"path": "/health", "public": True},
    {"path": "/sts/{operation:path}", "public": True},
])
#: The headers the docs' Envoy filter lets through to the authorizer, and x-team, which a permission here reads.
_ENVOY_ALLOWED = frozenset({"host", "authorization", "cookie", "origin", "referer", "user-agent", "content-type",
                            "x-forwarded-for", "x-forwarded-proto", "x-request-id", "x-team"})
# The statuses the docs' nginx error_page answers with as they are; any other becomes 403.
_NGINX_STATUSES = frozenset({400, 401, 403, 413, 503})
_GATEWAY = ("127.0.0.1", 41000)


def upstream(iam: IAM) -> Starlette:
    """The API behind the gateway: the endpoints of ``_apps``, the caller read from the principal headers."""

    def by(request: Request) -> str | None:
        return request.headers.get("x-iam-principal-arn")

    async def get_order(request: Request) -> JSONResponse:
        return JSONResponse({"by": by(request), "order": request.path_params["order_id"]})

    async def delete_order(request: Request) -> JSONResponse:
        return JSONResponse({"by": by(request), "deleted": request.path_params["order_id"]})

    async def add_note(request: Request) -> JSONResponse:
        return JSONResponse({"by": by(request), "body": (await request.body()).decode()})

    async def search(request: Request) -> JSONResponse:
        return JSONResponse({"by": by(request), "team": request.query_params.get("team")})

    async def by_header(request: Request) -> JSONResponse:
        # Read as the authorizer read it: Envoy hands it one merged value per name (docs/gateways.md).
        return JSONResponse({"by": by(request), "team": ",".join(request.headers.getlist("x-team"))})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"by": by(request)})

    async def undeclared(request: Request) -> JSONResponse:
        return JSONResponse({"ran": True})

    return Starlette(routes=[
        Route("/orders/{order_id}", get_order, methods=["GET"]),
        Route("/orders/{order_id}", delete_order, methods=["DELETE"]),
        Route("/orders/{order_id}/notes", add_note, methods=["POST"]), Route("/search", search),
        Route("/by-header", by_header), Route("/health", health), Route("/undeclared", undeclared),
        Mount("/sts", app=token_service(iam)),
    ])


async def _call(app: Any, scope: Scope, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], start["headers"], b"".join(m.get("body", b"") for m in sent[1:])


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((value for key, value in headers if key == name), None)


class SimulatedGateway:
    """nginx (``kind="nginx"``) or Envoy (``kind="envoy"``) in front of ``upstream(iam)``, asking the authorizer."""

    def __init__(self, kind: str, iam: IAM) -> None:
        self.kind = kind
        self.authorizer = Authorizer(iam, rules=RULES)
        self.upstream = upstream(iam)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        asked, asked_body = self._nginx(scope, body) if self.kind == "nginx" else self._envoy(scope, body)
        status, headers, answer = await _call(self.authorizer, asked, asked_body)
        if status == 200:
            status, headers, answer = await _call(self.upstream, self._upstream_scope(scope, headers), body)
        elif self.kind == "nginx":
            status, headers, answer = self._nginx_refusal(status, headers)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    def _nginx(self, scope: Scope, body: bytes) -> tuple[Scope, bytes]:
        """The docs' ``location = /_iam_authz``: a GET without the body, the original in X-Original-*."""
        client = scope["headers"]
        length = _header(client, b"content-length") or (str(len(body)).encode() if body else b"")
        target = scope["raw_path"] + (b"?" + scope["query_string"] if scope["query_string"] else b"")
        headers = [(k, v) for k, v in client if k not in (b"content-length", b"transfer-encoding")]
        headers += [(b"x-original-method", scope["method"].encode()), (b"x-original-uri", target),
                    (b"x-original-framing", b"HTTP/1.1 length=" + length + b" encoding="),
                    (b"x-real-ip", scope["client"][0].encode()), (b"x-forwarded-for", scope["client"][0].encode()),
                    (b"x-forwarded-proto", scope["scheme"].encode())]
        return self._scope(scope, "GET", b"/nginx", b"", headers), b""

    def _envoy(self, scope: Scope, body: bytes) -> tuple[Scope, bytes]:
        """The docs' ext_authz filter: the original mirrored below /envoy, allowed headers merged, the body."""
        merged: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name.decode() in _ENVOY_ALLOWED or name.startswith(b"x-amz-"):
                merged[name] = merged[name] + b"," + value if name in merged else value
        headers = [*merged.items(), (b"content-length", str(len(body)).encode()),
                   (BODY_DECLARATION.encode(), b"forwarded")]
        if body:
            headers.append((b"x-envoy-auth-partial-body", b"false"))
        return self._scope(scope, scope["method"], b"/envoy" + scope["raw_path"], scope["query_string"],
                           headers), body

    @staticmethod
    def _scope(scope: Scope, method: str, raw_path: bytes, query: bytes, headers: list[tuple[bytes, bytes]]
               ) -> Scope:
        return {**scope, "method": method, "path": raw_path.decode("latin-1"), "raw_path": raw_path,
                "query_string": query, "headers": headers, "client": _GATEWAY, "root_path": ""}

    def _upstream_scope(self, scope: Scope, answer: list[tuple[bytes, bytes]]) -> Scope:
        """The original request with the authorizer's principal headers in place of any client's own."""
        names = {name.encode() for name in PRINCIPAL_HEADERS}
        given = [(k, v) for k, v in answer if k in names]
        return {**scope, "headers": [*((k, v) for k, v in scope["headers"] if k not in names), *given]}

    @staticmethod
    def _nginx_refusal(status: int, headers: list[tuple[bytes, bytes]]) -> tuple[int, list[tuple[bytes, bytes]],
                                                                                   bytes]:
        """The docs' ``location @iam_refused``."""
        stated = int(_header(headers, b"x-iam-status") or 0)
        kept = [(k, v) for k, v in headers if k in (b"www-authenticate", b"x-request-id", b"retry-after")]
        return ((stated if stated in _NGINX_STATUSES else 403), [(b"content-type", b"application/json"), *kept],
                _header(headers, b"x-iam-refusal") or b"")


def gateway_app(kind: str, iam: IAM) -> SimulatedGateway:
    return SimulatedGateway(kind, iam)
