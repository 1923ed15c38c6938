"""Revocation of temporary credentials: allowed by sts:RevokeCredentials (or for one's own key), effective at once."""

from __future__ import annotations

import pytest

from iam_middleware._exceptions import AuthenticationError
from iam_middleware._iam import IAM

from ._support import (
    ACCOUNT,
    ALICE,
    CAROL_KEY,
    PARTNER,
    Client,
    Clock,
    credentials_of,
    demo_data,
    make_iam,
    signed_view,
)

REVOKER = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sts:RevokeCredentials", "Resource": f"arn:app:iam::{ACCOUNT}:role/*"}]}


@pytest.fixture
def revoking(clock: Clock) -> Client:
    """The demo directory where carol may revoke credentials of the account's roles (without her boundary, which
    limits her to orders:*)."""
    data = demo_data()
    data["users"]["carol"]["inline"] = {"Revoke": REVOKER}
    del data["users"]["carol"]["boundary"]
    return Client(make_iam(clock, data))


def partner_credentials(client: Client) -> tuple[str, str, str]:
    return credentials_of(client.signed("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "to-revoke"}))


def test_revoke_makes_the_temporary_key_fail_at_once(revoking: Client) -> None:
    iam = revoking.iam
    key = partner_credentials(revoking)
    view = signed_view("GET", "https://api.example/orders", key=key)
    assert iam.authenticate(view) is not None
    response = revoking.signed("/revoke", {"AccessKeyId": key[0]}, key=CAROL_KEY)
    assert response.status_code == 200, response.text
    assert response.json() == {"AccessKeyId": key[0], "Revoked": True}
    with pytest.raises(AuthenticationError) as caught:
        iam.authenticate(view)
    assert caught.value.status_code == 401
    # And the revoked credentials can no longer call the token service either.
    assert revoking.signed("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "again"},
                           key=key).status_code == 401


def test_a_principal_without_the_permission_gets_the_same_answer_as_for_an_unknown_key(client: Client) -> None:
    key = partner_credentials(client)
    refused = client.signed("/revoke", {"AccessKeyId": key[0]}, key=CAROL_KEY)
    unknown = client.signed("/revoke", {"AccessKeyId": "ASIA" + "A" * 16}, key=CAROL_KEY)
    assert refused.status_code == unknown.status_code == 403
    assert refused.json()["error"] == unknown.json()["error"] == "AccessDenied"
    assert refused.json()["message"].replace(key[0], "KEY") == unknown.json()["message"].replace("ASIA" + "A" * 16,
                                                                                                 "KEY")
    # The credentials still work.
    assert client.iam.authenticate(signed_view("GET", "https://api.example/orders", key=key)) is not None


def test_the_permission_is_scoped_by_resource(revoking: Client, clock: Clock) -> None:
    # Carol may revoke role credentials, not a user's MFA session credentials.
    otp = revoking.iam.snapshot.user("alice")
    assert otp is not None and otp.totp is not None
    user_key = credentials_of(revoking.signed("/GetSessionToken", {"code": otp.totp.code_at(clock.now)}))
    assert revoking.signed("/revoke", {"AccessKeyId": user_key[0]}, key=CAROL_KEY).status_code == 403


def test_credentials_may_revoke_themselves(client: Client, iam: IAM) -> None:
    key = partner_credentials(client)
    assert client.signed("/revoke", {"AccessKeyId": key[0]}, key=key).status_code == 200
    with pytest.raises(AuthenticationError):
        iam.authenticate(signed_view("GET", "https://api.example/orders", key=key))


def test_the_permission_is_limited_by_a_boundary(clock: Clock) -> None:
    data = demo_data()
    data["users"]["carol"]["inline"] = {"Revoke": REVOKER}  # her boundary allows orders:* only
    client = Client(make_iam(clock, data))
    key = partner_credentials(client)
    assert client.signed("/revoke", {"AccessKeyId": key[0]}, key=CAROL_KEY).status_code == 403


def test_an_explicit_deny_wins_over_the_permission(clock: Clock) -> None:
    data = demo_data()
    data["users"]["carol"]["inline"] = {"Revoke": REVOKER, "NotPartner": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "sts:*", "Resource": PARTNER}]}}
    del data["users"]["carol"]["boundary"]
    client = Client(make_iam(clock, data))
    key = partner_credentials(client)
    assert client.signed("/revoke", {"AccessKeyId": key[0]}, key=CAROL_KEY).status_code == 403


@pytest.mark.parametrize("key_id", ["AKIADEMOALICE0000001", "ASIA", "asiaaaaaaaaaaaaaaaaa", 12])
def test_only_temporary_key_ids_can_be_revoked(client: Client, key_id: object) -> None:
    response = client.signed("/revoke", {"AccessKeyId": key_id}, key=CAROL_KEY)
    assert response.status_code == 400
    assert response.json()["error"] == "ValidationError"


def test_revoke_needs_a_credential(client: Client) -> None:
    assert client.post("/revoke", {"AccessKeyId": "ASIA" + "A" * 16}).status_code == 401


def test_the_caller_is_named_in_the_refusal(client: Client) -> None:
    response = client.signed("/revoke", {"AccessKeyId": "ASIA" + "B" * 16})
    assert response.json()["message"].startswith(f"User: {ALICE} is not authorized")
