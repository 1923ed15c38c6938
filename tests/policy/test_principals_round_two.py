"""Resource-based policies name roles by their ARN with its path, and NotPrincipal with Deny spares no principal
that has a permissions boundary.

IAM User Guide, "IAM identifiers": role names are unique within an account, and an assumed-role session's ARN is
``arn:aws:sts::account:assumed-role/role-name/role-session-name``, without the role's path. "Permissions
boundaries for IAM entities" and "NotPrincipal": a policy with ``Deny`` and ``NotPrincipal`` "will always deny any IAM
principal that has a permissions boundary policy attached, regardless of the values specified in the NotPrincipal
element".
"""

from __future__ import annotations

import pytest

from iam_middleware.policy import DecisionKind

from ._helpers import ACCOUNT, OBJECT, allow, decide, deny, doc

ROLE_WITH_PATH = f"arn:aws:iam::{ACCOUNT}:role/ops/OpsRole"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/OpsRole/s1"
OTHER_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/OtherRole/s1"
EVERYTHING = doc(allow("*", "*"))


@pytest.mark.parametrize("caller", [SESSION, ROLE_WITH_PATH])
def test_a_grant_to_a_role_with_a_path_reaches_its_sessions(caller: str) -> None:
    policy = doc(allow(Principal={"AWS": ROLE_WITH_PATH}))
    assert decide(principal=caller, resource_policy=policy).allowed
    assert not decide(principal=OTHER_SESSION, resource_policy=policy).allowed


def test_a_deny_to_a_role_with_a_path_reaches_its_sessions() -> None:
    policy = doc(allow(Principal={"AWS": "*"}), deny(Principal={"AWS": ROLE_WITH_PATH}))
    decision = decide(principal=SESSION, resource_policy=policy)
    assert decision.kind is DecisionKind.EXPLICITLY_DENIED
    assert decide(principal=OTHER_SESSION, resource_policy=policy).allowed


def test_not_principal_spares_a_session_of_a_role_named_with_its_path() -> None:
    listed = [ROLE_WITH_PATH, SESSION, f"arn:aws:iam::{ACCOUNT}:root"]
    policy = doc(allow(Principal={"AWS": "*"}), deny(NotPrincipal={"AWS": listed}))
    assert decide(EVERYTHING, principal=SESSION, resource_policy=policy).allowed
    assert decide(EVERYTHING, principal=OTHER_SESSION,
                  resource_policy=policy).kind is DecisionKind.EXPLICITLY_DENIED


def test_deny_with_not_principal_always_denies_a_principal_with_a_boundary() -> None:
    listed = [ROLE_WITH_PATH, SESSION, f"arn:aws:iam::{ACCOUNT}:root"]
    policy = doc(allow(Principal={"AWS": "*"}), deny(NotPrincipal={"AWS": listed}))
    boundary = doc(allow("*", "*"))
    decision = decide(EVERYTHING, principal=SESSION, resource_policy=policy, boundary=boundary)
    assert decision.kind is DecisionKind.EXPLICITLY_DENIED and decision.resource == OBJECT
    assert decide(EVERYTHING, principal=SESSION, resource_policy=policy).allowed  # the same, without a boundary
