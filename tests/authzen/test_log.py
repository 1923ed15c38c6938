"""The decision log records who asked (the PEP's ``iam:SimulatePrincipalPolicy`` check, with its address) and every
evaluation (the subject, action, resource and outcome), under the request's id; refusals too; never a credential."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from iam_middleware import IAM
from iam_middleware.authzen import EVALUATIONS_PATH, AuthZEN
from iam_middleware.testing import session_token

from ._pdp import ACCOUNT, ALICE, PEP_ADDRESS, ask, make_iam

pytestmark = pytest.mark.anyio

GATEWAY = f"arn:app:iam::{ACCOUNT}:user/gateway"
ORDER = f"arn:app:orders::{ACCOUNT}:order/42"


@pytest.fixture(scope="module")
def iam() -> IAM:
    return make_iam()


@pytest.fixture(scope="module")
def app(iam: IAM) -> AuthZEN:
    return AuthZEN(iam)


def records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.iam for r in caplog.records if r.name == "iam_middleware.decisions"]  # type: ignore[attr-defined]


async def test_the_pep_check_and_the_evaluation_are_recorded(app: AuthZEN, iam: IAM,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "iam_middleware.decisions")
    body = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "orders:GetOrder"},
            "resource": {"type": "order", "id": "42"}}
    response = await ask(app, iam, body, headers={"x-request-id": "pep-1"})
    assert response.json() == {"decision": True}
    asked, decided = records(caplog)
    assert asked | {"statements": None, "time": None} == {
        "time": None, "request_id": "pep-1", "method": "POST", "path": "/access/v1/evaluation", "principal": GATEWAY,
        "credential": "session", "source_ip": PEP_ADDRESS, "action": "iam:SimulatePrincipalPolicy",
        "resource": ALICE, "decision": "Allowed", "statements": None, "denied_by": None}
    assert decided["request_id"] == "pep-1" and decided["principal"] == ALICE
    assert (decided["action"], decided["resource"], decided["decision"]) == ("orders:GetOrder", ORDER, "Allowed")
    assert decided["source_ip"] is None  # alice sent no request: the PEP's record says who asked, and from where


async def test_each_item_of_a_batch_is_recorded_under_its_index(app: AuthZEN, iam: IAM,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "iam_middleware.decisions")
    body = {"action": {"name": "orders:DeleteOrder"}, "resource": {"type": "order", "id": "42"}, "evaluations": [
        {"subject": {"type": "user", "id": "carol"}}, {"subject": {"type": "user", "id": "ghost"}}]}
    response = await ask(app, iam, body, path=EVALUATIONS_PATH, headers={"x-request-id": "pep-2"})
    assert [item["decision"] for item in response.json()["evaluations"]] == [True, False]
    found = records(caplog)
    assert [(r["request_id"], r["action"], r["decision"]) for r in found] == [
        ("pep-2", "iam:SimulatePrincipalPolicy", "Allowed"), ("pep-2", "iam:SimulatePrincipalPolicy", "Allowed"),
        ("pep-2.0", "orders:DeleteOrder", "Allowed"), ("pep-2.1", "orders:DeleteOrder", "NoSuchEntity")]
    assert found[3]["principal"] is None


async def test_a_refusal_is_recorded_and_no_credential_is(app: AuthZEN, iam: IAM,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "iam_middleware.decisions")
    token = session_token(iam, "alice")
    body = {"subject": {"type": "user", "id": "carol"}, "action": {"name": "orders:GetOrder"},
            "resource": {"type": "order", "id": "42"}}
    response = await ask(app, iam, body, who=None, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 403
    (refused,) = records(caplog)
    assert refused["principal"] == ALICE and refused["status"] == 403 and refused["code"] == "AccessDenied"
    assert (refused["action"], refused["resource"]) == ("iam:SimulatePrincipalPolicy",
                                                        f"arn:app:iam::{ACCOUNT}:user/carol")
    assert refused["decision"] == "ImplicitlyDenied"
    assert token not in caplog.text and token.split(".")[2] not in caplog.text
