"""``unsigned_payload`` on a route of the rules table (docs/gateways.md, "UNSIGNED-PAYLOAD per route"), at the level of
the authorizer's app: every combination of the route's flag, what the signature covers, the scheme the gateway
states and whether a body came, through nginx's subrequest and Envoy's check request; and the same rules table in
the middleware, which reads the body and is not weakened by the flag.
"""

from __future__ import annotations

import asyncio
import itertools
import tomllib
from pathlib import Path
from typing import Any

import botocore.auth  # type: ignore[import-untyped]
import httpx
import pytest
from adapters._support import KEYS
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import JSONResponse

from iam_middleware import IAM, ConfigurationError, IAMMiddleware, RuleTable
from iam_middleware.authenticators._sigv4 import route_allows_unsigned_payload
from iam_middleware.authz import BODY_DECLARATION, Authorizer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ORDER = "arn:app:orders::{account}:order/{order_id}"
RULES = RuleTable.from_config([
    {"method": "PUT", "path": "/orders/{order_id}/attachment", "action": "orders:PutAttachment", "resource": ORDER,
     "unsigned_payload": True},
    {"method": "PUT", "path": "/orders/{order_id}", "action": "orders:UpdateOrder", "resource": ORDER},
])
BODY = b'{"note": "an attachment the gateway does not forward"}'
HOST = "api.example"


def directory() -> IAM:
    data = tomllib.loads((EXAMPLES / "iam.toml").read_text())
    data["settings"]["trusted_proxies"] = ["127.0.0.1/32"]  # httpx's ASGI transport calls from 127.0.0.1
    return IAM.from_dict(data, base_dir=EXAMPLES)


IAM_ = directory()
AUTHORIZER = Authorizer(IAM_, rules=RULES)


