"""Policy engine benchmark: cached and uncached decisions against same-run baselines, and memory per statement.

Run on demand: ``python benchmarks/bench_policy.py`` (under a minute on two cores). Baselines come from the
``bench`` extra (``pip install -e '.[bench]'``): moto's ``IAMPolicy`` and cedarpy; a missing one shows as ``-``.

Figures, each the best of many short runs with the garbage collector off, interleaved with the figures they are
compared with (``_common.py``):

- a cached allow decision through ``Authorizer.authorize`` (key building included), for the string-valued context
  the middleware builds and for JSON-typed values (bool, int), next to a bare ``dict.get`` and
  ``cachetools.TTLCache.get`` (a str key, as cheap as a key gets);
- an uncached decision (``Authorizer.decide``) over a 20-statement identity policy set with String, IP, Bool, Date,
  Numeric and ForAllValues conditions and policy variables across seven services, averaged over a mix of allows,
  explicit denies and an implicit deny; next to moto's ``IAMPolicy.is_action_permitted`` over the same statements
  and cedarpy over an equivalent 20-rule Cedar policy set (policies and entities parsed once);
- an uncached decision for a principal with the ten largest AWS managed policies of the sample attached (about
  10,000 action patterns), over ten actions;
- an uncached decision across 1,000 principals of 10 statements each (10,000 statements), next to the same requests
  made by one 10-statement principal; and memory per compiled statement, measured with tracemalloc.

The script checks every decision it times against the expected answer first, so it never times a wrong path.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from _common import best_per_call, best_per_item, print_table, ratio
from cachetools import TTLCache

from iam_middleware.policy import Caller, DecisionKind, PolicyKind, PolicySet, parse_policy
from iam_middleware.policy._authorizer import Authorizer

ACCOUNT = "111122223333"
#: AWS managed policies as AWS publishes them (one JSON document per file).
MANAGED_DIR = Path(os.environ.get("IAM_BENCH_MANAGED_POLICIES")
                   or Path(__file__).resolve().parents[2] / "shared" / "data" / "aws-managed-sample")
ALLOW, EXPLICIT, IMPLICIT = DecisionKind.ALLOWED, DecisionKind.EXPLICITLY_DENIED, DecisionKind.IMPLICITLY_DENIED

# --------------------------------------------------------------------------------------------------------------
# The 20-statement identity policy set (three policies) and its requests.

ORDERS_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Id": "orders-app",
    "Statement": [
        {"Sid": "ReadOrders", "Effect": "Allow", "Action": ["orders:Get*", "orders:List*"],
         "Resource": f"arn:app:orders::{ACCOUNT}:order/*",
         "Condition": {"StringEquals": {"aws:PrincipalTag/team": ["sales", "support"]}}},
        {"Sid": "WriteOrders", "Effect": "Allow", "Action": ["orders:CreateOrder", "orders:UpdateOrder"],
         "Resource": f"arn:app:orders::{ACCOUNT}:order/*",
         "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
        {"Sid": "NoDeleteWithoutMfa", "Effect": "Deny", "Action": "orders:DeleteOrder", "Resource": "*",
         "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}},
        {"Sid": "DeleteOwnOrders", "Effect": "Allow", "Action": "orders:DeleteOrder",
         "Resource": f"arn:app:orders::{ACCOUNT}:order/${{aws:username}}/*"},
        {"Sid": "Sunset", "Effect": "Deny", "Action": "orders:*", "Resource": "*",
         "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}},
        {"Sid": "ReadInvoicesInRegion", "Effect": "Allow", "Action": ["invoices:GetInvoice", "invoices:ListInvoices"],
         "Resource": f"arn:app:invoices::{ACCOUNT}:invoice/*",
         "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}},
        {"Sid": "InvoicesFromCorpNetworkOnly", "Effect": "Deny", "Action": "invoices:*", "Resource": "*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}},
    ],
}
S3_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Id": "s3-home",
    "Statement": [
        {"Sid": "ListOwnHome", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::corp-home",
         "Condition": {"StringLike": {"s3:prefix": ["home/${aws:username}/*", "home/${aws:username}"]}}},
        {"Sid": "OwnHomeObjects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": "arn:aws:s3:::corp-home/home/${aws:username}/*"},
        {"Sid": "TlsOnly", "Effect": "Deny", "Action": "s3:*", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "PublicRead", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::corp-public/*"},
        {"Sid": "EncryptedUploads", "Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::corp-home/*",
         "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "AES256"}}},
        {"Sid": "TeamShare", "Effect": "Allow", "Action": "s3:GetObject*",
         "Resource": "arn:aws:s3:::corp-shared/${aws:PrincipalTag/team}/*",
         "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}},
    ],
}
PLATFORM_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Id": "platform",
    "Statement": [
        {"Sid": "OwnItems", "Effect": "Allow",
         "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"],
         "Resource": f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/Orders",
         "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": "${aws:userid}"}}},
        {"Sid": "KeepTables", "Effect": "Deny", "Action": "dynamodb:DeleteTable", "Resource": "*"},
        {"Sid": "OrderQueues", "Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:ReceiveMessage"],
         "Resource": f"arn:aws:sqs:eu-west-1:{ACCOUNT}:orders-*"},
        {"Sid": "DescribeInEu", "Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestedRegion": ["eu-west-1", "eu-central-1"]}}},
        {"Sid": "TerminateOwnOnly", "Effect": "Deny", "Action": "ec2:TerminateInstances", "Resource": "*",
         "Condition": {"StringNotEquals": {"ec2:ResourceTag/owner": "${aws:username}"}}},
        {"Sid": "DecryptViaS3", "Effect": "Allow", "Action": "kms:Decrypt",
         "Resource": f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/*",
         "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}},
        {"Sid": "AssumeAppRolesWithFreshMfa", "Effect": "Allow", "Action": "sts:AssumeRole",
         "Resource": f"arn:aws:iam::{ACCOUNT}:role/app-*",
         "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"},
                       "NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}},
    ],
}
DOCUMENTS = [ORDERS_POLICY, S3_POLICY, PLATFORM_POLICY]

#: What ``context_for`` builds for alice (lower-cased keys, string values) plus a key the application adds.
BASE_CONTEXT: dict[str, Any] = {
    "aws:currenttime": "2026-11-29T12:00:00Z",
    "aws:epochtime": "1796040000",
    "aws:sourceip": "10.1.2.3",
    "aws:securetransport": "true",
    "aws:useragent": "botocore/1.35.0",
    "aws:principalarn": f"arn:aws:iam::{ACCOUNT}:user/alice",
    "aws:principalaccount": ACCOUNT,
    "aws:principaltype": "User",
    "aws:userid": "AIDAEXAMPLEALICE",
    "aws:username": "alice",
    "aws:principaltagkeys": ["team"],
    "aws:principaltag/team": "sales",
    "aws:multifactorauthpresent": "true",
    "aws:multifactorauthage": "120",
    "aws:tokenissuetime": "2026-11-29T11:58:00Z",
    "aws:requestedregion": "eu-west-1",
}
#: The same request context as a Python caller may pass it: JSON-typed values (bool, int) instead of strings.
TYPED_VALUES: dict[str, Any] = {
    "aws:securetransport": True, "aws:multifactorauthpresent": True, "aws:multifactorauthage": 120,
    "aws:epochtime": 1796040000,
}

# (action, resource, extra context, expected decision, Cedar resource attributes)
Request = tuple[str, str, dict[str, Any], DecisionKind, dict[str, Any]]
REQUESTS: list[Request] = [
    ("s3:GetObject", "arn:aws:s3:::corp-home/home/alice/report.csv", {}, ALLOW, {"owner": "alice"}),
    ("orders:GetOrder", f"arn:app:orders::{ACCOUNT}:order/42", {}, ALLOW, {}),
    ("orders:DeleteOrder", f"arn:app:orders::{ACCOUNT}:order/alice/43", {}, ALLOW, {"owner": "alice"}),
    ("ec2:TerminateInstances", f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-0abc", {"ec2:resourcetag/owner": "bob"},
     EXPLICIT, {"owner": "bob"}),
    ("dynamodb:Query", f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/Orders",
     {"dynamodb:leadingkeys": ["AIDAEXAMPLEALICE"]}, ALLOW, {}),
    ("invoices:GetInvoice", f"arn:app:invoices::{ACCOUNT}:invoice/7", {}, ALLOW, {}),
    ("s3:PutObject", "arn:aws:s3:::corp-public/upload.bin", {}, IMPLICIT, {}),
]

# The same rules in Cedar. Cedar has no action wildcards (action groups stand in for them) and no string
# interpolation (an ``owner`` attribute compared with the principal's name stands in for ``${aws:username}``).
CEDAR_POLICIES = """
permit(principal, action in [Action::"orders:GetOrder", Action::"orders:ListOrders"], resource)
  when { resource.arn like "arn:app:orders::111122223333:order/*" && ["sales", "support"].contains(principal.team) };
