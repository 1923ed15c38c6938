"""Parsing and validation: IAM's MalformedPolicyDocument messages and where each error is, per policy kind."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest

from iam_middleware._exceptions import PolicyValidationError
from iam_middleware.policy import Effect, PolicyKind, load_json, parse_policy

from ._helpers import allow, deny, doc, errors, statement

SYNTAX = "Syntax errors in policy."
LEGACY = "The policy failed legacy parsing"
S3 = "arn:aws:s3:::example_bucket"
IAM_PATH = (
    'IAM resource path must either be "*" or start with user/, federated-user/, role/, group/, instance-profile/, '
    "mfa/, server-certificate/, policy/, sms-mfa/, saml-provider/, oidc-provider/, report/, access-report/."
)


def single(**fields: Any) -> dict[str, Any]:
    """A document whose Statement is one object (so locations read ``Statement.<element>``)."""
    body: dict[str, Any] = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": S3}
    body.update(fields)
    return {"Version": "2012-10-17", "Statement": {k: v for k, v in body.items() if v is not None}}


# (document, expected IAM message the issue starts with, expected location). Rows of IAM's own validation messages, with
# the inputs of moto's table of real-IAM behaviour.
REJECTED = [
    pytest.param("This is not a json document", SYNTAX, "", id="not-json"),
    pytest.param("[1, 2]", SYNTAX, "", id="not-an-object"),
    pytest.param({**single(), "Extra field": "value"}, SYNTAX, "Extra field", id="unknown-top-level-key"),
    pytest.param(single(**{"Extra field": "value"}), SYNTAX, "Statement.Extra field", id="unknown-statement-key"),
    pytest.param({"Version": "2012-10-17"}, SYNTAX, "Statement", id="statement-missing"),
    pytest.param({"Version": "2012-10-17", "Statement": []}, SYNTAX, "Statement", id="statement-empty"),
    pytest.param({"Version": "2012-10-17", "Statement": ["afd"]}, SYNTAX, "Statement[0]", id="statement-not-object"),
    pytest.param(single(Effect=None), SYNTAX, "Statement.Effect", id="effect-missing"),
    pytest.param(single(Effect=1), SYNTAX, "Statement.Effect", id="effect-not-string"),
    pytest.param(single(Effect="invalid"), SYNTAX, "Statement.Effect", id="effect-invalid"),
    pytest.param(single(NotAction="s3:ListBucket", Action="iam:dsf"), SYNTAX, "Statement", id="action-and-notaction"),
    pytest.param(single(NotResource="*"), SYNTAX, "Statement", id="resource-and-notresource"),
    pytest.param({**single(), "Id": ["cd3a"]}, SYNTAX, "Id", id="id-list"),
    pytest.param({**single(), "Id": {}}, SYNTAX, "Id", id="id-object"),
    pytest.param(single(Sid={}), SYNTAX, "Statement.Sid", id="sid-object"),
    pytest.param(single(Sid=[]), SYNTAX, "Statement.Sid", id="sid-list"),
    pytest.param(single(Condition=[]), SYNTAX, "Statement.Condition", id="condition-list"),
    pytest.param(single(Condition="a"), SYNTAX, "Statement.Condition", id="condition-string"),
    pytest.param(single(Condition={"a": "b"}), SYNTAX, "Statement.Condition.a", id="condition-value-not-object"),
    pytest.param(single(Condition={"DateGreaterThan": []}), SYNTAX, "Statement.Condition.DateGreaterThan",
                 id="operator-value-list"),
    pytest.param(single(Condition={"DateGreaterThan": {"a": {}}}), SYNTAX, 'Statement.Condition.DateGreaterThan."a"',
                 id="condition-value-object"),
    pytest.param(single(Condition={"x": {"a": "1"}}), SYNTAX, "Statement.Condition.x", id="unknown-operator"),
    pytest.param(single(Condition={"ForAnyValue::StringEqualsIfExists": {"a": "asf"}}), SYNTAX,
                 "Statement.Condition.ForAnyValue::StringEqualsIfExists", id="double-colon-qualifier"),
    pytest.param({**single(), "Version": "2013-10-17"}, SYNTAX, "Version", id="version-unknown"),
    pytest.param(single(Resource={"a": S3}), SYNTAX, "Statement.Resource", id="resource-object"),
    pytest.param(single(Resource=["adfdf", {}]), SYNTAX, "Statement.Resource", id="resource-list-with-object"),
    pytest.param(single(Action=[[]]), SYNTAX, "Statement.Action", id="action-nested-list"),
    pytest.param(single(Action={}), SYNTAX, "Statement.Action", id="action-object"),
    pytest.param(single(Action="invalid"), "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
                 "Statement.Action", id="action-no-vendor"),
    pytest.param(single(Action=None, NotAction=""), "Actions/Conditions must be prefaced by a vendor",
                 "Statement.NotAction", id="notaction-empty-string"),
    pytest.param(single(Action="s3:List:Bucket"), "Actions/Condition can contain only one colon.", "Statement.Action",
                 id="action-two-colons"),
    pytest.param(single(Action="a a:ListBucket"), "Vendor a a is not valid", "Statement.Action", id="vendor-space"),
    pytest.param(single(Action=None), "Policy statement must contain actions.", "Statement.Action", id="no-action"),
    pytest.param(single(Action=[]), "Policy statement must contain actions.", "Statement.Action", id="action-empty"),
    pytest.param(single(Resource=None), "Policy statement must contain resources.", "Statement.Resource",
                 id="no-resource"),
    pytest.param(single(Resource=[]), "Policy statement must contain resources.", "Statement.Resource",
                 id="resource-empty"),
    pytest.param(single(Resource="invalid resource"), 'Resource invalid resource must be in ARN format or "*".',
                 "Statement.Resource", id="resource-not-arn"),
    pytest.param(single(Resource=""), 'Resource  must be in ARN format or "*".', "Statement.Resource",
                 id="resource-empty-string"),
    pytest.param(single(Resource=["adf"]), 'Resource adf must be in ARN format or "*".', "Statement.Resource[0]",
                 id="resource-list-not-arn"),
    pytest.param(single(Resource="arn:bad partition:s3"),
                 'Partition "bad partition" is not valid for resource "arn:bad partition:s3:*:*:*".',
                 "Statement.Resource", id="partition-invalid"),
    pytest.param(single(Resource="arn::s3:::b"), 'Partition "" is not valid for resource "arn::s3:::b".',
                 "Statement.Resource", id="partition-empty"),
    pytest.param(single(Resource="arn:aws"), "Resource vendor must be fully qualified and cannot contain regexes.",
                 "Statement.Resource", id="resource-no-service"),
    pytest.param(single(Resource="arn:aws:s3*:::b"),
                 "Resource vendor must be fully qualified and cannot contain regexes.", "Statement.Resource",
                 id="resource-service-wildcard"),
    pytest.param(single(Resource="arn:aws:iam:us-east-1::example_bucket"),
                 "IAM resource arn:aws:iam:us-east-1::example_bucket cannot contain region information.",
                 "Statement.Resource", id="iam-region"),
    pytest.param(single(Resource="arn:aws:s3:us-east-1::example_bucket"),
                 "Resource arn:aws:s3:us-east-1::example_bucket can not contain region information.",
                 "Statement.Resource", id="s3-region"),
    pytest.param(single(Resource="arn:aws:iam:::example_bucket"), IAM_PATH, "Statement.Resource", id="iam-path"),
    pytest.param(single(Effect="denY"), LEGACY, "Statement.Effect", id="effect-wrong-case"),
    pytest.param(single(Effect="allow"), LEGACY, "Statement.Effect", id="effect-lower-case"),
    pytest.param(single(Resource="arn:aws:s3::example_bucket"), LEGACY, "Statement.Resource", id="arn-too-short"),
    pytest.param(single(Resource=None, NotResource="arn:aws:s3::example_bucket"), LEGACY, "Statement.NotResource",
                 id="notresource-too-short"),
    pytest.param(single(Resource="arn:aws::::example_bucket"), LEGACY, "Statement.Resource", id="arn-no-service"),
    pytest.param(single(Resource="arn:aws::fdsasf"), LEGACY, "Statement.Resource", id="arn-empty-service-short"),
    pytest.param(single(Condition={"DateGreaterThan": {"a": "sdfdsf"}}), LEGACY,
                 'Statement.Condition.DateGreaterThan."a"', id="date-garbage"),
    pytest.param(single(Condition={"DateLessThanEquals": {"a": "234-13"}}), LEGACY,
                 'Statement.Condition.DateLessThanEquals."a"', id="date-month-13"),
    pytest.param(single(Condition={"DateLessThanEquals": {"a": "2016-12-13t2:00:00.593194+1"}}), LEGACY,
                 'Statement.Condition.DateLessThanEquals."a"', id="date-one-digit-offset"),
    pytest.param(single(Condition={"DateLessThanEquals": {"a": "2016-12-13t2:00:00.1999999999+10:59"}}), LEGACY,
                 'Statement.Condition.DateLessThanEquals."a"', id="date-ten-digit-fraction"),
    pytest.param(single(Condition={"DateLessThan": {"a": "9223372036854775808"}}), LEGACY,
                 'Statement.Condition.DateLessThan."a"', id="epoch-overflow"),
    pytest.param(single(Condition={"DateEquals": {"a": "2021-02-29"}}), LEGACY, 'Statement.Condition.DateEquals."a"',
                 id="date-no-such-day"),
]


@pytest.mark.parametrize(("document", "message", "location"), REJECTED)
def test_iam_rejects_with_its_message_and_the_location(document: Any, message: str, location: str) -> None:
    issues = errors(json.dumps(document) if not isinstance(document, str) else document)
    assert any(i.message.startswith(message) and i.location == location for i in issues), [str(i) for i in issues]


def test_duplicate_sids_name_the_second_statement() -> None:
    document = doc(allow(Sid="sdf"), allow(Sid="sdf", Action="s3:PutObject"))
    (issue,) = errors(document)
    assert issue.message == "Statement IDs (SID) in a single policy must be unique."
    assert issue.location == "Statement[1].Sid"


def test_trust_policy_with_resource_is_refused() -> None:
    trust = doc(statement(action="sts:AssumeRole", resource="*", Principal={"AWS": "111122223333"}))
    (issue,) = errors(trust, PolicyKind.TRUST)
    assert (issue.location, issue.message) == ("Statement[0].Resource", "Has prohibited field Resource.")
    trust["Statement"][0]["NotResource"] = trust["Statement"][0].pop("Resource")
    (issue,) = errors(trust, PolicyKind.TRUST)
    assert (issue.location, issue.message) == ("Statement[0].NotResource", "Has prohibited field NotResource.")


def test_location_names_the_condition_key_inside_the_third_statement() -> None:
    document = doc(allow(), allow(), allow(Condition={"StringEquals": {"aws:SourceIp": "${aws:username"}}))
    (issue,) = errors(document)
    assert issue.location == 'Statement[2].Condition.StringEquals."aws:SourceIp"'
    assert issue.message.startswith("Missing brace in variable")


# Accepted by IAM (moto's table of valid documents) and so by the engine.
ACCEPTED = [
    single(Resource=[S3]),
    single(Action="iam: asdf safdsf af "),
    single(Resource=[S3, "*"]),
    single(Action="*"),
    single(Action="fsx:ListBucket"),
    single(Resource="arn:aws:iam:::user/example_bucket"),
    single(Resource="arn:aws:s33:::example_bucket"),
    single(Resource="arn:aws:fdsasf"),
    single(Condition={}),
    single(Condition={"DateGreaterThan": {}}),
    single(Condition={"DateGreaterThan": {"a": []}}),
    single(Condition={"a": {}}),
    single(Condition={"x": {}, "y": {}}),
    single(Condition={"ForAllValues:StringEquals": {"aws:TagKeys": "Department"}}),
    single(Resource="arn:aws:cloudwatch:us-east-1::example_bucket"),
    single(Resource="arn:aws:ec2:us-east-1::example_bucket"),
    single(Resource="arn:aws:invalid-service:::example_bucket"),
    single(Resource="arn:aws:invalid-service:us-east-1::example_bucket"),
    single(Condition={"DateGreaterThan": {"aws:CurrentTime": "2017-07-01T00:00:00Z"},
                      "DateLessThan": {"aws:CurrentTime": "2017-12-31T23:59:59Z"}}),
    single(Action=None, NotAction="s3:ListBucket"),
    single(Effect="Deny", Action="s3:*", Resource=None,
           NotResource=["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"]),
    {**single(Action=None, NotAction="s3:ListBucket"), "Id": "sdfsdfsdf"},
    single(Action="aaaaaadsfdsafsadfsadfaaaaa:ListBucket"),
    single(Action="s3-s:ListBucket"),
    single(Action="s3.s:ListBucket"),
    single(Action=None, NotAction="s3:ListBucket", Resource=None, NotResource="*"),
    doc(allow(Sid="sdf"), allow()),
    single(Condition={"DateGreaterThan": {"a": "01T"}}),
    single(Condition={"StringEqualsIfExists": {"a": "asf"}}),
    single(Condition={"ForAnyValue:StringEqualsIfExists": {"a": "asf"}}),
    single(Condition={"DateLessThanEquals": {"a": "2019-07-01T13:20:15Z"}}),
    single(Condition={"DateLessThanEquals": {"a": "2016-12-13T21:20:37.593194+00:00"}}),
    single(Condition={"DateLessThanEquals": {"a": "2016-12-13t2:00:00.593194+23"}}),
    single(Condition={"DateLessThan": {"a": "-292275054"}}),
    single(Resource="arn:aws:dynamodb:*:*:table/MyTable"),
    single(Condition={"ArnEquals": {"ec2:SourceInstanceARN": "arn:aws:ec2:*:*:instance/instance-id"}}),
    single(Resource="arn:aws:s3:::bucket-name/cognito/application-name/${cognito-identity.amazonaws.com:sub}/*",
           Condition={"StringLike": {"s3:prefix": ["", "home/", "home/${aws:userid}/*"]}}),
    single(Resource="arn:aws:iam::*:user/${aws:username}",
           Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}),
    # An application's own partition: the library authorizes any API, not only AWS's.
    single(Resource="arn:app:orders::111122223333:order/*"),
    # Without a Version (or with 2008-10-17) IAM's CreatePolicy refuses the document; the engine accepts it with
    # variables as literal text, which is how AWS evaluates such policies.
    {"Statement": single()["Statement"]},
    {**single(), "Version": "2008-10-17"},
]


@pytest.mark.parametrize("document", ACCEPTED, ids=range(len(ACCEPTED)))
def test_iam_accepts(document: dict[str, Any]) -> None:
    assert parse_policy(json.dumps(document)).statements


@pytest.mark.parametrize("kind", [PolicyKind.IDENTITY, PolicyKind.BOUNDARY, PolicyKind.SESSION, PolicyKind.GUARDRAIL])
@pytest.mark.parametrize("element", ["Principal", "NotPrincipal"])
def test_policies_attached_to_an_identity_name_no_principal(kind: PolicyKind, element: str) -> None:
    (issue,) = errors(doc(allow(**{element: {"AWS": "111122223333"}})), kind)
    assert issue.message.startswith("Policy document should not specify a principal.")
    assert issue.location == f"Statement[0].{element}"


@pytest.mark.parametrize("kind", [PolicyKind.RESOURCE, PolicyKind.TRUST])
def test_resource_and_trust_policies_require_a_principal(kind: PolicyKind) -> None:
    (issue,) = errors(doc(allow(resource=None)), kind)
    assert issue.message.startswith("Missing required field Principal")
    assert issue.location == "Statement[0].Principal"


@pytest.mark.parametrize("kind", [PolicyKind.IDENTITY, PolicyKind.BOUNDARY, PolicyKind.SESSION, PolicyKind.GUARDRAIL])
def test_policies_attached_to_an_identity_need_a_resource(kind: PolicyKind) -> None:
    (issue,) = errors(doc(allow(resource=None)), kind)
    assert issue.message == "Policy statement must contain resources."


def test_resource_policy_without_resource_applies_to_its_own_resource() -> None:
    policy = parse_policy(doc(allow(resource=None, Principal={"AWS": "111122223333"})), kind=PolicyKind.RESOURCE)
    assert policy.statements[0].resources is None


@pytest.mark.parametrize(
    "principal",
    ["*", {"AWS": "*"}, {"AWS": ["arn:aws:iam::111122223333:user/bob", "444455556666"]},
     {"Service": "ec2.amazonaws.com"}, {"Federated": "cognito-identity.amazonaws.com"},
     {"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}],
)
def test_principal_forms_accepted(principal: Any) -> None:
    policy = parse_policy(doc(allow(Principal=principal)), kind=PolicyKind.RESOURCE)
    assert policy.statements[0].principal is not None


@pytest.mark.parametrize(
    ("principal", "message"),
    [
        ({"Foo": "x"}, "Invalid principal type"),
        ({"AWS": "arn:aws:iam::*:root"}, "Invalid principal"),
        ({"AWS": "arn:aws:iam::111122223333:user/${aws:username}"}, "Variable unsupported in element"),
        ("everyone", SYNTAX),
        ({}, SYNTAX),
    ],
)
def test_principal_forms_refused(principal: Any, message: str) -> None:
    issues = errors(doc(allow(Principal=principal)), PolicyKind.RESOURCE)
    assert any(i.message.startswith(message) for i in issues), [str(i) for i in issues]


def test_principal_and_notprincipal_together_is_a_syntax_error() -> None:
    issues = errors(doc(deny(Principal="*", NotPrincipal={"AWS": "111122223333"})), PolicyKind.RESOURCE)
    assert [i.message.startswith(SYNTAX) for i in issues] == [True]


def test_every_error_is_reported_at_once() -> None:
    document = doc(
        allow(Effect="Permit"),
        allow(action="s3:Get:Object"),
        allow(resource="bucket"),
    )
    issues = errors(document)
    assert [(i.location, i.message.split(".")[0]) for i in issues] == [
        ("Statement[0].Effect", "Syntax errors in policy"),
        ("Statement[1].Action", "Actions/Condition can contain only one colon"),
        ("Statement[2].Resource", "Resource bucket must be in ARN format or \"*\""),
    ]
    with pytest.raises(PolicyValidationError) as info:
        parse_policy(document, policy_id="team.json")
    text = str(info.value)
    assert text.count("team.json: Statement[") == 3


def test_text_bytes_and_mappings_give_the_same_policy() -> None:
    document = doc(allow(Sid="Read", resource="arn:aws:s3:::b/*"), deny(action="s3:DeleteObject"))
    text = json.dumps(document)
    forms: list[str | bytes | bytearray | Mapping[str, Any]] = [
        text, text.encode(), bytearray(text.encode()), document, MappingProxyType(document)
    ]
    parsed = [parse_policy(form) for form in forms]
    shapes = {tuple((s.sid, s.effect, s.actions, tuple(r.text for r in s.resources or ())) for s in p.statements)
              for p in parsed}
    assert shapes == {(("Read", Effect.ALLOW, ("s3:GetObject",), ("arn:aws:s3:::b/*",)),
                       (None, Effect.DENY, ("s3:DeleteObject",), ("*",)))}


@pytest.mark.parametrize(
    "text",
    [
        '{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": []}',
        '{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Effect": "Allow", "Action": "*", "Resource": "*"}}',
        '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",'
        ' "Condition": {"StringEquals": {"k": "a", "k": "b"}}}}',
    ],
)
def test_duplicate_json_member_names_are_refused(text: str) -> None:
    (issue,) = errors(text)
    assert issue.message.startswith(SYNTAX) and "Duplicate member name" in issue.message


def test_load_json_refuses_duplicates_too() -> None:
    with pytest.raises(PolicyValidationError):
        load_json('{"a": 1, "a": 2}')
    assert load_json(b'{"a": [1, {"b": true}]}') == {"a": [1, {"b": True}]}


def test_deep_nesting_is_refused_cleanly() -> None:
    deep_text = "[" * 100_000 + "]" * 100_000
    (issue,) = errors('{"Version": "2012-10-17", "Statement": ' + deep_text + "}")
    assert issue.message.startswith(SYNTAX)
    nested: Any = "x"
    for _ in range(40):
        nested = {"k": nested}
    (issue,) = errors(doc(allow(Condition={"StringEquals": nested})))
    assert "Nested deeper" in issue.message


def test_huge_input_is_refused_before_parsing() -> None:
    big = json.dumps(doc(*[allow(Sid=f"S{i}", resource=f"arn:aws:s3:::bucket-{i:08d}/*") for i in range(20_000)]))
    assert len(big) > 1 << 20
    for form in (big, big.encode()):
        (issue,) = errors(form)
        assert "larger than" in issue.message


def test_policy_label_comes_from_argument_then_id_then_kind() -> None:
    assert parse_policy(doc(allow()), policy_id="mine").id == "mine"
    assert parse_policy({**doc(allow()), "Id": "Doc1"}).id == "Doc1"
    assert parse_policy(doc(allow()), kind="boundary").id == "boundary-policy"


def test_variables_only_in_2012_10_17() -> None:
    template = "arn:aws:s3:::b/${aws:username}"
    assert parse_policy(doc(allow(resource=template))).statements[0].resources[0].template is not None  # type: ignore[index]
    for version in ("2008-10-17", None):
        pattern = parse_policy(doc(allow(resource=template), version=version)).statements[0].resources[0]  # type: ignore[index]
        assert pattern.template is None and pattern.matcher is not None


def test_statement_keeps_index_and_sid() -> None:
    policy = parse_policy(doc(allow(Sid="First"), deny()))
    assert [(s.index, s.sid, s.label) for s in policy.statements] == [(0, "First", "First"), (1, None, "Statement[1]")]


def test_validation_error_message_leaks_no_document_text_beyond_the_issue() -> None:
    with pytest.raises(PolicyValidationError) as info:
        parse_policy('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*"}]}')
    assert str(info.value) == "Statement[0].Resource: Policy statement must contain resources."


def test_s3_access_point_and_job_arns_keep_their_region() -> None:
    # Only bucket and object ARNs (no account) may not carry a region; access points and batch jobs have both.
    policy = parse_policy({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "s3:GetObject",
        "Resource": ["arn:aws:s3:*:*:accesspoint/*", "arn:aws:s3:us-west-2:123456789012:accesspoint/ap/object/*",
                     "arn:aws:s3:*:*:job/*"]}]})
    assert len(policy.statements[0].resources or ()) == 3
