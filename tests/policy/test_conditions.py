"""Every condition operator, IfExists, set qualifiers, combination logic, typing, and the MFA keys."""

from __future__ import annotations

from typing import Any

import pytest

from iam_middleware.policy import DecisionKind

from ._helpers import ACCOUNT, allow, condition_holds, decide, deny, doc, errors

# (operator, policy value, request value, expected): one matching and one failing case per operator at least.
OPERATOR_CASES = [
    ("StringEquals", "abc", "abc", True),
    ("StringEquals", "abc", "ABC", False),
    ("StringEquals", "a*", "abc", False),  # wildcards are literal without Like
    ("StringEquals", "a*", "a*", True),
    ("StringNotEquals", "abc", "abd", True),
    ("StringNotEquals", "abc", "abc", False),
    ("StringEqualsIgnoreCase", "Abc", "aBC", True),
    ("StringEqualsIgnoreCase", "Abc", "abd", False),
    ("StringNotEqualsIgnoreCase", "Abc", "aBC", False),
    ("StringNotEqualsIgnoreCase", "Abc", "abd", True),
    ("StringLike", "a*c", "abbbc", True),
    ("StringLike", "a?c", "abc", True),
    ("StringLike", "a?c", "ac", False),
    ("StringLike", "home/*", "home/alice/x", True),
    ("StringNotLike", "a*", "abc", False),
    ("StringNotLike", "a*", "xbc", True),
    ("NumericEquals", "10", "10", True),
    ("NumericEquals", "10", "10.0", True),
    ("NumericEquals", "10", "11", False),
    ("NumericNotEquals", "10", "11", True),
    ("NumericNotEquals", "10", "10", False),
    ("NumericLessThan", "10", "9.5", True),
    ("NumericLessThan", "10", "10", False),
    ("NumericLessThanEquals", "10", "10", True),
    ("NumericLessThanEquals", "10", "11", False),
    ("NumericGreaterThan", "10", "11", True),
    ("NumericGreaterThan", "10", "10", False),
    ("NumericGreaterThanEquals", "10", "10", True),
    ("NumericGreaterThanEquals", "10", "-3", False),
    ("NumericLessThan", "-1.5", "-2", True),
    ("DateEquals", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z", True),
    ("DateEquals", "2020-01-01T00:00:00Z", "1577836800", True),  # ISO policy, epoch request: same instant
    ("DateEquals", "1577836800", "2020-01-01T01:00:00+01:00", True),  # offsets count
    ("DateEquals", "2020-01-01", "2020-01-01T00:00:00Z", True),  # a date alone is midnight UTC
    ("DateEquals", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00.001Z", False),
    ("DateNotEquals", "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z", True),
    ("DateNotEquals", "2020-01-01T00:00:00Z", "1577836800", False),
    ("DateLessThan", "2020-01-01T00:00:00Z", "2019-12-31T23:59:59Z", True),
    ("DateLessThan", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z", False),
    ("DateLessThanEquals", "1577836800", "2020-01-01T00:00:00Z", True),
    ("DateLessThanEquals", "1577836800", "1577836801", False),
    ("DateGreaterThan", "2020-01-01T00:00:00Z", "2020-01-01T00:00:01Z", True),
    ("DateGreaterThan", "2020-01-01T00:00:00-05:00", "2020-01-01T04:59:59Z", False),
    ("DateGreaterThanEquals", "2020-01-01T00:00:00Z", "1577836800", True),
    ("DateGreaterThanEquals", "2020-01-01T00:00:00Z", "1577836799", False),
    ("Bool", "true", "true", True),
    ("Bool", "true", "false", False),
    ("Bool", "false", "false", True),
    ("Bool", "true", "TRUE", True),
    ("Bool", "true", "yes", False),
    ("BinaryEquals", "QmluYXJ5VmFsdWVJbkJhc2U2NA==", "QmluYXJ5VmFsdWVJbkJhc2U2NA==", True),
    ("BinaryEquals", "QmluYXJ5VmFsdWVJbkJhc2U2NA==", "QmluYXJ5VmFsdWVJbkJhc2U2NQ==", False),
    ("IpAddress", "203.0.113.0/24", "203.0.113.77", True),
    ("IpAddress", "203.0.113.0/24", "203.0.114.1", False),
    ("IpAddress", "203.0.113.7", "203.0.113.7", True),  # a bare address is /32
    ("IpAddress", "203.0.113.7", "203.0.113.8", False),
    ("IpAddress", "2001:db8::/32", "2001:db8:1234::1", True),
    ("IpAddress", "2001:db8::/32", "2001:db9::1", False),
    ("IpAddress", "2001:db8::1", "2001:db8::1", True),  # a bare IPv6 address is /128
    ("IpAddress", "203.0.113.0/24", "::ffff:203.0.113.9", True),  # IPv4-mapped request
    ("IpAddress", "::ffff:203.0.113.0/120", "203.0.113.9", True),  # IPv4-mapped policy range
    ("IpAddress", "2001:db8::/32", "203.0.113.9", False),  # another family never matches
    ("IpAddress", "203.0.113.0/24", "not-an-ip", False),
    ("NotIpAddress", "203.0.113.0/24", "198.51.100.1", True),
    ("NotIpAddress", "203.0.113.0/24", "203.0.113.1", False),
    ("NotIpAddress", "203.0.113.0/24", "not-an-ip", True),
    ("ArnEquals", "arn:aws:sns:us-east-1:111122223333:topic", "arn:aws:sns:us-east-1:111122223333:topic", True),
    ("ArnEquals", "arn:aws:sns:*:111122223333:*", "arn:aws:sns:eu-west-1:111122223333:t", True),
    ("ArnEquals", "arn:aws:sns:*:111122223333:*", "arn:aws:sns:eu-west-1:444455556666:t", False),
    ("ArnLike", "arn:aws:iam::*:role/Admin?", "arn:aws:iam::111122223333:role/Admin1", True),
    ("ArnLike", "arn:aws:iam::*:role/Admin?", "arn:aws:iam::111122223333:role/Admin12", False),
    ("ArnNotEquals", "arn:aws:sns:*:111122223333:*", "arn:aws:sns:eu-west-1:444455556666:t", True),
    ("ArnNotEquals", "arn:aws:sns:*:111122223333:*", "arn:aws:sns:eu-west-1:111122223333:t", False),
    ("ArnNotLike", "arn:aws:iam::*:role/Admin*", "arn:aws:iam::111122223333:role/Dev", True),
    ("ArnNotLike", "arn:aws:iam::*:role/Admin*", "arn:aws:iam::111122223333:role/AdminX", False),
]


@pytest.mark.parametrize(("operator", "policy_value", "request_value", "expected"), OPERATOR_CASES)
def test_operator(operator: str, policy_value: str, request_value: str, expected: bool) -> None:
    assert condition_holds(operator, "k", policy_value, {"k": request_value}) is expected


@pytest.mark.parametrize(("operator", "policy_value", "request_value", "expected"), OPERATOR_CASES)
def test_ifexists_is_true_when_the_key_is_missing_and_the_operator_otherwise(
    operator: str, policy_value: str, request_value: str, expected: bool
) -> None:
    assert condition_holds(f"{operator}IfExists", "k", policy_value, {}) is True
    assert condition_holds(f"{operator}IfExists", "k", policy_value, {"k": request_value}) is expected


NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "NumericNotEquals", "DateNotEquals",
           "NotIpAddress", "ArnNotEquals", "ArnNotLike"}
OPERATORS = sorted({case[0] for case in OPERATOR_CASES})


@pytest.mark.parametrize("operator", OPERATORS)
def test_a_missing_key_fails_every_operator_but_the_negated_ones(operator: str) -> None:
    value = next(case[1] for case in OPERATOR_CASES if case[0] == operator)
    assert condition_holds(operator, "k", value, {"other": "x"}) is (operator in NEGATED)


def test_negated_operators_are_nor_over_the_policy_values() -> None:
    values = ["a", "b"]
    assert condition_holds("StringNotEquals", "k", values, {"k": "c"})
    assert not condition_holds("StringNotEquals", "k", values, {"k": "a"})
    assert not condition_holds("StringNotEquals", "k", values, {"k": "b"})
    assert not condition_holds("NotIpAddress", "k", ["10.0.0.0/8", "192.0.2.0/24"], {"k": "192.0.2.5"})
    assert condition_holds("NotIpAddress", "k", ["10.0.0.0/8", "192.0.2.0/24"], {"k": "198.51.100.5"})


def test_positive_operators_are_or_over_the_policy_values() -> None:
    assert condition_holds("StringEquals", "k", ["a", "b"], {"k": "b"})
    assert condition_holds("NumericEquals", "k", ["1", "2"], {"k": "2"})
    assert not condition_holds("StringEquals", "k", ["a", "b"], {"k": "c"})


def test_operators_and_keys_are_anded() -> None:
    policy = doc(allow(Condition={
        "StringEquals": {"aws:username": "alice", "aws:PrincipalTag/team": "blue"},
        "Bool": {"aws:SecureTransport": "true"},
    }))
    good = {"aws:username": "alice", "aws:PrincipalTag/team": "blue", "aws:SecureTransport": "true"}
    assert decide(policy, context=good).allowed
    for key, wrong in (("aws:username", "bob"), ("aws:PrincipalTag/team", "red"), ("aws:SecureTransport", "false")):
        assert not decide(policy, context={**good, key: wrong}).allowed


def test_condition_keys_are_case_insensitive_both_ways() -> None:
    assert condition_holds("StringEquals", "AWS:SourceIP", "x", {"aws:sourceip": "x"})
    assert condition_holds("StringEquals", "aws:PrincipalTag/Team", "x", {"AWS:principaltag/TEAM": "x"})


@pytest.mark.parametrize(
    ("operator", "policy_value", "request_value"),
    [
        ("Bool", True, "true"),
        ("Bool", "true", True),
        ("Bool", False, False),
        ("NumericEquals", 3600, "3600"),
        ("NumericLessThanEquals", "3600", 3600),
        ("StringEquals", 3600, "3600"),
        ("StringEquals", "3600", 3600),
        ("StringEquals", True, "true"),
        ("StringEquals", "true", True),
        ("StringEquals", "1.0", 1.0),  # a float keeps the form JSON wrote it in
        ("DateGreaterThan", 1577836800, "2020-01-01T00:00:01Z"),
        ("DateLessThan", "2020-01-01T00:00:00Z", 1577836799),
    ],
)
def test_values_are_typed_by_the_operator(operator: str, policy_value: Any, request_value: Any) -> None:
    assert condition_holds(operator, "k", policy_value, {"k": request_value})


def test_json_true_is_not_the_string_yes() -> None:
    assert not condition_holds("StringEquals", "k", True, {"k": "True"})
    assert not condition_holds("StringEquals", "k", 1, {"k": "1.0"})


@pytest.mark.parametrize(
    ("operator", "policy_value", "request_value"),
    [
        ("NumericEquals", "1", "one"),
        ("NumericEquals", "1000", "1_000"),
        ("NumericEquals", "1", " 1"),
        ("NumericEquals", "1", "NaN"),
        ("NumericLessThan", "1", "-Infinity"),
        ("DateLessThan", "2030-01-01T00:00:00Z", "yesterday"),
        ("DateLessThan", "2030-01-01T00:00:00Z", "2020-13-01"),
        ("Bool", "false", "0"),
        ("BinaryEquals", "YQ==", "not base64!"),
        ("IpAddress", "0.0.0.0/0", "256.1.1.1"),
        ("ArnLike", "arn:*:*:*:*:*", "not-an-arn"),
    ],
)
def test_unparsable_request_values_match_nothing(operator: str, policy_value: str, request_value: str) -> None:
    assert not condition_holds(operator, "k", policy_value, {"k": request_value})


@pytest.mark.parametrize(
    ("operator", "request_value"),
    [("NumericNotEquals", "one"), ("DateNotEquals", "yesterday"), ("NotIpAddress", "256.1.1.1"),
     ("ArnNotLike", "not-an-arn")],
)
def test_unparsable_request_values_satisfy_negated_operators(operator: str, request_value: str) -> None:
    value = {"NumericNotEquals": "1", "DateNotEquals": "2020-01-01", "NotIpAddress": "10.0.0.0/8",
             "ArnNotLike": "arn:aws:s3:::*"}[operator]
    assert condition_holds(operator, "k", value, {"k": request_value})


@pytest.mark.parametrize(
    ("operator", "value"),
    [("NumericEquals", "ten"), ("NumericEquals", "1_000"), ("Bool", "yes"), ("BinaryEquals", "%%%"),
     ("IpAddress", "10.0.0.0/33"), ("IpAddress", "host.example"), ("NotIpAddress", ""), ("Null", "maybe")],
)
def test_unparsable_policy_values_are_refused_with_their_location(operator: str, value: str) -> None:
    (issue,) = errors(doc(allow(Condition={operator: {"aws:SourceIp": value}})))
    assert issue.location == f'Statement[0].Condition.{operator}."aws:SourceIp"'


def test_null_tests_existence() -> None:
    assert condition_holds("Null", "k", "true", {})
    assert not condition_holds("Null", "k", "true", {"k": "v"})
    assert condition_holds("Null", "k", "false", {"k": "v"})
    assert not condition_holds("Null", "k", "false", {})
    assert condition_holds("Null", "k", True, {"k": None})  # JSON null is no value
    assert condition_holds("Null", "k", "true", {"k": []})  # an empty list is no value
    assert condition_holds("Null", "k", "true", {"k": ""})  # an empty data set (IAM UG: "empty values")


def test_null_takes_no_ifexists_and_no_variables() -> None:
    (issue,) = errors(doc(allow(Condition={"NullIfExists": {"k": "true"}})))
    assert "Null with IfExists" in issue.message
    errors(doc(allow(Condition={"Null": {"k": "${aws:username}"}})))


def test_unknown_and_malformed_operator_names() -> None:
    for name in ("StringEqual", "ForSomeValues:StringEquals", "IfExists", "stringequals"):
        (issue,) = errors(doc(allow(Condition={name: {"k": "v"}})))
        assert issue.location == f"Statement[0].Condition.{name}"


# IAM User Guide, multivalued context key examples: Deny with ForAllValues:StringNotLike {aws:TagKeys: "key1*"}.
@pytest.mark.parametrize(
    ("tag_keys", "denied"),
    [(["key1:legal"], False), (["key1:hr", "key1:personnel"], False), (["key2:audit"], True), (None, True),
     (["key1:hr", "key2:audit"], False), ([], True), ("", True)],
)
def test_docs_table_forallvalues_stringnotlike_deny(tag_keys: Any, denied: bool) -> None:
    # Per request value: a Deny with ForAllValues:StringNotLike applies only if no tag key starts with key1.
    condition = {"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}}
    policy = doc(allow(action="iam:TagUser"), deny(action=["iam:Tag*", "iam:UnTag*"], Condition=condition))
    context = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    decision = decide(policy, action="iam:TagUser", context=context)
    assert (decision.kind is DecisionKind.EXPLICITLY_DENIED) is denied


@pytest.mark.parametrize(
    ("tag_keys", "denied"),
    [(["key1:a", "key2:b"], False), (["key3:x"], True), (["key3:x", "key4:y"], True), (["key1:a", "key3:x"], False),
     (None, False)],
)
def test_docs_pattern_null_false_keeps_a_missing_key_from_matching(tag_keys: Any, denied: bool) -> None:
    policy = doc(allow(action="iam:TagUser"), deny(action="iam:Tag*", Condition={
        "Null": {"aws:TagKeys": "false"},
        "ForAllValues:StringNotLike": {"aws:TagKeys": ["key1*", "key2*"]},
    }))
    context = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    assert (decide(policy, action="iam:TagUser", context=context).kind is DecisionKind.EXPLICITLY_DENIED) is denied


# IAM User Guide: Deny with ForAnyValue:StringEquals {aws:TagKeys: [environment, webserver]}.
@pytest.mark.parametrize(
    ("tag_keys", "denied"),
    [(["environment"], True), (["webserver", "other"], True), (["other"], False), (None, False), ([], False)],
)
def test_docs_table_foranyvalue_stringequals_deny(tag_keys: Any, denied: bool) -> None:
    policy = doc(allow(action="ec2:CreateSnapshot"), deny(action="ec2:CreateSnapshot", Condition={
        "ForAnyValue:StringEquals": {"aws:TagKeys": ["environment", "webserver"]}}))
    context = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    decision = decide(policy, action="ec2:CreateSnapshot", context=context)
    assert (decision.kind is DecisionKind.EXPLICITLY_DENIED) is denied


@pytest.mark.parametrize(
    ("tag_keys", "allowed"),
    [(None, True), ([], True), ("", True), (["DataClass"], True), (["DataClass", "Owner"], True),
     (["DataClass", "Dept"], False), (["Dept", "SIC"], False)],
)
def test_forallvalues_allow_is_true_for_missing_or_empty_and_subsets(tag_keys: Any, allowed: bool) -> None:
    context = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    assert condition_holds("ForAllValues:StringEquals", "aws:TagKeys", ["DataClass", "Owner"], context) is allowed


@pytest.mark.parametrize(
    ("tag_keys", "allowed"),
    [(None, False), ([], False), ("", False), (["Dept", "SIC"], False), (["DataClass", "Dept"], True),
     (["Owner"], True)],
)
def test_foranyvalue_allow_needs_one_match(tag_keys: Any, allowed: bool) -> None:
    context = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    assert condition_holds("ForAnyValue:StringEquals", "aws:TagKeys", ["DataClass", "Owner"], context) is allowed


def test_qualifiers_with_negated_operators_apply_per_request_value() -> None:
    holds = condition_holds
    # ForAnyValue:StringNotEquals: at least one request value equals none of the policy values.
    assert holds("ForAnyValue:StringNotEquals", "aws:TagKeys", ["a", "b"], {"aws:TagKeys": ["a", "c"]})
    assert not holds("ForAnyValue:StringNotEquals", "aws:TagKeys", ["a", "b"], {"aws:TagKeys": ["a", "b"]})
    assert not holds("ForAnyValue:StringNotEquals", "aws:TagKeys", ["a", "b"], {})
    # ForAllValues:StringNotEquals: no request value equals any policy value.
    assert holds("ForAllValues:StringNotEquals", "aws:TagKeys", ["a", "b"], {"aws:TagKeys": ["c", "d"]})
    assert not holds("ForAllValues:StringNotEquals", "aws:TagKeys", ["a", "b"], {"aws:TagKeys": ["c", "a"]})
    assert holds("ForAllValues:StringNotEquals", "aws:TagKeys", ["a", "b"], {})


def test_qualifiers_with_ifexists() -> None:
    assert condition_holds("ForAnyValue:StringEqualsIfExists", "aws:TagKeys", "a", {})
    assert condition_holds("ForAllValues:StringEqualsIfExists", "aws:TagKeys", "a", {})
    assert not condition_holds("ForAnyValue:StringEqualsIfExists", "aws:TagKeys", "a", {"aws:TagKeys": ["b"]})


def test_qualifiers_work_with_other_families() -> None:
    assert condition_holds("ForAllValues:NumericLessThan", "k", "10", {"k": [1, "2", 9.5]})
    assert not condition_holds("ForAllValues:NumericLessThan", "k", "10", {"k": [1, 11]})
    assert condition_holds("ForAnyValue:IpAddress", "k", "10.0.0.0/8", {"k": ["192.0.2.1", "10.1.1.1"]})
    assert condition_holds("ForAnyValue:ArnLike", "aws:PrincipalServiceNamesList", "arn:aws:*:*:*:*",
                           {"aws:PrincipalServiceNamesList": ["x", "arn:aws:s3:::b"]})


def test_null_with_a_qualifier_is_constant() -> None:
    for context in ({}, {"k": ["v"]}):
        assert condition_holds("ForAllValues:Null", "k", "true", context)
        assert condition_holds("ForAllValues:Null", "k", "false", context)
        assert not condition_holds("ForAnyValue:Null", "k", "true", context)


def test_unqualified_operator_over_a_multivalued_request_value() -> None:
    assert condition_holds("StringEquals", "k", "a", {"k": ["b", "a"]})
    assert not condition_holds("StringEquals", "k", "a", {"k": ["b", "c"]})
    assert condition_holds("StringNotEquals", "k", "a", {"k": ["b", "c"]})
    assert not condition_holds("StringNotEquals", "k", "a", {"k": ["b", "a"]})


def test_empty_string_is_a_value_for_unqualified_operators() -> None:
    assert condition_holds("StringLike", "s3:prefix", ["", "home/"], {"s3:prefix": ""})
    assert not condition_holds("StringEquals", "s3:prefix", "home/", {"s3:prefix": ""})


def test_allow_with_false_condition_is_not_a_deny() -> None:
    # moto returns DENIED here; in IAM the statement just does not apply, so another statement can allow.
    policy = doc(allow(Condition={"StringEquals": {"aws:username": "bob"}}), allow())
    assert decide(policy, context={"aws:username": "alice"}).allowed
    alone = decide(doc(allow(Condition={"StringEquals": {"aws:username": "bob"}})), context={"aws:username": "alice"})
    assert alone.kind is DecisionKind.IMPLICITLY_DENIED


def test_missing_context_keys_are_reported() -> None:
    policy = doc(allow(Condition={"StringEquals": {"aws:PrincipalTag/Team": "blue"},
                                  "BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}))
    decision = decide(policy)
    assert decision.missing_context_keys == ("aws:PrincipalTag/Team",)
    assert decide(policy, context={"aws:PrincipalTag/team": "blue"}).missing_context_keys == ()


MFA_KEY = "aws:MultiFactorAuthPresent"
MFA_SESSION = {MFA_KEY: "true", "aws:MultiFactorAuthAge": "120"}
NO_MFA_SESSION = {MFA_KEY: "false"}
ACCESS_KEY: dict[str, str] = {}  # long-term access keys: the MFA keys are absent, not false


def _mfa(statement: dict[str, Any], context: dict[str, str]) -> DecisionKind:
    return decide(doc(allow(), statement) if statement["Effect"] == "Deny" else doc(statement), context=context).kind


@pytest.mark.parametrize(
    ("context", "expected"),
    [(ACCESS_KEY, DecisionKind.ALLOWED), (NO_MFA_SESSION, DecisionKind.EXPLICITLY_DENIED),
     (MFA_SESSION, DecisionKind.ALLOWED)],
)
def test_mfa_deny_bool_false_does_not_catch_access_keys(context: dict[str, str], expected: DecisionKind) -> None:
    assert _mfa(deny(Condition={"Bool": {MFA_KEY: "false"}}), context) is expected


@pytest.mark.parametrize(
    ("context", "expected"),
    [(ACCESS_KEY, DecisionKind.EXPLICITLY_DENIED), (NO_MFA_SESSION, DecisionKind.EXPLICITLY_DENIED),
     (MFA_SESSION, DecisionKind.ALLOWED)],
)
def test_mfa_deny_boolifexists_false_catches_both(context: dict[str, str], expected: DecisionKind) -> None:
    assert _mfa(deny(Condition={"BoolIfExists": {MFA_KEY: "false"}}), context) is expected


@pytest.mark.parametrize(
    ("context", "expected"),
    [(ACCESS_KEY, DecisionKind.ALLOWED), (NO_MFA_SESSION, DecisionKind.IMPLICITLY_DENIED),
     (MFA_SESSION, DecisionKind.ALLOWED)],
)
def test_mfa_allow_boolifexists_true_admits_mfa_sessions_and_access_keys(
    context: dict[str, str], expected: DecisionKind
) -> None:
    assert _mfa(allow(Condition={"BoolIfExists": {MFA_KEY: "true"}}), context) is expected


@pytest.mark.parametrize(
    ("context", "expected"),
    [(ACCESS_KEY, DecisionKind.IMPLICITLY_DENIED), (NO_MFA_SESSION, DecisionKind.IMPLICITLY_DENIED),
     (MFA_SESSION, DecisionKind.ALLOWED)],
)
def test_mfa_allow_bool_true_admits_only_mfa_sessions(context: dict[str, str], expected: DecisionKind) -> None:
    assert _mfa(allow(Condition={"Bool": {MFA_KEY: "true"}}), context) is expected


@pytest.mark.parametrize(
    ("context", "allowed"),
    [({"aws:MultiFactorAuthAge": "3600"}, True), ({"aws:MultiFactorAuthAge": 120}, True),
     ({"aws:MultiFactorAuthAge": "3601"}, False), (ACCESS_KEY, False)],
)
def test_mfa_age_within_the_last_hour(context: dict[str, Any], allowed: bool) -> None:
    statement = allow(Condition={"NumericLessThanEquals": {"aws:MultiFactorAuthAge": "3600"}})
    assert (_mfa(statement, context) is DecisionKind.ALLOWED) is allowed


def test_dates_span_iam_years_and_fractions() -> None:
    assert condition_holds("DateGreaterThan", "k", "-292275054", {"k": "0001-01-01T00:00:00Z"})  # year -292275054
    assert condition_holds("DateGreaterThan", "k", "9999-12-31T23:59:59Z", {"k": "10000-01-01T00:00:00Z"})
    nanos = "2020-01-01T00:00:00.00000000{}Z"
    assert condition_holds("DateLessThan", "k", nanos.format(2), {"k": nanos.format(1)})
    assert condition_holds("DateEquals", "k", "2016-12-13t2:00:00.5+23", {"k": "2016-12-12T03:00:00.500Z"})
    assert condition_holds("DateEquals", "k", "01T", {"k": "0001-01-01T00:00:00Z"})


def test_condition_account_key_example() -> None:
    policy = doc(allow(Condition={"StringEquals": {"aws:ResourceAccount": ACCOUNT}}))
    assert decide(policy, context={"aws:ResourceAccount": ACCOUNT}).allowed
    assert not decide(policy, context={"aws:ResourceAccount": "444455556666"}).allowed