permit(principal, action in [Action::"orders:CreateOrder", Action::"orders:UpdateOrder"], resource)
  when { resource.arn like "arn:app:orders::111122223333:order/*" && context.mfa
         && ip(context.source_ip).isInRange(ip("10.0.0.0/8")) };
forbid(principal, action == Action::"orders:DeleteOrder", resource) when { context has mfa && !context.mfa };
permit(principal, action == Action::"orders:DeleteOrder", resource)
  when { resource.arn like "arn:app:orders::111122223333:order/*" && resource has owner
         && resource.owner == principal.name };
forbid(principal, action in Action::"orders", resource) when { context.now > datetime("2030-01-01T00:00:00Z") };
permit(principal, action in [Action::"invoices:GetInvoice", Action::"invoices:ListInvoices"], resource)
  when { resource.arn like "arn:app:invoices::111122223333:invoice/*" && context.region == "eu-west-1" };
forbid(principal, action in Action::"invoices", resource)
  unless { ip(context.source_ip).isInRange(ip("10.0.0.0/8"))
           || ip(context.source_ip).isInRange(ip("192.168.0.0/16")) };
permit(principal, action == Action::"s3:ListBucket", resource)
  when { resource.arn == "arn:aws:s3:::corp-home" && context has prefix_owner
         && context.prefix_owner == principal.name };
