"""An identity provider's key set is never loaded on the event loop: the async shells (the ASGI middleware, the FastAPI
dependency without it, Django under ASGI) defer the load to a worker thread and decide again, so one slow provider
cannot stall every other request of the process."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends
from jwt.algorithms import OKPAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from iam_middleware import IAM, IAMMiddleware, Principal, WebIdentityProvider, permission
from iam_middleware.authenticators import FetchDeferred, JWKSSource, TrustedIssuer, fetching
from iam_middleware_fastapi import Authorize

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
T0 = 1_800_000_000.0
ISSUER = "https://keys.example"
pytestmark = pytest.mark.anyio


class Provider:
    """A key set whose loads are counted, with the thread each ran on."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.kid = "k1"
        self.load_threads: list[int] = []

    def rotate(self) -> None:
        self.private, self.kid = Ed25519PrivateKey.generate(), "k2"

    def load(self) -> bytes:
        self.load_threads.append(threading.get_ident())
        jwk = {**json.loads(OKPAlgorithm.to_jwk(self.private.public_key())), "kid": self.kid, "alg": "EdDSA"}
        return json.dumps({"keys": [jwk]}).encode()

    def token(self, now: float = T0) -> str:
        claims = {"iss": ISSUER, "aud": "orders-api", "sub": "p-1", "iat": int(now), "exp": int(now) + 600}
        return jwt.encode(claims, self.private, algorithm="EdDSA", headers={"kid": self.kid})


def iam_with(provider: Provider, **source: Any) -> tuple[IAM, JWKSSource]:
    jwks = JWKSSource(provider.load, source="test", **source)
    base = IAM.from_file(EXAMPLES / "iam.toml", clock=lambda: T0)
    web = WebIdentityProvider(name="idp.example", role="partner",
                              issuer=TrustedIssuer(ISSUER, ("orders-api",), jwks=jwks))
    return IAM(base.snapshot, settings=replace(base.settings, web_identity=(web,)), clock=lambda: T0), jwks


loop_threads: list[int] = []
# FastAPI resolves endpoint annotations in this module's globals.
MayGet = Annotated[Principal, Depends(Authorize("orders:GetOrder", "arn:app:orders::{account}:order/{order_id}"))]


@permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")
async def get_order(request: Request) -> PlainTextResponse:
    loop_threads.append(threading.get_ident())
    return PlainTextResponse(request.user.arn)


def middleware_client(iam: IAM) -> httpx.AsyncClient:
    app = IAMMiddleware(Starlette(routes=[Route("/orders/{order_id}", get_order)]), iam=iam)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver")


def fastapi_client(iam: IAM) -> httpx.AsyncClient:
    from fastapi import FastAPI

    from iam_middleware_fastapi import install

    app = FastAPI()
    install(app, iam, middleware=False)

    @app.get("/orders/{order_id}")
    async def order(order_id: str, principal: MayGet) -> str:
        loop_threads.append(threading.get_ident())
        return str(principal.arn)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver")


@pytest.mark.parametrize("make_client", [middleware_client, fastapi_client], ids=["middleware", "fastapi"])
async def test_first_load_and_a_rotation_run_off_the_event_loop(
        make_client: Callable[[IAM], httpx.AsyncClient]) -> None:
    provider = Provider()
    iam, _ = iam_with(provider, min_refresh_interval=0)
    loop_threads.clear()
    async with make_client(iam) as http:
        first = await http.get("/orders/42", headers={"Authorization": "Bearer " + provider.token()})
        assert first.status_code == 200, first.text
        provider.rotate()  # a token under a kid the process has not seen: the key set is loaded again
        rotated = await http.get("/orders/43", headers={"Authorization": "Bearer " + provider.token()})
        assert rotated.status_code == 200, rotated.text
    assert len(provider.load_threads) == 2
    assert set(loop_threads) and not set(loop_threads) & set(provider.load_threads)


async def test_a_failed_deferred_load_fails_closed_without_a_second_load_on_the_loop() -> None:
    provider = Provider()
    iam, jwks = iam_with(provider, min_refresh_interval=0)
    fails: list[int] = []

    def broken() -> bytes:
        fails.append(threading.get_ident())
        raise OSError("provider down")

    jwks._loader = broken
    async with middleware_client(iam) as http:
        refused = await http.get("/orders/42", headers={"Authorization": "Bearer " + provider.token()})
    assert refused.status_code == 401 and refused.json()["error"] == "UnknownSigningKey"
    assert len(fails) == 1 and threading.get_ident() not in fails


def test_each_fetch_mode_does_what_it_says() -> None:
    provider = Provider()
    _, jwks = iam_with(provider, min_refresh_interval=60)
    with fetching("defer"), pytest.raises(FetchDeferred) as deferred:
        jwks.keys(now=T0)
    assert provider.load_threads == []  # nothing was loaded where the deferral was raised
    with fetching("skip"):
        assert jwks.keys(now=T0) == ()
    deferred.value.run()
    assert [key.kid for key in jwks.keys(now=T0)] == ["k1"] and len(provider.load_threads) == 1
    with fetching("defer"):
        assert not jwks.refresh(now=T0 + 1)  # inside min_refresh_interval: nothing is due, nothing deferred
    assert jwks.refresh(now=T0 + 61)  # inline, the default: loads on the calling thread
    assert len(provider.load_threads) == 2
