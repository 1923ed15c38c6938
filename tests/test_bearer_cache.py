"""The cache of principals proven by bearer tokens is bounded, and at its bound it forgets the oldest entry only: the
callers seen last are not all verified again at once."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from iam_middleware import IAM

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
T0 = 1_800_000_000.0
BOUND = 10_000


def token(n: int) -> str:
    claims = {"iss": "https://idp.example", "aud": "orders-api", "sub": "p-1", "iat": int(T0), "exp": int(T0) + 600,
              "jti": f"t-{n}"}
    return jwt.encode(claims, "demo-idp-hmac-secret-0123456789abcdef0123", algorithm="HS256")


def test_at_its_bound_the_cache_forgets_the_oldest_token_only(monkeypatch: pytest.MonkeyPatch) -> None:
    iam = IAM.from_file(EXAMPLES / "iam.toml", clock=lambda: T0)
    tokens = [token(n) for n in range(BOUND + 1)]
    for each in tokens:
        iam.credentials.from_token(each)
    assert iam.credentials.web_identity is not None
    verified: list[str] = []
    verify = iam.credentials.web_identity.verify
    monkeypatch.setattr(iam.credentials.web_identity, "verify", lambda t, now: verified.append(t) or verify(t, now=now))
    for each in tokens[-100:]:  # the latest callers are still known
        iam.credentials.from_token(each)
    assert verified == []
    iam.credentials.from_token(tokens[0])  # the oldest was forgotten to make room
    assert verified == [tokens[0]]
