"""Access keys used against the token service's Query API are recorded as used, with the service ``sts`` and the
signature's region, so ``GetAccessKeyLastUsed`` (and the credential report) tell it, as IAM's do for AWS STS; a
request that does not authenticate records nothing."""

from __future__ import annotations

import datetime

import pytest
from botocore.exceptions import ClientError

from iam_middleware._iam import IAM
from iam_middleware.directory._credential_report import access_key_last_used

from ._boto import boto_sts
from ._support import ALICE_KEY, CAROL_KEY, START, Client


def test_a_key_that_signs_a_query_call_is_last_used_for_sts(client: Client, iam: IAM) -> None:
    assert access_key_last_used(iam.snapshot, iam.last_used, ALICE_KEY[0]) == {
        "UserName": "alice", "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}}
    boto_sts(client, ALICE_KEY).get_caller_identity()
    answer = access_key_last_used(iam.snapshot, iam.last_used, ALICE_KEY[0])
    assert answer == {"UserName": "alice", "AccessKeyLastUsed": {
        "LastUsedDate": datetime.datetime.fromtimestamp(START, datetime.UTC), "ServiceName": "sts",
        "Region": "local"}}


def test_a_refused_call_still_counts_as_a_use_of_a_key_that_authenticated(client: Client, iam: IAM) -> None:
    """As in IAM, the use is of the credential: carol's key signs, her AssumeRole is not allowed."""
    with pytest.raises(ClientError):
        boto_sts(client, CAROL_KEY).assume_role(RoleArn="arn:app:iam::111122223333:role/partner",
                                                RoleSessionName="carol")
    used = iam.last_used.access_key(CAROL_KEY[0])
    assert used is not None and used.service == "sts"


def test_a_signature_that_does_not_verify_records_nothing(client: Client, iam: IAM) -> None:
    with pytest.raises(ClientError):
        boto_sts(client, (ALICE_KEY[0], "not the secret")).get_caller_identity()
    assert iam.last_used.access_key(ALICE_KEY[0]) is None
