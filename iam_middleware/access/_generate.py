"""Least privilege from the decision log: the smallest readable identity policy that allows what one principal was
allowed and did, and nothing it was denied (docs/access.md, "Least privilege from the log").

The rule, per action the principal was allowed:

- resources logged with their route's declared resource (``resource_pattern``) are grouped by it; each placeholder of
  the pattern (``{order_id}``, ``{account}``) takes the one value seen for it, or, when several were seen, their
  longest common prefix followed by ``*``; so ``*`` stands only where ids varied, and only past what they shared;
- the generalized resource is kept only if, evaluated, it allows every resource of its group and none the principal
  was denied that action on; otherwise (and for records without a pattern) the exact resources are listed;
- ``*``, ``?`` and ``$`` inside a request's value are written as ``${*}``, ``${?}``, ``${$}``: an id is matched
  exactly. The fixed parts of a route's resource are written as the route declares them (``order/*`` stays a
  wildcard: the route asks for it), and a record without a pattern whose resource is ``*`` is granted ``*``.

Conditions (with ``statements``, a lookup of the principal's identity statements, from ``--directory``): each
allowed request is granted under the conditions of the statement that allowed it (the record names the statements
that did; of several, the one with the fewest conditions), so MFA, a source range or secure transport the original
demanded stays demanded. Requests granted under different conditions get statements of their own, and a generalized
resource never covers a resource granted under conditions its own statement does not carry: on the resources the
log shows, the generated policy allows nothing the original would not, in any context.

Actions of one service with the same resources and conditions share a statement, so no action gains another
action's resources.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._principal import CredentialKind
from ..directory import Snapshot
from ..policy import Caller, DecisionKind, Policy, PolicyIssue, PolicySet, Statement, evaluate, parse_policy
from ..policy._lint import lint_policy
from ..routing import _PLACEHOLDER
from ._decisionlog import Used

__all__ = ["Generated", "StatementLookup", "as_policy", "generate_policy", "identity_statements"]

_VERSION = "2012-10-17"

#: (policy, statement index) -> the principal's compiled identity statement (None: not one of its statements).
StatementLookup = Callable[[str, int], Statement | None]
#: One condition test as the policy writes it: (operator, key as spelled, values).
_Test = tuple[str, str, tuple[str, ...]]
_NONE: frozenset[_Test] = frozenset()


@dataclass(frozen=True, slots=True)
class Generated:
    """A generated policy document, its linter findings, and the (action, resource) pairs the log shows both
    allowed and denied (a decision that depended on the request's context): ``conflicts`` the policy allows
    whatever the context, ``guarded`` it allows only under the original's conditions it kept."""

    document: dict[str, Any]
    findings: list[PolicyIssue]
    conflicts: list[tuple[str, str]]
    guarded: list[tuple[str, str]] = field(default_factory=list)


def identity_statements(snapshot: Snapshot, principal: str) -> StatementLookup | None:
    """The identity statements of a user (by ARN) or of a role's sessions (``assumed-role/NAME/...``) in
    ``snapshot``, as the log's records name them; None for a principal the directory does not hold."""
    user = snapshot.user_by_arn(principal)
    if user is not None:
        found = snapshot.user_principal(user, CredentialKind.ACCESS_KEY)
    else:
        match = re.fullmatch(r"arn:([^:]+):sts::(\d+):assumed-role/([^/]+)/.+", principal)
        role = snapshot.role(f"arn:{match[1]}:iam::{match[2]}:role/{match[3]}") if match else None
        if role is None:
            return None
        found = snapshot.role_principal(role, "generate", CredentialKind.TEMPORARY_ACCESS_KEY, auth_time=0.0,
                                        expires_at=0.0)
    identity = snapshot.authorizer(found).identity
    table = {(policy.id, statement.index): statement for policy in (identity.policies if identity else ())
             for statement in policy.statements}
    return lambda policy, index: table.get((policy, index))


def _required(used: Used, statements: StatementLookup | None) -> frozenset[_Test]:
    """The conditions of the identity statement that allowed ``used`` with the fewest conditions: a statement's
    conditions held for the request, and granting the request under exactly them is what that statement did."""
    found: frozenset[_Test] | None = None
    for layer, policy, index in used.statements if statements is not None else ():
        statement = statements(policy, index) if statements is not None and layer == "identity" else None
        if statement is None:
            continue  # another layer's, or one the directory no longer has
        tests = frozenset((entry.operator, entry.key_name, entry.values) for entry in statement.conditions)
        if found is None or len(tests) < len(found):
            found = tests
    return found or _NONE


def generate_policy(records: Iterable[Used], principal: str, *,
                    statements: StatementLookup | None = None) -> Generated | None:
    """The policy for ``principal`` from its records (None: it was allowed nothing); with ``statements``, the
    original policies' conditions it must keep. Raises ``PolicyValidationError`` only on a bug: the document is
    built to validate."""
    # action -> required conditions -> resource -> pattern
    allowed: dict[str, dict[frozenset[_Test], dict[str, str | None]]] = defaultdict(lambda: defaultdict(dict))
    denied: dict[str, set[str]] = defaultdict(set)
    for used in records:
        if used.principal != principal:
            continue
        if used.allowed:
            group = allowed[used.action][_required(used, statements)]
            group[used.resource] = group.get(used.resource) or used.pattern
        else:
            denied[used.action].add(used.resource)
    if not allowed:
        return None
    caller = Caller.from_arn(principal)
    granted: dict[tuple[str, frozenset[_Test]], tuple[str, ...]] = {}
    for action, groups in allowed.items():
        for tests, resources in groups.items():
            # A generalization must not reach a resource granted only under conditions this group does not carry.
            stricter = {resource for other, seen in groups.items() if not other <= tests for resource in seen}
            granted[(action, tests)] = _resources(caller, action, resources,
                                                  (denied.get(action, set()) | stricter) - set(resources))
    conflicts: list[tuple[str, str]] = []
    guarded: list[tuple[str, str]] = []
    for action, groups in sorted(allowed.items()):
        for resource in sorted({resource for seen in groups.values() for resource in seen}):
            if resource in denied.get(action, ()):
                unconditioned = any(resource in seen and not tests for tests, seen in groups.items())
                (conflicts if unconditioned else guarded).append((action, resource))
    document = {"Version": _VERSION, "Statement": _statements(granted)}
    policy = parse_policy(document, policy_id="generated")
    return Generated(document, lint_policy(policy), conflicts, guarded)


def _resources(caller: Caller, action: str, seen: dict[str, str | None], denied: set[str]) -> tuple[str, ...]:
    groups: dict[str | None, list[str]] = defaultdict(list)
    for resource, pattern in seen.items():
        groups[pattern].append(resource)
    kept: set[str] = set()
    for pattern, resources in groups.items():
        wide = _generalize(pattern, resources) if pattern is not None else None
        if wide is not None and _exactly(caller, action, wide, resources, denied):
            kept.add(wide)
        else:
            kept.update(_literal(resource) for resource in resources)
    return tuple(sorted(kept))


def _generalize(pattern: str, resources: Sequence[str]) -> str | None:
    """The pattern with each placeholder as its one value, or its values' common prefix and ``*``; None when a
    resource was not rendered from this pattern."""
    literals = _PLACEHOLDER.split(pattern)[::2]  # split keeps the group: every other piece is a placeholder's name
    shape = re.compile("(.*?)".join(re.escape(literal) for literal in literals), re.DOTALL)
    matches = [shape.fullmatch(resource) for resource in resources]
    if any(match is None for match in matches):
        return None
    values = list(zip(*(match.groups() for match in matches if match is not None), strict=True))
    out = [_declared(literals[0])]
    for hole, literal in zip(values, literals[1:], strict=True):
        distinct = set(hole)
        out.append(_literal(hole[0]) if len(distinct) == 1 else _literal(_common_prefix(distinct)) + "*")
        out.append(_declared(literal))
    return "".join(out)


def _common_prefix(values: Iterable[str]) -> str:
    ordered = sorted(values)
    first, last = ordered[0], ordered[-1]
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def _declared(text: str) -> str:
    """A fixed part of a route's resource as the route declares it: its wildcards stay wildcards."""
    return text.replace("$", "${$}")


def _literal(text: str) -> str:
    """``text`` as a Resource element matches it: its wildcard and variable characters escaped as policy variables.
    A route that declares the resource ``*`` renders it as is: the policy can only say ``*`` too."""
    if text == "*":
        return text
    return text.replace("$", "${$}").replace("*", "${*}").replace("?", "${?}")


def _exactly(caller: Caller, action: str, resource: str, wanted: Sequence[str], denied: set[str]) -> bool:
    """Whether ``resource`` allows ``action`` on every wanted resource and on none of the denied."""
    document = {"Version": _VERSION, "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}
    identity = PolicySet.of(parse_policy(document, policy_id="candidate"))
    return (all(_allows(caller, action, item, identity) for item in wanted)
            and not any(_allows(caller, action, item, identity) for item in denied))


def _allows(caller: Caller, action: str, resource: str, identity: PolicySet | None) -> bool:
    return evaluate(caller, action, resource, {}, identity=identity).kind is DecisionKind.ALLOWED


def _condition(tests: frozenset[_Test]) -> dict[str, dict[str, Any]]:
    block: dict[str, dict[str, Any]] = {}
    for operator, key, values in sorted(tests):
        block.setdefault(operator, {})[key] = values[0] if len(values) == 1 else list(values)
    return block


def _statements(granted: dict[tuple[str, frozenset[_Test]], tuple[str, ...]]) -> list[dict[str, Any]]:
    """One statement per service, resource list and conditions, services and actions sorted, Sids from the
    service's name."""
    grouped: dict[tuple[str, tuple[str, ...], str], list[str]] = defaultdict(list)
    conditions: dict[str, dict[str, dict[str, Any]]] = {}
    for (action, tests), resources in granted.items():
        block = _condition(tests)
        key = json.dumps(block, sort_keys=True)
        conditions[key] = block
        grouped[(action.partition(":")[0], resources, key)].append(action)
    statements: list[dict[str, Any]] = []
    used_sids: dict[str, int] = defaultdict(int)
    for (service, resources, key), actions in sorted(grouped.items(),
                                                     key=lambda item: (item[0][0], sorted(item[1]), item[0][2])):
        base = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", service) if part) or "Service"
        used_sids[base] += 1
        count = used_sids[base]
        statement: dict[str, Any] = {
            "Sid": base if count == 1 else f"{base}{count}",
            "Effect": "Allow",
            "Action": sorted(actions) if len(actions) > 1 else actions[0],
            "Resource": list(resources) if len(resources) > 1 else resources[0],
        }
        if conditions[key]:
            statement["Condition"] = conditions[key]
        statements.append(statement)
    return statements


def as_policy(generated: Generated) -> Policy:
    """The generated document compiled (for re-evaluation)."""
    return parse_policy(generated.document, policy_id="generated")
