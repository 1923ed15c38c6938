"""The real boto3 IAM client against the IAM API served by uvicorn on loopback: every action of the table is called,
the directory changes as IAM says, and the decisions of the orders API (signed by botocore for ``orders``) follow
at once; IAM's error codes arrive as botocore ``ClientError`` codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import botocore.auth
import httpx
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from iam_middleware.iamapi import ACTIONS

from .conftest import ACCOUNT, ADMINISTRATOR, PASSWORD, Live, arn

READ_ORDERS = {"Version": "2012-10-17", "Statement": [
    {"Sid": "ReadOrders", "Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"}]}
NO_ORDERS = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}
TRUST_ALICE = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": arn("user", "alice")}, "Action": "sts:AssumeRole"}]}


def get_order(live: Live, key: tuple[str, ...]) -> int:
    """GET /orders/42 of the orders API, signed by botocore with ``key``: the status."""
    url = f"{live.base}/orders/42"
    request = AWSRequest(method="GET", url=url)
    botocore.auth.SigV4Auth(Credentials(*key), "orders", "local").add_auth(request)
    return httpx.get(url, headers=dict(request.headers.items())).status_code


def recorded(client: Any) -> set[str]:
    """The operations a client sends, as botocore names them (IAM's action names)."""
    called: set[str] = set()

    def note(model: Any, **_: Any) -> None:
        called.add(model.name)

    client.meta.events.register("before-call.iam", note)
    return called


def error(call: Callable[[], Any]) -> tuple[str, int, str]:
    """(code, status, message) of a call that must be refused."""
    with pytest.raises(ClientError) as refused:
        call()
    response = refused.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def test_boto3_drives_every_action_and_the_decisions_follow(live: Live) -> None:
    iam = live.client()
    called = recorded(iam)
    policy = arn("policy", "ReadOrders")

    # Users, tags, keys: dave exists at once and his new key signs, but no policy allows him anything yet.
    created = iam.create_user(UserName="dave", Path="/staff/", Tags=[{"Key": "team", "Value": "blue"}])["User"]
    assert created["Arn"] == f"arn:app:iam::{ACCOUNT}:user/staff/dave" and created["UserId"].startswith("AIDA")
    assert created["Tags"] == [{"Key": "team", "Value": "blue"}]
    key = iam.create_access_key(UserName="dave")["AccessKey"]
    assert key["Status"] == "Active" and key["SecretAccessKey"]
    dave = (key["AccessKeyId"], key["SecretAccessKey"])
    assert get_order(live, dave) == 403
    assert iam.get_user(UserName="dave")["User"]["Path"] == "/staff/"
    assert [u["UserName"] for u in iam.list_users(PathPrefix="/staff/")["Users"]] == ["dave"]
    iam.tag_user(UserName="dave", Tags=[{"Key": "cost", "Value": "42"}])
    iam.untag_user(UserName="dave", TagKeys=["team"])
    assert iam.list_user_tags(UserName="dave")["Tags"] == [{"Key": "cost", "Value": "42"}]
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName="dave")["AccessKeyMetadata"]] == [dave[0]]

    # A managed policy, its versions, and attaching it: the orders API answers by it at once.
    made = iam.create_policy(PolicyName="ReadOrders", PolicyDocument=json.dumps(READ_ORDERS))["Policy"]
    assert (made["Arn"], made["DefaultVersionId"], made["AttachmentCount"]) == (policy, "v1", 0)
    iam.attach_user_policy(UserName="dave", PolicyArn=policy)
    assert get_order(live, dave) == 200
    assert iam.get_policy(PolicyArn=policy)["Policy"]["AttachmentCount"] == 1
    assert iam.list_attached_user_policies(UserName="dave")["AttachedPolicies"] == [
        {"PolicyName": "ReadOrders", "PolicyArn": policy}]
    assert "ReadOrders" in [p["PolicyName"] for p in iam.list_policies(Scope="Local", OnlyAttached=True)["Policies"]]
    assert iam.list_entities_for_policy(PolicyArn=policy)["PolicyUsers"] == [
        {"UserName": "dave", "UserId": created["UserId"]}]
    version = iam.create_policy_version(PolicyArn=policy, PolicyDocument=json.dumps(NO_ORDERS), SetAsDefault=True)
    assert version["PolicyVersion"]["VersionId"] == "v2" and version["PolicyVersion"]["IsDefaultVersion"]
    assert get_order(live, dave) == 403  # v2 allows no orders:*
    assert iam.get_policy_version(PolicyArn=policy, VersionId="v1")["PolicyVersion"]["Document"] == READ_ORDERS
    assert [v["VersionId"] for v in iam.list_policy_versions(PolicyArn=policy)["Versions"]] == ["v1", "v2"]
    iam.set_default_policy_version(PolicyArn=policy, VersionId="v1")
    assert get_order(live, dave) == 200
    iam.delete_policy_version(PolicyArn=policy, VersionId="v2")
    iam.detach_user_policy(UserName="dave", PolicyArn=policy)
    assert get_order(live, dave) == 403

    # Inline policies and permissions boundaries.
    iam.put_user_policy(UserName="dave", PolicyName="Orders", PolicyDocument=json.dumps(READ_ORDERS))
    assert get_order(live, dave) == 200
    assert iam.get_user_policy(UserName="dave", PolicyName="Orders")["PolicyDocument"] == READ_ORDERS
    assert iam.list_user_policies(UserName="dave")["PolicyNames"] == ["Orders"]
    iam.put_user_permissions_boundary(UserName="dave", PermissionsBoundary=arn("policy", "OrdersWriteWithMFA"))
    assert get_order(live, dave) == 403  # the boundary allows no GetOrder
    assert iam.get_user(UserName="dave")["User"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == arn(
        "policy", "OrdersWriteWithMFA")
    iam.delete_user_permissions_boundary(UserName="dave")
    assert get_order(live, dave) == 200
    iam.delete_user_policy(UserName="dave", PolicyName="Orders")
    assert get_order(live, dave) == 403

    # Groups.
    assert iam.create_group(GroupName="auditors")["Group"]["Arn"] == arn("group", "auditors")
    iam.attach_group_policy(GroupName="auditors", PolicyArn=policy)
    iam.add_user_to_group(GroupName="auditors", UserName="dave")
    assert get_order(live, dave) == 200
    group = iam.get_group(GroupName="auditors")
    assert [u["UserName"] for u in group["Users"]] == ["dave"]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="dave")["Groups"]] == ["auditors"]
    assert "auditors" in [g["GroupName"] for g in iam.list_groups()["Groups"]]
    assert iam.list_attached_group_policies(GroupName="auditors")["AttachedPolicies"][0]["PolicyArn"] == policy
    iam.put_group_policy(GroupName="auditors", PolicyName="Extra", PolicyDocument=json.dumps(READ_ORDERS))
    assert iam.get_group_policy(GroupName="auditors", PolicyName="Extra")["PolicyDocument"] == READ_ORDERS
    assert iam.list_group_policies(GroupName="auditors")["PolicyNames"] == ["Extra"]
    iam.delete_group_policy(GroupName="auditors", PolicyName="Extra")
    iam.detach_group_policy(GroupName="auditors", PolicyArn=policy)
    assert get_order(live, dave) == 403
    iam.remove_user_from_group(GroupName="auditors", UserName="dave")
    iam.delete_group(GroupName="auditors")

    # Roles: alice may assume the new one through the token service, and its policies decide for the session.
    role = iam.create_role(RoleName="auditor", Path="/audit/", AssumeRolePolicyDocument=json.dumps(TRUST_ALICE),
                           MaxSessionDuration=7200, Tags=[{"Key": "team", "Value": "blue"}])["Role"]
    assert role["Arn"] == f"arn:app:iam::{ACCOUNT}:role/audit/auditor" and role["RoleId"].startswith("AROA")
    assert role["AssumeRolePolicyDocument"] == TRUST_ALICE and role["MaxSessionDuration"] == 7200
    iam.attach_role_policy(RoleName="auditor", PolicyArn=policy)
    iam.put_role_policy(RoleName="auditor", PolicyName="Inline", PolicyDocument=json.dumps(READ_ORDERS))
    assert iam.get_role_policy(RoleName="auditor", PolicyName="Inline")["PolicyDocument"] == READ_ORDERS
    assert iam.list_role_policies(RoleName="auditor")["PolicyNames"] == ["Inline"]
    assert iam.list_attached_role_policies(RoleName="auditor")["AttachedPolicies"][0]["PolicyName"] == "ReadOrders"
    iam.put_role_permissions_boundary(RoleName="auditor", PermissionsBoundary=policy)
    assert iam.get_role(RoleName="auditor")["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == policy
    iam.delete_role_permissions_boundary(RoleName="auditor")
    iam.update_role(RoleName="auditor", MaxSessionDuration=3600)
    iam.update_assume_role_policy(RoleName="auditor", PolicyDocument=json.dumps(TRUST_ALICE))
    iam.tag_role(RoleName="auditor", Tags=[{"Key": "cost", "Value": "7"}])
    iam.untag_role(RoleName="auditor", TagKeys=["team"])
    assert iam.list_role_tags(RoleName="auditor")["Tags"] == [{"Key": "cost", "Value": "7"}]
    assert "auditor" in [r["RoleName"] for r in iam.list_roles(PathPrefix="/audit/")["Roles"]]
    session = _assume(live, role["Arn"])
    assert get_order(live, session) == 200
    iam.detach_role_policy(RoleName="auditor", PolicyArn=policy)
    iam.delete_role_policy(RoleName="auditor", PolicyName="Inline")
    assert get_order(live, session) == 403
    iam.delete_role(RoleName="auditor")

    # Passwords and MFA: a login profile lets dave log in with a one-time code once a device is enabled.
    assert iam.create_login_profile(UserName="dave", Password=PASSWORD)["LoginProfile"]["UserName"] == "dave"
    assert iam.get_login_profile(UserName="dave")["LoginProfile"]["PasswordResetRequired"] is False
    iam.update_login_profile(UserName="dave", Password=PASSWORD + "!")
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName="dave", Path="/staff/")["VirtualMFADevice"]
    serial = device["SerialNumber"]
    assert serial == f"arn:app:iam::{ACCOUNT}:mfa/staff/dave"
    seed = device["Base32StringSeed"].decode("ascii")  # a blob: boto3 hands back the bytes of the Base32 text
    assert len(seed) == 32 and device["QRCodePNG"].startswith(b"\x89PNG")
    unassigned = iam.list_virtual_mfa_devices(AssignmentStatus="Unassigned")["VirtualMFADevices"]
    assert {"SerialNumber": serial} in unassigned and "Base32StringSeed" not in unassigned[0]  # shown once
    codes = _two_codes(seed)
    iam.enable_mfa_device(UserName="dave", SerialNumber=serial, AuthenticationCode1=codes[0],
                          AuthenticationCode2=codes[1])
    listed = iam.list_mfa_devices(UserName="dave")["MFADevices"]
    assert [(d["UserName"], d["SerialNumber"]) for d in listed] == [("dave", serial)] and listed[0]["EnableDate"]
    assigned = iam.list_virtual_mfa_devices(AssignmentStatus="Assigned")["VirtualMFADevices"]
    assert (serial, "dave") in [(d["SerialNumber"], d["User"]["UserName"]) for d in assigned]  # and the demo's
    assert live.reloader.iam.snapshot.user("dave").totp is not None
    assert error(lambda: iam.delete_virtual_mfa_device(SerialNumber=serial))[:2] == ("DeleteConflict", 409)
    iam.deactivate_mfa_device(UserName="dave", SerialNumber=serial)
    iam.delete_virtual_mfa_device(SerialNumber=serial)
    assert serial not in [d["SerialNumber"] for d in iam.list_virtual_mfa_devices()["VirtualMFADevices"]]
    iam.delete_login_profile(UserName="dave")

    # Last use of a key, and the credential report.
    used = iam.get_access_key_last_used(AccessKeyId=dave[0])
    assert used["UserName"] == "dave" and used["AccessKeyLastUsed"]["ServiceName"] == "orders"
    assert used["AccessKeyLastUsed"]["Region"] == "local" and used["AccessKeyLastUsed"]["LastUsedDate"]
    assert error(lambda: iam.get_credential_report())[:2] == ("ReportNotPresent", 410)
    assert iam.generate_credential_report()["State"] == "STARTED"
    assert iam.generate_credential_report()["State"] == "COMPLETE"
    report = iam.get_credential_report()
    assert report["ReportFormat"] == "text/csv" and report["GeneratedTime"]
    rows = report["Content"].decode().splitlines()
    assert rows[0].startswith("user,arn,user_creation_time,") and rows[1].startswith("<root_account>,")
    dave_row = next(row.split(",") for row in rows if row.startswith("dave,"))
    assert dave_row[1] == f"arn:app:iam::{ACCOUNT}:user/staff/dave" and dave_row[8] == "true"  # key 1 active

    # The account, the simulator.
    details = iam.get_account_authorization_details(Filter=["User", "LocalManagedPolicy"])
    users = {u["UserName"]: u for u in details["UserDetailList"]}
    assert users["alice"]["GroupList"] == ["readers"] and not details["RoleDetailList"]
    policies = {p["PolicyName"]: p for p in details["Policies"]}
    assert policies["ReadOrders"]["PolicyVersionList"][0]["Document"] == READ_ORDERS
    simulated = iam.simulate_principal_policy(PolicySourceArn=arn("user", "alice"),
                                              ActionNames=["orders:GetOrder", "orders:PurgeOrders"])
    results = {r["EvalActionName"]: r for r in simulated["EvaluationResults"]}
    assert results["orders:GetOrder"]["EvalDecision"] == "allowed"
    assert {"SourcePolicyId": "OrdersReadOnly", "SourcePolicyType": "user-managed"} in results[
        "orders:GetOrder"]["MatchedStatements"]
    assert results["orders:PurgeOrders"]["EvalDecision"] == "explicitDeny"  # the account's guardrail
    assert results["orders:PurgeOrders"]["OrganizationsDecisionDetail"] == {"AllowedByOrganizations": False}
    custom = iam.simulate_custom_policy(PolicyInputList=[json.dumps(READ_ORDERS)],
                                        ActionNames=["orders:GetOrder", "orders:DeleteOrder"])["EvaluationResults"]
    assert [r["EvalDecision"] for r in custom] == ["allowed", "implicitDeny"]
    assert custom[0]["MatchedStatements"] == [{"SourcePolicyId": "PolicyInputList.1", "SourcePolicyType": "none"}]

    # Renaming keeps the identity; then everything is removed and the user deleted.
    iam.update_user(UserName="dave", NewUserName="david", NewPath="/")
    assert iam.get_user(UserName="david")["User"]["UserId"] == created["UserId"]
    iam.update_access_key(UserName="david", AccessKeyId=dave[0], Status="Inactive")
    assert get_order(live, dave) in (401, 403)
    iam.delete_access_key(UserName="david", AccessKeyId=dave[0])
    iam.delete_user(UserName="david")
    iam.delete_policy(PolicyArn=policy)
    assert live.reloader.iam.snapshot.user("david") is None

    # ChangePassword is the caller's own: tests/iamapi/test_self_service.py calls it as alice.
    assert set(ACTIONS) - called == {"ChangePassword"}


