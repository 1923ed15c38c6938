"""The Envoy ``ext_authz`` contract (HTTP service), through the authorizer's ASGI app.

Envoy is not in the package registries the tests install from, so no Envoy runs here: each check request is built
as Envoy's ext_authz documentation describes it for the configuration of docs/gateways.md. The original method;
``path_prefix`` + the original path and query, not decoded; ``Host``, ``Authorization`` and the ``allowed_headers``,
one value per name; ``Content-Length`` of the check request's own body; with ``with_request_body``, the buffered
body and ``x-envoy-auth-partial-body`` (only when there was a body to buffer); ``headers_to_add``. Answers: 200
allows (the ``allowed_upstream_headers`` go to the upstream), anything else is passed to the client as it is.
Also here: what the app does with anything that is not a check request, and that it fails closed.
"""

from __future__ import annotations

import json
import logging
import tomllib
from pathlib import Path
from typing import Any

import anyio
import pytest
from adapters._support import NOW, botocore_headers, freeze_botocore
from starlette.applications import Starlette
from starlette.routing import Mount

from iam_middleware import IAM, RequestView, RuleTable
from iam_middleware.authz import BODY_DECLARATION, Authorizer
from iam_middleware.testing import session_token

from . import _gateway

ENVOY = "127.0.0.1"  # the peer of every check request: trusted_proxies of the gateway directory
ALICE = "arn:app:iam::111122223333:user/alice"


@pytest.fixture(scope="module")
def iam(tmp_path_factory: pytest.TempPathFactory) -> IAM:
    return IAM.from_file(_gateway.gateway_directory(tmp_path_factory.mktemp("envoy")), clock=lambda: NOW)


