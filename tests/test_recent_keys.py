"""What a repeat's key covers: every header a decision can read, and only those (so a new request id, or an
``Accept`` header, is still a repeat), and every header at all once a custom authenticator is in the chain."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from iam_middleware import IAM, AuthenticationError, IAMMiddleware, Principal, RequestView, permission
from iam_middleware.asgi import request_digest
from iam_middleware.testing import principal_for, session_token
from iam_middleware_fastapi import Authorize, install

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOW = 1_800_000_000.0
pytestmark = pytest.mark.anyio
# FastAPI reads endpoint annotations from the module's globals.
MayGet = Annotated[Principal, Depends(Authorize("orders:GetOrder",
                                                resource="arn:app:orders::{account}:order/{order_id}"))]


def scope(**headers: str) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "raw_path": b"/orders/1", "path": "/orders/1", "query_string": b"",
            "root_path": "", "scheme": "https", "client": ("198.51.100.7", 1),
            "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]}


@permission("orders:ListOrders", resource="arn:app:orders::{account}:order/*",
            context={"orders:Team": "{header.x-team}"})
async def orders(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.user.arn)


def app(iam: IAM) -> IAMMiddleware:
    guarded = IAMMiddleware(Starlette(routes=[Route("/orders/{order_id}", orders)]), iam=iam)
    guarded.audit()
    return guarded


def test_the_key_covers_named_and_decision_headers_only() -> None:
    iam = IAM.from_file(EXAMPLES / "iam.toml", clock=lambda: NOW)
    recent = app(iam)._recent
    headers = recent.asgi_headers()
    assert headers is not None and b"x-team" in headers and b"authorization" in headers
    base = request_digest(scope(authorization="Bearer t", x_team="red"), headers)[0]
    assert request_digest(scope(authorization="Bearer t", x_team="red", accept="*/*", x_request_id="r-2"),
                           headers)[0] == base
    for changed in (scope(authorization="Bearer u", x_team="red"), scope(authorization="Bearer t", x_team="blue"),
                    scope(authorization="Bearer t", x_team="red", origin="https://evil.example"),
                    scope(authorization="Bearer t", x_team="red", x_forwarded_for="203.0.113.1"),
                    scope(authorization="Bearer t", x_team="red", user_agent="curl/8")):
        assert request_digest(changed, headers)[0] != base


class APIKeys:
    def __init__(self, iam: IAM) -> None:
        self.iam = iam

    def authenticate(self, request: RequestView, *, now: float) -> Principal | None:
        key = request.header("x-api-key")
        if key is None:
            return None
        if key not in ("alice", "bob"):
            raise AuthenticationError("unknown key", code="InvalidAPIKey")
        return principal_for(self.iam, key)


async def test_with_a_custom_authenticator_every_header_is_part_of_the_key() -> None:
    iam = IAM.from_file(EXAMPLES / "iam.toml", clock=lambda: NOW)
    guarded = app(iam)
    iam.authenticators.insert(0, APIKeys(iam))
    assert guarded._recent.asgi_headers() is None
    bearer = {"Authorization": "Bearer " + session_token(iam, "carol")}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="https://testserver") as http:
        first = await http.get("/orders/1", headers={**bearer, "X-Team": "red"})
        assert first.status_code == 200 and first.text.endswith("user/carol")
        assert (await http.get("/orders/1", headers={**bearer, "X-Team": "red"})).text.endswith("user/carol")
        # The same bearer request plus a header only the custom authenticator reads: decided afresh, not replayed.
        bob = await http.get("/orders/1", headers={**bearer, "X-Team": "red", "X-API-Key": "bob"})
        assert bob.status_code == 200 and bob.text.endswith("user/bob")
        bad = await http.get("/orders/1", headers={**bearer, "X-Team": "red", "X-API-Key": "nope"})
        assert bad.status_code == 401 and bad.json()["error"] == "InvalidAPIKey"


async def test_fastapi_authorize_alone_answers_repeats_until_the_credential_ends() -> None:
    clock = [NOW]
    iam = IAM.from_file(EXAMPLES / "iam.toml", clock=lambda: clock[0])
    api = FastAPI()
    install(api, iam, middleware=False)

    @api.get("/orders/{order_id}")
    async def get(order_id: str, principal: MayGet) -> str:
        return principal.arn

    token = session_token(iam, "alice")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="https://testserver") as http:
        for _ in range(3):
            assert (await http.get("/orders/1", headers=headers)).status_code == 200
        assert (await http.get("/orders/1", headers={"Authorization": "Bearer nope.nope.nope"})).status_code == 401
        clock[0] = NOW + iam.settings.session_ttl + 1  # past the session's end: no repeat is answered from memory
        assert (await http.get("/orders/1", headers=headers)).status_code == 401
