"""The linter: Access Analyzer-style findings on valid documents, each with a location and a severity below ERROR."""

from __future__ import annotations

from typing import Any

import pytest

from iam_middleware.policy import PolicyIssue, PolicyKind, Severity, parse_policy
from iam_middleware.policy._lint import lint_policy

from ._helpers import allow, deny, doc, errors


def findings(document: dict[str, Any], kind: PolicyKind = PolicyKind.IDENTITY) -> list[PolicyIssue]:
    return lint_policy(parse_policy(document, kind=kind))


def codes(document: dict[str, Any], kind: PolicyKind = PolicyKind.IDENTITY) -> set[tuple[str, str]]:
    return {(issue.code, issue.location) for issue in findings(document, kind)}


def test_a_tidy_policy_has_no_findings() -> None:
    assert findings(doc(allow(Sid="Read", action=["s3:GetObject", "s3:ListBucket"], resource="arn:aws:s3:::b/*"),
                        deny(action="s3:DeleteObject", resource="arn:aws:s3:::b/*"))) == []


@pytest.mark.parametrize(
    ("document", "code", "location", "severity"),
    [
        (doc(allow(), version=None), "missing-version", "Version", Severity.WARNING),
        (doc(allow(), version="2008-10-17"), "old-version", "Version", Severity.WARNING),
        ({**doc(allow()), "Id": "x"}, "id-in-identity-policy", "Id", Severity.WARNING),
        (doc(allow(resource=None, NotResource="arn:aws:s3:::b")), "allow-with-not-resource",
         "Statement[0].NotResource", Severity.SECURITY_WARNING),
        (doc(allow(action=None, NotAction="iam:*")), "allow-with-not-action", "Statement[0].NotAction",
         Severity.SECURITY_WARNING),
        (doc(allow(action="iam:PassRole")), "passrole-star", "Statement[0]", Severity.SECURITY_WARNING),
        (doc(allow(resource="arn:aws:s3:::b/${aws:username}"), version="2008-10-17"), "variable-version",
         "Statement[0]", Severity.WARNING),
        (doc(allow(Condition={"ForAllValues:StringEquals": {"aws:username": "a"}})), "qualifier-single-valued",
         'Statement[0].Condition.ForAllValues:StringEquals."aws:username"', Severity.SECURITY_WARNING),
        (doc(deny(Condition={"StringEquals": {"aws:TagKeys": "a"}})), "missing-qualifier",
         'Statement[0].Condition.StringEquals."aws:TagKeys"', Severity.WARNING),
        (doc(allow(Condition={"ForAllValues:StringEquals": {"aws:TagKeys": "a"}})), "forallvalues-allow",
         'Statement[0].Condition.ForAllValues:StringEquals."aws:TagKeys"', Severity.WARNING),
        (doc(deny(Condition={"ForAnyValue:Null": {"aws:TagKeys": "true"}})), "null-qualifier",
         'Statement[0].Condition.ForAnyValue:Null."aws:TagKeys"', Severity.WARNING),
        (doc(allow(Condition={"StringEquals": {"s3:prefix": "home/*"}})), "wildcard-no-like",
         'Statement[0].Condition.StringEquals."s3:prefix"', Severity.WARNING),
        (doc(allow(Condition={"Bool": {"aws:SecureTransport": ["true", "false"]}})), "multiple-bool",
         'Statement[0].Condition.Bool."aws:SecureTransport"', Severity.WARNING),
        (doc(allow(Condition={"StringEquals": {"k": []}})), "empty-condition-values",
         'Statement[0].Condition.StringEquals."k"', Severity.WARNING),
        (doc(allow(action=["s3:Get*", "s3:GetObject"])), "redundant-action", "Statement[0].Action[1]",
         Severity.SUGGESTION),
        (doc(allow(action=["S3:GETOBJECT", "s3:GetObject"])), "redundant-action", "Statement[0].Action[1]",
         Severity.SUGGESTION),
        (doc(allow(resource=["arn:aws:s3:::b", "*"])), "redundant-resource", "Statement[0].Resource[0]",
         Severity.SUGGESTION),
        (doc(allow(Sid="A"), allow(Sid="B")), "redundant-statement", "Statement[1]", Severity.SUGGESTION),
        (doc(allow(action="s3:*"), allow(action="s3:GetObject", resource="arn:aws:s3:::b/*")), "shadowed-statement",
         "Statement[1]", Severity.SUGGESTION),
    ],
)
def test_finding(document: dict[str, Any], code: str, location: str, severity: Severity) -> None:
    matching = [i for i in findings(document) if i.code == code]
    assert [(i.location, i.severity) for i in matching] == [(location, severity)], [str(i) for i in findings(document)]


@pytest.mark.parametrize("version", [None, "2008-10-17"])
def test_old_versions_carry_iams_message(version: str | None) -> None:
    (issue,) = [i for i in findings(doc(allow(), version=version)) if i.location == "Version"]
    assert "Policy document must be version 2012-10-17 or greater." in issue.message


def test_what_iam_rejects_is_an_error_not_a_finding() -> None:
    """IAM User Guide, NotPrincipal: "You cannot use the NotPrincipal element in an IAM role trust policy"; with
    Allow it grants everyone not listed. Condition keys are case-insensitive, so one key twice is one key given
    twice."""
    not_principal = {"AWS": "111122223333"}
    allowing = errors(doc(allow(resource=None, NotPrincipal=not_principal)), PolicyKind.RESOURCE)
    assert any("NotPrincipal must be used with Deny" in i.message for i in allowing)
    in_trust = errors(doc(deny(action="sts:AssumeRole", resource=None, NotPrincipal=not_principal)), PolicyKind.TRUST)
    assert [i.location for i in in_trust] == ["Statement[0].NotPrincipal"]
    assert "trust policy" in in_trust[0].message
    twice = errors(doc(allow(Condition={"StringEquals": {"aws:username": "a", "AWS:UserName": "b"}})))
    assert [i.location for i in twice] == ['Statement[0].Condition.StringEquals."AWS:UserName"']
    assert "Duplicate condition key" in twice[0].message
    # Deny with NotPrincipal stays valid in resource policies.
    assert parse_policy(doc(deny(resource="*", NotPrincipal=not_principal)), kind=PolicyKind.RESOURCE).statements