permit(principal, action in [Action::"s3:GetObject", Action::"s3:PutObject", Action::"s3:DeleteObject"], resource)
  when { resource.arn like "arn:aws:s3:::corp-home/home/*" && resource has owner && resource.owner == principal.name };
forbid(principal, action in Action::"s3", resource) when { !context.secure };
permit(principal, action == Action::"s3:GetObject", resource) when { resource.arn like "arn:aws:s3:::corp-public/*" };
forbid(principal, action == Action::"s3:PutObject", resource)
  when { resource.arn like "arn:aws:s3:::corp-home/*" && context has sse && context.sse != "AES256" };
permit(principal, action in Action::"s3:GetObject*", resource)
  when { resource.arn like "arn:aws:s3:::corp-shared/*" && resource has team && resource.team == principal.team
         && context.now < datetime("2030-01-01T00:00:00Z") };
permit(principal, action in [Action::"dynamodb:GetItem", Action::"dynamodb:Query", Action::"dynamodb:BatchGetItem"],
       resource)
  when { resource.arn == "arn:aws:dynamodb:eu-west-1:111122223333:table/Orders"
         && (!(context has leading_keys) || [principal.userid].containsAll(context.leading_keys)) };
forbid(principal, action == Action::"dynamodb:DeleteTable", resource);
permit(principal, action in [Action::"sqs:SendMessage", Action::"sqs:ReceiveMessage"], resource)
  when { resource.arn like "arn:aws:sqs:eu-west-1:111122223333:orders-*" };
permit(principal, action in Action::"ec2:Describe", resource)
  when { ["eu-west-1", "eu-central-1"].contains(context.region) };
forbid(principal, action == Action::"ec2:TerminateInstances", resource)
  when { !(resource has owner) || resource.owner != principal.name };
permit(principal, action == Action::"kms:Decrypt", resource)
  when { resource.arn like "arn:aws:kms:eu-west-1:111122223333:key/*" && context has via_service
         && context.via_service == "s3.eu-west-1.amazonaws.com" };
permit(principal, action == Action::"sts:AssumeRole", resource)
  when { resource.arn like "arn:aws:iam::111122223333:role/app-*" && context.mfa && context.mfa_age < 3600 };
