"""An outside token's trust verdict is remembered per (trust policy, provider, role, claims), so a client refreshing its
token is not evaluated again; it is never reused for other claims, after the trust policy changes, or when the trust
policy reads the request (its address, the time)."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from iam_middleware import IAM
from iam_middleware._exceptions import InvalidTokenError
from iam_middleware._request import RequestView

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
T0 = 1_800_000_000.0
SECRET = "demo-idp-hmac-secret-0123456789abcdef0123"


def trusting(condition: dict[str, Any]) -> IAM:
    """The demo directory, its partner role trusting idp.example tokens under ``condition`` only."""
    data = copy.deepcopy(tomllib.loads((EXAMPLES / "iam.toml").read_text()))
    statement = {"Effect": "Allow", "Principal": {"Federated": "idp.example"},
                 "Action": "sts:AssumeRoleWithWebIdentity", "Condition": condition}
    data["roles"]["partner"]["trust_policy"] = {"document": {"Version": "2012-10-17", "Statement": [statement]}}
    return IAM.from_dict(data, base_dir=EXAMPLES, clock=lambda: T0)


def token(sub: str, n: int = 0) -> str:
    claims = {"iss": "https://idp.example", "aud": "orders-api", "sub": sub, "iat": int(T0), "exp": int(T0) + 600,
              "jti": f"t-{n}"}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def accepted(iam: IAM, sub: str, n: int, request: RequestView | None = None) -> bool:
    try:
        iam.credentials.from_token(token(sub, n), request=request)
    except InvalidTokenError as refused:
        assert refused.code == "AccessDenied"
        return False
    return True


@given(st.lists(st.sampled_from(["p-1", "p-2", "p-3"]), min_size=1, max_size=12))
def test_a_remembered_verdict_is_only_ever_the_verdict_of_the_same_claims(subjects: list[str]) -> None:
    iam = trusting({"StringEquals": {"idp.example:sub": ["p-1", "p-3"]}})
    for n, sub in enumerate(subjects):  # every token is new: only the verdict can be remembered
        assert accepted(iam, sub, n) is (sub in ("p-1", "p-3")), sub


def test_a_changed_trust_policy_is_evaluated_afresh() -> None:
    iam = trusting({"StringEquals": {"idp.example:sub": "p-1"}})
    assert accepted(iam, "p-1", 0) and not accepted(iam, "p-2", 1)
    iam.snapshots.swap(trusting({"StringEquals": {"idp.example:sub": "p-2"}}).snapshot)  # a reload
    assert not accepted(iam, "p-1", 2) and accepted(iam, "p-2", 3)


@pytest.mark.parametrize("peer", ["192.0.2.10", "198.51.100.7", "192.0.2.11", "198.51.100.8"])
def test_a_trust_policy_that_reads_the_request_is_evaluated_for_every_request(peer: str) -> None:
    iam = trusting({"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}})
    inside = RequestView(method="GET", scheme="https", raw_path=b"/", client_host="192.0.2.10")
    assert accepted(iam, "p-1", 0, inside)
    request = RequestView(method="GET", scheme="https", raw_path=b"/", client_host=peer)
    assert accepted(iam, "p-1", 1, request) is peer.startswith("192.0.2.")
