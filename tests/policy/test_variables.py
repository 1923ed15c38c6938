"""Policy variables: substitution, defaults, special literals, versions, unresolved values, malformed references."""

from __future__ import annotations

from typing import Any

import pytest

from iam_middleware.policy import Caller, DecisionKind, PolicySet, evaluate, parse_policy

from ._helpers import allow, condition_holds, decide, deny, doc, errors

HOME = "arn:aws:s3:::bucket/home/${aws:username}/*"


def test_username_in_resource() -> None:
    policy = doc(allow(resource=HOME))
    assert decide(policy, resource="arn:aws:s3:::bucket/home/alice/notes", context={"aws:username": "alice"}).allowed
    assert not decide(policy, resource="arn:aws:s3:::bucket/home/bob/notes", context={"aws:username": "alice"}).allowed


def test_variable_names_are_case_insensitive() -> None:
    policy = doc(allow(resource="arn:aws:s3:::bucket/${AWS:PrincipalTag/Team}/*"))
    context = {"aws:principaltag/team": "blue"}
    assert decide(policy, resource="arn:aws:s3:::bucket/blue/x", context=context).allowed
    assert not decide(policy, resource="arn:aws:s3:::bucket/red/x", context=context).allowed


def test_principal_tag_in_condition() -> None:
    policy = doc(allow(Condition={"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}))
    assert decide(policy, context={"aws:PrincipalTag/team": "blue", "aws:ResourceTag/team": "blue"}).allowed
    assert not decide(policy, context={"aws:PrincipalTag/team": "blue", "aws:ResourceTag/team": "red"}).allowed


def test_default_value_is_used_only_when_the_key_is_absent() -> None:
    policy = doc(allow(resource="arn:aws:s3:::bucket/${aws:PrincipalTag/team, 'company-wide'}/*"))
    assert decide(policy, resource="arn:aws:s3:::bucket/company-wide/x").allowed
    assert not decide(policy, resource="arn:aws:s3:::bucket/company-wide/x",
                      context={"aws:PrincipalTag/team": "blue"}).allowed
    assert decide(policy, resource="arn:aws:s3:::bucket/blue/x", context={"aws:PrincipalTag/team": "blue"}).allowed
    assert decide(policy, resource="arn:aws:s3:::bucket/company-wide/x").missing_context_keys == ()


def test_default_in_a_condition() -> None:
    assert condition_holds("StringEquals", "k", "${aws:PrincipalTag/team, 'none'}", {"k": "none"})
    assert condition_holds("StringEquals", "k", "${aws:PrincipalTag/team, ''}", {"k": ""})


@pytest.mark.parametrize(("variable", "literal"), [("${*}", "*"), ("${?}", "?"), ("${$}", "$")])
def test_special_literals_match_only_themselves(variable: str, literal: str) -> None:
    policy = doc(allow(resource=f"arn:aws:s3:::bucket/a{variable}b"))
    assert decide(policy, resource=f"arn:aws:s3:::bucket/a{literal}b").allowed
    assert not decide(policy, resource="arn:aws:s3:::bucket/axb").allowed
    assert condition_holds("StringLike", "k", f"a{variable}b", {"k": f"a{literal}b"})
    assert not condition_holds("StringLike", "k", f"a{variable}b", {"k": "axb"})


def test_a_substituted_star_is_never_a_wildcard() -> None:
    context = {"aws:username": "*"}
    policy = doc(allow(resource=HOME))
    assert not decide(policy, resource="arn:aws:s3:::bucket/home/bob/x", context=context).allowed
    assert decide(policy, resource="arn:aws:s3:::bucket/home/*/x", context=context).allowed
    assert not condition_holds("StringLike", "s3:prefix", "home/${aws:username}", {"s3:prefix": "home/bob",
                                                                                     **context})
    assert condition_holds("StringLike", "s3:prefix", "home/${aws:username}/*", {"s3:prefix": "home/*/a", **context})
    assert not condition_holds("ArnLike", "aws:SourceArn", "arn:aws:s3:::${aws:username}",
                               {"aws:SourceArn": "arn:aws:s3:::bucket", **context})
    question = {"aws:username": "a?c"}
    assert not decide(policy, resource="arn:aws:s3:::bucket/home/abc/x", context=question).allowed


def test_policy_text_keeps_its_wildcards_around_a_variable() -> None:
    assert condition_holds("StringLike", "s3:prefix", "home/${aws:username}/*", {"s3:prefix": "home/alice/a/b",
                                                                                  "aws:username": "alice"})


@pytest.mark.parametrize("version", ["2008-10-17", None])
def test_old_or_absent_version_treats_variables_as_literal_text(version: str | None) -> None:
    policy = doc(allow(resource=HOME), version=version)
    context = {"aws:username": "alice"}
    assert not decide(policy, resource="arn:aws:s3:::bucket/home/alice/x", context=context).allowed
    assert decide(policy, resource="arn:aws:s3:::bucket/home/${aws:username}/x", context=context).allowed
    assert condition_holds("StringEquals", "k", "${aws:username}", {"k": "${aws:username}"}, version=version)
    assert not condition_holds("StringEquals", "k", "${aws:username}", {"k": "alice", **context},
                               version=version)


def test_unresolved_variable_in_resource_matches_nothing() -> None:
    policy = doc(allow(resource=HOME))
    for resource in ("arn:aws:s3:::bucket/home//x", "arn:aws:s3:::bucket/home/${aws:username}/x"):
        decision = decide(policy, resource=resource)
        assert not decision.allowed
        assert decision.missing_context_keys == ("aws:username",)


def test_unresolved_variable_in_notresource_excludes_nothing() -> None:
    policy = doc(allow(), deny(resource=None, NotResource=HOME))
    assert decide(policy, resource="arn:aws:s3:::bucket/home/alice/x").kind is DecisionKind.EXPLICITLY_DENIED
    context = {"aws:username": "alice"}
    assert decide(policy, resource="arn:aws:s3:::bucket/home/alice/x", context=context).allowed


def test_unresolved_variable_in_conditions() -> None:
    assert not condition_holds("StringEquals", "k", "${aws:username}", {"k": "alice"})
    assert not condition_holds("StringLike", "k", "${aws:username}*", {"k": "alice"})
    assert condition_holds("StringNotEquals", "k", "${aws:username}", {"k": "alice"})
    assert condition_holds("StringNotLike", "k", "${aws:username}*", {"k": "alice"})
    assert condition_holds("ArnNotLike", "k", "arn:aws:iam::*:user/${aws:username}", {"k": "arn:aws:iam::1:user/a"})


def test_a_multivalued_key_cannot_be_a_variable() -> None:
    context = {"aws:TagKeys": ["a", "b"], "k": "a"}
    assert not condition_holds("StringEquals", "k", "${aws:TagKeys}", context)


@pytest.mark.parametrize(("value", "text"), [(True, "true"), (42, "42"), (1.5, "1.5")])
def test_scalar_context_values_substitute_as_their_json_text(value: Any, text: str) -> None:
    policy = doc(allow(resource="arn:aws:s3:::bucket/${k}/*"))
    assert decide(policy, resource=f"arn:aws:s3:::bucket/{text}/x", context={"k": value}).allowed


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("${aws:username", "Missing brace in variable"),
        ("${}", "Empty variable"),
        ("${ }", "Empty variable"),
        ("${aws:username, default}", "Missing quote in variable"),
        ("${aws:username, 'default}", "Missing quote in variable"),
        ("${aws:username,'default'}", "Missing space in variable"),
        ("${ aws:username}", "Unsupported space in variable"),
        ("${aws: username}", "Unsupported space in variable"),
        ("${aws:${x}}", "Invalid character in variable name"),
    ],
)
def test_malformed_variables_are_refused_with_the_location(reference: str, message: str) -> None:
    (issue,) = errors(doc(allow(resource=f"arn:aws:s3:::bucket/{reference}")))
    assert issue.location == "Statement[0].Resource" and issue.message.startswith(message), str(issue)
    (issue,) = errors(doc(allow(), allow(Condition={"StringLike": {"s3:prefix": ["ok", reference]}})))
    assert issue.location == 'Statement[1].Condition.StringLike."s3:prefix"' and issue.message.startswith(message)


@pytest.mark.parametrize(
    ("statement", "location"),
    [
        (allow(action="s3:${aws:username}"), "Statement[0].Action"),

        (allow(Sid="Home${aws:username}"), "Statement[0].Sid"),
    ],
)
def test_variables_are_refused_in_action_sid_partition_and_service(statement: dict[str, Any], location: str) -> None:
    (issue,) = errors(doc(statement))
    assert issue.location == location and issue.message.startswith("Variable unsupported in element")


@pytest.mark.parametrize(
    "operator",
    ["NumericEquals", "DateEquals", "Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "NumericLessThanIfExists",
     "ForAnyValue:DateGreaterThan"],
)
def test_variables_are_refused_with_non_string_operators(operator: str) -> None:
    (issue,) = errors(doc(allow(Condition={operator: {"k": "${aws:username}"}})))
    assert issue.location == f'Statement[0].Condition.{operator}."k"'
    assert issue.message.startswith("Invalid variable for operator")


def test_variable_in_principal_is_refused() -> None:
    (issue,) = errors(doc(allow(Principal={"AWS": "arn:aws:iam::111122223333:user/${aws:username}"})), "resource")
    assert issue.location == "Statement[0].Principal.AWS" and issue.message.startswith("Variable unsupported")


def test_arn_operator_with_variable() -> None:
    policy_value = "arn:aws:iam::111122223333:user/${aws:username}"
    context = {"aws:username": "alice", "aws:PrincipalArn": "arn:aws:iam::111122223333:user/alice"}
    assert condition_holds("ArnEquals", "aws:PrincipalArn", policy_value, context)
    assert not condition_holds("ArnEquals", "aws:PrincipalArn", policy_value, {**context, "aws:username": "bob"})


def test_missing_variable_key_is_reported_once() -> None:
    decision = decide(doc(allow(resource=HOME, Condition={"StringLike": {"s3:prefix": "${aws:username}/*"}})),
                      resource="arn:aws:s3:::bucket/home/x/y", context={"s3:prefix": "x/"})
    assert decision.missing_context_keys == ("aws:username",)


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        ("arn:${aws:partition}:s3:::bucket", 'Partition "${aws:partition}" is not valid'),
        ("arn:aws:${aws:service}:::bucket", "Resource vendor must be fully qualified"),
    ],
)
def test_variables_never_name_the_partition_or_the_service(resource: str, message: str) -> None:
    (issue,) = errors(doc(allow(resource=resource)))
    assert issue.location == "Statement[0].Resource" and issue.message.startswith(message), str(issue)


def test_variables_in_the_region_and_account_segments_are_accepted_and_substituted() -> None:
    # AWS ships such a managed policy (AmazonTimestreamInfluxDBServiceRolePolicy v2), whatever the docs say.
    policy = parse_policy(doc(allow(action="kms:Decrypt", resource="arn:*:kms:*:${aws:PrincipalAccount}:key/*")))
    caller = Caller.from_arn("arn:aws:iam::111122223333:user/alice")
    identity = PolicySet([policy])
    mine = evaluate(caller, "kms:Decrypt", "arn:aws:kms:us-east-1:111122223333:key/k",
                    {"aws:PrincipalAccount": "111122223333"}, identity=identity)
    theirs = evaluate(caller, "kms:Decrypt", "arn:aws:kms:us-east-1:444455556666:key/k",
                      {"aws:PrincipalAccount": "111122223333"}, identity=identity)
    assert mine.allowed and not theirs.allowed
