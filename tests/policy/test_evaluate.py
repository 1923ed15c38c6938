"""Evaluation logic: explicit deny, boundaries, session policies, resource-based grants, cross-account, explanations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iam_middleware.cli._simulate import simulate_lines
from iam_middleware.policy import Caller, CallerKind, DecisionKind, MatchedStatement, PolicySet, evaluate, parse_policy

from ._helpers import (
    ACCOUNT,
    FEDERATED,
    OBJECT,
    OTHER_ACCOUNT,
    ROLE,
    ROOT,
    SESSION,
    USER,
    allow,
    decide,
    deny,
    doc,
)

ALLOWED, IMPLICIT, EXPLICIT = DecisionKind.ALLOWED, DecisionKind.IMPLICITLY_DENIED, DecisionKind.EXPLICITLY_DENIED
EVERYTHING = doc(allow(action="*"))
NOTHING_USEFUL = doc(allow(action="sqs:SendMessage"))


def grant(principal: Any, *, effect: str = "Allow", action: str = "s3:GetObject", **extra: Any) -> dict[str, Any]:
    """A resource-based policy with one statement naming ``principal``."""
    return doc({"Effect": effect, "Principal": principal, "Action": action, "Resource": "*", **extra})


# ---- single account basics -------------------------------------------------------------------------------------


def test_nothing_allowed_by_default() -> None:
    decision = decide()
    assert decision.kind is IMPLICIT and decision.denied_by == "identity" and decision.matched == ()
    assert decision.message == (
        f"User: {USER} is not authorized to perform: s3:GetObject on resource: {OBJECT} because no identity-based "
        "policy allows the s3:GetObject action"
    )


def test_root_user_is_allowed_by_default_in_its_own_account() -> None:
    assert decide(principal=ROOT).allowed
    # No identity policy applies to the root user (IAM cannot attach one): a deny given as one changes nothing.
    assert decide(doc(deny()), principal=ROOT).allowed


def test_identity_policies_are_a_union_like_user_and_group_policies() -> None:
    user_policy = doc(allow(action="s3:GetObject"))
    group_policy = doc(allow(action="s3:PutObject"))
    assert decide(user_policy, group_policy, action="s3:PutObject").allowed
    assert decide(user_policy, group_policy, action="s3:GetObject").allowed
    assert not decide(user_policy, group_policy, action="s3:DeleteObject").allowed


def test_allowed_decision_names_every_allowing_statement() -> None:
    decision = decide(doc(allow(Sid="Read")), doc(allow(action="s3:*")))
    assert decision.matched == (
        MatchedStatement("identity0", "identity", 0, "Read", "Allow"),
        MatchedStatement("identity1", "identity", 0, None, "Allow"),
    )
    assert decision.message == (
        f"User: {USER} is authorized to perform: s3:GetObject on resource: {OBJECT} (allowed by identity-based policy "
        "identity0 (Read), identity-based policy identity1 (Statement[0]))"
    )
    assert decision.layer("identity") is True and decision.layer("boundary") is None


# ---- explicit deny -------------------------------------------------------------------------------------------------


LAYER_NAMES = {
    "identity": "an identity-based policy",
    "boundary": "a permissions boundary",
    "session": "a session policy",
    "resource": "a resource-based policy",
    "guardrail": "a service control policy",
}


@pytest.mark.parametrize("layer", sorted(LAYER_NAMES))
def test_explicit_deny_wins_from_every_layer(layer: str) -> None:
    layers: dict[str, Any] = {
        "boundary": EVERYTHING, "session": EVERYTHING, "guardrails": [EVERYTHING],
        "resource_policy": grant({"AWS": SESSION}, action="*"),
    }
    identity = [EVERYTHING]
    denying = doc(allow(action="*"), deny(Sid="Stop"))
    if layer == "identity":
        identity = [EVERYTHING, denying]
    elif layer == "resource":
        layers["resource_policy"] = doc(
            {"Effect": "Allow", "Principal": "*", "Action": "*"},
            {"Sid": "Stop", "Effect": "Deny", "Principal": {"AWS": ROLE}, "Action": "s3:GetObject"},
        )
    else:
        layers["guardrails" if layer == "guardrail" else layer] = [denying] if layer == "guardrail" else denying
    decision = decide(*identity, principal=SESSION, **layers)
    assert decision.kind is EXPLICIT and decision.denied_by == layer
    assert [(m.layer, m.sid, m.effect) for m in decision.matched] == [(layer, "Stop", "Deny")]
    assert decision.message == (
        f"User: {SESSION} is not authorized to perform: s3:GetObject on resource: {OBJECT} with an explicit deny in "
        f"{LAYER_NAMES[layer]}"
    )


def test_explicit_deny_lists_every_denying_statement() -> None:
    decision = decide(doc(deny(Sid="A"), deny(Sid="B", action="s3:*")), boundary=doc(deny(Sid="C")))
    assert [(m.layer, m.sid) for m in decision.matched] == [("identity", "A"), ("identity", "B"), ("boundary", "C")]


def test_deny_with_a_false_condition_does_not_deny() -> None:
    policy = doc(allow(), deny(Condition={"Bool": {"aws:SecureTransport": "false"}}))
    assert decide(policy, context={"aws:SecureTransport": "true"}).allowed
    assert decide(policy, context={"aws:SecureTransport": "false"}).kind is EXPLICIT


# ---- boundaries --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "kind", "denied_by"),
    [("s3:GetObject", IMPLICIT, "boundary"), ("s3:PutObject", ALLOWED, None),
     ("s3:DeleteObject", IMPLICIT, "identity")],
)
def test_boundary_intersects_identity(action: str, kind: DecisionKind, denied_by: str | None) -> None:
    identity = doc(allow(action=["s3:GetObject", "s3:PutObject"]))
    boundary = doc(allow(action=["s3:PutObject", "s3:DeleteObject"]))
    decision = decide(identity, boundary=boundary, action=action)
    assert (decision.kind, decision.denied_by) == (kind, denied_by)
    if denied_by == "boundary":
        assert decision.message.endswith(f"because no permissions boundary allows the {action} action")


def test_boundary_never_grants() -> None:
    decision = decide(boundary=EVERYTHING)
    assert decision.kind is IMPLICIT and decision.denied_by == "identity"
    assert decision.layer("boundary") is True and decision.layer("identity") is False


def test_allowed_with_boundary_lists_both_layers() -> None:
    decision = decide(doc(allow(Sid="Id")), boundary=doc(allow(Sid="Cap", action="s3:*")))
    assert [(m.layer, m.sid) for m in decision.matched] == [("identity", "Id"), ("boundary", "Cap")]


# ---- session policies ----------------------------------------------------------------------------------------------


def test_role_session_without_session_policy_has_its_identity_permissions() -> None:
    assert decide(EVERYTHING, principal=SESSION).allowed


def test_session_policy_intersects_for_role_sessions() -> None:
    session = doc(allow(action="s3:GetObject"))
    assert decide(EVERYTHING, principal=SESSION, session=session).allowed
    decision = decide(EVERYTHING, principal=SESSION, session=session, action="s3:PutObject")
    assert decision.kind is IMPLICIT and decision.denied_by == "session"
    assert decision.message.endswith("because no session policy allows the s3:PutObject action")
    assert not decide(principal=SESSION, session=EVERYTHING).allowed  # the session policy never grants


def test_federated_user_needs_a_session_policy() -> None:
    decision = decide(EVERYTHING, principal=FEDERATED)
    assert decision.kind is IMPLICIT and decision.denied_by == "session"
    assert decide(EVERYTHING, principal=FEDERATED, session=doc(allow())).allowed
    assert not decide(EVERYTHING, principal=FEDERATED, session=doc(allow()), action="s3:PutObject").allowed


def test_boundary_and_session_both_limit() -> None:
    kwargs: dict[str, Any] = {"principal": SESSION, "boundary": doc(allow(action="s3:*")),
                              "session": doc(allow(action=["s3:GetObject", "sqs:*"]))}
    assert decide(EVERYTHING, **kwargs).allowed
    assert decide(EVERYTHING, **kwargs, action="s3:PutObject").denied_by == "session"
    assert decide(EVERYTHING, **kwargs, action="sqs:SendMessage").denied_by == "boundary"


# ---- resource-based policies in one account ----------------------------------------------------------------------


def test_resource_grant_to_a_user_arn_is_final_even_against_the_boundary() -> None:
    decision = decide(principal=USER, boundary=NOTHING_USEFUL, resource_policy=grant({"AWS": USER}, Sid="Share"))
    assert decision.allowed
    assert [(m.layer, m.sid) for m in decision.matched] == [("resource", "Share")]


def test_resource_grant_to_a_role_arn_is_limited_by_boundary_and_session_policy() -> None:
    policy = grant({"AWS": ROLE})
    assert decide(principal=SESSION, resource_policy=policy).allowed  # no identity policy needed
    blocked = decide(principal=SESSION, resource_policy=policy, boundary=NOTHING_USEFUL)
    assert blocked.kind is IMPLICIT and blocked.denied_by == "boundary"
    blocked = decide(principal=SESSION, resource_policy=policy, session=NOTHING_USEFUL)
    assert blocked.kind is IMPLICIT and blocked.denied_by == "session"
    assert decide(principal=SESSION, resource_policy=policy, boundary=EVERYTHING, session=EVERYTHING).allowed


def test_resource_grant_to_a_session_arn_is_not_limited() -> None:
    policy = grant({"AWS": SESSION})
    assert decide(principal=SESSION, resource_policy=policy, boundary=NOTHING_USEFUL, session=NOTHING_USEFUL).allowed


def test_resource_grant_to_a_federated_user_arn_is_not_limited() -> None:
    assert decide(principal=FEDERATED, resource_policy=grant({"AWS": FEDERATED})).allowed


def test_resource_grant_to_the_account_delegates_to_identity_policies() -> None:
    for principal in ({"AWS": ACCOUNT}, {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}):
        policy = grant(principal)
        assert not decide(principal=USER, resource_policy=policy).allowed
        assert decide(doc(allow()), principal=USER, resource_policy=policy).allowed
        assert not decide(doc(allow()), principal=USER, resource_policy=policy, boundary=NOTHING_USEFUL).allowed


def test_resource_grant_to_everyone() -> None:
    assert decide(principal=USER, resource_policy=grant("*")).allowed
    assert decide(principal=USER, resource_policy=grant({"AWS": "*"})).allowed


def test_resource_grant_to_a_service_principal() -> None:
    policy = grant({"Service": "sns.amazonaws.com"}, action="sqs:SendMessage")
    assert decide(principal="sns.amazonaws.com", action="sqs:SendMessage", resource_policy=policy).allowed
    assert not decide(principal="sqs.amazonaws.com", action="sqs:SendMessage", resource_policy=policy).allowed
    assert not decide(principal=USER, action="sqs:SendMessage", resource_policy=policy).allowed


def test_resource_grant_to_someone_else_does_not_apply() -> None:
    other = f"arn:aws:iam::{ACCOUNT}:user/bob"
    decision = decide(principal=USER, resource_policy=grant({"AWS": other}))
    assert decision.kind is IMPLICIT and decision.layer("resource") is False


def test_resource_and_identity_allows_are_a_union_in_one_account() -> None:
    decision = decide(doc(allow(Sid="Mine")), principal=USER, resource_policy=grant({"AWS": USER}, Sid="Theirs"))
    assert decision.allowed
    assert {(m.layer, m.sid) for m in decision.matched} == {("identity", "Mine"), ("resource", "Theirs")}


def test_resource_deny_naming_the_role_applies_to_its_sessions() -> None:
    policy = grant({"AWS": ROLE}, effect="Deny")
    assert decide(EVERYTHING, principal=SESSION, resource_policy=policy).kind is EXPLICIT
    assert decide(EVERYTHING, principal=USER, resource_policy=policy).allowed


# ---- NotPrincipal ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listed", "caller", "denied"),
    [
        ([USER], USER, True),  # the account is not listed: IAM may check it first and deny
        ([USER, f"arn:aws:iam::{ACCOUNT}:root"], USER, False),
        ([USER, ACCOUNT], USER, False),
        ([SESSION, ROLE, ACCOUNT], SESSION, False),
        ([SESSION, ACCOUNT], SESSION, True),  # the role is not listed
        ([ROLE, ACCOUNT], SESSION, True),  # the session is not listed
        (["*"], USER, False),
    ],
)
def test_deny_with_notprincipal_spares_only_fully_listed_callers(listed: list[str], caller: str, denied: bool) -> None:
    policy = doc({"Effect": "Deny", "NotPrincipal": {"AWS": listed}, "Action": "s3:*", "Resource": "*"})
    decision = decide(EVERYTHING, principal=caller, resource_policy=policy)
    assert (decision.kind is EXPLICIT) is denied


# ---- cross-account -------------------------------------------------------------------------------------------------


def test_cross_account_needs_both_sides() -> None:
    shared = grant({"AWS": USER}, Sid="Share")
    only_identity = decide(doc(allow()), resource_account=OTHER_ACCOUNT)
    assert only_identity.kind is IMPLICIT and only_identity.denied_by == "resource"
    assert only_identity.message.endswith("because no resource-based policy allows the s3:GetObject action")
    only_resource = decide(resource_policy=shared, resource_account=OTHER_ACCOUNT)
    assert only_resource.kind is IMPLICIT and only_resource.denied_by == "identity"
    both = decide(doc(allow(Sid="Mine")), resource_policy=shared, resource_account=OTHER_ACCOUNT)
    assert both.allowed
    assert {(m.layer, m.sid) for m in both.matched} == {("identity", "Mine"), ("resource", "Share")}


def test_cross_account_grant_to_the_account_delegates() -> None:
    policy = grant({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
    assert decide(doc(allow()), resource_policy=policy, resource_account=OTHER_ACCOUNT).allowed
    assert not decide(resource_policy=policy, resource_account=OTHER_ACCOUNT).allowed


def test_cross_account_user_grant_is_still_limited_by_the_boundary() -> None:
    decision = decide(doc(allow()), boundary=NOTHING_USEFUL, resource_policy=grant({"AWS": USER}),
                      resource_account=OTHER_ACCOUNT)
    assert decision.kind is IMPLICIT and decision.denied_by == "boundary"


def test_cross_account_session_grant_is_still_limited_by_the_session_policy() -> None:
    decision = decide(EVERYTHING, principal=SESSION, session=NOTHING_USEFUL, resource_policy=grant({"AWS": SESSION}),
                      resource_account=OTHER_ACCOUNT)
    assert decision.kind is IMPLICIT and decision.denied_by == "session"


def test_cross_account_root_user_needs_only_the_resource_policy() -> None:
    policy = grant({"AWS": ACCOUNT})
    assert decide(principal=ROOT, resource_policy=policy, resource_account=OTHER_ACCOUNT).allowed
    assert not decide(principal=ROOT, resource_account=OTHER_ACCOUNT).allowed


def test_resource_account_equal_to_the_callers_is_same_account() -> None:
    assert decide(principal=USER, resource_policy=grant({"AWS": USER}), resource_account=ACCOUNT).allowed


def test_cross_account_explicit_deny_in_resource_policy() -> None:
    policy = doc({"Effect": "Allow", "Principal": "*", "Action": "*"}, {"Effect": "Deny", "Principal": "*",
                                                                        "Action": "s3:GetObject"})
    assert decide(EVERYTHING, resource_policy=policy, resource_account=OTHER_ACCOUNT).kind is EXPLICIT


# ---- guardrails (SCP role) -----------------------------------------------------------------------------------------


def test_guardrails_must_allow_too() -> None:
    decision = decide(EVERYTHING, guardrails=[doc(allow(action="sqs:*"))])
    assert decision.kind is IMPLICIT and decision.denied_by == "guardrail"
    assert decision.message.endswith("because no service control policy allows the s3:GetObject action")
    assert decide(EVERYTHING, guardrails=[doc(allow(action="s3:*"))]).allowed
    assert not decide(guardrails=[EVERYTHING]).allowed  # guardrails never grant


def test_guardrails_limit_resource_grants_too() -> None:
    decision = decide(resource_policy=grant({"AWS": USER}), guardrails=[NOTHING_USEFUL])
    assert decision.denied_by == "guardrail"


# ---- NotAction / NotResource -----------------------------------------------------------------------------------------


def test_allow_with_notaction_grants_every_other_action_within_resource() -> None:
    policy = doc(allow(action=None, NotAction="iam:*", resource="arn:aws:s3:::bucket/*"))
    assert decide(policy, action="s3:PutObject", resource="arn:aws:s3:::bucket/x").allowed
    assert not decide(policy, action="iam:CreateUser", resource="arn:aws:s3:::bucket/x").allowed
    assert not decide(policy, action="s3:PutObject", resource="arn:aws:s3:::other/x").allowed


def test_deny_with_notaction_denies_every_other_action() -> None:
    policy = doc(allow(action="*"), deny(action=None, NotAction=["s3:GetObject", "sts:GetSessionToken"]))
    assert decide(policy).allowed
    assert decide(policy, action="s3:PutObject").kind is EXPLICIT


def test_notresource() -> None:
    allow_policy = doc(allow(resource=None, NotResource="arn:aws:s3:::secret/*"))
    assert decide(allow_policy, resource="arn:aws:s3:::public/x").allowed
    assert not decide(allow_policy, resource="arn:aws:s3:::secret/x").allowed
    payroll = ["arn:aws:s3:::HR/Payroll", "arn:aws:s3:::HR/Payroll/*"]
    deny_policy = doc(allow(), deny(resource=None, NotResource=payroll))
    assert decide(deny_policy, resource="arn:aws:s3:::HR/Payroll/q1").allowed
    assert decide(deny_policy, resource="arn:aws:s3:::HR/Other").kind is EXPLICIT


def test_action_case_is_ignored_and_kept_in_the_decision() -> None:
    decision = decide(doc(allow(action="S3:getobject")), action="s3:GETOBJECT")
    assert decision.allowed and decision.action == "s3:GETOBJECT"


# ---- callers and failures --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "kind", "forms"),
    [
        (USER, CallerKind.USER, {USER: "user", ROOT: "account", ACCOUNT: "account"}),
        (SESSION, CallerKind.ROLE_SESSION, {SESSION: "session", ROLE: "role", ROOT: "account", ACCOUNT: "account"}),
        (ROLE, CallerKind.ROLE_SESSION, {ROLE: "role", ROOT: "account", ACCOUNT: "account"}),
        (FEDERATED, CallerKind.FEDERATED_USER, {FEDERATED: "federated", ROOT: "account", ACCOUNT: "account"}),
        (ROOT, CallerKind.ROOT, {ROOT: "account", ACCOUNT: "account"}),
        ("alice", CallerKind.OTHER, {"alice": "session"}),
        ("ec2.amazonaws.com", CallerKind.OTHER,
         {"ec2.amazonaws.com": "session", "Service:ec2.amazonaws.com": "service"}),
    ],
)
def test_caller_forms(arn: str, kind: CallerKind, forms: dict[str, str]) -> None:
    caller = Caller.from_arn(arn)
    assert caller.kind is kind and dict(caller.identifiers) == forms
    assert caller.account == (ACCOUNT if arn.startswith("arn:") else "")


def test_an_error_during_evaluation_closes() -> None:
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    identity = PolicySet([parse_policy(doc(allow(Condition={"StringEquals": {"k": "v"}})))])
    decision = evaluate(Caller.from_arn(USER), "s3:GetObject", OBJECT, {"k": Hostile()}, identity=identity)
    assert decision.kind is IMPLICIT and decision.denied_by == "error" and decision.error == "RuntimeError: boom"
    assert decision.message.endswith("because the request could not be evaluated")


def test_decision_as_dict() -> None:
    decision = decide(doc(allow(Sid="R", Condition={"StringEqualsIfExists": {"aws:username": "alice"}})),
                      boundary=EVERYTHING)
    assert decision.as_dict() == {
        "decision": "Allowed",
        "matched": [{"policy": "identity0", "type": "identity", "statement": 0, "sid": "R", "effect": "Allow"},
                    {"policy": "boundary0", "type": "boundary", "statement": 0, "sid": None, "effect": "Allow"}],
        "message": decision.message,
        "missing_context_keys": [],
        "layers": {"boundary": True, "identity": True},
    }


# ---- data-driven cases in the simulate format ------------------------------------------------------------------------

CASES = [
    pytest.param(entry["case"], entry["expect"], id=entry["case"]["id"])
    for path in sorted((Path(__file__).parent / "cases").glob("*.json"))
    for entry in json.loads(path.read_text())["cases"]
]


@pytest.mark.parametrize(("case", "expect"), CASES)
def test_simulate_case(case: dict[str, Any], expect: dict[str, Any]) -> None:
    (result,) = simulate_lines([json.dumps(case)])
    assert result["id"] == case["id"]
    assert result["decision"] == expect["decision"], result
    if expect["decision"] == "Error":
        assert set(result) == {"id", "decision", "error"} and result["error"]
        return
    assert set(result) == {"id", "decision", "matched", "missing_context_keys", "message"}
    if "matched_sids" in expect:
        assert [m["sid"] for m in result["matched"]] == expect["matched_sids"]
    if "message_contains" in expect:
        assert expect["message_contains"] in result["message"]