@pytest.fixture(autouse=True)
def botocore_at_now(monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_botocore(monkeypatch)


class Answer:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = {k.decode(): v.decode() for k, v in headers}
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def call(app: Any, method: str, target: str, headers: dict[str, str] | list[tuple[str, str]], body: bytes = b"",
         peer: str = ENVOY, root_path: str = "", kind: str = "http") -> Answer:
    """One request to the app, its target byte for byte as Envoy sends it."""
    path, _, query = target.partition("?")
    pairs = headers.items() if isinstance(headers, dict) else headers
    scope = {"type": kind, "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode("latin-1"), "root_path": root_path,
             "query_string": query.encode("latin-1"), "client": (peer, 40000), "server": ("127.0.0.1", 9000),
             "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs]}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    if kind == "websocket":
        return Answer(sent[0]["code"], [], b"")
    start = next(m for m in sent if m["type"] == "http.response.start")
    return Answer(start["status"], start["headers"], b"".join(m.get("body", b"") for m in sent[1:]))


def check(original: dict[str, str], body: bytes | None = None, *, forwards_bodies: bool = True) -> dict[str, str]:
    """The check request's headers for an original request with these headers (Host and Authorization among
    them), as the docs' filter configuration sends them."""
    headers = {"host": "api.example", **{k.lower(): v for k, v in original.items()},
               "content-length": str(len(body or b"")), "x-forwarded-for": "203.0.113.9",
               "x-forwarded-proto": "http", "x-request-id": "0d6f6a3c-5b8e-4c1a-9f3e-2b7d4e8a1c55",
               "x-envoy-expected-rq-timeout-ms": "500"}
    if forwards_bodies:
        headers[BODY_DECLARATION] = "forwarded"
        if body:
            headers["x-envoy-auth-partial-body"] = "false"
    return headers


def authorizer(iam: IAM, **options: Any) -> Authorizer:
    return Authorizer(iam, **options)


def bearer(iam: IAM, user: str) -> dict[str, str]:
    return {"host": "api.example", "authorization": f"Bearer {session_token(iam, user)}"}


def test_allowed_gives_the_principal_for_the_upstream(iam: IAM, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="iam_middleware.decisions"):
        answer = call(authorizer(iam), "GET", "/envoy/orders/42?view=full", check(bearer(iam, "alice")))
    assert answer.status == 200 and answer.body == b""
    assert answer.headers["x-iam-principal-arn"] == ALICE and answer.headers["x-iam-principal-type"] == "User"
    assert answer.headers["x-envoy-auth-headers-to-remove"] == "x-iam-session-name"
    assert answer.headers["x-request-id"] == "0d6f6a3c-5b8e-4c1a-9f3e-2b7d4e8a1c55"
    record = json.loads(caplog.records[-1].getMessage())
    assert record["path"] == "/orders/42" and record["source_ip"] == "203.0.113.9"
    assert record["resource"] == "arn:app:orders::111122223333:order/42" and record["decision"] == "Allowed"


def test_a_public_route_without_a_credential_removes_every_principal_header(iam: IAM) -> None:
    answer = call(authorizer(iam), "GET", "/envoy/health", check({"host": "api.example"}))
    assert answer.status == 200 and "x-iam-principal-arn" not in answer.headers
    assert answer.headers["x-envoy-auth-headers-to-remove"].count("x-iam-") == 4


def test_refusals_are_the_gates_as_they_are(iam: IAM) -> None:
    app = authorizer(iam)
    denied = call(app, "DELETE", "/envoy/orders/42", check(bearer(iam, "alice")))
    anonymous = call(app, "GET", "/envoy/orders/42", check({"host": "api.example"}))
    assert denied.status == 403 and denied.json()["error"] == "AccessDenied"
    assert denied.headers["content-type"] == "application/json" and "x-iam-status" not in denied.headers
    assert anonymous.status == 401 and anonymous.json()["error"] == "MissingAuthenticationToken"
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="iam-middleware", AWS4-HMAC-SHA256'


def test_a_signed_body_forwarded_whole_is_verified(iam: IAM) -> None:
    app = authorizer(iam)
    body = b'{"item": "mug"}'
    signed = botocore_headers("POST", "http://api.example/orders", "carol", body=body)
    assert call(app, "POST", "/envoy/orders", check(signed, body), body).status == 200
    changed = call(app, "POST", "/envoy/orders", check(signed, b'{"item": "car"}'), b'{"item": "car"}')
    assert changed.status == 401 and changed.json()["error"] == "SignatureDoesNotMatch"


@pytest.mark.parametrize("how", ["cut at max_request_bytes", "not declared"])
def test_a_signed_body_not_forwarded_whole_is_refused(iam: IAM, how: str) -> None:
    body = b'{"item": "mug"}'
    signed = botocore_headers("POST", "http://api.example/orders", "carol", body=body)
    sent = body[:4] if how == "cut at max_request_bytes" else body
    headers = check(signed, sent, forwards_bodies=how != "not declared")
    if how == "cut at max_request_bytes":
        headers["x-envoy-auth-partial-body"] = "true"
    answer = call(authorizer(iam), "POST", "/envoy/orders", headers, sent)
    assert answer.status == 401 and answer.json()["error"] == "PayloadNotForwarded"


def test_a_signed_request_without_a_body_needs_the_declaration(iam: IAM) -> None:
    app = authorizer(iam)
    signed = botocore_headers("GET", "http://api.example/orders/9?b=2&a=1", "carol")
    assert call(app, "GET", "/envoy/orders/9?b=2&a=1", check(signed)).status == 200
    undeclared = call(app, "GET", "/envoy/orders/9?b=2&a=1", check(signed, forwards_bodies=False))
    assert undeclared.status == 401 and undeclared.json()["error"] == "PayloadNotForwarded"


def test_unsigned_payload_counts_only_over_https_said_by_a_trusted_gateway(tmp_path: Path) -> None:
    directory = _gateway.gateway_directory(tmp_path)
    text = directory.read_text().replace("[settings]\n", "[settings]\nallow_unsigned_payload = true\n", 1)
    directory.write_text(text)
    iam = IAM.from_file(directory, clock=lambda: NOW)
    signed = botocore_headers("POST", "http://api.example/orders", "carol",
                              headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    over_https = {**check(signed, forwards_bodies=False), "x-forwarded-proto": "https"}
    app = authorizer(iam)
    assert call(app, "POST", "/envoy/orders", over_https).status == 200
    stranger = call(app, "POST", "/envoy/orders", over_https, peer="198.51.100.7")
    assert stranger.status == 401 and stranger.json()["error"] == "PayloadNotForwarded"


@pytest.mark.parametrize(("target", "status", "code"), [
    ("/envoy//orders/42", 400, "InvalidPath"), ("/envoy/orders/%2F42", 400, "InvalidPath"),
    ("/envoy/orders/../orders/42", 400, "InvalidPath"), ("/envoy/ORDERS/42", 403, "AccessDenied"),
    ("/envoyorders/42", 404, "NotFound"), ("/orders/42", 404, "NotFound"),
])
def test_paths_are_decided_as_sent(iam: IAM, target: str, status: int, code: str) -> None:
    answer = call(authorizer(iam), "GET", target, check(bearer(iam, "alice")))
    assert (answer.status, answer.json()["error"]) == (status, code)


def test_mounted_below_a_path(iam: IAM) -> None:
    app = Starlette(routes=[Mount("/authz", app=authorizer(iam))])
    assert call(app, "GET", "/authz/envoy/orders/42", check(bearer(iam, "alice"))).status == 200
    assert call(app, "GET", "/authz/nginx", {**bearer(iam, "alice"), "x-original-method": "GET",
                                             "x-original-uri": "/orders/42"}).status == 200


def test_a_body_past_the_limit_is_refused(iam: IAM) -> None:
    body = b"x" * 64
    answer = call(authorizer(iam, max_body_bytes=16), "POST", "/envoy/orders", check(bearer(iam, "carol"), body),
                  body)
    assert answer.status == 413 and answer.json()["error"] == "EntityTooLarge"


def test_anything_unexpected_is_a_refusal_never_a_500(iam: IAM, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def authenticate(self, request: RequestView, *, now: float) -> None:
            raise RuntimeError("boom")

    iam.authenticators.insert(0, Broken())
    try:
        answer = call(authorizer(iam), "GET", "/envoy/orders/42", check(bearer(iam, "alice")))
    finally:
        iam.authenticators.pop(0)
    assert answer.status == 403 and answer.json()["error"] == "AuthorizationFailed"
    monkeypatch.setattr("iam_middleware.authz._app.from_nginx", lambda *args: 1 / 0)
    answer = call(authorizer(iam), "GET", "/nginx", {"x-original-method": "GET", "x-original-uri": "/orders/1"})
    assert answer.status == 403 and answer.headers["x-iam-status"] == "403"
    assert json.loads(answer.headers["x-iam-refusal"])["error"] == "AuthorizationFailed"


def test_an_invalid_subrequest_is_refused_for_nginx_as_a_403_that_says_why(iam: IAM) -> None:
    answer = call(authorizer(iam), "GET", "/nginx", {"x-original-uri": "/orders/1"})
    assert answer.status == 403 and answer.headers["x-iam-status"] == "400"
    assert json.loads(answer.headers["x-iam-refusal"])["error"] == "InvalidSubrequest"


def test_websockets_are_closed_and_lifespan_is_answered(iam: IAM) -> None:
    assert call(authorizer(iam), "GET", "/envoy/x", {}, kind="websocket").status == 1008
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(authorizer(iam), {"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_the_docs_routes_are_the_rules(iam: IAM) -> None:
    documented = RuleTable.from_config(tomllib.loads(_gateway.doc_routes())["routes"]).rules
    assert [(r.method, r.path) for r in iam.rules.rules[:len(documented)]] == [(r.method, r.path) for r in documented]
