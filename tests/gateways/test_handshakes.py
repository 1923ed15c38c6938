"""Websocket handshakes at the authorizer (docs/gateways.md, "Websocket handshakes"): a GET that asks for an upgrade
is decided as the middleware decides a handshake, under the table's ``WEBSOCKET`` rule (else its ``GET`` rule) and
with the cross-site check of cookie sessions; test_nginx.py runs the same through the real nginx."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from adapters._support import demo_iam

from iam_middleware import IAM, RequestView, RuleTable
from iam_middleware.authz import Authorizer, InvalidSubrequestError
from iam_middleware.authz._forms import from_nginx
from iam_middleware.testing import session_token

RULES = RuleTable.from_config([
    {"method": "GET", "path": "/feed", "public": True},
    {"method": "WEBSOCKET", "path": "/feed", "action": "orders:GetOrder",
     "resource": "arn:app:orders::{account}:order/*"},
    {"method": "GET", "path": "/orders/{order_id}", "action": "orders:GetOrder",
     "resource": "arn:app:orders::{account}:order/{order_id}"},
    {"method": "POST", "path": "/orders/{order_id}", "action": "orders:UpdateOrder",
     "resource": "arn:app:orders::{account}:order/{order_id}"},
])
HOST = "api.example"
SITE = f"http://{HOST}"


@pytest.fixture
def iam() -> IAM:
    return demo_iam()


def ask(authorizer: Authorizer, path: str, headers: dict[str, str], *, method: str = "GET",
        upgrade: str | None = "websocket") -> httpx.Response:
    """The docs' nginx subrequest for the original ``method path``, with ``X-Original-Upgrade`` when given."""
    sub = {**headers, "Host": HOST, "X-Original-Method": method, "X-Original-URI": path,
           "X-Original-Framing": "HTTP/1.1 length= encoding="}
    if upgrade is not None:
        sub["X-Original-Upgrade"] = upgrade

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=authorizer), base_url="http://authz") as c:
            return await c.get("/nginx", headers=sub)

    return asyncio.run(send())


def refusal(response: httpx.Response) -> str | None:
    """The gate's error code of an nginx answer, None when allowed."""
    if response.status_code == 200:
        return None
    code: str = json.loads(response.headers["x-iam-refusal"])["error"]
    return code


def bearer(iam: IAM, user: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(iam, user)}"}


def cookie(iam: IAM, origin: str | None) -> dict[str, str]:
    headers = {"Cookie": f"{iam.settings.cookie_name}={session_token(iam, 'alice')}"}
    return headers if origin is None else {**headers, "Origin": origin}


def test_the_websocket_rule_governs_a_handshake_and_the_get_rule_a_get(iam: IAM) -> None:
    authorizer = Authorizer(iam, rules=RULES)
    assert refusal(ask(authorizer, "/feed", {}, upgrade=None)) is None  # GET /feed is public
    assert refusal(ask(authorizer, "/feed", {})) == "MissingAuthenticationToken"  # its handshake is not
    assert refusal(ask(authorizer, "/feed", bearer(iam))) is None


def test_without_a_websocket_rule_the_get_rule_governs(iam: IAM) -> None:
    authorizer = Authorizer(iam, rules=RULES)
    allowed = ask(authorizer, "/orders/42", bearer(iam))
    assert allowed.status_code == 200 and allowed.headers["x-iam-principal-arn"].endswith(":user/alice")
    assert refusal(ask(authorizer, "/orders/42", {})) == "MissingAuthenticationToken"


def test_a_cookie_handshake_must_come_from_the_site(iam: IAM) -> None:
    authorizer = Authorizer(iam, rules=RULES)
    assert refusal(ask(authorizer, "/feed", cookie(iam, "https://evil.example"))) == "CSRFCheckFailed"
    assert refusal(ask(authorizer, "/feed", cookie(iam, None))) == "CSRFCheckFailed"
    assert refusal(ask(authorizer, "/feed", {**cookie(iam, None), "Referer": "https://evil.example/x"})) == (
        "CSRFCheckFailed")
    assert refusal(ask(authorizer, "/feed", cookie(iam, SITE))) is None
    # A bearer token is never sent by a browser on its own: no origin needed.
    assert refusal(ask(authorizer, "/feed", {**bearer(iam), "Origin": "https://evil.example"})) is None


def test_a_repeat_of_an_allowed_get_is_not_taken_for_its_handshake(iam: IAM) -> None:
    authorizer = Authorizer(iam, rules=RULES)
    cross_site = cookie(iam, "https://evil.example")
    for _ in range(2):  # the second is answered from the warm answers
        assert refusal(ask(authorizer, "/orders/42", cross_site, upgrade=None)) is None
    assert refusal(ask(authorizer, "/orders/42", cross_site)) == "CSRFCheckFailed"


def test_only_a_get_is_a_handshake(iam: IAM) -> None:
    authorizer = Authorizer(iam, rules=RULES)
    # A POST asking for an upgrade is decided as the POST it is (its own rule; unsafe, so checked cross-site).
    assert refusal(ask(authorizer, "/orders/42", bearer(iam, "carol"), method="POST")) is None
    assert refusal(ask(authorizer, "/orders/42", cookie(iam, "https://evil.example"), method="POST")) == (
        "CSRFCheckFailed")
    assert refusal(ask(authorizer, "/feed", bearer(iam), method="POST")) == "AccessDenied"  # no POST /feed rule


def test_the_decision_log_names_the_handshake(iam: IAM, caplog: pytest.LogCaptureFixture) -> None:
    authorizer = Authorizer(iam, rules=RULES)
    with caplog.at_level(logging.INFO, logger="iam_middleware.decisions"):
        ask(authorizer, "/feed", bearer(iam))
    records: list[dict[str, Any]] = [record.iam for record in caplog.records if hasattr(record, "iam")]
    assert [(r["method"], r["path"], r["action"], r["decision"]) for r in records] == [
        ("WEBSOCKET", "/feed", "orders:GetOrder", "Allowed")]


def test_nginx_hands_the_upgrade_back_to_the_original_request() -> None:
    headers = (("host", HOST), ("x-original-method", "GET"), ("x-original-uri", "/feed"),
               ("x-original-upgrade", "websocket"))
    view = from_nginx(RequestView(method="GET", raw_path=b"/nginx", headers=headers, client_host="10.0.0.1"), ())
    assert view.header_values("upgrade") == ["websocket"] and view.header("x-original-upgrade") is None
    twice = RequestView(method="GET", raw_path=b"/nginx", headers=(*headers, ("x-original-upgrade", "h2c")))
    with pytest.raises(InvalidSubrequestError):
        from_nginx(twice, ())


def test_an_envoy_check_request_that_carries_the_upgrade_is_a_handshake(iam: IAM) -> None:
    authorizer = Authorizer(iam, rules=RULES)

    async def check(headers: dict[str, str]) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=authorizer), base_url=f"http://{HOST}") as c:
            return await c.get("/envoy/feed", headers={**headers, "x-iam-request-body": "forwarded"})

    cross_site = cookie(iam, "https://evil.example")
    refused = asyncio.run(check({**cross_site, "Upgrade": "websocket"}))
    assert refused.status_code == 403 and refused.json()["error"] == "CSRFCheckFailed"
    assert asyncio.run(check(cross_site)).status_code == 200  # without it: the public GET /feed
