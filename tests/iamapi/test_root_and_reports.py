"""The account's root user through the IAM API (its own access key: full access to its account's IAM, and where
``UserName`` is left out it acts on itself), virtual MFA devices' rules, the credential report's refusals and
last use, with the seed of a device never in a log."""

from __future__ import annotations

import json
import logging
import time

import pytest
from botocore.exceptions import ClientError

from iam_middleware.directory._credential_report import REPORT_LIFETIME, generate_credential_report
from iam_middleware.directory.sql import ROOT

from .conftest import ACCOUNT, BOB_KEY, Live, arn
from .test_boto3 import _two_codes, error

ROOT_ARN = f"arn:app:iam::{ACCOUNT}:root"


def root_key(live: Live) -> tuple[str, str]:
    """An access key of the account's root user (made in the directory: IAM makes none by API for a root user
    that has none)."""
    with live.directory.change() as draft:
        key = draft.create_access_key(ROOT, account=ACCOUNT)
    found = live.reloader.iam.snapshot.access_key(key.access_key_id)
    assert found is not None and found[1].is_root  # in force at once in this process
    return key.access_key_id, key.secret_access_key


def test_the_root_user_administers_its_account_and_acts_on_itself(live: Live) -> None:
    key = root_key(live)
    root = live.client(key)
    me = root.get_user()["User"]  # no UserName: the root user itself, which has no user name or path
    assert me["Arn"] == ROOT_ARN and me["UserId"] == ACCOUNT and "UserName" not in me
    listed = root.list_access_keys()["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key[0]] and "UserName" not in listed[0]
    second = root.create_access_key()["AccessKey"]
    assert second["SecretAccessKey"] and "UserName" not in second
    root.update_access_key(AccessKeyId=second["AccessKeyId"], Status="Inactive")
    root.delete_access_key(AccessKeyId=second["AccessKeyId"])
    assert root.list_mfa_devices()["MFADevices"] == []
    # No identity policy is needed: the root user has its whole account's IAM (guardrails aside).
    root.create_user(UserName="made-by-root")
    root.attach_user_policy(UserName="made-by-root", PolicyArn=arn("policy", "OrdersReadOnly"))
    assert "made-by-root" in [u["UserName"] for u in root.list_users()["Users"]]
    device = root.create_virtual_mfa_device(VirtualMFADeviceName="root-account-mfa-device")["VirtualMFADevice"]
    assert device["SerialNumber"] == f"arn:app:iam::{ACCOUNT}:mfa/root-account-mfa-device"
    # Its key's last use: this very call, through the IAM API, and no user name.
    used = root.get_access_key_last_used(AccessKeyId=key[0])
    assert "UserName" not in used and used["AccessKeyLastUsed"]["ServiceName"] == "iam"
    # Only the account's guardrails limit it (as SCPs do a root user): one that denies iam:DeleteUser.
    fence = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:DeleteUser", "Resource": "*"}]}
    root.create_policy_version(PolicyArn=arn("policy", "AcmeGuardrail"), PolicyDocument=json.dumps(fence),
                               SetAsDefault=True)
    root.detach_user_policy(UserName="made-by-root", PolicyArn=arn("policy", "OrdersReadOnly"))
    code, status, message = error(lambda: root.delete_user(UserName="made-by-root"))
    assert (code, status) == ("AccessDenied", 403) and message.startswith(f"User: {ROOT_ARN} is not authorized")
    # An administrator cannot reach the root user's credentials: its marker is not an IAM name.
    admin = live.client()
    assert error(lambda: admin.list_access_keys(UserName=ROOT))[:2] == ("ValidationError", 400)
    assert admin.get_access_key_last_used(AccessKeyId=key[0])["AccessKeyLastUsed"]["Region"] == "local"


def test_virtual_mfa_devices_follow_iams_rules(live: Live) -> None:
    iam = live.client()
    made = iam.create_virtual_mfa_device(VirtualMFADeviceName="spare", Path="/devices/")["VirtualMFADevice"]
    assert error(lambda: iam.create_virtual_mfa_device(VirtualMFADeviceName="SPARE", Path="/devices/"))[:2] == (
        "EntityAlreadyExists", 409)
    assert error(lambda: iam.create_virtual_mfa_device(VirtualMFADeviceName="x" * 227))[:2] == (
        "ValidationError", 400)
    assert error(lambda: iam.create_virtual_mfa_device(VirtualMFADeviceName="tagged", Tags=[
        {"Key": "team", "Value": "blue"}]))[:2] == ("InvalidInput", 400)  # the directory keeps no device tags
    assert error(lambda: iam.list_virtual_mfa_devices(AssignmentStatus="Some"))[:2] == ("ValidationError", 400)
    other = "arn:app:iam::444455556666:mfa/spare"
    assert error(lambda: iam.delete_virtual_mfa_device(SerialNumber=other))[:2] == ("NoSuchEntity", 404)
    assert error(lambda: iam.delete_virtual_mfa_device(SerialNumber=f"arn:app:iam::{ACCOUNT}:mfa/none"))[:2] == (
        "NoSuchEntity", 404)
    seed = made["Base32StringSeed"].decode()
    codes = _two_codes(seed)
    # A serial number that is not a virtual device of the account (a seed, a hardware device's) is unknown.
    assert error(lambda: iam.enable_mfa_device(UserName="bob", SerialNumber=seed, AuthenticationCode1=codes[0],
                                               AuthenticationCode2=codes[1]))[:2] == ("NoSuchEntity", 404)
    assert error(lambda: iam.enable_mfa_device(UserName="bob", SerialNumber=made["SerialNumber"],
                                               AuthenticationCode1="000000", AuthenticationCode2="000001"))[:2] == (
        "InvalidAuthenticationCode", 403)
    iam.enable_mfa_device(UserName="bob", SerialNumber=made["SerialNumber"], AuthenticationCode1=codes[0],
                          AuthenticationCode2=codes[1])
    assert made["SerialNumber"] in [d["SerialNumber"] for d in iam.list_mfa_devices(UserName="bob")["MFADevices"]]
    # One page at a time, in serial number order.
    first = iam.list_virtual_mfa_devices(MaxItems=1)
    assert len(first["VirtualMFADevices"]) == 1 and first["IsTruncated"]
    everything = [d["SerialNumber"] for page in iam.get_paginator("list_virtual_mfa_devices").paginate(
        PaginationConfig={"PageSize": 1}) for d in page["VirtualMFADevices"]]
    assert everything == sorted(everything) and made["SerialNumber"] in everything


def test_the_seed_is_in_the_answer_only(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    device = live.client().create_virtual_mfa_device(VirtualMFADeviceName="secretive")["VirtualMFADevice"]
    seed = device["Base32StringSeed"].decode()
    assert seed and all(seed not in record.getMessage() for record in caplog.records)
    assert any("CreateVirtualMFADevice" in record.getMessage() for record in caplog.records)


def test_the_credential_reports_refusals_are_iams(live: Live) -> None:
    iam = live.client()
    code, status, message = error(lambda: iam.get_credential_report())
    assert (code, status) == ("ReportNotPresent", 410) and "GenerateCredentialReport" in message
    with pytest.raises(ClientError) as refused:
        iam.get_credential_report()
    assert isinstance(refused.value, iam.exceptions.CredentialReportNotPresentException)
    # A report made more than four hours ago has expired: asking for it says so; generating makes a new one.
    generate_credential_report(live.reloader.iam.store, live.reloader.iam.snapshot, account=ACCOUNT,
                               now=time.time() - REPORT_LIFETIME - 60)
    assert error(lambda: iam.get_credential_report())[:2] == ("ReportExpired", 410)
    assert iam.generate_credential_report()["State"] == "STARTED"
    content = iam.get_credential_report()["Content"].decode()
    bob = next(row.split(",") for row in content.splitlines() if row.startswith("bob,"))
    assert bob[1] == arn("user", "bob") and bob[8] == "true"  # bob's one key is active
    # Authorized on *: alice's self-service policy allows neither.
    alice = live.client(("AKIADEMOALICE0000001", "demo/alice/wJalrXUtnFEMI/K7MDENG/bPxRfiCY"))
    assert error(lambda: alice.generate_credential_report())[0] == "AccessDenied"
    assert error(lambda: alice.get_access_key_last_used(AccessKeyId=BOB_KEY[0]))[0] == "AccessDenied"
