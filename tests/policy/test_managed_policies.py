"""AWS managed policies (a stored sample): they validate without error and evaluate the way AWS documents them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from iam_middleware.policy import DecisionKind, Policy, PolicyKind, Severity, parse_policy
from iam_middleware.policy._lint import lint_policy

from ._helpers import ACCOUNT, OTHER_ACCOUNT, SESSION, allow, decide, doc

# shared/ lies beside the checkout (and beside CI's clone); IAM_MANAGED_POLICIES names another copy.
SAMPLE = Path(os.environ.get("IAM_MANAGED_POLICIES")
              or Path(__file__).resolve().parents[3] / "shared" / "data" / "aws-managed-sample")
NAMES = sorted(p.stem for p in SAMPLE.glob("*.json")) if SAMPLE.is_dir() else []
pytestmark = pytest.mark.skipif(len(NAMES) != 12, reason="the AWS managed policy sample is not on this machine")

BOUNDARY = "SageMakerStudioProjectUserRolePermissionsBoundary"


def managed(name: str) -> Policy:
    kind = PolicyKind.BOUNDARY if name == BOUNDARY else PolicyKind.IDENTITY
    return parse_policy((SAMPLE / f"{name}.json").read_bytes(), kind=kind, policy_id=name)


@pytest.mark.parametrize("name", NAMES)
def test_managed_policy_validates_with_no_error(name: str) -> None:
    policy = managed(name)
    assert policy.statements
    assert all(issue.severity is not Severity.ERROR for issue in lint_policy(policy))


def allowed(name: str, action: str, resource: str = "*", **context: str) -> bool:
    return decide(dict(managed(name).document), action=action, resource=resource, context=context).allowed


@pytest.mark.parametrize(
    ("name", "action", "expected"),
    [
        ("AdministratorAccess", "s3:GetObject", True),
        ("AdministratorAccess", "iam:CreateUser", True),
        ("AdministratorAccess", "anything:AtAll", True),
        ("ReadOnlyAccess", "s3:GetObject", True),
        ("ReadOnlyAccess", "s3:ListBucket", True),
        ("ReadOnlyAccess", "S3:getobject", True),
        ("ReadOnlyAccess", "s3:PutObject", False),
        ("ReadOnlyAccess", "iam:CreateUser", False),
        ("PowerUserAccess", "s3:PutObject", True),
        ("PowerUserAccess", "ec2:RunInstances", True),
        ("PowerUserAccess", "iam:CreateUser", False),
        ("PowerUserAccess", "iam:CreateServiceLinkedRole", True),
        ("PowerUserAccess", "iam:ListRoles", True),
        ("PowerUserAccess", "organizations:CreateAccount", False),
        ("PowerUserAccess", "organizations:DescribeOrganization", True),
        ("PowerUserAccess", "account:GetAccountInformation", True),
        ("PowerUserAccess", "account:CloseAccount", False),
        ("AmazonS3ReadOnlyAccess", "s3:GetObject", True),
        ("AmazonS3ReadOnlyAccess", "s3:PutObject", False),
        ("AmazonS3FullAccess", "s3:PutObject", True),
        ("AmazonS3FullAccess", "s3-object-lambda:WriteGetObjectResponse", True),
        ("AmazonS3FullAccess", "ec2:RunInstances", False),
        ("IAMFullAccess", "iam:CreateUser", True),
        ("IAMFullAccess", "organizations:DescribeOrganization", True),
        ("IAMFullAccess", "organizations:CreateAccount", False),
        ("AmazonEC2FullAccess", "ec2:TerminateInstances", True),
        ("AmazonEC2FullAccess", "s3:GetObject", False),
        ("AmazonDynamoDBFullAccess", "dynamodb:PutItem", True),
        ("AmazonDynamoDBFullAccess", "dynamodb:DeleteTable", True),
        ("AmazonDynamoDBFullAccess", "s3:GetObject", False),
        ("ViewOnlyAccess", "s3:ListAllMyBuckets", True),
        ("ViewOnlyAccess", "s3:GetObject", False),
        ("SecurityAudit", "iam:GetAccountAuthorizationDetails", True),
        ("SecurityAudit", "iam:CreateUser", False),
        ("AWSSupportServiceRolePolicy", "access-analyzer:GetAnalyzer", True),
        ("AWSSupportServiceRolePolicy", "s3:PutObject", False),
    ],
)
def test_managed_policy_grants(name: str, action: str, expected: bool) -> None:
    assert allowed(name, action) is expected


def test_conditional_statements_of_managed_policies() -> None:
    linked = {"iam:AWSServiceName": "autoscaling.amazonaws.com"}
    assert allowed("AmazonEC2FullAccess", "iam:CreateServiceLinkedRole", **linked)
    assert not allowed("AmazonEC2FullAccess", "iam:CreateServiceLinkedRole", **{"iam:AWSServiceName": "x.example"})
    assert not allowed("AmazonEC2FullAccess", "iam:CreateServiceLinkedRole")


def test_resource_scoped_statement_of_a_managed_policy() -> None:
    own_role = "arn:aws:iam::111122223333:role/aws-service-role/support.amazonaws.com/AWSServiceRoleForSupport"
    assert allowed("AWSSupportServiceRolePolicy", "iam:DeleteRole", own_role)
    assert not allowed("AWSSupportServiceRolePolicy", "iam:DeleteRole", "arn:aws:iam::111122223333:role/Admin")


def test_managed_permissions_boundary_limits_an_administrator() -> None:
    boundary = dict(managed(BOUNDARY).document)
    admin = doc(allow(action="*"))
    same = {"aws:ResourceAccount": ACCOUNT, "aws:PrincipalAccount": ACCOUNT}
    decision = decide(admin, principal=SESSION, boundary=boundary, action="s3:GetBucketLocation",
                      resource="arn:aws:s3:::bucket", context=same)
    assert decision.allowed
    other = {"aws:ResourceAccount": OTHER_ACCOUNT, "aws:PrincipalAccount": ACCOUNT}
    decision = decide(admin, principal=SESSION, boundary=boundary, action="s3:GetBucketLocation",
                      resource="arn:aws:s3:::bucket", context=other)
    assert decision.kind is DecisionKind.IMPLICITLY_DENIED and decision.denied_by == "boundary"
    decision = decide(admin, principal=SESSION, boundary=boundary, action="iam:CreateUser",
                      resource="arn:aws:iam::111122223333:user/x")
    # The boundary ends with a Deny + NotAction listing what it permits: anything else is explicitly denied.
    assert decision.kind is DecisionKind.EXPLICITLY_DENIED and decision.denied_by == "boundary"
    assert [m.sid for m in decision.matched] == ["NotDeniedOperations"]


def test_managed_boundary_denies_across_project_tags() -> None:
    boundary = dict(managed(BOUNDARY).document)
    context = {"aws:ResourceAccount": ACCOUNT, "aws:PrincipalAccount": ACCOUNT,
               "aws:PrincipalTag/AmazonDataZoneProject": "blue", "aws:ResourceTag/AmazonDataZoneProject": "red"}
    decision = decide(doc(allow(action="*")), principal=SESSION, boundary=boundary,
                      action="s3:GetBucketLocation", resource="arn:aws:s3:::bucket", context=context)
    assert decision.kind is DecisionKind.EXPLICITLY_DENIED
    assert [(m.layer, m.sid) for m in decision.matched] == [("boundary", "DenyAllNonMatchingProjectTag")]
    context["aws:ResourceTag/AmazonDataZoneProject"] = "blue"
    assert decide(doc(allow(action="*")), principal=SESSION, boundary=boundary,
                  action="s3:GetBucketLocation", resource="arn:aws:s3:::bucket", context=context).allowed