"""
CEDAR_ACTION_GROUPS = {
    "orders:": "orders", "invoices:": "invoices", "s3:": "s3", "s3:GetObject": "s3:GetObject*",
    "ec2:Describe": "ec2:Describe",
}


def build_identity(documents: list[dict[str, Any]]) -> PolicySet:
    return PolicySet([parse_policy(doc, kind=PolicyKind.IDENTITY) for doc in documents])


def context_for(extra: Mapping[str, Any]) -> dict[str, Any]:
    return {**BASE_CONTEXT, **extra}


def check(authorizer: Authorizer, requests: list[tuple[str, str, dict[str, Any], DecisionKind]]) -> None:
    """Refuse to time a path that gives the wrong answer."""
    for action, resource, ctx, expected in requests:
        decision = authorizer.decide(action, resource, ctx)
        if decision.kind is not expected or decision.error is not None:
            sys.exit(f"benchmark setup is wrong: {action} on {resource} gave {decision.kind} ({decision.error})")


Batch = Callable[[], int]


def decide_batch(decide: Callable[..., Any], requests: list[tuple[str, str, dict[str, Any]]]) -> Batch:
    def run() -> int:
        for action, resource, ctx in requests:
            decide(action, resource, ctx)
        return len(requests)

    return run


# --------------------------------------------------------------------------------------------------------------
# Workloads: each returns what the timing step runs.


def cached_statements(alice: Authorizer) -> tuple[dict[str, str], dict[str, Any]]:
    """A cached allow through Authorizer.authorize (string and typed contexts) and the bare lookups it is
    compared with, as timeit statements and their namespace."""
    action, resource, extra, _, _ = REQUESTS[0]
    ctx = context_for(extra)
    typed = {**ctx, **TYPED_VALUES}
    authorize = alice.authorize
    for context in (ctx, typed):
        first = authorize(action, resource, context)
        if not first.allowed or authorize(action, resource, context) is not first:
            sys.exit("benchmark setup is wrong: the cached allow is not served from the cache")
    table = {f"key-{i}": i for i in range(4096)}
    ttl: TTLCache[str, int] = TTLCache(maxsize=4096, ttl=300)
    ttl.update(table)
    statements = {
        "dict": "dict_get(key)",
        "ttl": "ttl_get(key)",
        "cached": "authorize(action, resource, ctx)",
        "cached_typed": "authorize(action, resource, typed)",
    }
    namespace = {"dict_get": table.get, "ttl_get": ttl.get, "key": "key-2048", "authorize": authorize,
                 "action": action, "resource": resource, "ctx": ctx, "typed": typed}
    return statements, namespace


def uncached_20(alice: Authorizer) -> Batch:
    return decide_batch(alice.decide, [(action, resource, context_for(extra))
                                       for action, resource, extra, _, _ in REQUESTS] * 20)


def moto_20() -> Batch | None:
    try:
        from moto.iam.access_control import IAMPolicy
    except ImportError:
        return None
    merged = {"Version": "2012-10-17", "Statement": [s for doc in DOCUMENTS for s in doc["Statement"]]}
    policy = IAMPolicy(json.dumps(merged))
    # moto matches condition keys by their exact spelling in the policy; it implements StringEquals only.
    values = {"aws:PrincipalTag/team": "sales", "aws:RequestedRegion": "eu-west-1", "aws:SourceIp": "10.1.2.3",
              "aws:username": "alice", "aws:userid": "AIDAEXAMPLEALICE", "aws:SecureTransport": "true",
              "aws:MultiFactorAuthPresent": "true", "aws:MultiFactorAuthAge": "120",
              "aws:CurrentTime": "2026-11-29T12:00:00Z"}
    batch = [(action, resource) for action, resource, _, _, _ in REQUESTS] * 5
    is_action_permitted = policy.is_action_permitted

    def run() -> int:
        for action, resource in batch:
            is_action_permitted(action, resource, None, values)
        return len(batch)

    return run


def moto_agreement() -> int:
    """How many of the requests moto decides as IAM does (its semantics are far weaker)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    merged = {"Version": "2012-10-17", "Statement": [s for doc in DOCUMENTS for s in doc["Statement"]]}
    policy = IAMPolicy(json.dumps(merged))
    values = {"aws:PrincipalTag/team": "sales", "aws:RequestedRegion": "eu-west-1"}
    return sum((policy.is_action_permitted(a, r, None, values) is PermissionResult.PERMITTED) == (e is ALLOW)
               for a, r, _, e, _ in REQUESTS)