def signed(path: str, body: bytes, *, unsigned: bool, scheme: str) -> dict[str, str]:
    """carol's (orders:*) PUT, signed by real botocore over the body's hash or ``UNSIGNED-PAYLOAD``."""
    key, secret = KEYS["carol"]
    headers = {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"} if unsigned else {}
    request = AWSRequest(method="PUT", url=f"{scheme}://{HOST}{path}", data=body, headers=headers)
    request.context["payload_signing_enabled"] = not unsigned
    if unsigned and scheme == "http":  # botocore signs the hash over plain HTTP whatever it is told: name it
        request.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
        auth: Any = _UnsignedOverHTTP(Credentials(key, secret), "orders", "local")
    else:
        auth = botocore.auth.SigV4Auth(Credentials(key, secret), "orders", "local")
    auth.add_auth(request)
    return dict(request.headers.items())


class _UnsignedOverHTTP(botocore.auth.SigV4Auth):  # type: ignore[misc]
    """A client that signs ``UNSIGNED-PAYLOAD`` over plain HTTP (botocore itself never does)."""

    def payload(self, request: Any) -> str:
        return "UNSIGNED-PAYLOAD"


async def _ask(app: Any, method: str, path: str, headers: dict[str, str], content: bytes = b"") -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://authz") as client:
        return await client.request(method, path, headers=headers, content=content)


def ask(app: Any, method: str, path: str, headers: dict[str, str], content: bytes = b"") -> httpx.Response:
    return asyncio.run(_ask(app, method, path, headers, content))


def through_nginx(path: str, headers: dict[str, str], body: bytes, scheme: str) -> httpx.Response:
    """The docs' auth_request subrequest for the original PUT: no body, the framing and scheme in headers."""
    sub = {**headers, "Host": HOST, "X-Original-Method": "PUT", "X-Original-URI": path,
           "X-Original-Framing": f"HTTP/1.1 length={len(body)} encoding=", "X-Forwarded-Proto": scheme}
    return ask(AUTHORIZER, "GET", "/nginx", sub)


def through_envoy(path: str, headers: dict[str, str], body: bytes, scheme: str, *, partial: bool) -> httpx.Response:
    """The docs' ext_authz check request: the original mirrored below /envoy, its body (cut, when ``partial``)."""
    sub = {**headers, "Host": HOST, "X-Forwarded-Proto": scheme, BODY_DECLARATION: "forwarded",
           "x-envoy-auth-partial-body": "true" if partial else "false"}
    return ask(AUTHORIZER, "PUT", f"/envoy{path}", sub, body[:8] if partial else body)


def expected_nginx(flag: bool, unsigned: bool, scheme: str, body: bytes) -> str | None:
    """The rule: a known-empty body verifies anything; else only UNSIGNED-PAYLOAD, over HTTPS, on a flagged route."""
    if not body or (flag and unsigned and scheme == "https"):
        return None
    return "PayloadNotForwarded"


CASES = list(itertools.product((True, False), (True, False), ("https", "http"), (b"", BODY)))


@pytest.mark.parametrize(("flag", "unsigned", "scheme", "body"), CASES)
def test_through_nginx_every_combination_is_decided_by_the_one_rule(flag: bool, unsigned: bool, scheme: str,
                                                                     body: bytes) -> None:
    path = "/orders/42/attachment" if flag else "/orders/42"
    response = through_nginx(path, signed(path, body, unsigned=unsigned, scheme=scheme), body, scheme)
    refusal = expected_nginx(flag, unsigned, scheme, body)
    if refusal is None:
        assert response.status_code == 200, response.headers.get("x-iam-refusal")
        assert response.headers["x-iam-principal-arn"] == "arn:app:iam::111122223333:user/carol"
    else:
        assert response.status_code == 401 and refusal in response.headers["x-iam-refusal"]
    assert route_allows_unsigned_payload.get() is False  # the allowance ends with the request


@pytest.mark.parametrize(("flag", "scheme"), list(itertools.product((True, False), ("https", "http"))))
def test_through_envoy_a_cut_body_passes_only_unsigned_on_a_flagged_route_over_https(flag: bool, scheme: str) -> None:
    path = "/orders/42/attachment" if flag else "/orders/42"
    unsigned = through_envoy(path, signed(path, BODY, unsigned=True, scheme=scheme), BODY, scheme, partial=True)
    assert unsigned.status_code == (200 if flag and scheme == "https" else 401), unsigned.text
    hashed = through_envoy(path, signed(path, BODY, unsigned=False, scheme=scheme), BODY, scheme, partial=True)
    assert hashed.status_code == 401 and hashed.json()["error"] == "PayloadNotForwarded"
    whole = through_envoy(path, signed(path, BODY, unsigned=False, scheme=scheme), BODY, scheme, partial=False)
    assert whole.status_code == 200, whole.text  # a forwarded body verifies its hash, flag or not


def test_a_flagged_route_still_checks_the_signature() -> None:
    path = "/orders/42/attachment"
    headers = signed(path, BODY, unsigned=True, scheme="https")
    headers["X-Amz-Date"] = headers["X-Amz-Date"][:-3] + "00Z"  # a signed header changed on the way
    response = through_nginx(path, headers, BODY, "https")
    assert response.status_code == 401 and "SignatureDoesNotMatch" in response.headers["x-iam-refusal"]


# The middleware reads the body: the flag does not weaken it -------------------------------------------------------


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    body = await Request(scope, receive).body()
    await JSONResponse({"length": len(body)})(scope, receive, send)


MIDDLEWARE = IAMMiddleware(_echo, iam=IAM_, rules=RULES)  # an app without a router: the rules table decides


def in_process(path: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=MIDDLEWARE), base_url=f"https://{HOST}") as c:
            return await c.put(path, headers=headers, content=body)

    return asyncio.run(send())


def test_in_process_a_flagged_route_verifies_every_signed_payload() -> None:
    path = "/orders/42/attachment"
    unsigned = in_process(path, signed(path, BODY, unsigned=True, scheme="https"), BODY)
    assert unsigned.status_code == 401 and unsigned.json()["error"] == "InvalidPayloadHash", unsigned.text
    hashed = in_process(path, signed(path, BODY, unsigned=False, scheme="https"), BODY)
    assert hashed.status_code == 200 and hashed.json() == {"length": len(BODY)}
    swapped = in_process(path, signed(path, BODY, unsigned=False, scheme="https"), BODY.upper())  # another body
    assert swapped.status_code == 401 and swapped.json()["error"] == "SignatureDoesNotMatch", swapped.text


# The table --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["true", 1, None, []])
def test_the_flag_is_a_boolean(value: object) -> None:
    with pytest.raises(ConfigurationError, match="unsigned_payload must be true or false"):
        RuleTable.from_config([{"path": "/upload", "action": "files:Put", "unsigned_payload": value}])
    assert RuleTable.from_config([{"path": "/upload", "action": "files:Put"}]).rules[0].unsigned_payload is False