def _two_codes(seed: str) -> tuple[str, str]:
    """Two consecutive codes of a device, as IAM asks to enable one (the current step and the one before)."""
    import time

    import pyotp

    totp = pyotp.TOTP(seed)
    now = time.time()
    return totp.at(now - 30), totp.at(now)


def _assume(live: Live, role_arn: str) -> tuple[str, str, str]:
    """alice assumes a role through the token service's Query API (boto3's STS client)."""
    import boto3

    from .conftest import ALICE_KEY

    sts = boto3.client("sts", endpoint_url=f"{live.base}/sts/", region_name="local", aws_access_key_id=ALICE_KEY[0],
                       aws_secret_access_key=ALICE_KEY[1])
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="audit")["Credentials"]
    return credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]


def test_invariant_breaks_are_iams_error_codes(live: Live) -> None:
    iam = live.client()
    iam.create_user(UserName="erin")
    assert error(lambda: iam.create_user(UserName="ERIN"))[:2] == ("EntityAlreadyExists", 409)
    iam.create_access_key(UserName="erin")
    iam.create_access_key(UserName="erin")
    assert error(lambda: iam.create_access_key(UserName="erin"))[:2] == ("LimitExceeded", 409)
    code, status, message = error(lambda: iam.delete_user(UserName="erin"))
    assert (code, status) == ("DeleteConflict", 409) and "access keys" in message
    assert error(lambda: iam.get_user(UserName="nobody"))[:2] == ("NoSuchEntity", 404)
    assert error(lambda: iam.delete_role(RoleName="nobody"))[:2] == ("NoSuchEntity", 404)
    assert error(lambda: iam.get_policy(PolicyArn=arn("policy", "Nothing")))[:2] == ("NoSuchEntity", 404)
    assert error(lambda: iam.create_group(GroupName="READERS"))[:2] == ("EntityAlreadyExists", 409)
    broken = {"Version": "2012-10-17", "Statement": [{"Effect": "Permit", "Action": "orders:*", "Resource": "*"}]}
    code, status, message = error(lambda: iam.put_user_policy(UserName="erin", PolicyName="Broken",
                                                              PolicyDocument=json.dumps(broken)))
    assert (code, status) == ("MalformedPolicyDocument", 400)
    assert message.startswith("user/erin/Broken: Statement[0].Effect") or "Statement[0].Effect" in message
    assert error(lambda: iam.create_role(RoleName="r", AssumeRolePolicyDocument="{not json"))[:2] == (
        "MalformedPolicyDocument", 400)
    assert error(lambda: iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(TRUST_ALICE),
                                         Description="kept nowhere"))[:2] == ("InvalidInput", 400)
    assert error(lambda: iam.create_user(UserName="bad name"))[:2] == ("ValidationError", 400)  # as IAM answers
    policy = arn("policy", "OrdersReadOnly")
    assert error(lambda: iam.delete_policy(PolicyArn=policy))[:2] == ("DeleteConflict", 409)  # attached to readers
    for _ in range(2, 6):
        iam.create_policy_version(PolicyArn=policy, PolicyDocument=json.dumps(READ_ORDERS))
    assert error(lambda: iam.create_policy_version(PolicyArn=policy, PolicyDocument=json.dumps(READ_ORDERS)))[
        :2] == ("LimitExceeded", 409)
    assert error(lambda: iam.delete_policy_version(PolicyArn=policy, VersionId="v1"))[:2] == ("DeleteConflict", 409)
    # Nothing of a refused call was written.
    assert [u["UserName"] for u in iam.list_users()["Users"]].count("erin") == 1
    assert len(iam.list_access_keys(UserName="erin")["AccessKeyMetadata"]) == 2


