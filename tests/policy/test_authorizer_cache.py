"""The decision cache can never answer differently from a fresh evaluation: same inputs, same decision, whatever
the value types, the actions, the resource policies, and the order requests arrive in."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from iam_middleware.policy import Authorizer, Caller, PolicyKind, PolicySet, parse_policy

IDENTITY = parse_policy({
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "orders:Get*", "Resource": "*",
         "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}},
        {"Effect": "Allow", "Action": "orders:List*", "Resource": "arn:app:orders:::order/${aws:username}/*"},
        {"Effect": "Allow", "Action": "orders:Delete*", "Resource": "*",
         "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}},
        {"Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["blocked"]}}},
        {"Effect": "Allow", "Action": "orders:Tag*", "Resource": "*",
         "Condition": {"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "Blue"}}},
    ],
})
RESOURCE_POLICY = PolicySet.of(parse_policy({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:app:iam::111122223333:user/bob"},
                   "Action": "orders:Share*", "Resource": "*",
                   "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}],
}, kind=PolicyKind.RESOURCE))

# Each layer reads keys the others do not, so a cache key that forgot one layer's keys would answer wrongly.
GUARDRAILS = PolicySet([parse_policy({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "*", "Resource": "*"},
    {"Effect": "Deny", "Action": "orders:Delete*", "Resource": "*",
     "Condition": {"StringEquals": {"aws:requestedregion": "eu-west-1"}}}]}, kind=PolicyKind.GUARDRAIL)])
BOUNDARY = PolicySet([parse_policy({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "orders:*", "Resource": "*",
     "Condition": {"StringNotEquals": {"aws:useragent": "blocked-agent"}}}]}, kind=PolicyKind.BOUNDARY)])
SESSION = PolicySet([parse_policy({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "orders:*", "Resource": "*",
     "Condition": {"DateLessThan": {"aws:currenttime": "2030-01-01T00:00:00Z"}}}]}, kind=PolicyKind.SESSION)])

scalars = st.one_of(st.booleans(), st.integers(-5, 5000), st.sampled_from(["true", "false", "1", "1.0", "Blue", "blue",
                                                                          "bob", "alice", "10.1.2.3", "", "3599",
                                                                          "eu-west-1", "us-east-1", "blocked-agent",
                                                                          "2029-12-31T00:00:00Z",
                                                                          "2031-01-01T00:00:00Z"]))
values = st.one_of(scalars, st.lists(st.sampled_from(["blocked", "ok", "x"]), max_size=3))
keys = st.sampled_from(["aws:multifactorauthpresent", "aws:multifactorauthage", "aws:username", "aws:tagkeys",
                        "aws:principaltag/team", "aws:sourceip", "aws:unrelated", "aws:requestedregion",
                        "aws:useragent", "aws:currenttime"])
requests = st.tuples(
    st.sampled_from(["orders:GetOrder", "orders:ListOrders", "orders:DeleteOrder", "orders:TagOrder",
                     "orders:ShareOrder", "ORDERS:getorder"]),
    st.sampled_from(["arn:app:orders:::order/bob/1", "arn:app:orders:::order/alice/1", "*"]),
    st.dictionaries(keys, values, max_size=5),
    st.booleans(),
)


@settings(deadline=None, max_examples=150)
@given(st.lists(requests, min_size=1, max_size=25))
def test_cached_decisions_always_equal_fresh_ones(batch: list[tuple[str, str, dict[str, Any], bool]]) -> None:
    authorizer = Authorizer(Caller.from_arn("arn:app:iam::111122223333:user/bob"), identity=PolicySet([IDENTITY]))
    for action, resource, context, with_resource_policy in batch * 2:  # twice: the second pass hits the cache
        resource_policy = RESOURCE_POLICY if with_resource_policy else None
        cached = authorizer.authorize(action, resource, context, resource_policy=resource_policy)
        fresh = authorizer.decide(action, resource, context, resource_policy=resource_policy)
        assert cached.kind == fresh.kind, (action, resource, context)
        assert cached.matched == fresh.matched


def test_true_and_the_string_true_never_share_an_entry_when_they_decide_differently() -> None:
    policy = parse_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*",
         "Condition": {"StringEquals": {"aws:PrincipalTag/flag": "True"}}}]})
    authorizer = Authorizer(Caller.from_arn("arn:app:iam::1:user/x"), identity=PolicySet([policy]))
    assert not authorizer.authorize("orders:GetOrder", "*", {"aws:principaltag/flag": True}).allowed  # "true"
    assert authorizer.authorize("orders:GetOrder", "*", {"aws:principaltag/flag": "True"}).allowed
    assert not authorizer.authorize("orders:GetOrder", "*", {"aws:principaltag/flag": True}).allowed


@settings(deadline=None, max_examples=150)
@given(st.lists(requests, min_size=1, max_size=25))
def test_cached_decisions_equal_fresh_ones_with_every_layer(batch: list[tuple[str, str, dict[str, Any], bool]]
                                                           ) -> None:
    """Guardrails, boundary and session policy each read their own condition keys: the cache must key on all."""
    authorizer = Authorizer(Caller.from_arn("arn:app:sts::111122223333:assumed-role/deploy/s1"),
                            identity=PolicySet([IDENTITY]), boundary=BOUNDARY, session=SESSION, guardrails=GUARDRAILS)
    for action, resource, context, with_resource_policy in batch * 2:
        resource_policy = RESOURCE_POLICY if with_resource_policy else None
        cached = authorizer.authorize(action, resource, context, resource_policy=resource_policy)
        fresh = authorizer.decide(action, resource, context, resource_policy=resource_policy)
        assert (cached.kind, cached.matched) == (fresh.kind, fresh.matched), (action, resource, context)


def test_each_layers_keys_split_the_cache() -> None:
    """Two requests that differ only in a key one layer reads get that layer's two answers, in either order."""
    base = {"aws:multifactorauthage": 10, "aws:multifactorauthpresent": "true", "aws:useragent": "curl",
            "aws:currenttime": "2029-12-31T00:00:00Z", "aws:requestedregion": "us-east-1"}
    flips = [("aws:requestedregion", "eu-west-1"), ("aws:useragent", "blocked-agent"),
             ("aws:currenttime", "2031-01-01T00:00:00Z")]
    for key, value in flips:
        for first in (base, {**base, key: value}):
            authorizer = Authorizer(Caller.from_arn("arn:app:sts::111122223333:assumed-role/deploy/s1"),
                                    identity=PolicySet([IDENTITY]), boundary=BOUNDARY, session=SESSION,
                                    guardrails=GUARDRAILS)
            second = {**base, key: value} if first is base else base
            assert authorizer.authorize("orders:DeleteOrder", "*", first).allowed is (first is base), key
            assert authorizer.authorize("orders:DeleteOrder", "*", second).allowed is (second is base), key
