"""``GET /sts/.well-known/jwks.json`` in every shell (ASGI app, Flask blueprint, Django urls under WSGI and ASGI):
public keys only, cacheable, public to the middleware (no credential needed), other methods refused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conformance._apps import django_app, flask_app, starlette_app
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from iam_middleware._iam import IAM

from ._support import Clock, demo_data, make_iam

URL = "http://testserver/sts/.well-known/jwks.json"


def pem(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def signing_iam() -> IAM:
    data = demo_data()
    data["settings"]["session_signing_keys"] = [pem(ed25519.Ed25519PrivateKey.generate()),
                                                pem(ec.generate_private_key(ec.SECP256R1()))]
    return make_iam(Clock(), data)


def call_asgi(app: Any, method: str) -> httpx.Response:
    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
            return await client.request(method, URL)

    return asyncio.run(send())


def call_wsgi(app: Any, method: str) -> httpx.Response:
    with httpx.Client(transport=httpx.WSGITransport(app=app)) as client:
        return client.request(method, URL)


SHELLS: dict[str, Callable[[IAM], Callable[[str], httpx.Response]]] = {
    "starlette": lambda iam: lambda method: call_asgi(starlette_app(iam), method),
    "flask": lambda iam: lambda method: call_wsgi(flask_app(iam), method),
    "django-wsgi": lambda iam: lambda method: call_wsgi(django_app(iam, asgi=False), method),
    "django-asgi": lambda iam: lambda method: call_asgi(django_app(iam, asgi=True), method),
}


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_the_key_set_holds_the_public_keys_only(shell: str) -> None:
    iam = signing_iam()
    call = SHELLS[shell](iam)
    response = call("GET")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/jwk-set+json"
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = response.json()["keys"]
    assert [key["kid"] for key in keys] == [key.kid for key in iam.settings.session_signing_keys]
    assert [key["alg"] for key in keys] == ["EdDSA", "ES256"]
    assert all("d" not in key and set(key) <= {"kty", "crv", "x", "y", "kid", "alg", "use"} for key in keys)
    assert call("POST").status_code == 405


def test_without_signing_keys_the_set_is_empty() -> None:
    response = call_asgi(starlette_app(make_iam(Clock())), "GET")
    assert response.status_code == 200 and response.json() == {"keys": []}
