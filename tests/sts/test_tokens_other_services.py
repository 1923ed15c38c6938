"""Tokens other services can verify, with two processes: a token service (uvicorn subprocess, real HTTP on a
loopback port) signs sessions with an EdDSA key and publishes its JWK Set; a second service names it as a
``[[settings.web_identity]]`` provider by ``jwks_url`` and maps its sessions to a role through the trust policy.
Rotation (a new first key, the old one still published) keeps old tokens valid and new ones verify after the
second's refresh on the unknown kid; removing the old key refuses its tokens once the second refreshes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from _redis_server import free_port
from conformance._apps import starlette_app
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from iam_middleware._iam import IAM
from iam_middleware.authenticators._signing import SessionSigningKey

from ._support import ACCOUNT, BOB, EXAMPLES, PASSWORD, demo_data

TESTS = Path(__file__).resolve().parents[1]
ISSUER = "https://sts.example"
PROVIDER = "sts.example"
ROLE_SESSION = f"arn:app:sts::{ACCOUNT}:assumed-role/colleague/"
TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Federated": PROVIDER}, "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {"StringEquals": {f"{PROVIDER}:sub": BOB},
                  "ForAnyValue:StringEquals": {f"{PROVIDER}:amr": "otp"}}}]}


def pem(key: ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


class TokenService:
    """The first process: the demo directory signing sessions with ``keys``, restarted on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/sts"
        self.process: subprocess.Popen[bytes] | None = None
        self.data: dict[str, Any] = {}

    def start(self, keys: list[str]) -> None:
        self.stop()
        data = demo_data()
        data["settings"].update(session_signing_keys=keys, session_issuer=ISSUER, session_ttl=7200)
        self.data = data
        env = {**os.environ, "IAM_TEST_DIRECTORY": json.dumps(data),
               "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "sts._jwks_issuer:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--no-access-log"], env=env, cwd=TESTS)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/.well-known/jwks.json", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("the token service did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def login(self, user: str = "bob") -> str:
        found = IAM.from_dict(self.data, base_dir=EXAMPLES).snapshot.user(user)
        assert found is not None and found.totp is not None
        answer = httpx.post(f"{self.url}/login", json={"username": user, "password": PASSWORD,
                                                       "code": found.totp.code_at(time.time())})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])


@pytest.fixture
def issuer() -> Iterator[TokenService]:
    service = TokenService()
    try:
        yield service
    finally:
        service.stop()


class Colleague:
    """The second service: another directory, whose clock the test moves to let its JWKS refresh fall due."""

    def __init__(self, jwks_url: str) -> None:
        data = demo_data()
        data["settings"]["web_identity"].append({
            "name": PROVIDER, "issuer": ISSUER, "jwks_url": jwks_url, "role": "colleague",
            "algorithms": ["EdDSA"], "token_types": ["iam-session+jwt"], "max_token_lifetime": 7200})
        data["roles"]["colleague"] = {"policies": ["OrdersReadOnly"], "trust_policy": {"document": json.dumps(TRUST)}}
        self.offset = 0.0
        self.iam = IAM.from_dict(data, base_dir=EXAMPLES, clock=lambda: time.time() + self.offset)
        self.app = starlette_app(self.iam)

    def get(self, token: str) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://b") as client:
                return await client.get("/orders/7", headers={"Authorization": f"Bearer {token}"})

        return asyncio.run(send())


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def test_another_service_accepts_rotated_and_refuses_removed_keys(issuer: TokenService) -> None:
    old_pem, new_pem = pem(ed25519.Ed25519PrivateKey.generate()), pem(ed25519.Ed25519PrivateKey.generate())
    old, new = SessionSigningKey.from_pem(old_pem), SessionSigningKey.from_pem(new_pem)
    issuer.start([old_pem])
    colleague = Colleague(f"{issuer.url}/.well-known/jwks.json")

    first = issuer.login()
    assert kid(first) == old.kid
    answer = colleague.get(first)
    assert answer.status_code == 200, answer.text
    assert answer.json()["by"].startswith(ROLE_SESSION)  # bob's session, mapped to the role by its trust policy
    stranger = colleague.get(issuer.login("alice"))  # the trust policy names bob only
    assert stranger.status_code == 401 and stranger.json()["error"] == "AccessDenied"

    issuer.start([new_pem, old_pem])  # rotation: a new first key, the old one still published
    colleague.offset += 61  # past the refresh rate limit of the second's key set
    second = issuer.login()
    assert kid(second) == new.kid
    assert colleague.get(first).status_code == 200
    assert colleague.get(second).status_code == 200  # unknown kid: the second fetched the key set again

    issuer.start([new_pem])  # the old key removed
    colleague.offset += 3601  # the second's key set is due for its hourly refresh
    third = issuer.login()
    assert colleague.get(third).status_code == 200  # this verification refreshed the set: the old key is gone
    refused = colleague.get(first)
    assert refused.status_code == 401 and refused.json()["error"] == "UnknownSigningKey", refused.text
    assert colleague.get(second).status_code == 200
