"""How long an outside token is honoured: never past ``max_token_lifetime`` after its ``iat`` (whatever ``exp`` its
issuer chose), and never past the removal of its key from the provider's JWKS, cached or repeated alike."""

from __future__ import annotations

import copy
import json
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from iam_middleware import IAM, IAMMiddleware, WebIdentityProvider, permission
from iam_middleware.authenticators._jwks import JWKSSource
from iam_middleware.authenticators._jwt import TrustedIssuer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
T0 = 1_800_000_000.0
pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")
async def get_order(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.user.arn)


def client(iam: IAM) -> httpx.AsyncClient:
    app = IAMMiddleware(Starlette(routes=[Route("/orders/{order_id}", get_order)]), iam=iam)
    app.audit()
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver")


def hmac_iam(clock: Clock, **provider: Any) -> IAM:
    data = copy.deepcopy(tomllib.loads((EXAMPLES / "iam.toml").read_text()))
    data["settings"]["web_identity"][0].update(provider)
    return IAM.from_dict(data, base_dir=EXAMPLES, clock=clock)


def hmac_token(iat: float | None, exp: float) -> str:
    claims: dict[str, Any] = {"iss": "https://idp.example", "aud": "orders-api", "sub": "p-1", "exp": int(exp)}
    if iat is not None:
        claims["iat"] = int(iat)
    return jwt.encode(claims, "demo-idp-hmac-secret-0123456789abcdef0123", algorithm="HS256")


async def test_a_long_lived_token_is_honoured_for_max_token_lifetime_only() -> None:
    clock = Clock()
    iam = hmac_iam(clock, max_token_lifetime=600)
    headers = {"Authorization": "Bearer " + hmac_token(T0, T0 + 480 * 3600)}  # its issuer says 480 hours
    async with client(iam) as http:
        assert (await http.get("/orders/42", headers=headers)).status_code == 200
        assert (await http.get("/orders/42", headers=headers)).status_code == 200  # a repeat
        clock.now = T0 + 601
        refused = await http.get("/orders/42", headers=headers)
        assert refused.status_code == 401 and refused.json()["error"] == "TokenTooOld"
        old = {"Authorization": "Bearer " + hmac_token(T0 - 10_000, T0 + 480 * 3600)}
        assert (await http.get("/orders/42", headers=old)).status_code == 401


async def test_without_iat_the_bound_runs_from_first_use() -> None:
    clock = Clock()
    iam = hmac_iam(clock, max_token_lifetime=600)
    headers = {"Authorization": "Bearer " + hmac_token(None, T0 + 480 * 3600)}
    async with client(iam) as http:
        assert (await http.get("/orders/42", headers=headers)).status_code == 200
        clock.now = T0 + 300
        assert (await http.get("/orders/42", headers=headers)).status_code == 200
        clock.now = T0 + 601
        assert (await http.get("/orders/42", headers=headers)).status_code == 401


async def test_a_key_removed_from_the_jwks_stops_cached_tokens_and_repeats() -> None:
    clock = Clock()
    private = Ed25519PrivateKey.generate()
    public = {**json.loads(OKPAlgorithm.to_jwk(private.public_key())), "kid": "k1", "alg": "EdDSA"}
    other = {**json.loads(OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate().public_key())), "kid": "k2",
             "alg": "EdDSA"}
    published = {"keys": [public, other]}
    jwks = JWKSSource(lambda: json.dumps(published).encode(), source="test", min_refresh_interval=0)
    jwks.refresh(now=T0)
    base = hmac_iam(clock)
    provider = WebIdentityProvider(name="idp.example", role="partner",
                                   issuer=TrustedIssuer("https://keys.example", ("orders-api",), jwks=jwks))
    iam = IAM(base.snapshot, settings=replace(base.settings, web_identity=(provider,)), clock=clock)
    token = jwt.encode({"iss": "https://keys.example", "aud": "orders-api", "sub": "p-1", "iat": int(T0),
                        "exp": int(T0) + 3000}, private, algorithm="EdDSA", headers={"kid": "k1"})
    headers = {"Authorization": f"Bearer {token}"}
    async with client(iam) as http:
        assert (await http.get("/orders/42", headers=headers)).status_code == 200
        assert (await http.get("/orders/42", headers=headers)).status_code == 200  # cached and repeated
        published["keys"] = [other]  # the provider removes k1
        clock.now = T0 + 1
        assert jwks.refresh(now=clock.now)
        assert (await http.get("/orders/42", headers=headers)).status_code == 401
