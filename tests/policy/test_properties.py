"""Properties of the evaluator over generated policies and requests (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iam_middleware.policy import DecisionKind

from ._helpers import FEDERATED, ROLE, SESSION, USER, decide, doc

ACTIONS = ["s3:GetObject", "s3:Get*", "s3:*", "*", "iam:CreateUser", "s3:?etObject", "S3:PUTOBJECT", "sqs:*"]
RESOURCES = ["*", "arn:aws:s3:::b/*", "arn:aws:s3:::b/${aws:username}", "arn:aws:s3:::b/${aws:username}/*",
             "arn:aws:s3:::other/*", "arn:aws:s3:::b/k?y", "arn:aws:iam::*:user/alice"]
CONDITIONS: list[tuple[str, str, Any]] = [
    ("StringEquals", "aws:username", "alice"),
    ("StringNotEquals", "aws:username", ["alice", "bob"]),
    ("StringLike", "s3:prefix", "home/${aws:username}/*"),
    ("StringEqualsIgnoreCase", "aws:PrincipalTag/team", "Blue"),
    ("Bool", "aws:SecureTransport", "true"),
    ("BoolIfExists", "aws:MultiFactorAuthPresent", "false"),
    ("NumericLessThanEquals", "aws:MultiFactorAuthAge", 3600),
    ("IpAddress", "aws:SourceIp", ["10.0.0.0/8", "2001:db8::/32"]),
    ("NotIpAddress", "aws:SourceIp", "192.0.2.0/24"),
    ("DateGreaterThan", "aws:CurrentTime", "2020-01-01T00:00:00Z"),
    ("ForAllValues:StringEquals", "aws:TagKeys", ["a", "b"]),
    ("ForAnyValue:StringLike", "aws:TagKeys", "sec*"),
    ("ForAllValues:StringNotLike", "aws:TagKeys", "key1*"),
    ("Null", "aws:TokenIssueTime", "true"),
    ("ArnLike", "aws:SourceArn", "arn:aws:s3:::b*"),
    ("StringNotLikeIfExists", "aws:UserAgent", "*curl*"),
]
CONTEXT_VALUES: dict[str, list[Any]] = {
    "aws:username": ["alice", "bob", "*", "a?c", ""],
    "s3:prefix": ["home/alice/x", "home/*/x", ""],
    "aws:PrincipalTag/team": ["blue", "BLUE", "red"],
    "aws:SecureTransport": ["true", "false", True, False, "yes"],
    "aws:MultiFactorAuthPresent": ["true", "false", True],
    "aws:MultiFactorAuthAge": [0, "3600", 3601, "x", 1.5],
    "aws:SourceIp": ["10.1.2.3", "192.0.2.7", "2001:db8::1", "::ffff:10.0.0.1", "bogus"],
    "aws:CurrentTime": ["2019-06-01T00:00:00Z", "2024-06-01T12:00:00+02:00", "1700000000", "never"],
    "aws:TagKeys": [[], ["a"], ["a", "c"], ["secret"], ["key1x", "key2"], ""],
    "aws:TokenIssueTime": ["2024-01-01T00:00:00Z"],
    "aws:SourceArn": ["arn:aws:s3:::bucket", "arn:aws:sqs:us-east-1:1:q", "nope"],
    "aws:UserAgent": ["curl/8.0", "boto3"],
}


def _one_or_many(values: list[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(values), st.lists(st.sampled_from(values), min_size=1, max_size=3))


@st.composite
def statements(draw: st.DrawFn, effect: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"Effect": effect or draw(st.sampled_from(["Allow", "Deny"]))}
    out["NotAction" if draw(st.integers(0, 5)) == 0 else "Action"] = draw(_one_or_many(ACTIONS))
    out["NotResource" if draw(st.integers(0, 5)) == 0 else "Resource"] = draw(_one_or_many(RESOURCES))
    chosen = draw(st.lists(st.sampled_from(CONDITIONS), max_size=2, unique_by=lambda c: c[0]))
    if chosen:
        out["Condition"] = {op: {key: value} for op, key, value in chosen}
    return out


policies = st.lists(statements(), min_size=1, max_size=4).map(lambda s: doc(*s))
contexts = st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in CONTEXT_VALUES.items()})
requests = st.fixed_dictionaries({
    "principal": st.sampled_from([USER, SESSION, ROLE, FEDERATED]),
    "action": st.sampled_from(["s3:GetObject", "s3:PutObject", "iam:CreateUser", "sqs:SendMessage"]),
    "resource": st.sampled_from(["arn:aws:s3:::b/alice", "arn:aws:s3:::b/alice/x", "arn:aws:s3:::b/key",
                                 "arn:aws:s3:::other/x", "arn:aws:iam::111122223333:user/alice"]),
    "context": contexts,
})
SETTINGS = settings(deadline=None, max_examples=120, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(identity=st.lists(policies, max_size=3), request=requests, boundary=st.none() | policies,
       session=st.none() | policies)
def test_evaluation_never_fails_and_an_empty_policy_set_never_allows(
    identity: list[dict[str, Any]], request: dict[str, Any], boundary: Any, session: Any
) -> None:
    decision = decide(*identity, boundary=boundary, session=session, **request)
    assert decision.error is None
    if not identity:
        assert decision.kind is not DecisionKind.ALLOWED
    if decision.kind is DecisionKind.EXPLICITLY_DENIED:
        assert decision.matched and all(m.effect == "Deny" for m in decision.matched)
    if decision.allowed:
        assert decision.matched and all(m.effect == "Allow" for m in decision.matched)


@SETTINGS
@given(identity=st.lists(policies, min_size=1, max_size=3), extra=statements(effect="Deny"), request=requests,
       where=st.integers(0, 10))
def test_adding_a_deny_never_turns_a_deny_into_an_allow(
    identity: list[dict[str, Any]], extra: dict[str, Any], request: dict[str, Any], where: int
) -> None:
    before = decide(*identity, **request)
    target = identity[where % len(identity)]
    changed = [*identity]
    changed[where % len(identity)] = {**target, "Statement": [*target["Statement"], extra]}
    after = decide(*changed, **request)
    if not before.allowed:
        assert not after.allowed
    if before.kind is DecisionKind.EXPLICITLY_DENIED:
        assert after.kind is DecisionKind.EXPLICITLY_DENIED


@SETTINGS
@given(identity=st.lists(policies, min_size=1, max_size=3), request=requests, data=st.data())
def test_order_of_statements_and_policies_never_changes_the_decision(
    identity: list[dict[str, Any]], request: dict[str, Any], data: st.DataObject
) -> None:
    shuffled = [{**p, "Statement": data.draw(st.permutations(p["Statement"]))} for p in identity]
    shuffled = data.draw(st.permutations(shuffled))
    first, second = decide(*identity, **request), decide(*shuffled, **request)
    assert (first.kind, first.denied_by, len(first.matched)) == (second.kind, second.denied_by, len(second.matched))


@settings(deadline=None, max_examples=150)
@given(username=st.text(alphabet="ab*?$/:.{}", min_size=1, max_size=6),
       requested=st.text(alphabet="ab*?$/:.{}x", min_size=1, max_size=6))
def test_a_substituted_variable_never_acts_as_a_wildcard(username: str, requested: str) -> None:
    context = {"aws:username": username}
    resource_policy = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${aws:username}"})
    assert decide(resource_policy, resource=f"arn:aws:s3:::b/{requested}", context=context).allowed is (
        requested == username
    )
    condition = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                     "Condition": {"StringLike": {"s3:prefix": "${aws:username}"}}})
    assert decide(condition, context={**context, "s3:prefix": requested}).allowed is (requested == username)


@SETTINGS
@given(identity=st.lists(policies, min_size=1, max_size=2), request=requests)
def test_a_resource_grant_to_the_account_adds_nothing_in_the_same_account(
    identity: list[dict[str, Any]], request: dict[str, Any]
) -> None:
    # An account principal delegates to the caller's own IAM policies, so it cannot change the outcome.
    grant = doc({"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "*"})
    assert decide(*identity, **request).kind is decide(*identity, resource_policy=grant, **request).kind
