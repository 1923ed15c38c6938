"""The authorizer's warm path: a repeat of an allowed subrequest is answered alike and logged, and anything the
decision reads that differs, a revoked session, a reload or an expired token ends the repeat."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import jwt
import pytest
from adapters._support import NOW

from iam_middleware import IAM, DirectoryReloader
from iam_middleware.authz import Authorizer
from iam_middleware.testing import session_token

from . import _gateway
from .test_envoy import call, check

IDP_SECRET = "demo-idp-hmac-secret-0123456789abcdef0123"  # examples/iam.toml's outside provider


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(tmp_path: Path) -> tuple[IAM, Clock, Authorizer, Path]:
    clock = Clock()
    directory = _gateway.gateway_directory(tmp_path)
    iam = IAM.from_file(directory, clock=clock)
    return iam, clock, Authorizer(iam), directory


def nginx(token: str, method: str = "GET", uri: str = "/orders/42", **extra: str) -> dict[str, str]:
    return {"host": "api.example", "authorization": f"Bearer {token}", "x-original-method": method,
            "x-original-uri": uri, "x-original-framing": "HTTP/1.1 length= encoding=", **extra}


def partner(exp: float) -> str:
    return jwt.encode({"iss": "https://idp.example", "aud": "orders-api", "sub": "p-1", "exp": int(exp),
                       "iat": int(NOW)}, IDP_SECRET, algorithm="HS256")


def test_a_repeat_gets_the_same_answer_its_own_id_and_its_own_record(
        setup: tuple[IAM, Clock, Authorizer, Path], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    iam, _, app, _ = setup
    decided = spy(app, monkeypatch)
    headers = nginx(session_token(iam, "alice"))
    with caplog.at_level(logging.INFO, logger="iam_middleware.decisions"):
        first = call(app, "GET", "/nginx", headers)
        second = call(app, "GET", "/nginx", {**headers, "x-request-id": "again-1"})
    assert first.status == second.status == 200 and len(decided) == 1
    assert {k: v for k, v in first.headers.items() if k != "x-request-id"} == \
        {k: v for k, v in second.headers.items() if k != "x-request-id"}
    assert second.headers["x-request-id"] == "again-1"
    records = [json.loads(r.getMessage()) for r in caplog.records]
    assert [r["request_id"] for r in records][-1] == "again-1" and records[-1] | {"request_id": "", "time": ""} == \
        records[-2] | {"request_id": "", "time": ""}


@pytest.mark.parametrize(("header", "value", "status"), [
    ("x-original-method", "DELETE", 403), ("x-original-uri", "/orders/43", 200), ("x-original-uri", "//orders/42", 403),
    ("x-original-framing", "HTTP/1.1 length=3 encoding=", 200), ("authorization", "Bearer x.y.z", 401),
])
def test_anything_the_decision_reads_that_differs_is_decided_anew(
        setup: tuple[IAM, Clock, Authorizer, Path], header: str, value: str, status: int) -> None:
    iam, _, app, _ = setup
    headers = nginx(session_token(iam, "alice"))
    assert call(app, "GET", "/nginx", headers).status == 200
    changed = call(app, "GET", "/nginx", {**headers, header: value})
    assert changed.status == status
    if status == 200:
        assert changed.headers["x-iam-principal-arn"].endswith(":user/alice")


def test_a_revoked_session_stops_within_the_session_cache_bound(setup: tuple[IAM, Clock, Authorizer, Path]) -> None:
    iam, clock, app, _ = setup
    token = session_token(iam, "alice")
    assert call(app, "GET", "/nginx", nginx(token)).status == 200
    iam.credentials.sessions.revoke(iam.credentials.sessions.verify(token, now=clock.now).session_id)
    clock.now += iam.settings.session_cache_seconds
    assert call(app, "GET", "/nginx", nginx(token)).status == 401


def test_a_repeat_ends_with_its_token(setup: tuple[IAM, Clock, Authorizer, Path]) -> None:
    iam, clock, app, _ = setup
    token = partner(NOW + 10)
    assert call(app, "GET", "/envoy/orders/42", check({"authorization": f"Bearer {token}"})).status == 200
    clock.now = NOW + 10 + 60  # past the provider's leeway
    assert call(app, "GET", "/envoy/orders/42", check({"authorization": f"Bearer {token}"})).status == 401


def test_a_reload_that_removes_the_permission_ends_the_repeat(setup: tuple[IAM, Clock, Authorizer, Path]) -> None:
    iam, _, app, directory = setup
    headers = nginx(partner(NOW + 3600))
    assert call(app, "GET", "/nginx", headers).status == 200
    text = directory.read_text()
    granted = 'max_session_duration = 3600\npolicies = ["OrdersReadOnly"]'  # the role partner's grant
    assert text.count(granted) == 1
    directory.write_text(text.replace(granted, "max_session_duration = 3600\npolicies = []"))
    assert DirectoryReloader(iam).reload().ok
    assert call(app, "GET", "/nginx", headers).status == 403


def test_a_check_request_with_a_body_is_never_kept(setup: tuple[IAM, Clock, Authorizer, Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    iam, _, app, _ = setup
    decided = spy(app, monkeypatch)
    body = b'{"item": "mug"}'
    headers = check({"authorization": f"Bearer {session_token(iam, 'carol')}"}, body)
    for _ in range(2):
        assert call(app, "POST", "/envoy/orders", headers, body).status == 200
    assert len(decided) == 2


def spy(app: Authorizer, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The requests the gate decides (a warm answer decides none)."""
    decided: list[object] = []
    decide = app.gate.decide

    def counted(context: Any, target: Any, **options: Any) -> Any:
        decided.append(context)
        return decide(context, target, **options)

    monkeypatch.setattr(app.gate, "decide", counted)
    return decided