def cedar_20() -> Batch | None:
    try:
        import cedarpy
    except ImportError:
        return None
    if not hasattr(cedarpy, "PolicySet"):
        sys.exit("cedarpy is too old to pre-parse a policy set: pip install -U cedarpy")
    policies = cedarpy.PolicySet.from_str(CEDAR_POLICIES)
    entities: list[dict[str, Any]] = [
        {"uid": {"type": "User", "id": "alice"}, "parents": [],
         "attrs": {"name": "alice", "team": "sales", "userid": "AIDAEXAMPLEALICE"}},
    ]
    for action in sorted({action for action, *_ in REQUESTS}):
        parents = [{"type": "Action", "id": g} for p, g in CEDAR_ACTION_GROUPS.items() if action.startswith(p)]
        entities.append({"uid": {"type": "Action", "id": action}, "parents": parents, "attrs": {}})
    for group in sorted(set(CEDAR_ACTION_GROUPS.values())):
        entities.append({"uid": {"type": "Action", "id": group}, "parents": [], "attrs": {}})
    for i, (_, resource, _, _, attrs) in enumerate(REQUESTS):
        entities.append({"uid": {"type": "Resource", "id": str(i)}, "parents": [], "attrs": {"arn": resource, **attrs}})
    parsed = cedarpy.Entities.from_json_str(json.dumps(entities))
    base = {"mfa": True, "mfa_age": 120, "secure": True, "source_ip": "10.1.2.3", "region": "eu-west-1",
            "now": {"__extn": {"fn": "datetime", "arg": "2026-11-29T12:00:00Z"}}}
    requests = []
    for i, (action, _, extra, expected, _) in enumerate(REQUESTS):
        context = dict(base)
        if "dynamodb:leadingkeys" in extra:
            context["leading_keys"] = extra["dynamodb:leadingkeys"]
        request = {"principal": 'User::"alice"', "action": f'Action::"{action}"', "resource": f'Resource::"{i}"',
                   "context": context}
        result = cedarpy.is_authorized(request, policies, parsed)
        if result.allowed != (expected is ALLOW) or (result.diagnostics and result.diagnostics.errors):
            sys.exit(f"benchmark setup is wrong: Cedar gave {result.decision} for {action}")
        requests.append(request)
    batch = requests * 2
    is_authorized = cedarpy.is_authorized

    def run() -> int:
        for request in batch:
            is_authorized(request, policies, parsed)
        return len(batch)

    return run


