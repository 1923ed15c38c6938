"""Each evaluation is decided by the evaluator of every shell, for the principal the subject names: allows, implicit
and explicit denies (identity policies, a permissions boundary, an account guardrail, a session policy), the MFA
step-up, roles and their sessions, the caller itself, and subjects that name nobody."""

from __future__ import annotations

import json
from typing import Any

import pytest

from iam_middleware import IAM
from iam_middleware.authzen import AuthZEN

from ._pdp import ACCOUNT, ALICE, NOW, PARTNER, ask, ask_signed, make_iam

pytestmark = pytest.mark.anyio

ORDER = {"type": "order", "id": "42"}


@pytest.fixture(scope="module")
def iam() -> IAM:
    return make_iam()


@pytest.fixture(scope="module")
def app(iam: IAM) -> AuthZEN:
    return AuthZEN(iam)


def question(subject: dict[str, Any], action: str, resource: dict[str, Any] = ORDER, **more: Any) -> dict[str, Any]:
    return {"subject": subject, "action": {"name": action}, "resource": resource, **more}


def user(name: str) -> dict[str, Any]:
    return {"type": "user", "id": name}


async def decide(app: AuthZEN, iam: IAM, body: dict[str, Any], **how: Any) -> dict[str, Any]:
    response = await ask(app, iam, body, **how)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_an_allowed_request_is_a_bare_true(app: AuthZEN, iam: IAM) -> None:
    assert await decide(app, iam, question(user("alice"), "orders:GetOrder")) == {"decision": True}
    # A bare action name is the directory's service's; the user by ARN is the same user.
    assert await decide(app, iam, question(user(ALICE), "GetOrder")) == {"decision": True}


async def test_an_implicit_deny_says_why(app: AuthZEN, iam: IAM) -> None:
    answer = await decide(app, iam, question(user("alice"), "orders:DeleteOrder"))
    assert answer == {"decision": False, "context": {
        "reason": "ImplicitlyDenied",
        "message": f"User: {ALICE} is not authorized to perform: orders:DeleteOrder on resource: "
                   f"arn:app:orders::{ACCOUNT}:order/42 because no identity-based policy allows the "
                   "orders:DeleteOrder action"}}


async def test_a_guardrail_denies_explicitly(app: AuthZEN, iam: IAM) -> None:
    answer = await decide(app, iam, question(user("carol"), "orders:PurgeOrders"))
    assert answer["decision"] is False and answer["context"]["reason"] == "ExplicitlyDenied"
    assert answer["context"]["message"].endswith("with an explicit deny in a service control policy")


async def test_a_permissions_boundary_denies_explicitly(app: AuthZEN, iam: IAM) -> None:
    allowed = await decide(app, iam, question(user("carol"), "orders:DeleteOrder"))
    archived = await decide(app, iam, question(user("carol"), "orders:DeleteOrder", {"type": "order",
                                                                                      "id": "archived-7"}))
    assert allowed == {"decision": True}
    assert archived["decision"] is False
    assert archived["context"]["message"].endswith("with an explicit deny in a permissions boundary")


async def test_a_user_is_decided_without_mfa_and_told_a_step_up_would_allow(app: AuthZEN, iam: IAM) -> None:
    # bob may write only in a session that carries MFA; a user named in a subject has no session.
    answer = await decide(app, iam, question(user("bob"), "orders:CreateOrder"))
    assert answer["decision"] is False
    assert answer["context"]["reason"] == "MultiFactorAuthRequired"
    assert answer["context"]["missing_context_keys"] == ["aws:MultiFactorAuthPresent"]


async def test_the_caller_is_decided_with_its_own_credential(app: AuthZEN, iam: IAM) -> None:
    # bob asks about himself with his session (MFA checked at login): the write is allowed for that session.
    body = question({"type": "caller", "id": "self"}, "orders:CreateOrder")
    assert await decide(app, iam, body, who="bob") == {"decision": True}
    refused = await ask(app, iam, question(user("alice"), "orders:GetOrder"), who="bob")
    assert refused.status_code == 403  # bob may ask about himself only


