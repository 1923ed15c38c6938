"""Snapshot: lookups, principals built from directory records, and per-principal authorizers."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest

from iam_middleware._principal import CredentialKind, PrincipalType
from iam_middleware.directory import Directory, Snapshot, directory_from_dict
from iam_middleware.directory._snapshot import stable_id
from iam_middleware.policy import PolicyKind, parse_policy

A = "111122223333"
B = "444455556666"


def statement(action: str, effect: str = "Allow", resource: str = "*") -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": effect, "Action": action, "Resource": resource}]}


TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:app:iam::{A}:root"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    return directory_from_dict({
        "accounts": {A: {"name": "acme", "guardrails": ["NoPurge"]}, B: {"name": "other"}},
        "policies": {"Read": statement("orders:Get*"), "Write": statement("orders:CreateOrder"),
                     "NoPurge": {"Version": "2012-10-17", "Statement": [
                         {"Effect": "Allow", "Action": "*", "Resource": "*"},
                         {"Effect": "Deny", "Action": "orders:PurgeOrders", "Resource": "*"}]},
                     "Everything": statement("orders:*"), "OnlyReads": statement("orders:Get*")},
        "groups": {"readers": {"account": A, "policies": ["Read"]}},
        "users": {
            "alice": {"account": A, "groups": ["readers"], "tags": {"team": "blue"}, "policies": ["Write"],
                      "access_keys": [{"id": "AKIAALICE", "secret": "alice-secret"},
                                      {"id": "AKIAALICEOLD", "secret": "old-secret", "active": False}]},
            "carol": {"account": A, "path": "/admins/", "policies": ["Everything"], "boundary": "OnlyReads"},
            "sam-a": {"name": "sam", "account": A},
            "sam-b": {"name": "sam", "account": B},
        },
        "roles": {"ops": {"account": A, "policies": ["Read"], "tags": {"team": "ops", "tier": "1"},
                          "trust_policy": TRUST, "max_session_duration": 7200},
                  "ops-b": {"name": "ops", "account": B, "trust_policy": TRUST}},
    })


def test_it_implements_the_directory_protocol(snapshot: Snapshot) -> None:
    assert isinstance(snapshot, Directory)
    assert isinstance(snapshot.users, MappingProxyType) and isinstance(snapshot.roles, MappingProxyType)
    with pytest.raises(TypeError):
        snapshot.users["x"] = snapshot.users[f"arn:app:iam::{A}:user/alice"]  # type: ignore[index]


def test_users_are_found_by_name_qualified_name_and_arn(snapshot: Snapshot) -> None:
    alice = snapshot.user("alice")
    assert alice is not None and alice.arn == f"arn:app:iam::{A}:user/alice"
    assert snapshot.user_by_arn(alice.arn) is alice
    carol = snapshot.user("carol")
    assert carol is not None and carol.arn == f"arn:app:iam::{A}:user/admins/carol"
    # A name in two accounts is ambiguous until the account is given.
    assert snapshot.user("sam") is None
    sam_b = snapshot.user(f"{B}/sam")
    assert sam_b is not None and sam_b.account == B
    assert snapshot.user("sam", account=A) is not None
    assert snapshot.user("nobody") is None


def test_roles_are_found_by_arn_or_unambiguous_name(snapshot: Snapshot) -> None:
    assert snapshot.role(f"arn:app:iam::{B}:role/ops") is not None
    assert snapshot.role("ops") is None  # in two accounts
    role = snapshot.role("ops", account=A)
    assert role is not None and role.max_session_duration == 7200
    assert snapshot.role(f"arn:app:iam::{A}:role/nope") is None


def test_access_keys_lead_to_their_user_and_keep_their_state(snapshot: Snapshot) -> None:
    found = snapshot.access_key("AKIAALICE")
    assert found is not None and found[1].name == "alice" and found[0].active
    old = snapshot.access_key("AKIAALICEOLD")
    assert old is not None and not old[0].active
    assert snapshot.access_key("AKIAUNKNOWN") is None


def test_stable_ids_are_aws_shaped_and_survive_reloads(snapshot: Snapshot) -> None:
    alice = snapshot.user("alice")
    assert alice is not None
    assert alice.id == stable_id("AIDA", alice.arn)
    assert alice.id.startswith("AIDA") and len(alice.id) == 21 and alice.id.isupper()
    assert stable_id("AIDA", alice.arn + "x") != alice.id
    role = snapshot.role("ops", account=A)
    assert role is not None and role.id.startswith("AROA")


def test_a_long_term_key_principal_has_no_mfa_facts(snapshot: Snapshot) -> None:
    alice = snapshot.user("alice")
    assert alice is not None
    principal = snapshot.user_principal(alice, CredentialKind.ACCESS_KEY, access_key_id="AKIAALICE")
    assert principal.mfa_present is None and principal.token_issue_time is None
    keys = principal.context_keys(0)
    assert "aws:MultiFactorAuthPresent" not in keys and "aws:TokenIssueTime" not in keys
    assert keys["aws:username"] == "alice" and keys["aws:PrincipalTag/team"] == "blue"


def test_a_session_principal_carries_mfa_and_issue_time(snapshot: Snapshot) -> None:
    alice = snapshot.user("alice")
    assert alice is not None
    principal = snapshot.user_principal(alice, CredentialKind.SESSION, auth_time=1000.0, mfa_time=1000.0,
                                        expires_at=4600.0)
    keys = principal.context_keys(1060)
    assert keys["aws:MultiFactorAuthPresent"] == "true" and keys["aws:MultiFactorAuthAge"] == "60"
    assert keys["aws:TokenIssueTime"] == "1970-01-01T00:16:40Z"
    without = snapshot.user_principal(alice, CredentialKind.SESSION, auth_time=1000.0)
    assert without.context_keys(1060)["aws:MultiFactorAuthPresent"] == "false"


def test_a_role_session_principal(snapshot: Snapshot) -> None:
    role = snapshot.role("ops", account=A)
    assert role is not None
    principal = snapshot.role_principal(role, "night-shift", CredentialKind.TEMPORARY_ACCESS_KEY, auth_time=10.0,
                                        expires_at=3610.0, session_tags={"tier": "2"})
    assert principal.arn == f"arn:app:sts::{A}:assumed-role/ops/night-shift"
    assert principal.type is PrincipalType.ASSUMED_ROLE and principal.source_arn == role.arn
    assert principal.id == f"{role.id}:night-shift"
    keys = principal.context_keys(20)
    assert "aws:username" not in keys
    assert keys["aws:PrincipalArn"] == role.arn
    # Session tags override the role's tags of the same name.
    assert keys["aws:PrincipalTag/team"] == "ops" and keys["aws:PrincipalTag/tier"] == "2"


def test_authorizers_combine_group_policies_boundary_and_guardrails(snapshot: Snapshot) -> None:
    alice = snapshot.user("alice")
    carol = snapshot.user("carol")
    assert alice is not None and carol is not None
    a = snapshot.authorizer(snapshot.user_principal(alice, CredentialKind.ACCESS_KEY))
    assert a.authorize("orders:GetOrder", "*", {}).allowed  # from the readers group
    assert a.authorize("orders:CreateOrder", "*", {}).allowed  # her own policy
    c = snapshot.authorizer(snapshot.user_principal(carol, CredentialKind.ACCESS_KEY))
    assert c.authorize("orders:GetOrder", "*", {}).allowed
    assert c.authorize("orders:CreateOrder", "*", {}).denied_by == "boundary"
    purge = c.authorize("orders:PurgeOrders", "*", {})
    assert not purge.allowed and purge.denied_by == "guardrail"


def test_authorizers_are_cached_per_principal_and_session_policy(snapshot: Snapshot) -> None:
    role = snapshot.role("ops", account=A)
    assert role is not None
    principal = snapshot.role_principal(role, "s", CredentialKind.TEMPORARY_ACCESS_KEY, auth_time=0, expires_at=1)
    assert snapshot.authorizer(principal) is snapshot.authorizer(principal)
    narrow = parse_policy(json.dumps(statement("orders:GetOrder")), kind=PolicyKind.SESSION, policy_id="narrow")
    narrowed = snapshot.authorizer(principal, narrow)
    assert narrowed is not snapshot.authorizer(principal)
    assert snapshot.authorizer(principal).authorize("orders:GetOrders", "*", {}).allowed
    assert not narrowed.authorize("orders:GetOrders", "*", {}).allowed


def test_a_principal_the_snapshot_does_not_know_gets_nothing(snapshot: Snapshot) -> None:
    # A user deleted by a reload: a principal built by the old snapshot must not keep its old permissions.
    old = directory_from_dict({"accounts": {A: {}}, "users": {"dave": {"policies": ["All"]}},
                               "policies": {"All": statement("*")}})
    ghost = old.user_principal(old.users[f"arn:app:iam::{A}:user/dave"], CredentialKind.ACCESS_KEY)
    assert old.authorizer(ghost).authorize("orders:GetOrder", "*", {}).allowed
    assert not snapshot.authorizer(ghost).authorize("orders:GetOrder", "*", {}).allowed
