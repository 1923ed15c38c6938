"""Shared helpers for the token service tests (no tests here): the demo directory at a frozen clock, an HTTP client
over the real ASGI app (httpx + ASGITransport), requests signed by real botocore, and outside JWTs made with pyjwt."""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.auth
import httpx
import jwt
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.applications import Starlette
from starlette.routing import Mount

from iam_middleware._iam import IAM
from iam_middleware._request import RequestView
from iam_middleware.state import MemoryStore, StateStore
from iam_middleware.sts import token_service

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEMO = EXAMPLES / "iam.toml"
PASSWORD = "correct horse battery staple"  # the demo users' password (iam_middleware.cli._demo)
START = datetime.datetime(2026, 1, 15, 12, 0, 0, tzinfo=datetime.UTC).timestamp()
BASE = "https://api.example"
PREFIX = "/sts"
ACCOUNT = "111122223333"
PARTNER = f"arn:app:iam::{ACCOUNT}:role/partner"
ALICE = f"arn:app:iam::{ACCOUNT}:user/alice"
BOB = f"arn:app:iam::{ACCOUNT}:user/bob"
ALICE_KEY = ("AKIADEMOALICE0000001", "demo/alice/wJalrXUtnFEMI/K7MDENG/bPxRfiCY")
CAROL_KEY = ("AKIADEMOCAROL0000001", "demo/carol/je7MtGbClwBF/2Zp9Utk/h3yCo8nvb")
IDP_SECRET = "demo-idp-hmac-secret-0123456789abcdef0123"
ORIGIN = "http://127.0.0.1:8000"  # an allowed origin of the demo directory


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds

    def datetime(self) -> datetime.datetime:
        """The time as botocore reads it (naive UTC)."""
        return datetime.datetime.fromtimestamp(self.now, datetime.UTC).replace(tzinfo=None)


def demo_data() -> dict[str, Any]:
    """The parsed demo directory, to be changed by a test and given to ``IAM.from_dict``."""
    return copy.deepcopy(tomllib.loads(DEMO.read_text()))


def make_iam(clock: Clock, data: Mapping[str, Any] | None = None, *, store: StateStore | None = None) -> IAM:
    if data is None:
        return IAM.from_file(DEMO, clock=clock, store=store if store is not None else MemoryStore())
    return IAM.from_dict(data, clock=clock, base_dir=EXAMPLES, store=store if store is not None else MemoryStore())


def code(iam: IAM, user: str, now: float) -> str:
    """The code the user's authenticator shows at ``now``."""
    found = iam.snapshot.user(user)
    assert found is not None and found.totp is not None
    return found.totp.code_at(now)


class Client:
    """Calls the token service mounted at ``prefix`` of a Starlette app, through httpx's real ASGI transport."""

    def __init__(self, iam: IAM, *, prefix: str = PREFIX, client_ip: str = "203.0.113.7") -> None:
        self.iam = iam
        self.prefix = prefix
        self.app = Starlette(routes=[Mount(prefix, app=token_service(iam))])
        self.client_ip = client_ip

    def request(self, method: str, path: str, *, json_body: Any = None, content: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> httpx.Response:
        if json_body is not None:
            content = json.dumps(json_body).encode()
            headers = {"content-type": "application/json", **(headers or {})}

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=(self.client_ip, 50000))
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                return await client.request(method, self.prefix + path, content=content, headers=headers)

        return asyncio.run(send())

    def post(self, path: str, json_body: Any = None, **options: Any) -> httpx.Response:
        return self.request("POST", path, json_body=json_body, **options)

    def login(self, user: str = "bob", *, now: float | None = None) -> httpx.Response:
        now = self.iam.clock() if now is None else now
        return self.post("/login", {"username": user, "password": PASSWORD, "code": code(self.iam, user, now)})

    def token(self, user: str = "bob") -> str:
        response = self.login(user)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def signed(self, path: str, body: Mapping[str, Any], *, key: tuple[str, ...] = ALICE_KEY,
               region: str = "local", service: str = "orders") -> httpx.Response:
        """A POST signed by real botocore SigV4Auth (with ``X-Amz-Security-Token`` for a temporary key)."""
        request = botocore_request("POST", BASE + self.prefix + path, body=json.dumps(body).encode(),
                                   headers={"content-type": "application/json"}, key=key, region=region,
                                   service=service)
        return self.request("POST", path, content=request.body, headers=dict(request.headers.items()))


def freeze_botocore(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    """Make botocore sign at the test clock (it reads the time through ``botocore.auth.get_current_datetime``)."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: clock.datetime())


def botocore_request(method: str, url: str, *, body: bytes = b"", headers: Mapping[str, str] | None = None,
                     key: tuple[str, ...] = ALICE_KEY, region: str = "local", service: str = "orders") -> AWSRequest:
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    botocore.auth.SigV4Auth(Credentials(*key), service, region).add_auth(request)
    return request


def signed_view(method: str, url: str, *, key: tuple[str, ...] = ALICE_KEY, body: bytes = b"",
                headers: Mapping[str, str] | None = None) -> RequestView:
    """The RequestView a server builds from a botocore-signed request (Host from the URL, as HTTP clients add it)."""
    prepared = botocore_request(method, url, body=body, headers=headers, key=key).prepare()
    parts = urlsplit(prepared.url)
    wire = [(name.lower(), value) for name, value in prepared.headers.items()]
    return RequestView(method=method, raw_path=parts.path.encode(), query_string=parts.query.encode(),
                       headers=(("host", parts.netloc), *wire), client_host="203.0.113.7", scheme=parts.scheme,
                       body=body)


def credentials_of(response: httpx.Response) -> tuple[str, str, str]:
    """(key id, secret, session token) of a token service answer."""
    assert response.status_code == 200, response.text
    creds = response.json()["Credentials"]
    return creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]


def idp_token(now: float, *, secret: str = IDP_SECRET, **claims: Any) -> str:
    """A token of the demo's outside identity provider (HS256), valid for an hour unless ``exp`` says otherwise."""
    payload: dict[str, Any] = {"iss": "https://idp.example", "aud": "orders-api", "sub": "partner-42",
                               "team": "green", "iat": int(now), "exp": int(now) + 3600}
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm="HS256")
