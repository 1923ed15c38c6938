"""The account root user: full access to its own account that no identity policy or boundary limits, limited only
by the guardrails and resource-based denies; no reach into another account without its resource policy; signs in
with its password + TOTP and signs requests with its keys; warned about when it has keys or no MFA."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iam_middleware import IAM
from iam_middleware._exceptions import ConfigurationError
from iam_middleware._principal import CredentialKind, PrincipalType
from iam_middleware._request import RequestView
from iam_middleware.authenticators._passwords import hash_password
from iam_middleware.authenticators._sigv4 import SigningCredential
from iam_middleware.authenticators._totp import TOTPDevice
from iam_middleware.cli import main
from iam_middleware.directory import directory_from_dict
from iam_middleware.directory._audit import directory_warnings
from iam_middleware.policy import Caller, PolicyKind, PolicySet, evaluate, parse_policy
from iam_middleware.testing import sign_request

A, B = "111122223333", "444455556666"
ROOT_A = f"arn:app:iam::{A}:root"
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD = "correct horse battery staple"
KEY_ID, KEY_SECRET = "AKIAROOTKEY000000001", "root/secret/wJalrXUtnFEMI/K7MDENG/bPxRfiCY"
DENY_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
GUARDRAIL = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "*", "Resource": "*"},
    {"Effect": "Deny", "Action": "orders:DeleteOrder", "Resource": "*"}]}


def order(account: str, order_id: str = "42") -> str:
    return f"arn:app:orders::{account}:order/{order_id}"


def directory(*, root: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "settings": {"partition": "app", "service": "orders", "regions": ["local"],
                     "session_secret": "s" * 40},
        "accounts": {A: {"guardrails": ["Guardrail"]}, B: {}},
        "policies": {"Guardrail": {"document": GUARDRAIL}, "DenyAll": {"document": DENY_ALL}},
        "users": {"dave": {"account": A, "policies": ["DenyAll"], "boundary": "DenyAll"}},
    }
    if root is not None:
        data["accounts"][A]["root"] = root
    return data


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD, n=2**12)


@pytest.fixture
def iam(password_hash: str) -> IAM:
    root = {"password_hash": password_hash, "totp_secret": SEED,
            "access_keys": [{"id": KEY_ID, "secret": KEY_SECRET}]}
    return IAM.from_dict(directory(root=root))


def test_root_has_its_account_unless_a_guardrail_denies(iam: IAM) -> None:
    root = iam.snapshot.user(ROOT_A)
    assert root is not None and root.is_root and iam.snapshot.roots[A] is root
    principal = iam.snapshot.user_principal(root, CredentialKind.ACCESS_KEY, access_key_id=KEY_ID)
    assert principal.type is PrincipalType.ACCOUNT and principal.id == A
    keys = principal.context_keys(time.time())
    assert keys["aws:PrincipalType"] == "Account" and keys["aws:userid"] == A and "aws:username" not in keys
    assert iam.authorize(principal, "orders:GetOrder", order(A)).allowed
    assert iam.authorize(principal, "anything:AtAll", "*").allowed
    denied = iam.authorize(principal, "orders:DeleteOrder", order(A))
    assert not denied.allowed and denied.denied_by == "guardrail"


def test_root_does_not_reach_another_account_without_its_resource_policy(iam: IAM) -> None:
    root = iam.snapshot.user(ROOT_A)
    assert root is not None
    principal = iam.snapshot.user_principal(root, CredentialKind.ACCESS_KEY)
    assert not iam.authorize(principal, "orders:GetOrder", order(B)).allowed
    grant = parse_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": A}, "Action": "orders:GetOrder", "Resource": "*"}]},
        kind=PolicyKind.RESOURCE, policy_id="b-orders")
    assert iam.authorize(principal, "orders:GetOrder", order(B), resource_policy=grant).allowed


def test_a_resource_policy_deny_limits_root(iam: IAM) -> None:
    root = iam.snapshot.user(ROOT_A)
    assert root is not None
    principal = iam.snapshot.user_principal(root, CredentialKind.ACCESS_KEY)
    deny = parse_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "orders:GetOrder", "Resource": "*"}]},
        kind=PolicyKind.RESOURCE, policy_id="locked")
    decision = iam.authorize(principal, "orders:GetOrder", order(A), resource_policy=deny)
    assert not decision.allowed and decision.denied_by == "resource"


@given(action=st.from_regex(r"[a-z]{1,8}:[A-Z][A-Za-z]{0,12}", fullmatch=True),
       order_id=st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True))
def test_no_identity_policy_or_boundary_limits_root_but_its_account_ends_at_its_border(action: str,
                                                                                      order_id: str) -> None:
    root, deny_all = Caller.from_arn(ROOT_A), PolicySet.of(parse_policy(DENY_ALL, policy_id="deny-all"))
    guardrails = PolicySet.of(parse_policy(ALLOW_ALL, kind=PolicyKind.GUARDRAIL, policy_id="allow"))
    own = evaluate(root, action, order(A, order_id), {}, identity=deny_all, boundary=deny_all, session=deny_all,
                   guardrails=guardrails)
    assert own.allowed
    other = evaluate(root, action, order(B, order_id), {}, identity=deny_all, boundary=deny_all,
                     guardrails=guardrails)
    assert not other.allowed
    user = Caller.from_arn(f"arn:app:iam::{A}:user/dave")  # the same layers stop an IAM user
    assert not evaluate(user, action, order(A, order_id), {}, identity=deny_all, boundary=deny_all).allowed


def test_naming_root_in_a_policy_still_means_the_account(iam: IAM) -> None:
    dave = iam.snapshot.user("dave")
    assert dave is not None
    principal = iam.snapshot.user_principal(dave, CredentialKind.ACCESS_KEY)
    grant = parse_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ROOT_A}, "Action": "orders:GetOrder", "Resource": "*"}]},
        kind=PolicyKind.RESOURCE, policy_id="to-the-account")
    # Cross-account: the grant to the account reaches dave, whose own (deny-all) policies then decide, as in AWS.
    decision = iam.authorize(principal, "orders:GetOrder", order(B), resource_policy=grant, resource_account=B)
    assert not decision.allowed and decision.denied_by == "identity"


def test_root_signs_in_with_password_and_code_and_signs_with_its_key(iam: IAM) -> None:
    now = time.time()
    issued = iam.login(ROOT_A, PASSWORD, TOTPDevice(SEED).code_at(now), now=now)
    session = iam.credentials.from_token(issued.token, now=now)
    assert session.arn == ROOT_A and session.type is PrincipalType.ACCOUNT and session.mfa_present
    signed = sign_request(iam, "GET", "http://testserver/orders/1", credential=SigningCredential(KEY_ID, KEY_SECRET))
    request = RequestView(method="GET", raw_path=b"/orders/1", headers=(
        ("host", "testserver"), *((name.lower(), value) for name, value in signed.headers.items())), body=b"")
    principal = iam.authenticate(request)
    assert principal is not None and principal.arn == ROOT_A and principal.access_key_id == KEY_ID
    assert iam.authorize(principal, "orders:GetOrder", order(A)).allowed


def test_the_root_user_takes_no_policy_and_shares_no_key(password_hash: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"accounts.{A}.root.policies: unknown field"):
        directory_from_dict(directory(root={"policies": ["DenyAll"]}))
    data = directory(root={"access_keys": [{"id": KEY_ID, "secret": KEY_SECRET}]})
    data["users"]["dave"]["access_keys"] = [{"id": KEY_ID, "secret": "other"}]
    with pytest.raises(ConfigurationError, match=f"key {KEY_ID} also belongs to"):
        directory_from_dict(data)


def test_the_audit_warns_of_root_keys_and_missing_mfa(password_hash: str, caplog: pytest.LogCaptureFixture,
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    risky = directory(root={"password_hash": password_hash, "access_keys": [{"id": KEY_ID, "secret": KEY_SECRET}]})
    warnings = directory_warnings(directory_from_dict(risky))
    assert any(f"accounts.{A}.root: the root user has access keys ({KEY_ID})" in w for w in warnings)
    assert any(f"accounts.{A}.root: the root user has no MFA device" in w for w in warnings)
    assert not any(KEY_SECRET in w for w in warnings)
    safe = directory(root={"password_hash": password_hash, "totp_secret": SEED})
    assert directory_warnings(directory_from_dict(safe)) == []
    with caplog.at_level(logging.WARNING, logger="iam_middleware"):
        IAM.from_dict(risky)
    assert sum("the root user" in record.getMessage() for record in caplog.records) == 2

    file = tmp_path / "iam.json"
    file.write_text(json.dumps(risky))
    assert main(["check", str(file)]) == 0
    assert "warning: accounts.111122223333.root: the root user has access keys" in capsys.readouterr().out
    assert main(["check", str(file), "--strict"]) == 1
