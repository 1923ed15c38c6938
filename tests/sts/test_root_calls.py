"""The account root user at the token service, as AWS STS treats it: AssumeRole with root user credentials (its
access key, or the temporary credentials its GetSessionToken gave) is refused with AWS's AccessDenied, whatever
the trust policy says, in the JSON operation and in the Query API through the real boto3 client;
GetSessionToken works for it, for at most an hour."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from iam_middleware._iam import IAM
from iam_middleware._principal import PrincipalType
from iam_middleware.authenticators._totp import TOTPDevice

from ._boto import boto_sts
from ._support import ACCOUNT, ALICE_KEY, PARTNER, Client, Clock, credentials_of, demo_data, make_iam

ROOT = f"arn:app:iam::{ACCOUNT}:root"
ROOT_SEED = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
ROOT_KEY = ("AKIAROOTKEY000000001", "root/secret/wJalrXUtnFEMI/K7MDENG/bPxRfiCY")
REFUSED = "Roles may not be assumed by root accounts."


def directory() -> dict[str, Any]:
    """The demo with a root user that has an access key and a TOTP device, and a partner role whose trust policy
    names the account (which covers its root user) besides alice."""
    data = demo_data()
    data["accounts"][ACCOUNT]["root"] = {"totp_secret": ROOT_SEED, "access_keys": [
        {"id": ROOT_KEY[0], "secret": ROOT_KEY[1]}]}
    trust = json.loads(data["roles"]["partner"]["trust_policy"]["document"])
    trust["Statement"].append({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"})
    data["roles"]["partner"]["trust_policy"]["document"] = json.dumps(trust)
    return data


@pytest.fixture
def iam(clock: Clock) -> IAM:
    return make_iam(clock, directory())


def root_code(clock: Clock) -> str:
    return TOTPDevice(ROOT_SEED).code_at(clock.now)


def test_assume_role_with_the_root_users_access_key_is_access_denied(client: Client) -> None:
    response = client.signed("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "root-session"}, key=ROOT_KEY)
    assert (response.status_code, response.json()["error"]) == (403, "AccessDenied")
    assert response.json()["message"] == REFUSED
    # The same trust policy lets alice in: it is the root user that is refused, not the role.
    assert client.signed("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "alice"}).status_code == 200


def test_assume_role_through_boto3_signed_as_root_is_access_denied(client: Client) -> None:
    sts = boto_sts(client, ROOT_KEY)
    assert sts.get_caller_identity()["Arn"] == ROOT  # the key signs fine
    with pytest.raises(ClientError) as refused:
        sts.assume_role(RoleArn=PARTNER, RoleSessionName="root-session", DurationSeconds=900)
    response = refused.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert (response["Error"]["Code"], response["Error"]["Message"]) == ("AccessDenied", REFUSED)


def test_the_root_users_temporary_credentials_cannot_assume_a_role_either(client: Client, iam: IAM,
                                                                          clock: Clock) -> None:
    temporary = credentials_of(client.signed("/GetSessionToken", {"code": root_code(clock)}, key=ROOT_KEY))
    record = iam.credentials.temporary.lookup(temporary[0])
    assert record is not None
    assert iam.credentials.principal_for_temporary(record).type is PrincipalType.ACCOUNT
    refused = boto_sts(client, temporary)
    with pytest.raises(ClientError) as denied:
        refused.assume_role(RoleArn=PARTNER, RoleSessionName="root-session")
    assert denied.value.response["Error"]["Message"] == REFUSED


def test_the_root_users_get_session_token_lasts_at_most_an_hour(client: Client, clock: Clock) -> None:
    sts = boto_sts(client, ROOT_KEY)
    answer = sts.get_session_token(DurationSeconds=7200, SerialNumber=f"arn:app:iam::{ACCOUNT}:mfa/"
                                   "root-account-mfa-device", TokenCode=root_code(clock))
    expiration = answer["Credentials"]["Expiration"].timestamp()
    assert expiration == clock.now + 3600  # cut to the hour, as AWS does for account owners
    # A user's is not cut.
    alice = boto_sts(client, ALICE_KEY).get_session_token(
        DurationSeconds=7200, TokenCode=TOTPDevice("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").code_at(clock.now))
    assert alice["Credentials"]["Expiration"].timestamp() == clock.now + 7200