@pytest.mark.parametrize("subject", [
    {"type": "role", "id": "partner"},
    {"type": "role", "id": PARTNER},
    {"type": "role", "id": f"arn:app:sts::{ACCOUNT}:assumed-role/partner/nightly"},
    {"type": "role", "id": "partner", "properties": {"session_name": "nightly"}},
])
async def test_a_role_is_decided_as_a_session_of_it(app: AuthZEN, iam: IAM, subject: dict[str, Any]) -> None:
    assert await decide(app, iam, question(subject, "orders:GetOrder")) == {"decision": True}
    denied = await decide(app, iam, question(subject, "orders:CreateOrder"))
    session = subject["id"].rpartition("/")[2] if "assumed-role" in subject["id"] else (
        subject.get("properties", {}).get("session_name", "authzen"))
    assert denied["context"]["message"].startswith(
        f"User: arn:app:sts::{ACCOUNT}:assumed-role/partner/{session} is not authorized")


async def test_a_role_sessions_session_policy_limits_it(app: AuthZEN, iam: IAM) -> None:
    # Temporary credentials of the role partner with a session policy that allows reading order 1 only; the
    # session asks about itself (the role may be asked about by its own sessions), signed with SigV4.
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["orders:GetOrder", "iam:SimulatePrincipalPolicy"],
         "Resource": [f"arn:app:orders::{ACCOUNT}:order/1", PARTNER]}]}
    temporary = iam.credentials.temporary.issue(kind="role", arn=PARTNER, session_name="limited", now=NOW, duration=900,
                                    session_policy=json.dumps(policy))
    caller = {"type": "caller", "id": "self"}
    answers = []
    for order in ("1", "2"):
        body = json.dumps(question(caller, "orders:GetOrder", {"type": "order", "id": order})).encode()
        response = await ask_signed(app, iam, body, credential=temporary)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    assert answers[0] == {"decision": True}
    assert answers[1]["decision"] is False and "session policy" in answers[1]["context"]["message"]


@pytest.mark.parametrize(("subject", "missing"), [
    (user("ghost"), f"The user arn:app:iam::{ACCOUNT}:user/ghost does not exist or is disabled."),
    (user(f"arn:app:iam::{ACCOUNT}:user/eng/alice"),
     f"The user arn:app:iam::{ACCOUNT}:user/eng/alice does not exist or is disabled."),
    ({"type": "role", "id": "auditor"}, f"The role arn:app:iam::{ACCOUNT}:role/auditor does not exist."),
    ({"type": "role", "id": f"arn:app:sts::{ACCOUNT}:assumed-role/auditor/s1"},
     f"The role arn:app:iam::{ACCOUNT}:role/auditor does not exist."),
])
async def test_a_subject_that_names_nobody_is_denied_with_a_404_in_context(
        app: AuthZEN, iam: IAM, subject: dict[str, Any], missing: str) -> None:
    answer = await decide(app, iam, question(subject, "orders:GetOrder"))
    assert answer == {"decision": False,
                      "context": {"error": {"status": 404, "code": "NoSuchEntity", "message": missing}}}


async def test_resources_by_arn_and_by_type_and_id(app: AuthZEN, iam: IAM) -> None:
    archived = f"arn:app:orders::{ACCOUNT}:order/archived-7"
    by_arn = await decide(app, iam, question(user("carol"), "orders:DeleteOrder", {"type": "order", "id": archived}))
    assert by_arn["decision"] is False and archived in by_arn["context"]["message"]
    # An id is one path segment: percent-encoded, it can add no wildcard or segment to the ARN.
    tricky = await decide(app, iam, question(user("alice"), "orders:DeleteOrder", {"type": "order", "id": "*/x"}))
    assert f"arn:app:orders::{ACCOUNT}:order/%2A%2Fx" in tricky["context"]["message"]
    # "*" is the resource of an action that names none, as a route without a resource.
    assert await decide(app, iam, question(user("alice"), "orders:ListOrders", {"type": "order", "id": "*"})) == {
        "decision": True}
