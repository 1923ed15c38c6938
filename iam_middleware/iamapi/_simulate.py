"""IAM's policy simulator (``SimulatePrincipalPolicy``, ``SimulateCustomPolicy``) on the project's own evaluator.

Each action and resource pair is decided by ``iam_middleware.policy.evaluate``, the evaluator every request goes
through, and its explanation is given in AWS's ``EvaluationResult`` shape: ``EvalDecision`` (``allowed``,
``explicitDeny``, ``implicitDeny``), ``MatchedStatements`` (the policy and its kind: ``user``, ``group``, ``role``
for inline policies, ``user-managed`` for managed ones, ``resource``, ``none`` for given documents and guardrails),
``MissingContextValues`` (keys a statement read that the request did not give), and whether the permissions
boundary and the guardrails (AWS: the organization's SCPs) allowed it. As in IAM's simulator, the context is what
``ContextEntries`` give: nothing is derived from the principal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._awsquery import INTEGER, STRING, Kind, ListOf, Struct
from .._exceptions import PolicyValidationError
from ..directory.sql import InvalidInputError, MalformedPolicyDocumentError, NoSuchEntityError
from ..policy import Caller, Decision, DecisionKind, Policy, PolicyKind, PolicySet, evaluate, parse_policy
from ._shapes import page

if TYPE_CHECKING:
    from ._call import Call

__all__ = ["SIMULATE_CUSTOM", "SIMULATE_PRINCIPAL", "simulate_custom_policy", "simulate_principal_policy"]

_CONTEXT = ListOf(Struct({"ContextKeyName": STRING, "ContextKeyValues": ListOf(STRING), "ContextKeyType": STRING}))
_COMMON: dict[str, Kind] = {
    "PolicyInputList": ListOf(STRING), "PermissionsBoundaryPolicyInputList": ListOf(STRING),
    "ActionNames": ListOf(STRING), "ResourceArns": ListOf(STRING), "ResourcePolicy": STRING,
    "ResourceOwner": STRING, "CallerArn": STRING, "ContextEntries": _CONTEXT, "Marker": STRING, "MaxItems": INTEGER,
}
SIMULATE_PRINCIPAL: Mapping[str, Kind] = {"PolicySourceArn": STRING, **_COMMON}
SIMULATE_CUSTOM: Mapping[str, Kind] = dict(_COMMON)

_DECISIONS = {DecisionKind.ALLOWED: "allowed", DecisionKind.EXPLICITLY_DENIED: "explicitDeny",
              DecisionKind.IMPLICITLY_DENIED: "implicitDeny"}
_INLINE_KINDS = {"user": "user", "group": "group", "role": "role"}


def _parse(document: str, kind: PolicyKind, label: str) -> Policy:
    try:
        return parse_policy(document, kind=kind, policy_id=label)
    except PolicyValidationError as exc:
        raise MalformedPolicyDocumentError(f"{label}: " + "; ".join(str(i) for i in exc.issues), exc.issues) from None
    except (TypeError, ValueError) as exc:
        raise MalformedPolicyDocumentError(f"{label}: not a policy document: {exc}") from None


def _given(call: Call, member: str, kind: PolicyKind) -> list[Policy]:
    return [_parse(text, kind, f"{member}.{i}") for i, text in enumerate(call.params.get(member) or (), start=1)]


def _context(call: Call) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for i, entry in enumerate(call.params.get("ContextEntries") or (), start=1):
        name = entry.get("ContextKeyName")
        values = entry.get("ContextKeyValues") or []
        kind = entry.get("ContextKeyType", "")
        if not name:
            raise InvalidInputError(f"ContextEntries.member.{i} needs a ContextKeyName.")
        if kind.endswith("List") or (not kind and len(values) > 1):
            context[name.lower()] = list(values)
        elif len(values) == 1:
            context[name.lower()] = values[0]
        else:
            raise InvalidInputError(f"The context key {name} is of a single-valued type: give it one value.")
    return context


def _source_type(policy_id: str, managed: Mapping[str, Any], layer: str) -> tuple[str, str]:
    """(SourcePolicyId, SourcePolicyType) of a matched statement's policy."""
    if layer == "resource":
        return policy_id, "resource"
    if layer == "guardrail":  # AWS reports an organization's SCPs in OrganizationsDecisionDetail only
        return policy_id, "none"
    if policy_id in managed:
        return policy_id, "user-managed"
    owner, _, rest = policy_id.partition("/")
    if owner in _INLINE_KINDS and "/" in rest:
        return rest.split("/", 1)[1], _INLINE_KINDS[owner]
    return policy_id, "none"