def test_size_quota_counts_characters_without_white_space() -> None:
    statements = [allow(Sid=f"S{i}", resource=f"arn:aws:s3:::bucket-number-{i:04d}/*") for i in range(80)]
    assert ("size", "") in codes(doc(*statements))
    assert ("size", "") not in codes(doc(*statements[:10]))
    shared = [{**s, "Principal": "*"} for s in statements]
    assert ("size", "") not in codes(doc(*shared), PolicyKind.RESOURCE)


def test_special_literals_are_not_wildcards_to_the_linter() -> None:
    issues = findings(doc(allow(Condition={"StringEquals": {"k": "a${*}b"}})))
    assert "wildcard-no-like" not in {i.code for i in issues}


def test_conditions_and_notaction_prevent_shadowing() -> None:
    conditional = doc(allow(action="s3:*", Condition={"Bool": {"aws:SecureTransport": "true"}}), allow())
    assert "shadowed-statement" not in {i.code for i in findings(conditional)}
    other_effect = doc(deny(action="s3:*"), allow())
    assert "shadowed-statement" not in {i.code for i in findings(other_effect)}


def test_findings_are_never_errors_and_format_with_their_location() -> None:
    issues = findings(doc(allow(Sid="AB", action=None, NotAction="iam:*", resource=None, NotResource="*"),
                          version=None))
    assert issues and all(i.severity is not Severity.ERROR for i in issues)
    assert any(str(i).startswith("Statement[0].NotAction: Allow with NotAction") for i in issues)
    assert issues[0].as_dict().keys() == {"location", "severity", "code", "message"}


@pytest.mark.parametrize(("key", "suggestion"), [
    ("aws:PrincipleTag/team", "aws:PrincipalTag/team"), ("aws:SorceIp", "aws:SourceIp"),
    ("aws:MultifactorAuthPresnt", "aws:MultiFactorAuthPresent"), ("aws:Nonsense", None),
])
def test_an_unknown_global_key_is_a_warning_with_the_nearest_real_key(key: str, suggestion: str | None) -> None:
    policy = parse_policy(doc(allow(Condition={"StringEquals": {key: "x"}})))
    (finding,) = [i for i in lint_policy(policy) if i.code == "unknown-global-key"]
    assert finding.severity is Severity.WARNING and finding.location == f'Statement[0].Condition.StringEquals."{key}"'
    assert (f"did you mean {suggestion}?" in finding.message) if suggestion else ("did you mean" not in finding.message)


@pytest.mark.parametrize("key", ["aws:sourceip", "aws:SourceIP", "aws:PrincipalTag/x", "aws:RequestTag/cost-center",
                                 "s3:prefix", "orders:Team"])
def test_real_keys_and_service_keys_are_not_flagged(key: str) -> None:
    policy = parse_policy(doc(allow(Condition={"StringEquals": {key: "x"}})))
    assert not [i for i in lint_policy(policy) if i.code == "unknown-global-key"]


@pytest.mark.parametrize("kind", [PolicyKind.IDENTITY, PolicyKind.BOUNDARY, PolicyKind.SESSION])
def test_a_sid_other_than_letters_and_digits_is_refused_in_iam_documents(kind: PolicyKind) -> None:
    """IAM: "Statement IDs (SID) must be alpha-numeric" in its own documents; other services' resource policies
    accept richer Sids (S3 bucket policies take hyphens and spaces), so resource policies keep them."""
    for sid in ("read-all", "read all", "read_all"):
        (issue,) = errors(doc(allow(Sid=sid)), kind)
        assert issue.location == "Statement[0].Sid" and "alpha-numeric" in issue.message
    assert parse_policy(doc(allow(Sid="ReadAll2")), kind=kind).statements
    assert parse_policy(doc(allow(Sid="read-all", Principal="*")), kind=PolicyKind.RESOURCE).statements


def test_an_arn_missing_a_part_is_a_warning() -> None:
    typo = parse_policy(doc(allow(resource="arn:app:orders:111122223333:order/*")))
    (finding,) = [i for i in lint_policy(typo) if i.code == "arn-parts"]
    assert finding.location == "Statement[0].Resource" and "5 of an ARN's six" in finding.message
    for fine in ("arn:app:orders::111122223333:order/*", "arn:aws:waf:*", "*", "arn:aws:s3:::bucket"):
        assert not [i for i in lint_policy(parse_policy(doc(allow(resource=fine)))) if i.code == "arn-parts"]


@pytest.mark.parametrize("kind", [PolicyKind.GUARDRAIL, PolicyKind.BOUNDARY])
def test_a_guardrail_or_boundary_of_denies_alone_allows_nothing(kind: PolicyKind) -> None:
    only_denies = parse_policy(doc(deny(action="s3:DeleteObject")), kind=kind)
    assert "limit-allows-nothing" in {i.code for i in lint_policy(only_denies)}
    with_allow = parse_policy(doc(allow(action="*"), deny(action="s3:DeleteObject")), kind=kind)
    assert "limit-allows-nothing" not in {i.code for i in lint_policy(with_allow)}
    identity = parse_policy(doc(deny(action="s3:DeleteObject")))
    assert "limit-allows-nothing" not in {i.code for i in lint_policy(identity)}
