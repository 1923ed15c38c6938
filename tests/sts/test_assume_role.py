"""AssumeRole: the role's trust policy and the caller's own policies decide (IAM semantics), the session policy
narrows, the duration is bounded by the role, MFA carries over from the caller's session."""

from __future__ import annotations

import json
from typing import Any

import pytest

from iam_middleware._iam import IAM
from iam_middleware._principal import CredentialKind, Principal, PrincipalType

from ._support import (
    ACCOUNT,
    ALICE,
    BOB,
    CAROL_KEY,
    PARTNER,
    START,
    Client,
    Clock,
    credentials_of,
    demo_data,
    make_iam,
    signed_view,
)

OTHER = "444455556666"
ASSUME_PARTNER = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": PARTNER}]}


def trust(*statements: dict[str, Any]) -> dict[str, str]:
    return {"document": json.dumps({"Version": "2012-10-17", "Statement": list(statements)})}


def principal_of(iam: IAM, key: tuple[str, str, str]) -> Principal:
    principal = iam.authenticate(signed_view("GET", "https://api.example/orders/42", key=key))
    assert principal is not None
    return principal


def test_a_trusted_user_gets_role_session_credentials(client: Client, iam: IAM) -> None:
    response = client.signed("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "alice-reports"})
    assert response.status_code == 200, response.text
    body = response.json()
    role = iam.snapshot.role(PARTNER)
    assert role is not None
    session_arn = f"arn:app:sts::{ACCOUNT}:assumed-role/partner/alice-reports"
    assert body["AssumedRoleUser"] == {"Arn": session_arn, "AssumedRoleId": f"{role.id}:alice-reports"}
    assert body["Credentials"]["Expiration"] == "2026-01-15T13:00:00Z"
    principal = principal_of(iam, credentials_of(response))
    assert principal.arn == session_arn
    assert principal.type is PrincipalType.ASSUMED_ROLE
    assert principal.credential_kind is CredentialKind.TEMPORARY_ACCESS_KEY
    assert principal.source_arn == PARTNER
    keys = principal.context_keys(START)
    assert keys["aws:PrincipalArn"] == PARTNER and keys["aws:userid"] == f"{role.id}:alice-reports"
    assert "aws:username" not in keys
    # Alice signed with her long-term key: no MFA to carry over.
    assert keys["aws:MultiFactorAuthPresent"] == "false"
    # The role's own policies apply to the session.
    assert iam.authorize(principal, "orders:GetOrder", f"arn:app:orders::{ACCOUNT}:order/42").allowed
    assert not iam.authorize(principal, "orders:DeleteOrder", f"arn:app:orders::{ACCOUNT}:order/42").allowed


def test_an_untrusted_user_is_refused_like_for_a_missing_role(client: Client) -> None:
    bob = client.token("bob")
    refused = client.post("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "bob"},
                          headers={"authorization": f"Bearer {bob}"})
    assert refused.status_code == 403
    assert refused.json() == {
        "error": "AccessDenied", "request_id": refused.headers["x-request-id"],
        "message": f"User: {BOB} is not authorized to perform: sts:AssumeRole on resource: {PARTNER}",
    }
    missing_arn = f"arn:app:iam::{ACCOUNT}:role/no-such-role"
    missing = client.signed("/AssumeRole", {"RoleArn": missing_arn, "RoleSessionName": "alice"})
    assert missing.status_code == 403
    assert missing.json()["message"] == (f"User: {ALICE} is not authorized to perform: sts:AssumeRole on resource: "
                                         f"{missing_arn}")


def test_the_trust_policy_must_allow_even_when_the_callers_policies_do(clock: Clock) -> None:
    data = demo_data()
    data["users"]["bob"]["policies"].append("AssumePartner")
    client = Client(make_iam(clock, data))
    bob = client.token("bob")
    response = client.post("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "bob"},
                           headers={"authorization": f"Bearer {bob}"})
    assert response.status_code == 403


def test_a_trust_policy_naming_the_account_also_needs_an_identity_allow(clock: Clock) -> None:
    data = demo_data()
    data["roles"]["partner"]["trust_policy"] = trust(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:app:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"})
    client = Client(make_iam(clock, data))
    # Alice has AssumePartner; carol has no identity policy allowing sts:AssumeRole.
    assert client.signed("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "alice"}).status_code == 200
    carol = client.signed("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "carol"}, key=CAROL_KEY)
    assert carol.status_code == 403


def test_a_trust_policy_naming_the_user_needs_no_identity_allow(clock: Clock) -> None:
    data = demo_data()
    data["users"]["alice"]["policies"].remove("AssumePartner")
    client = Client(make_iam(clock, data))
    assert client.signed("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "alice"}).status_code == 200


def test_across_accounts_both_the_trust_policy_and_the_callers_policies_must_allow(clock: Clock) -> None:
    data = demo_data()
    auditor = f"arn:app:iam::{OTHER}:role/auditor"
    data["accounts"][OTHER] = {"name": "partner-co"}
    data["roles"]["auditor"] = {"account": OTHER, "policies": ["OrdersReadOnly"], "trust_policy": trust(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:app:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"})}
    data["roles"]["partner"]["account"] = ACCOUNT
    data["groups"]["readers"]["account"] = ACCOUNT
    for user in data["users"].values():
        user["account"] = ACCOUNT
    data["users"]["alice"]["inline"] = {"AssumeAuditor": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": auditor}]}}
    client = Client(make_iam(clock, data))
    allowed = client.signed("/AssumeRole", {"RoleArn": auditor, "RoleSessionName": "alice"})
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["AssumedRoleUser"]["Arn"] == f"arn:app:sts::{OTHER}:assumed-role/auditor/alice"
    # Carol is in the trusted account, but her own policies do not allow the call.
    assert client.signed("/AssumeRole", {"RoleArn": auditor, "RoleSessionName": "carol"},
                         key=CAROL_KEY).status_code == 403


def test_mfa_carries_over_from_the_callers_session(client: Client, iam: IAM, clock: Clock) -> None:
    alice = client.token("alice")
    clock.tick(300)
    response = client.post("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "alice-mfa"},
                           headers={"authorization": f"Bearer {alice}"})
    assert response.status_code == 200, response.text
    principal = principal_of(iam, credentials_of(response))
    assert principal.mfa_present is True and principal.mfa_time == START
    keys = principal.context_keys(clock.now)
    assert keys["aws:MultiFactorAuthPresent"] == "true" and keys["aws:MultiFactorAuthAge"] == "300"


def test_a_session_policy_narrows_the_role_session(client: Client, iam: IAM) -> None:
    only_get = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"}]}
    order = f"arn:app:orders::{ACCOUNT}:order/42"
    for policy in (json.dumps(only_get), only_get):
        response = client.signed("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "narrow", "Policy": policy})
        assert response.status_code == 200, response.text
        principal = principal_of(iam, credentials_of(response))
        assert iam.authorize(principal, "orders:GetOrder", order).allowed
        denied = iam.authorize(principal, "orders:ListOrders", order)
        assert not denied.allowed and denied.denied_by == "session"
    # A session policy never widens: the role may not delete, whatever the session policy says.
    widen = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:*", "Resource": "*"}]}
    response = client.signed("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "wide", "Policy": widen})
    assert not iam.authorize(principal_of(iam, credentials_of(response)), "orders:DeleteOrder", order).allowed


@pytest.mark.parametrize(("policy", "error"), [
    ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "orders:*", '
     '"Resource": "*"}]}', "MalformedPolicyDocument"),
    ('{"Statement": [', "MalformedPolicyDocument"),
    ('{"Version": "2012-10-17", "Statement": [{"Effect": "allow", "Action": "orders:*", "Resource": "*"}]}',
     "MalformedPolicyDocument"),
    ("x" * 2049, "ValidationError"),
    (["not", "a", "policy"], "ValidationError"),
])
def test_an_invalid_session_policy_is_a_bad_request(client: Client, policy: object, error: str) -> None:
    response = client.signed("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "ss", "Policy": policy})
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_the_policy_error_says_where(client: Client) -> None:
    policy = '{"Version": "2012-10-17", "Statement": [{"Effect": "allow", "Action": "orders:*", "Resource": "*"}]}'
    response = client.signed("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "ss", "Policy": policy})
    assert "Statement[0].Effect" in response.json()["message"]


@pytest.mark.parametrize(("duration", "status"), [(899, 400), (900, 200), (3600, 200), (3601, 400), ("900", 400)])
def test_duration_is_bounded_by_the_role_maximum(client: Client, duration: Any, status: int) -> None:
    response = client.signed("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "dd",
                                             "DurationSeconds": duration})
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["error"] == "ValidationError"
        assert "seconds" in response.json()["message"]
    else:
        assert response.json()["Credentials"]["Expiration"] == {900: "2026-01-15T12:15:00Z",
                                                                 3600: "2026-01-15T13:00:00Z"}[duration]


def test_role_chaining_is_limited_to_one_hour(clock: Clock) -> None:
    data = demo_data()
    chained = f"arn:app:iam::{ACCOUNT}:role/chained"
    data["roles"]["chained"] = {"max_session_duration": 7200, "policies": ["OrdersReadOnly"], "trust_policy": trust(
        {"Effect": "Allow", "Principal": {"AWS": PARTNER}, "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "sts:AssumeRole"})}
    iam = make_iam(clock, data)
    client = Client(iam)
    # Alice herself may have two hours...
    assert client.signed("/AssumeRole", {"RoleArn": chained, "RoleSessionName": "alice",
                                         "DurationSeconds": 7200}).status_code == 200
    # ...a partner role session, one.
    partner = credentials_of(client.signed("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "partner"}))
    too_long = client.signed("/AssumeRole", {"RoleArn": chained, "RoleSessionName": "next", "DurationSeconds": 7200},
                             key=partner)
    assert too_long.status_code == 400
    assert "role chaining" in too_long.json()["message"]
    ok = client.signed("/AssumeRole", {"RoleArn": chained, "RoleSessionName": "next"}, key=partner)
    assert ok.status_code == 200, ok.text
    assert ok.json()["AssumedRoleUser"]["Arn"] == f"arn:app:sts::{ACCOUNT}:assumed-role/chained/next"


@pytest.mark.parametrize("body", [
    {"RoleArn": PARTNER},
    {"RoleArn": "partner", "RoleSessionName": "ok"},
    {"RoleArn": PARTNER, "RoleSessionName": "a"},
    {"RoleArn": PARTNER, "RoleSessionName": "has space"},
    {"RoleArn": PARTNER, "RoleSessionName": "x" * 65},
    {"RoleArn": PARTNER, "RoleSessionName": "ok", "ExternalId": "x"},
    {"RoleArn": 42, "RoleSessionName": "ok"},
])
def test_malformed_parameters_are_bad_requests(client: Client, body: dict[str, Any]) -> None:
    response = client.signed("/AssumeRole", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("MissingParameter", "ValidationError")


def test_anonymous_callers_are_asked_for_a_credential_first(client: Client) -> None:
    response = client.post("/AssumeRole", {"RoleArn": PARTNER})
    assert response.status_code == 401
    assert response.json()["error"] == "MissingAuthenticationToken"
    assert "www-authenticate" in response.headers