def _result(call: Call, decision: Decision, has_boundary: bool, has_guardrails: bool) -> dict[str, Any]:
    managed = call.records["policies"]
    statements = []
    for matched in decision.matched:
        source, kind = _source_type(matched.policy_id, managed, matched.layer)
        statements.append({"SourcePolicyId": source, "SourcePolicyType": kind})
    result: dict[str, Any] = {
        "EvalActionName": decision.action, "EvalResourceName": decision.resource,
        "EvalDecision": _DECISIONS[decision.kind], "MatchedStatements": statements,
        "MissingContextValues": list(decision.missing_context_keys),
    }
    guardrails = False if decision.denied_by == "guardrail" else decision.layer("guardrail")
    if has_guardrails and guardrails is not None:
        result["OrganizationsDecisionDetail"] = {"AllowedByOrganizations": guardrails}
    boundary = False if decision.denied_by == "boundary" else decision.layer("boundary")
    if has_boundary and boundary is not None:
        result["PermissionsBoundaryDecisionDetail"] = {"AllowedByPermissionsBoundary": boundary}
    return result


def _owner(call: Call) -> str | None:
    owner = call.params.get("ResourceOwner")
    if owner is None:
        return None
    parts = str(owner).split(":")
    account = parts[4] if len(parts) >= 6 and parts[0] == "arn" else str(owner)
    if not account:
        raise InvalidInputError("ResourceOwner is an account id or its ARN (arn:<partition>:iam::<account>:root).")
    return account


def _simulate(call: Call, caller_arn: str, identity: Sequence[Policy], boundary: Sequence[Policy],
              guardrails: Sequence[Policy]) -> dict[str, Any]:
    resource_text = call.params.get("ResourcePolicy")
    resource_policy = (PolicySet([_parse(resource_text, PolicyKind.RESOURCE, "ResourcePolicy")])
                       if resource_text is not None else None)
    if resource_policy is not None and "CallerArn" not in call.params and caller_arn == "":
        raise InvalidInputError("CallerArn is required with a ResourcePolicy: its Principal element needs a caller.")
    caller = Caller.from_arn(caller_arn or call.principal.arn)
    context = _context(call)
    identity_set = PolicySet(identity)
    boundary_set = PolicySet(boundary) if boundary else None
    guardrail_set = PolicySet(guardrails) if guardrails else None
    owner = _owner(call)
    pairs = [(action, resource) for action in call.params["ActionNames"]
             for resource in (call.params.get("ResourceArns") or ["*"])]

    def render(chunk: Sequence[tuple[int, tuple[str, str]]]) -> dict[str, Any]:
        results = []
        for _, (action, resource) in chunk:
            decision = evaluate(caller, action, resource, context, identity=identity_set, boundary=boundary_set,
                                resource_policy=resource_policy, resource_account=owner, guardrails=guardrail_set)
            results.append(_result(call, decision, boundary_set is not None, guardrail_set is not None))
        return {"EvaluationResults": results}

    return page(call, list(enumerate(pairs)), lambda item: f"{item[0]:09d}", render)


def simulate_principal_policy(call: Call) -> dict[str, Any]:
    """The policies of a user (its own and its groups'), a role or a group as the directory in force holds them,
    plus ``PolicyInputList``; ``PermissionsBoundaryPolicyInputList`` replaces the entity's boundary."""
    arn = call.params["PolicySourceArn"]
    snapshot = call.iam.snapshot
    identity: list[Policy]
    boundary: list[Policy] = []
    user = snapshot.user_by_arn(arn)
    role = snapshot.roles.get(arn)
    parts = arn.split(":", 5)
    group = (snapshot.group(parts[4], parts[5][len("group/"):])
             if len(parts) == 6 and parts[5].startswith("group/") else None)
    if user is not None:
        identity = list(user.policies)
        for name in user.groups:
            found = snapshot.group(user.account, name)
            identity.extend(found.policies if found is not None else ())
        boundary = [user.boundary] if user.boundary is not None else []
        account = user.account
    elif role is not None:
        identity, account = list(role.policies), role.account
        boundary = [role.boundary] if role.boundary is not None else []
    elif group is not None:
        identity, account = list(group.policies), group.account
    else:
        raise NoSuchEntityError(f"PolicySourceArn {arn} is not a user, group or role of this directory.")
    identity += _given(call, "PolicyInputList", PolicyKind.IDENTITY)
    if call.params.get("PermissionsBoundaryPolicyInputList"):
        boundary = _given(call, "PermissionsBoundaryPolicyInputList", PolicyKind.BOUNDARY)
    found_account = snapshot.account(account)
    guardrails = list(found_account.guardrails) if found_account is not None else []
    caller = call.params.get("CallerArn") or (arn if group is None else "")
    return _simulate(call, caller, identity, boundary, guardrails)


def simulate_custom_policy(call: Call) -> dict[str, Any]:
    """The given documents alone: ``PolicyInputList`` (identity), ``PermissionsBoundaryPolicyInputList``,
    ``ResourcePolicy``."""
    identity = _given(call, "PolicyInputList", PolicyKind.IDENTITY)
    boundary = _given(call, "PermissionsBoundaryPolicyInputList", PolicyKind.BOUNDARY)
    return _simulate(call, call.params.get("CallerArn", ""), identity, boundary, [])
