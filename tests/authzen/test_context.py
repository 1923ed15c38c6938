"""A context adds condition keys and never sets those IAM computes or a credential carries; the keys of a request
are absent (the PDP does not see the request the PEP enforces on), never the PEP's own."""

from __future__ import annotations

from typing import Any

import pytest

from iam_middleware import IAM
from iam_middleware.authzen import AuthZEN

from ._pdp import EXTRA, PEP_ADDRESS, ask, make_iam

pytestmark = pytest.mark.anyio

# dispatcher may expedite an order when the request says it is urgent and tags it for team blue, and may ship
# only from the PEP's own network, which is never the subject's address.
DISPATCHER = EXTRA + """
[policies.Dispatch]
document = '''
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "orders:ExpediteOrder", "Resource": "*",
   "Condition": {"StringEquals": {"orders:Priority": "high", "aws:RequestTag/team": "blue"}}},
  {"Effect": "Allow", "Action": "orders:ShipOrder", "Resource": "*",
   "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}}
]}'''

[users.dispatcher]
policies = ["Dispatch"]
"""


@pytest.fixture(scope="module")
def iam() -> IAM:
    return make_iam(DISPATCHER)


@pytest.fixture(scope="module")
def app(iam: IAM) -> AuthZEN:
    return AuthZEN(iam)


def question(name: str, action: str, **more: Any) -> dict[str, Any]:
    return {"subject": {"type": "user", "id": name, **more.pop("subject", {})}, "action": {"name": action},
            "resource": {"type": "order", "id": "42"}, **more}


@pytest.mark.parametrize("key", [
    "aws:SourceIp", "aws:PrincipalArn", "aws:MultiFactorAuthPresent", "AWS:multifactorauthpresent",
    "aws:MultiFactorAuthAge", "aws:SecureTransport", "aws:username", "aws:userid", "aws:PrincipalTag/team",
    "aws:CurrentTime", "aws:TokenIssueTime", "aws:FederatedProvider", "idp.example:sub", "IDP.example:aud",
])
async def test_a_key_iam_computes_or_a_credential_carries_cannot_be_forged(app: AuthZEN, iam: IAM,
                                                                           key: str) -> None:
    response = await ask(app, iam, question("bob", "orders:CreateOrder", context={key: "true"}))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "ValidationError"
    assert response.json()["message"].startswith(f"context[{key!r}] ")


async def test_properties_and_other_members_set_no_key(app: AuthZEN, iam: IAM) -> None:
    # bob writes only with MFA: nothing in the request can say he has it.
    body = question("bob", "orders:CreateOrder", subject={"properties": {"aws:MultiFactorAuthPresent": "true"}},
                    context={"time": "1985-10-26T01:22-07:00", "mfa": True})
    response = await ask(app, iam, body)
    assert response.json()["decision"] is False
    assert response.json()["context"]["reason"] == "MultiFactorAuthRequired"


@pytest.mark.parametrize(("context", "decision"), [
    ({"orders:Priority": "high", "aws:RequestTag/team": "blue"}, True),
    ({"ORDERS:priority": "high", "aws:requesttag/team": ["blue"]}, True),  # keys are not case-sensitive
    ({"orders:Priority": "low", "aws:RequestTag/team": "blue"}, False),
    ({"orders:Priority": "high", "aws:RequestTag/team": None}, False),  # null: absent
])
async def test_keys_the_request_may_add_are_read(app: AuthZEN, iam: IAM, context: dict[str, Any],
                                                 decision: bool) -> None:
    response = await ask(app, iam, question("dispatcher", "orders:ExpediteOrder", context=context))
    assert response.json()["decision"] is decision


async def test_an_absent_key_is_reported(app: AuthZEN, iam: IAM) -> None:
    response = await ask(app, iam, question("dispatcher", "orders:ExpediteOrder", context={"orders:Priority": "high"}))
    assert response.json()["context"]["missing_context_keys"] == ["aws:RequestTag/team"]


async def test_the_peps_address_is_never_the_subjects(app: AuthZEN, iam: IAM) -> None:
    # The PEP calls from 192.0.2.10, inside the network the policy allows; the subject's address is unknown.
    assert PEP_ADDRESS.startswith("192.0.2.")
    response = await ask(app, iam, question("dispatcher", "orders:ShipOrder"))
    assert response.json()["decision"] is False
    assert response.json()["context"]["missing_context_keys"] == ["aws:SourceIp"]


@pytest.mark.parametrize(("context", "message"), [
    ({"orders:Priority": "high", "ORDERS:PRIORITY": "low"},
     "context['ORDERS:PRIORITY'] is given twice (condition keys are not case-sensitive)."),
    ({"orders:Priority": {"level": "high"}},
     "context['orders:Priority'] must be a string, number or boolean, or an array of them."),
    ({"orders:Priority": ["high", None]},
     "context['orders:Priority'] must be a string, number or boolean, or an array of them."),
    ({"orders :Priority": "high"}, "context['orders :Priority'] is not a condition key (prefix:Name, 1-64 + 1-256 "
                                   "characters)."),
])
async def test_a_malformed_key_is_refused(app: AuthZEN, iam: IAM, context: dict[str, Any], message: str) -> None:
    response = await ask(app, iam, question("dispatcher", "orders:ExpediteOrder", context=context))
    assert response.status_code == 400
    assert response.json()["message"] == message