MANAGED_ACTIONS = [
    ("ec2:DescribeInstances", "*", ALLOW),
    ("s3:GetObject", "arn:aws:s3:::some-bucket/some/key", ALLOW),
    ("dynamodb:Query", f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/Orders", ALLOW),
    ("iam:GetRole", f"arn:aws:iam::{ACCOUNT}:role/app", ALLOW),
    ("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/mallory", EXPLICIT),
    ("support:DescribeCases", "*", EXPLICIT),
    ("cloudwatch:GetMetricData", "*", ALLOW),
    ("sagemaker:CreateTrainingJob", f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:training-job/j1", ALLOW),
    ("lambda:InvokeFunction", f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:f", ALLOW),
    ("organizations:CreateAccount", "*", EXPLICIT),
]


def managed_documents() -> list[tuple[str, dict[str, Any]]]:
    """The ten largest managed policies of the sample, by number of action patterns."""
    docs = [(path.stem, json.loads(path.read_text())) for path in sorted(MANAGED_DIR.glob("*.json"))]
    if len(docs) < 10:
        sys.exit(f"need ten AWS managed policies in {MANAGED_DIR} (set IAM_BENCH_MANAGED_POLICIES)")

    def patterns(doc: dict[str, Any]) -> int:
        statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
        total = 0
        for statement in statements:
            value = statement.get("Action", statement.get("NotAction", []))
            total += len(value) if isinstance(value, list) else 1
        return total

    return sorted(docs, key=lambda item: patterns(item[1]), reverse=True)[:10]


class Managed:
    """A principal with the ten managed policies attached: its compile time, and its uncached decisions."""

    def __init__(self, caller: Caller) -> None:
        docs = managed_documents()
        start = time.perf_counter()
        self.identity = PolicySet([parse_policy(doc, kind=PolicyKind.IDENTITY, policy_id=name) for name, doc in docs])
        self.compile_seconds = time.perf_counter() - start
        self.patterns = sum(len(s.actions) for p in self.identity.policies for s in p.statements)
        authorizer = Authorizer(caller, identity=self.identity)
        ctx = context_for({})
        check(authorizer, [(a, r, ctx, e) for a, r, e in MANAGED_ACTIONS])
        self.requests = [(action, resource, ctx) for action, resource, _ in MANAGED_ACTIONS] * 10
        self.decide = authorizer.decide
        self.warm = decide_batch(self.decide, self.requests)

    def cold(self) -> int:
        """The first decision for an action in a process: the action index is searched, not its memo."""
        memo = self.identity._memo  # the benchmark empties the memo to time the index itself
        decide = self.decide
        for action, resource, ctx in self.requests:
            memo.clear()
            decide(action, resource, ctx)
        return len(self.requests)


def principal_documents(i: int) -> dict[str, Any]:
    """Ten statements for principal ``i``, naming its own resources so no two principals share a statement."""
    team = f"team{i % 37}"
    return {
        "Version": "2012-10-17",
        "Id": f"user{i:04d}-policy",
        "Statement": [
            {"Effect": "Allow", "Action": ["orders:GetOrder", "orders:ListOrders"],
             "Resource": f"arn:app:orders::{ACCOUNT}:order/{team}/*",
             "Condition": {"StringEquals": {"aws:PrincipalTag/team": team}}},
            {"Effect": "Allow", "Action": "orders:CreateOrder", "Resource": f"arn:app:orders::{ACCOUNT}:order/{team}/*",
             "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}},
            {"Effect": "Deny", "Action": "orders:DeleteOrder", "Resource": "*",
             "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": f"arn:aws:s3:::bucket-{i}/home/${{aws:username}}/*"},
            {"Effect": "Deny", "Action": "s3:*", "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query"],
             "Resource": f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/T{i}"},
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": f"arn:aws:sqs:eu-west-1:{ACCOUNT}:q-{i}"},
            {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*",
             "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k{i}",
             "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
            {"Effect": "Deny", "Action": "iam:*", "Resource": "*",
             "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
        ],
    }


def principal_requests(i: int) -> list[tuple[str, str, dict[str, Any]]]:
    user = f"user{i:04d}"
    ctx = {**BASE_CONTEXT, "aws:username": user, "aws:principaltag/team": f"team{i % 37}",
           "aws:principalarn": f"arn:aws:iam::{ACCOUNT}:user/{user}"}
    return [
        ("s3:GetObject", f"arn:aws:s3:::bucket-{i}/home/{user}/notes.txt", ctx),
        ("orders:GetOrder", f"arn:app:orders::{ACCOUNT}:order/team{i % 37}/9", ctx),
        ("dynamodb:Query", f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/T{i}", ctx),
    ]


class Many:
    """1,000 principals of 10 statements each: memory per compiled statement, and the same mix of requests spread
    over every principal or made by one."""

    COUNT = 1000

    def __init__(self) -> None:
        callers = [Caller.from_arn(f"arn:aws:iam::{ACCOUNT}:user/user{i:04d}") for i in range(self.COUNT)]
        # Documents arrive as decoded JSON; memory counts what compiling them adds (model, matchers, index).
        docs = copy.deepcopy([principal_documents(i) for i in range(self.COUNT)])
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        authorizers = [
            Authorizer(caller, identity=PolicySet([parse_policy(doc, kind=PolicyKind.IDENTITY)]))
            for caller, doc in zip(callers, docs, strict=True)
        ]
        compiled = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        self.statements = sum(len(a.identity or ()) for a in authorizers)
        self.bytes_per_statement = compiled / self.statements
        self.spread = [(authorizers[i], *principal_requests(i)[i % 3]) for i in range(self.COUNT)]
        # One principal makes the same mix of requests. Each request still brings its own context and resource
        # objects, as requests do, so the two batches differ only in the policy data they reach.
        self.one = [(authorizers[0], action, _fresh(resource), dict(ctx))
                    for action, resource, ctx in (principal_requests(0)[i % 3] for i in range(self.COUNT))]
        for authorizer, action, resource, ctx in self.spread[:3] + self.one[:3]:
            if not authorizer.decide(action, resource, ctx).allowed:
                sys.exit(f"benchmark setup is wrong: {action} on {resource} was denied")

    @staticmethod
    def runner(batch: list[tuple[Authorizer, str, str, dict[str, Any]]]) -> Batch:
        def run() -> int:
            for authorizer, action, resource, ctx in batch:
                authorizer.decide(action, resource, ctx)
            return len(batch)

        return run


def _fresh(text: str) -> str:
    """An equal string that is a distinct object (as a request parsed afresh would bring)."""
    return "".join(list(text))


# --------------------------------------------------------------------------------------------------------------


def main() -> None:
    started = time.perf_counter()
    caller = Caller.from_arn(f"arn:aws:iam::{ACCOUNT}:user/alice")
    alice = Authorizer(caller, identity=build_identity(DOCUMENTS))
    if len(alice.identity or ()) != 20:
        sys.exit("benchmark setup is wrong: the identity set must have 20 statements")
    check(alice, [(a, r, context_for(x), e) for a, r, x, e, _ in REQUESTS])
    managed = Managed(caller)
    many = Many()

    statements, namespace = cached_statements(alice)
    per_call = best_per_call(statements, namespace)
    runs: dict[str, Batch] = {"f20": uncached_20(alice), "managed": managed.warm, "managed_cold": managed.cold}
    baselines = {"moto": moto_20(), "cedar": cedar_20()}
    runs.update({name: run for name, run in baselines.items() if run is not None})
    per_item = best_per_item(runs)
    spread = best_per_item({"many": Many.runner(many.spread), "one": Many.runner(many.one)}, rounds=40)

    us = 1e6
    base = {"dict": per_call["dict"], "ttl": per_call["ttl"], "moto": per_item.get("moto"),
            "cedar": per_item.get("cedar")}
    f20, managed_us = per_item["f20"], per_item["managed"]

    def row(name: str, value: float, target: str = "-", ok: bool | None = None) -> list[str]:
        verdict = "-" if ok is None else "PASS" if ok else "MISS"
        return [name, f"{value * us:.3f} µs", target, *(ratio(value, b) for b in base.values()), verdict]

    rows = [
        row("baseline: dict.get (bare lookup, str key)", per_call["dict"]),
        row("baseline: cachetools TTLCache.get", per_call["ttl"]),
        row("cached allow, key building included", per_call["cached"], "<= 0.5 µs", per_call["cached"] <= 0.5e-6),
        row("  same, bool/int context values", per_call["cached_typed"], "<= 0.5 µs",
            per_call["cached_typed"] <= 0.5e-6),
    ]
    if base["moto"] is not None:
        rows.append(row("baseline: moto IAMPolicy, 20 statements", base["moto"]))
    if base["cedar"] is not None:
        rows.append(row("baseline: cedarpy, 20 rules (pre-parsed)", base["cedar"]))
    rows += [
        row("uncached, 20 statements with conditions", f20, "<= 12 µs", f20 <= 12e-6),
        row(f"uncached, 10 managed policies ({managed.patterns} patterns)", managed_us,
            f"<= 3x 20-stmt = {3 * f20 * us:.1f} µs", managed_us <= 3 * f20),
        row("  same, first decision per action (memo cold)", per_item["managed_cold"]),
        row("uncached, one principal with 10 statements", spread["one"]),
        row(f"uncached, 1,000 principals x 10 ({many.statements} statements)", spread["many"],
            f"<= 1.5x 10-stmt = {1.5 * spread['one'] * us:.1f} µs", spread["many"] <= 1.5 * spread["one"]),
    ]
    print(f"Policy engine benchmark (Python {sys.version.split()[0]}; best of many interleaved runs, gc off)\n")
    print_table(["figure", "value", "target", "vs dict.get", "vs TTLCache.get", "vs moto", "vs cedarpy", "result"],
                rows)
    print()
    print(f"memory per compiled statement: {many.bytes_per_statement:.0f} bytes (tracemalloc around compiling "
          f"{many.statements} statements for 1,000 principals: model, matchers, action index, authorizers)")
    print(f"compiling the 10 managed policies ({len(managed.identity)} statements, {managed.patterns} action "
          f"patterns): {managed.compile_seconds * 1e3:.1f} ms, once per policy version")
    print(f"ratios: managed / 20-stmt = {managed_us / f20:.2f}x; 1,000 principals / one = "
          f"{spread['many'] / spread['one']:.2f}x")
    if base["moto"] is not None:
        print(f"moto agrees with IAM's decision on {moto_agreement()} of {len(REQUESTS)} requests "
              "(it implements StringEquals only, and treats every other condition as true)")
    if base["moto"] is None or base["cedar"] is None:
        print("moto or cedarpy is missing: pip install -e '.[bench]' for every baseline")
    print(f"\n(run took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
