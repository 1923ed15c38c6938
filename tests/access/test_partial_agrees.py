"""Partial evaluation agrees with full evaluation on every concrete instantiation (hypothesis).

Generated: policies (identity, boundary, guardrails, session) over conditions on keys that the principal fixes, that
vary per request, or that are absent; a caller; a route's resource with unknown ids; which keys are known. Then the
unknown keys and ids are given concrete values, the resource is rendered as the gate renders it, and the residual's
verdict must be the evaluator's decision, and a settled outcome (Allowed, Denied) must hold for every value.
"""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from iam_middleware.access._knowledge import Knowledge
from iam_middleware.access._partial import partial_decide
from iam_middleware.access._routes import resource_template
from iam_middleware.policy import Caller, DecisionKind, PolicyKind, PolicySet, evaluate, parse_policy
from iam_middleware.routing import Permission, render_template

ACCOUNT = "111122223333"
FIXED = {"account": ACCOUNT, "partition": "app", "region": "local"}
ACTION = "orders:DeleteOrder"
CALLERS = [f"arn:app:iam::{ACCOUNT}:user/alice", f"arn:app:sts::{ACCOUNT}:assumed-role/partner/s1",
           f"arn:app:iam::{ACCOUNT}:root", f"arn:app:sts::{ACCOUNT}:federated-user/carol"]
VALUES: dict[str, list[Any]] = {
    "aws:username": ["alice", "bob", "a*", ""],
    "aws:PrincipalTag/team": ["blue", "red", "Blue"],
    "aws:MultiFactorAuthPresent": ["true", "false", True],
    "aws:MultiFactorAuthAge": ["0", "3599", "3600", "x", 12],
    "aws:SourceIp": ["10.1.2.3", "192.0.2.7", "bogus"],
    "aws:CurrentTime": ["2019-06-01T00:00:00Z", "2030-01-01T00:00:00Z"],
    "aws:TagKeys": [[], ["a"], ["a", "c"], ""],
    "orders:Priority": ["high", "low", "blue-x", "*"],
}
ACTIONS = ["orders:DeleteOrder", "orders:*", "*", "orders:Delete*", "orders:GetOrder", "s3:*", "orders:DeleteOrder"]
RESOURCES = [
    "*", "arn:app:orders::111122223333:order/*", "arn:app:orders:*:*:order/archived-*",
    "arn:app:orders::111122223333:order/42", "arn:app:orders::111122223333:order/${aws:username}-*",
    "arn:app:orders::111122223333:order/${aws:PrincipalTag/team}", "arn:app:orders::111122223333:invoice/*",
    "arn:app:orders::111122223333:order/a?c", "arn:app:orders:*:*:order/${orders:Priority}*",
    "arn:app:orders::111122223333:order/${aws:username, 'x'}*", "arn:app:orders::*:*/4*",
]
CONDITIONS: list[tuple[str, str, Any]] = [
    ("Bool", "aws:MultiFactorAuthPresent", "true"),
    ("BoolIfExists", "aws:MultiFactorAuthPresent", "false"),
    ("NumericLessThan", "aws:MultiFactorAuthAge", "3600"),
    ("StringEquals", "aws:username", ["alice", "bob"]),
    ("StringNotEquals", "aws:PrincipalTag/team", "red"),
    ("StringEquals", "aws:PrincipalTag/team", "${aws:username}"),
    ("StringLike", "orders:Priority", "${aws:PrincipalTag/team}*"),
    ("StringEqualsIgnoreCase", "orders:Priority", "HIGH"),
    ("IpAddress", "aws:SourceIp", "10.0.0.0/8"),
    ("NotIpAddress", "aws:SourceIp", "192.0.2.0/24"),
    ("DateLessThan", "aws:CurrentTime", "2025-01-01T00:00:00Z"),
    ("ForAllValues:StringEquals", "aws:TagKeys", ["a", "b"]),
    ("ForAnyValue:StringEquals", "aws:TagKeys", "c"),
    ("Null", "orders:Priority", "false"),
    ("Null", "aws:username", "true"),
]
TEMPLATES = [
    "arn:app:orders::{account}:order/{order_id}", "arn:app:orders::{account}:order/{a}-{b}",
    "arn:app:orders::{account}:order/42", "arn:app:orders::{account}:{kind}/x", "arn:{partition}:orders::{account}:*",
    "arn:app:orders::999988887777:order/{order_id}",  # another account's: the root user reaches it only by a grant
]
IDS = ["42", "archived-7", "alice-1", "blue", "a c", "x", "a/b", "*", "4", "abc", "bob-", ""]


