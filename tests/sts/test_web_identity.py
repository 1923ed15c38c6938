"""AssumeRoleWithWebIdentity: a JWT of the demo's outside provider (idp.example, made with pyjwt) is the credential;
the role's trust policy decides on its claims."""

from __future__ import annotations

from typing import Any

import pytest

from iam_middleware._iam import IAM
from iam_middleware._principal import CredentialKind, PrincipalType

from ._support import (
    ACCOUNT,
    PARTNER,
    START,
    Client,
    Clock,
    credentials_of,
    demo_data,
    idp_token,
    make_iam,
    signed_view,
)


def exchange(client: Client, token: str, **extra: Any) -> Any:
    return client.post("/AssumeRoleWithWebIdentity", {"WebIdentityToken": token, **extra})


def test_a_token_of_the_provider_becomes_role_credentials(client: Client, iam: IAM) -> None:
    response = exchange(client, idp_token(START))
    assert response.status_code == 200, response.text
    body = response.json()
    session_arn = f"arn:app:sts::{ACCOUNT}:assumed-role/partner/partner-42"
    assert body["AssumedRoleUser"]["Arn"] == session_arn
    assert body["Provider"] == "idp.example" and body["SubjectFromWebIdentityToken"] == "partner-42"
    assert body["Credentials"]["Expiration"] == "2026-01-15T13:00:00Z"
    principal = iam.authenticate(signed_view("GET", "https://api.example/orders/1", key=credentials_of(response)))
    assert principal is not None
    assert principal.arn == session_arn and principal.type is PrincipalType.ASSUMED_ROLE
    assert principal.credential_kind is CredentialKind.TEMPORARY_ACCESS_KEY
    # The provider's tag claim ("team") became a session tag.
    assert principal.context_keys(START)["aws:PrincipalTag/team"] == "green"
    assert principal.mfa_present is False
    # The token's claims stay condition keys of the credentials for their whole life, as AWS keeps them.
    keys = principal.context_keys(START)
    assert keys["idp.example:sub"] == "partner-42" and keys["idp.example:aud"] == "orders-api"


def test_no_caller_credential_is_needed_or_used(client: Client) -> None:
    response = exchange(client, idp_token(START))
    assert response.status_code == 200
    other = client.post("/AssumeRoleWithWebIdentity", {"WebIdentityToken": idp_token(START, sub="other")},
                        headers={"authorization": "Bearer not-even-a-token"})
    assert other.status_code == 200


def test_an_audience_the_trust_policy_does_not_allow_is_403(clock: Clock) -> None:
    data = demo_data()
    # The provider accepts tokens for two APIs, but the partner role trusts only tokens for orders-api.
    data["settings"]["web_identity"][0]["audiences"] = ["orders-api", "reports-api"]
    client = Client(make_iam(clock, data))
    response = exchange(client, idp_token(START, aud="reports-api"))
    assert response.status_code == 403
    assert response.json()["error"] == "AccessDenied"
    assert response.json()["message"] == f"Not authorized to perform sts:AssumeRoleWithWebIdentity on resource: " \
                                         f"{PARTNER}"
    assert exchange(client, idp_token(START, aud="orders-api")).status_code == 200


@pytest.mark.parametrize(("claims", "error"), [
    ({"aud": "someone-else"}, "InvalidAudience"),
    ({"exp": int(START) - 3600, "iat": int(START) - 7200}, "ExpiredToken"),
    ({"iss": "https://evil.example"}, "UntrustedIssuer"),
])
def test_a_token_the_provider_rules_refuse_is_401(client: Client, claims: dict[str, Any], error: str) -> None:
    response = exchange(client, idp_token(START, **claims))
    assert response.status_code == 401
    assert response.json()["error"] == error
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_token_signed_with_another_key_is_401(client: Client) -> None:
    response = exchange(client, idp_token(START, secret="another-secret-of-at-least-32-bytes-xxxxxx"))
    assert response.status_code == 401
    assert response.json()["error"] == "InvalidTokenSignature"


def test_the_role_may_be_named_and_its_trust_policy_decides(clock: Clock) -> None:
    data = demo_data()
    data["roles"]["internal"] = {"policies": ["OrdersReadOnly"], "trust_policy": {"document": (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": '
        '"arn:app:iam::111122223333:user/alice"}, "Action": "sts:AssumeRole"}]}')}}
    client = Client(make_iam(clock, data))
    internal = f"arn:app:iam::{ACCOUNT}:role/internal"
    assert exchange(client, idp_token(START), RoleArn=internal).status_code == 403
    missing = exchange(client, idp_token(START), RoleArn=f"arn:app:iam::{ACCOUNT}:role/missing")
    assert missing.status_code == 403
    assert exchange(client, idp_token(START), RoleArn=PARTNER).status_code == 200


@pytest.mark.parametrize(("duration", "status"), [(899, 400), (900, 200), (3600, 200), (3601, 400)])
def test_duration_is_bounded_by_the_role(client: Client, duration: int, status: int) -> None:
    assert exchange(client, idp_token(START), DurationSeconds=duration).status_code == status


def test_without_a_configured_provider_no_token_is_accepted(clock: Clock) -> None:
    data = demo_data()
    del data["settings"]["web_identity"]
    response = exchange(Client(make_iam(clock, data)), idp_token(START))
    assert response.status_code == 401
    assert response.json()["error"] == "InvalidIdentityToken"


@pytest.mark.parametrize("body", [
    {},
    {"WebIdentityToken": ""},
    {"WebIdentityToken": 7},
    {"WebIdentityToken": "x", "RoleArn": "partner"},
    {"WebIdentityToken": "x", "RoleSessionName": "has space"},
    {"WebIdentityToken": "x", "Policy": "{}"},
])
def test_malformed_parameters_are_bad_requests(client: Client, body: dict[str, Any]) -> None:
    assert client.post("/AssumeRoleWithWebIdentity", body).status_code == 400
