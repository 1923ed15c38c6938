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

Actions of one service with the same resources share a statement, so no action gains another action's resources.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..policy import Caller, DecisionKind, Policy, PolicyIssue, PolicySet, evaluate, parse_policy
from ..policy._lint import lint_policy
from ..routing import _PLACEHOLDER
from ._decisionlog import Used

__all__ = ["Generated", "as_policy", "generate_policy"]

_VERSION = "2012-10-17"


@dataclass(frozen=True, slots=True)
class Generated:
    """A generated policy document, its linter findings, and the (action, resource) pairs the log shows both
    allowed and denied (a decision that depended on the request's context: the policy allows them)."""

    document: dict[str, Any]
    findings: list[PolicyIssue]
    conflicts: list[tuple[str, str]]


def generate_policy(records: Iterable[Used], principal: str) -> Generated | None:
    """The policy for ``principal`` from its records (None: it was allowed nothing). Raises
    ``PolicyValidationError`` only on a bug: the document is built to validate."""
    allowed: dict[str, dict[str, str | None]] = defaultdict(dict)  # action -> resource -> pattern
    denied: dict[str, set[str]] = defaultdict(set)
    for used in records:
        if used.principal != principal:
            continue
        if used.allowed:
            known = allowed[used.action].get(used.resource)
            allowed[used.action][used.resource] = known or used.pattern
        else:
            denied[used.action].add(used.resource)
    if not allowed:
        return None
    caller = Caller.from_arn(principal)
    conflicts = sorted((action, resource) for action, resources in allowed.items()
                       for resource in resources if resource in denied.get(action, ()))
    granted = {action: _resources(caller, action, resources, denied.get(action, set()) - set(resources))
               for action, resources in allowed.items()}
    document = {"Version": _VERSION, "Statement": _statements(granted)}
    policy = parse_policy(document, policy_id="generated")
    return Generated(document, lint_policy(policy), conflicts)


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


def _statements(granted: dict[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    """One statement per service and resource list, services and actions sorted, Sids from the service's name."""
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
    for action, resources in granted.items():
        grouped[(action.partition(":")[0], resources)].append(action)
    statements: list[dict[str, Any]] = []
    used_sids: dict[str, int] = defaultdict(int)
    for (service, resources), actions in sorted(grouped.items(), key=lambda item: (item[0][0], sorted(item[1]))):
        base = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", service) if part) or "Service"
        used_sids[base] += 1
        count = used_sids[base]
        statements.append({
            "Sid": base if count == 1 else f"{base}{count}",
            "Effect": "Allow",
            "Action": sorted(actions) if len(actions) > 1 else actions[0],
            "Resource": list(resources) if len(resources) > 1 else resources[0],
        })
    return statements


def as_policy(generated: Generated) -> Policy:
    """The generated document compiled (for re-evaluation)."""
    return parse_policy(generated.document, policy_id="generated")
