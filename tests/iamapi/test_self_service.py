"""The shipped self-service policy (examples/policies/self-service.json, ``${aws:username}``) through the IAM API:
a user holding it reads itself, changes its own password, enrolls its own MFA device and rotates its own keys, and
is refused ``AccessDenied`` for anyone else's and for everything else (its own policies included)."""

from __future__ import annotations

import time

import boto3
import pyotp

from iam_middleware.passwords import verify_password

from .conftest import ACCOUNT, BOB_KEY, PASSWORD, Live, arn
from .test_boto3 import error


def frank(live: Live) -> tuple[str, str]:
    """A user with nothing but the self-service policy, a password and a key (made by the administrator)."""
    admin = live.client()
    admin.create_user(UserName="frank")
    admin.attach_user_policy(UserName="frank", PolicyArn=arn("policy", "SelfService"))
    admin.create_login_profile(UserName="frank", Password=PASSWORD)
    key = admin.create_access_key(UserName="frank")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def test_a_user_manages_its_own_credentials_and_nothing_else(live: Live) -> None:
    key = frank(live)
    me = live.client(key)
    assert me.get_user()["User"]["Arn"] == arn("user", "frank")  # no UserName: the caller's own
    assert me.get_login_profile()["LoginProfile"]["UserName"] == "frank"

    # Its own password: the old one must be right (failures count on the login throttle).
    me.change_password(OldPassword=PASSWORD, NewPassword="another good password")
    stored = live.reloader.iam.snapshot.user("frank").password_hash
    assert stored is not None and verify_password("another good password", stored)

    # Its own MFA device: made (named after itself, as AWS's example policy wants), enabled with two consecutive
    # codes, listed, and removable only in an MFA session; another's name is refused.
    code, _, message = error(lambda: me.create_virtual_mfa_device(VirtualMFADeviceName="bob"))
    assert code == "AccessDenied" and f"arn:app:iam::{ACCOUNT}:mfa/bob" in message
    device = me.create_virtual_mfa_device(VirtualMFADeviceName="frank")["VirtualMFADevice"]
    serial = device["SerialNumber"]
    assert serial == f"arn:app:iam::{ACCOUNT}:mfa/frank"
    totp = pyotp.TOTP(device["Base32StringSeed"].decode())
    now = time.time()
    me.enable_mfa_device(UserName="frank", SerialNumber=serial, AuthenticationCode1=totp.at(now - 30),
                         AuthenticationCode2=totp.at(now))
    assert [d["SerialNumber"] for d in me.list_mfa_devices()["MFADevices"]] == [serial]
    code, _, message = error(lambda: me.deactivate_mfa_device(UserName="frank", SerialNumber=serial))
    assert code == "AccessDenied" and "iam:DeactivateMFADevice" in message
    sts = boto3.client("sts", endpoint_url=f"{live.base}/sts/", region_name="local", aws_access_key_id=key[0],
                       aws_secret_access_key=key[1])
    mfa = sts.get_session_token(SerialNumber=serial, TokenCode=totp.at(now + 30), DurationSeconds=900)["Credentials"]
    with_mfa = live.client((mfa["AccessKeyId"], mfa["SecretAccessKey"], mfa["SessionToken"]))
    with_mfa.deactivate_mfa_device(UserName="frank", SerialNumber=serial)
    assert me.list_mfa_devices()["MFADevices"] == []

    # When its key was last used: its own only.
    assert me.get_access_key_last_used(AccessKeyId=key[0])["AccessKeyLastUsed"]["ServiceName"] == "iam"
    assert error(lambda: me.get_access_key_last_used(AccessKeyId=BOB_KEY[0]))[0] == "AccessDenied"

    # Its own keys: make a second, move to it, retire the first.
    new = me.create_access_key()["AccessKey"]
    assert new["UserName"] == "frank"
    rotated = live.client((new["AccessKeyId"], new["SecretAccessKey"]))
    rotated.update_access_key(AccessKeyId=key[0], Status="Inactive")
    rotated.delete_access_key(AccessKeyId=key[0])
    assert [k["AccessKeyId"] for k in rotated.list_access_keys()["AccessKeyMetadata"]] == [new["AccessKeyId"]]

    # Anyone else's, and anything else, is refused.
    bob = arn("user", "bob")
    for refused in (lambda: rotated.get_user(UserName="bob"),
                    lambda: rotated.list_access_keys(UserName="bob"),
                    lambda: rotated.create_access_key(UserName="bob"),
                    lambda: rotated.delete_access_key(UserName="bob", AccessKeyId=BOB_KEY[0]),
                    lambda: rotated.update_login_profile(UserName="bob", Password="taken over at last"),
                    lambda: rotated.list_mfa_devices(UserName="bob"),
                    lambda: rotated.create_user(UserName="mallory"),
                    lambda: rotated.list_users(),
                    lambda: rotated.attach_user_policy(UserName="frank",
                                                       PolicyArn=arn("policy", "IAMAdministrator")),
                    lambda: rotated.put_user_policy(UserName="frank", PolicyName="Escalate",
                                                    PolicyDocument='{"Version": "2012-10-17", "Statement": [{'
                                                                   '"Effect": "Allow", "Action": "*", '
                                                                   '"Resource": "*"}]}'),
                    lambda: rotated.update_login_profile(UserName="frank", Password="no old password needed")):
        code, status, message = error(refused)
        assert (code, status) == ("AccessDenied", 403), message
        assert message.startswith(f"User: {arn('user', 'frank')} is not authorized to perform: iam:")
    assert bob in error(lambda: rotated.get_user(UserName="bob"))[2]
    # A wrong old password is refused (and counted by the login throttle, shared with logins).
    assert error(lambda: rotated.change_password(OldPassword=PASSWORD, NewPassword="and yet another"))[:2] == (
        "InvalidInput", 400)
    # The refusals changed nothing: bob still has his key, frank his one policy.
    admin = live.client()
    assert [k["AccessKeyId"] for k in admin.list_access_keys(UserName="bob")["AccessKeyMetadata"]] == [BOB_KEY[0]]
    assert [p["PolicyName"] for p in admin.list_attached_user_policies(UserName="frank")["AttachedPolicies"]] == [
        "SelfService"]


def test_a_role_session_must_name_the_user(live: Live) -> None:
    """Without UserName the caller's own user is meant; a role session has none (IAM's own message)."""
    import json

    admin = live.client()
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": arn("user", "alice")}, "Action": "sts:AssumeRole"}]}
    admin.create_role(RoleName="keys-admin", AssumeRolePolicyDocument=json.dumps(trust))
    admin.put_role_policy(RoleName="keys-admin", PolicyName="Keys", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:ListAccessKeys",
                                                 "Resource": "*"}]}))
    from .test_boto3 import _assume

    session = live.client(_assume(live, arn("role", "keys-admin")))
    code, status, message = error(lambda: session.list_access_keys())
    assert (code, status) == ("ValidationError", 400) and "userName" in message
    assert session.list_access_keys(UserName="bob")["AccessKeyMetadata"][0]["AccessKeyId"] == BOB_KEY[0]