def _one_or_many(values: list[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(values), st.lists(st.sampled_from(values), min_size=1, max_size=3))


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Allow", "Allow", "Deny"]))}
    out["NotAction" if draw(st.integers(0, 6)) == 0 else "Action"] = draw(_one_or_many(ACTIONS))
    out["NotResource" if draw(st.integers(0, 5)) == 0 else "Resource"] = draw(_one_or_many(RESOURCES))
    chosen = draw(st.lists(st.sampled_from(CONDITIONS), max_size=3, unique_by=lambda c: (c[0], c[1].lower())))
    if chosen:
        condition: dict[str, dict[str, Any]] = {}
        for operator, key, value in chosen:
            condition.setdefault(operator, {})[key] = value
        out["Condition"] = condition
    return out


def layer(kind: PolicyKind, name: str) -> st.SearchStrategy[PolicySet]:
    documents = st.lists(st.lists(statements(), min_size=1, max_size=3), min_size=1, max_size=2)
    return documents.map(lambda docs: PolicySet([
        parse_policy({"Version": "2012-10-17", "Statement": body}, kind=kind, policy_id=f"{name}{i}")
        for i, body in enumerate(docs)]))


@st.composite
def knowledge(draw: st.DrawFn) -> Knowledge:
    values: dict[str, Any] = {}
    unknown: set[str] = set()
    for key, pool in VALUES.items():
        state = draw(st.sampled_from(["known", "absent", "unknown", "unknown"]))
        if state == "known":
            values[key.lower()] = draw(st.sampled_from(pool))
        elif state == "unknown":
            unknown.add(key.lower())
    return Knowledge(values, frozenset(unknown))


@st.composite
def instantiation(draw: st.DrawFn, known: Knowledge, holes: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    context = dict(known.values)
    for key, pool in VALUES.items():
        if key.lower() in known.unknown and draw(st.booleans()):
            context[key.lower()] = draw(st.sampled_from(pool))
    ids = {name: draw(st.sampled_from(IDS)) for name in holes}
    return context, ids


# The claim the access report rests on: more examples than the profile's default (about 3 s).
@settings(max_examples=200)
@given(data=st.data(), caller_arn=st.sampled_from(CALLERS), known=knowledge(),
       identity=layer(PolicyKind.IDENTITY, "identity"),
       boundary=st.none() | layer(PolicyKind.BOUNDARY, "boundary"),
       guardrails=st.none() | layer(PolicyKind.GUARDRAIL, "guardrail"),
       session=st.none() | layer(PolicyKind.SESSION, "session"),
       resource=st.sampled_from(TEMPLATES))
def test_the_residual_decides_as_the_evaluator_for_every_instantiation(
        data: st.DataObject, caller_arn: str, known: Knowledge, identity: PolicySet, boundary: PolicySet | None,
        guardrails: PolicySet | None, session: PolicySet | None, resource: str) -> None:
    caller = Caller.from_arn(caller_arn)
    permission = Permission(ACTION, resource)
    template = resource_template(permission, FIXED)
    residual = partial_decide(caller.kind, ACTION, template, known, identity=identity, boundary=boundary,
                              session=session, guardrails=guardrails, caller_account=caller.account)
    event(f"outcome: {residual.outcome}")
    holes = sorted(permission.placeholders() - set(FIXED))
    for _ in range(data.draw(st.integers(1, 6))):
        context, ids = data.draw(instantiation(known, holes))
        rendered = render_template(permission.resource, {**FIXED, **ids})
        decision = evaluate(caller, ACTION, rendered, context, identity=identity, boundary=boundary,
                            session=session, guardrails=guardrails, context_is_lower=True)
        assert decision.error is None
        assert residual.verdict(context, rendered) is decision.kind, (context, rendered, residual)
        if residual.static is not None:
            assert residual.static is decision.kind
        if residual.outcome == "Allowed":
            assert decision.kind is DecisionKind.ALLOWED
        elif residual.outcome == "Denied":
            assert decision.kind is not DecisionKind.ALLOWED


def test_a_guardrail_denies_the_root_user_explicitly_even_in_another_account() -> None:
    # Found by the property above: another account's resource is out of the root user's reach (implicitly
    # denied), but a guardrail's deny is still the evaluator's answer, and the residual's.
    caller = Caller.from_arn(f"arn:app:iam::{ACCOUNT}:root")
    guardrails = PolicySet([parse_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": ACTION, "Resource": "*"}]}, kind=PolicyKind.GUARDRAIL, policy_id="guardrail")])
    permission = Permission(ACTION, "arn:app:orders::999988887777:order/{order_id}")
    residual = partial_decide(caller.kind, ACTION, resource_template(permission, FIXED), Knowledge({}, frozenset()),
                              guardrails=guardrails, caller_account=caller.account)
    rendered = render_template(permission.resource, {**FIXED, "order_id": "42"})
    decision = evaluate(caller, ACTION, rendered, {}, guardrails=guardrails, context_is_lower=True)
    assert decision.kind is DecisionKind.EXPLICITLY_DENIED
    assert residual.verdict({}, rendered) is decision.kind
    assert residual.outcome == "Denied"
