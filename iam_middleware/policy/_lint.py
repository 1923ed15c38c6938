"""Findings beyond hard errors, in the spirit of IAM Access Analyzer's ValidatePolicy.

Each finding is a ``PolicyIssue`` with a severity below ERROR; a document with findings is still valid.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from ._conditions import MULTIVALUED_KEYS, split_operator
from ._global_keys import GLOBAL_KEYS, GLOBAL_PREFIXES
from ._global_keys import SPELLED as _SPELLED
from ._issues import PolicyIssue, Severity
from ._match import compile_action
from ._model import Effect, Policy, Statement

__all__ = ["lint_policy"]

_LIKE_FAMILIES = {"StringLike", "StringNotLike", "ArnLike", "ArnNotLike", "ArnEquals", "ArnNotEquals"}
_SIZE_QUOTA = 6144


def _where(policy: Policy, statement: Statement) -> str:
    listed = isinstance(policy.document.get("Statement"), list)
    return f"Statement[{statement.index}]" if listed else "Statement"


def lint_policy(policy: Policy) -> list[PolicyIssue]:
    """Warnings and suggestions for a valid policy (overly broad grants, likely mistakes, redundancy)."""
    found: list[PolicyIssue] = []
    doc = policy.document
    # IAM's CreatePolicy/PutPolicy refuse both with "Policy document must be version 2012-10-17 or greater."; AWS
    # still evaluates such documents (variables as literal text), so the engine accepts them and warns.
    if policy.version is None:
        found.append(PolicyIssue("Version", "Missing version: Policy document must be version 2012-10-17 or greater. "
                                 "Without it policy variables are literal text", Severity.WARNING, "missing-version"))
    elif policy.version == "2008-10-17":
        found.append(PolicyIssue("Version", "Version 2008-10-17 is outdated: Policy document must be version "
                                 "2012-10-17 or greater. Under 2008-10-17 policy variables are literal text",
                                 Severity.WARNING, "old-version"))
    if "Id" in doc and policy.kind.value in ("identity", "boundary", "session", "guardrail"):
        # The User Guide: "ID is allowed in resource-based policies, but not in identity-based policies"; IAM's
        # CreatePolicy nonetheless accepts one (and ignores it), so a document AWS took stays valid: a warning.
        found.append(PolicyIssue("Id", "Id is allowed in resource-based policies, but not in identity-based policies "
                                 "(IAM ignores it here)", Severity.WARNING, "id-in-identity-policy"))
    if policy.kind.value in ("guardrail", "boundary") and all(st.effect is Effect.DENY for st in policy.statements):
        # A guardrail or a boundary limits: what it does not allow is denied, so one made of Deny statements alone
        # denies everything (as an SCP without FullAWSAccess does).
        found.append(PolicyIssue("Statement", f"This {policy.kind.value} allows nothing: add an Allow (for "
                                 "example Action * on Resource *) for what it lets through", Severity.WARNING,
                                 "limit-allows-nothing"))
    size = sum(1 for ch in _compact(doc) if not ch.isspace())
    if size > _SIZE_QUOTA and policy.kind.value != "resource":
        found.append(PolicyIssue("", f"Policy size exceeds quota: {size} characters (IAM's managed-policy quota is "
                                 f"{_SIZE_QUOTA})", Severity.SUGGESTION, "size"))
    for statement in policy.statements:
        where = _where(policy, statement)
        found.extend(_statement_findings(policy, statement, where))
    found.extend(_redundancy(policy))
    return found


def _compact(doc: Mapping[str, Any]) -> str:
    return json.dumps(dict(doc), separators=(",", ":"), default=str)


def _statement_findings(policy: Policy, statement: Statement, where: str) -> list[PolicyIssue]:
    found: list[PolicyIssue] = []
    raw = statement.raw
    allow = statement.effect is Effect.ALLOW
    for i, pattern in enumerate(statement.resources or ()):
        text = pattern.text
        # ``arn:aws:waf:*`` is fine: a final ``*`` spans the remaining parts. ``...:order/*`` is not.
        if text.startswith("arn:") and text.count(":") < 5 and text.rsplit(":", 1)[1] != "*":
            element = "NotResource" if statement.not_resource else "Resource"
            found.append(PolicyIssue(f"{where}.{element}[{i}]" if len(statement.resources or ()) > 1
                                     else f"{where}.{element}",
                                     f"{text!r} has {text.count(':') + 1} of an ARN's six colon-separated parts "
                                     "(arn:partition:service:region:account:resource; an empty region or account keeps "
                                     "its colon), so it matches no real resource", Severity.WARNING, "arn-parts"))
    if allow and statement.not_resource:
        found.append(PolicyIssue(f"{where}.NotResource", "Allow with NotResource grants every resource not listed, "
                                 "including ones created later", Severity.SECURITY_WARNING, "allow-with-not-resource"))
    if allow and statement.not_action:
        found.append(PolicyIssue(f"{where}.NotAction", "Allow with NotAction grants every action not listed, "
                                 "including ones added later", Severity.SECURITY_WARNING, "allow-with-not-action"))
    passes_role = any(a.lower() == "iam:passrole" for a in statement.actions) and not statement.not_action
    if allow and passes_role and any(r.text == "*" for r in statement.resources or ()):
        found.append(PolicyIssue(where, "Pass role with star in resource: iam:PassRole on \"*\" lets the "
                                 "principal pass any role", Severity.SECURITY_WARNING, "passrole-star"))
    if policy.version != "2012-10-17" and "${" in _compact(dict(raw)):
        found.append(PolicyIssue(where, "Variable unsupported in version: ${...} is literal text without "
                                 "\"Version\": \"2012-10-17\"", Severity.WARNING, "variable-version"))
    found.extend(_redundant_entries(statement, where))
    condition = raw.get("Condition")
    if isinstance(condition, Mapping):
        found.extend(_condition_findings(condition, f"{where}.Condition", allow))
    return found


def _redundant_entries(statement: Statement, where: str) -> list[PolicyIssue]:
    """Actions another pattern of the same statement already covers; resources listed twice or beside ``*``."""
    found: list[PolicyIssue] = []
    element = "NotAction" if statement.not_action else "Action"
    listed = isinstance(statement.raw.get(element), list)
    for i, cover in _covered_actions(statement.actions):
        at = f"{where}.{element}[{i}]" if listed else f"{where}.{element}"
        found.append(PolicyIssue(at, f"Redundant action: {statement.actions[i]!r} is already covered by {cover!r}",
                                 Severity.SUGGESTION, "redundant-action"))
    element = "NotResource" if statement.not_resource else "Resource"
    texts = [r.text for r in statement.resources or ()]
    for i, text in enumerate(texts):
        if (text != "*" and "*" in texts) or text in texts[:i]:
            found.append(PolicyIssue(f"{where}.{element}[{i}]", f"Redundant resource: {text!r} is already covered "
                                     f"by {'*' if text != '*' and '*' in texts else 'the same entry'}",
                                     Severity.SUGGESTION, "redundant-resource"))
    return found


def _covered_actions(actions: tuple[str, ...]) -> list[tuple[int, str]]:
    """(index, covering pattern) for each action a duplicate or a ``*`` pattern of the list already covers.

    Only patterns of the same service (or with a wildcard service) can cover an action, so managed policies with
    thousands of actions stay cheap to check.
    """
    by_service: dict[str, list[tuple[int, str]]] = {}
    any_service: list[tuple[int, str]] = []
    for j, pattern in enumerate(actions):
        if "*" in pattern and "?" not in pattern:
            vendor = pattern.partition(":")[0].lower()
            (any_service if "*" in vendor else by_service.setdefault(vendor, [])).append((j, pattern))
    covered: list[tuple[int, str]] = []
    first: dict[str, int] = {}
    for i, action in enumerate(actions):
        lowered = action.lower()
        if lowered in first:
            covered.append((i, actions[first[lowered]]))
            continue
        first[lowered] = i
        for j, pattern in by_service.get(lowered.partition(":")[0], []) + any_service:
            if j != i and pattern.lower() != lowered and compile_action(pattern)(lowered):
                covered.append((i, pattern))
                break
    return covered


def _unknown_global(key: str) -> str | None:
    """A message for an ``aws:`` key that is not a global condition key (a typo never matches: the key is always
    missing), with the nearest real key."""
    lowered = key.lower()
    if not lowered.startswith("aws:") or lowered in GLOBAL_KEYS or lowered.startswith(GLOBAL_PREFIXES):
        return None
    stem, slash, _ = lowered.partition("/")
    candidates = [*GLOBAL_KEYS, *(prefix.rstrip("/") for prefix in GLOBAL_PREFIXES)]
    close = difflib.get_close_matches(stem, candidates, n=1, cutoff=0.75)
    hint = ""
    if close:
        spelled = next(k for k in _SPELLED if k.lower() == close[0])
        hint = f"; did you mean {spelled}{slash + key.partition('/')[2] if slash else ''}?"
    return f"{key} is not an AWS global condition key (the condition can never see it){hint}"


def _condition_findings(condition: Mapping[str, Any], where: str, allow: bool) -> list[PolicyIssue]:
    found: list[PolicyIssue] = []
    for op_name, key_map in condition.items():
        parsed = split_operator(op_name)
        if parsed is None or not isinstance(key_map, Mapping):
            continue
        qualifier, base, _ = parsed
        for key_name, raw in key_map.items():
            at = f'{where}.{op_name}."{key_name}"'
            lowered = key_name.lower()
            values = raw if isinstance(raw, list) else [raw]
            multivalued = lowered in MULTIVALUED_KEYS
            unknown = _unknown_global(key_name)
            if unknown is not None:
                found.append(PolicyIssue(at, unknown, Severity.WARNING, "unknown-global-key"))
            single_global = lowered.startswith("aws:") and not multivalued
            if qualifier is not None and single_global:
                found.append(PolicyIssue(at, f"{op_name.split(':')[0]} with single-valued key {key_name}: a set "
                                         "qualifier on a single-valued key can be overly permissive",
                                         Severity.SECURITY_WARNING if qualifier == "all" else Severity.WARNING,
                                         "qualifier-single-valued"))
            if qualifier is None and multivalued and base != "Null":
                found.append(PolicyIssue(at, f"Missing qualifier: {key_name} is multivalued; use ForAllValues: or "
                                         "ForAnyValue:", Severity.WARNING, "missing-qualifier"))
            if qualifier == "all" and allow and base != "Null":
                found.append(PolicyIssue(at, "ForAllValues with Allow is true when the key is missing; pair it with "
                                         "a Null check", Severity.WARNING, "forallvalues-allow"))
            if base == "Null" and qualifier is not None:
                found.append(PolicyIssue(at, "Null with qualifier: the result is constant", Severity.WARNING,
                                         "null-qualifier"))
            if base.startswith("String") and base not in _LIKE_FAMILIES and "Like" not in base:
                if any(isinstance(v, str) and _has_wildcard(v) for v in values):
                    found.append(PolicyIssue(at, f"Wildcard without like operator: {base} compares '*' and '?' "
                                             "literally; use StringLike", Severity.WARNING, "wildcard-no-like"))
            if isinstance(raw, list) and not raw:
                found.append(PolicyIssue(at, "Empty array condition: no request value matches an empty list, so "
                                         "the test holds only for a negated operator, or when the key is missing "
                                         "with IfExists or ForAllValues", Severity.WARNING, "empty-condition-values"))
            if base == "Bool" and len(values) > 1:
                found.append(PolicyIssue(at, "Bool with several values: use one \"true\" or \"false\"",
                                         Severity.WARNING, "multiple-bool"))
    return found


def _has_wildcard(value: str) -> bool:
    stripped = value.replace("${*}", "").replace("${?}", "")
    return "*" in stripped or "?" in stripped


def _star_only_covers(general: str, specific: str) -> bool:
    """True if every action matched by pattern ``specific`` is matched by ``general`` (``*``-only patterns)."""
    if "?" in general:
        return general == specific
    return compile_action(general)(specific.lower())


def _redundancy(policy: Policy) -> list[PolicyIssue]:
    found: list[PolicyIssue] = []
    statements = policy.statements
    for i, a in enumerate(statements):
        for b in statements[i + 1 :]:
            if dict(a.raw, Sid=None) == dict(b.raw, Sid=None):
                found.append(PolicyIssue(_where(policy, b), f"Redundant statement: same as {a.label}",
                                         Severity.SUGGESTION, "redundant-statement"))
                continue
            for general, specific in ((a, b), (b, a)):
                if _shadows(general, specific):
                    found.append(PolicyIssue(_where(policy, specific), f"{specific.label} is shadowed by "
                                             f"{general.label}, which grants or denies all of it unconditionally",
                                             Severity.SUGGESTION, "shadowed-statement"))
                    break
    return found


def _shadows(general: Statement, specific: Statement) -> bool:
    if general.effect is not specific.effect or general.conditions or general.not_action or specific.not_action:
        return False
    if general.not_resource or specific.not_resource or general.principal is not None:
        return False
    if not all(any(_star_only_covers(g, s) for g in general.actions) for s in specific.actions):
        return False
    g_res = [r.text for r in general.resources or ()]
    s_res = [r.text for r in specific.resources or ()]
    return "*" in g_res or (bool(s_res) and all(r in g_res for r in s_res))