def test_lists_page_with_marker_and_max_items(live: Live) -> None:
    iam = live.client()
    for n in range(5):
        iam.create_user(UserName=f"page{n}", Path="/paged/")
    first = iam.list_users(PathPrefix="/paged/", MaxItems=2)
    assert [u["UserName"] for u in first["Users"]] == ["page0", "page1"] and first["IsTruncated"]
    second = iam.list_users(PathPrefix="/paged/", MaxItems=2, Marker=first["Marker"])
    assert [u["UserName"] for u in second["Users"]] == ["page2", "page3"]
    names = [u["UserName"] for page in iam.get_paginator("list_users").paginate(
        PathPrefix="/paged/", PaginationConfig={"PageSize": 2}) for u in page["Users"]]
    assert names == [f"page{n}" for n in range(5)]
    assert error(lambda: iam.list_users(Marker="not-a-marker!"))[:2] == ("InvalidInput", 400)


def test_an_administrator_is_refused_what_a_guardrail_or_boundary_denies(live: Live) -> None:
    """IAM policies govern who may administer whom: a boundary on the administrator, and iam:PermissionsBoundary
    holding a delegated administrator to users of one boundary."""
    iam = live.client()
    delegated = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:CreateUser", "iam:PutUserPermissionsBoundary"], "Resource": "*",
         "Condition": {"StringEquals": {"iam:PermissionsBoundary": arn("policy", "OrdersReadOnly")}}},
        {"Effect": "Allow", "Action": ["iam:GetUser", "iam:CreateAccessKey"], "Resource": "*"}]}
    iam.create_user(UserName="delegate")
    iam.put_user_policy(UserName="delegate", PolicyName="Delegated", PolicyDocument=json.dumps(delegated))
    key = iam.create_access_key(UserName="delegate")["AccessKey"]
    delegate = live.client((key["AccessKeyId"], key["SecretAccessKey"]))
    made = delegate.create_user(UserName="junior", PermissionsBoundary=arn("policy", "OrdersReadOnly"))
    assert made["User"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == arn("policy", "OrdersReadOnly")
    code, status, message = error(lambda: delegate.create_user(UserName="senior"))
    assert (code, status) == ("AccessDenied", 403)
    assert message == (f"User: {arn('user', 'delegate')} is not authorized to perform: iam:CreateUser on resource: "
                       f"{arn('user', 'senior')} because no identity-based policy allows the iam:CreateUser action")
    assert error(lambda: delegate.delete_user(UserName="junior"))[0] == "AccessDenied"
    # A boundary on the administrator itself: iam:* but not on users under /admins/.
    fence = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:*", "Resource": f"arn:app:iam::{ACCOUNT}:user/admins/*"}]}
    iam.create_policy(PolicyName="Fence", PolicyDocument=json.dumps(fence))
    iam.create_user(UserName="root-like", Path="/admins/")
    iam.create_user(UserName="helper")
    iam.attach_user_policy(UserName="helper", PolicyArn=arn("policy", "IAMAdministrator"))
    iam.put_user_permissions_boundary(UserName="helper", PermissionsBoundary=arn("policy", "Fence"))
    key = iam.create_access_key(UserName="helper")["AccessKey"]
    helper = live.client((key["AccessKeyId"], key["SecretAccessKey"]))
    helper.create_user(UserName="intern")
    code, _, message = error(lambda: helper.delete_user(UserName="root-like"))
    assert code == "AccessDenied" and "explicit deny in a permissions boundary" in message
    assert ADMINISTRATOR["Statement"]  # the administrator's own policy is iam:* on *
