"""Immutable, compiled policy objects. Built only by ``parse_policy``; evaluation never re-reads the JSON."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._conditions import ConditionEntry
from ._match import Matcher, compile_resource
from ._variables import Template, substitute

__all__ = ["Effect", "Policy", "PolicyKind", "PrincipalSpec", "ResourcePattern", "Statement"]


class Effect(enum.StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


class PolicyKind(enum.StrEnum):
    """What a document is for; each kind allows different elements."""

    IDENTITY = "identity"
    RESOURCE = "resource"
    TRUST = "trust"
    BOUNDARY = "boundary"
    SESSION = "session"
    GUARDRAIL = "guardrail"

    @property
    def has_principal(self) -> bool:
        return self in (PolicyKind.RESOURCE, PolicyKind.TRUST)


@dataclass(frozen=True, slots=True)
class PrincipalSpec:
    """A Principal/NotPrincipal element: ``"*"``, or principal type -> identifiers (``AWS``, ``Service``, ...)."""

    everyone: bool
    values: Mapping[str, tuple[str, ...]]

    def match(self, identifiers: Mapping[str, str]) -> str | None:
        """The kind of the first identifier named (``user``, ``role``, ``session``, ``account``, ...), or None.

        ``identifiers`` maps each form of the caller (``"arn:...:user/bob"``, ``"111122223333"``, ``"Service:x"``)
        to the kind of grant it is.
        """
        if self.everyone:
            return "any"
        best: str | None = None
        for principal_type, names in self.values.items():
            for name in names:
                if name == "*" and principal_type == "AWS":
                    return "any"
                kind = (identifiers.get(role_key(name)) if principal_type == "AWS"
                        else identifiers.get(f"{principal_type}:{name}"))
                if kind is not None and (best is None or _RANK[kind] < _RANK[best]):
                    best = kind
        return best

    def names_all(self, identifiers: Mapping[str, str]) -> bool:
        """True if every level of the caller is named: each kind of identifier (session, role, user, account...).

        This is what exempts a caller from a ``Deny`` with ``NotPrincipal``: IAM may check the account, then the
        role, then the session, and denies if any of them is not listed (IAM User Guide, NotPrincipal).
        """
        if self.everyone or "*" in self.values.get("AWS", ()):
            return True
        named = {role_key(name) for t, names in self.values.items() for name in names if t == "AWS"}
        named |= {f"{t}:{name}" for t, names in self.values.items() for name in names if t != "AWS"}
        levels: dict[str, bool] = {}
        for identifier, kind in identifiers.items():
            levels[kind] = levels.get(kind, False) or identifier in named
        return bool(levels) and all(levels.values())


def role_key(name: str) -> str:
    """A role's ARN without its path (``arn:aws:iam::1:role/ops/OpsRole`` -> ``arn:aws:iam::1:role/OpsRole``): a
    session's ARN never carries the role's path, and a role's name is unique in its account (IAM identifiers)."""
    if ":role/" not in name:
        return name
    parts = name.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam" or not parts[5].startswith("role/"):
        return name
    return f"{':'.join(parts[:5])}:role/{parts[5].rsplit('/', 1)[1]}"


_RANK = {"any": 0, "session": 1, "user": 2, "federated": 3, "role": 4, "service": 5, "web": 6, "account": 7}


@dataclass(frozen=True, slots=True)
class ResourcePattern:
    """One Resource entry: a static matcher, or a template resolved per request (policy variables)."""

    text: str
    matcher: Matcher | None
    template: Template | None

    def match(self, resource: str, context: Mapping[str, Any], missing: set[str] | None) -> bool:
        if self.matcher is not None:
            return self.matcher(resource)
        if self.template is None:
            return False
        parts = substitute(self.template, context, missing)
        if parts is None:
            return False  # an unresolved variable makes this entry match nothing
        return _resource_matcher(parts)(resource)


_RESOURCE_CACHE: dict[tuple[Any, ...], Matcher] = {}


def _resource_matcher(parts: tuple[Any, ...]) -> Matcher:
    matcher = _RESOURCE_CACHE.get(parts)
    if matcher is None:
        if len(_RESOURCE_CACHE) > 4096:
            _RESOURCE_CACHE.clear()
        matcher = _RESOURCE_CACHE[parts] = compile_resource(parts)
    return matcher


@dataclass(frozen=True, slots=True, eq=False)
class Statement:
    """A compiled statement. ``index`` is its position in the policy; ``sid`` its Sid, if any."""

    index: int
    sid: str | None
    effect: Effect
    actions: tuple[str, ...]
    not_action: bool
    action_matchers: tuple[Matcher, ...]
    resources: tuple[ResourcePattern, ...] | None  # None: no Resource element (resource-based and trust policies)
    not_resource: bool
    principal: PrincipalSpec | None
    not_principal: bool
    conditions: tuple[ConditionEntry, ...]
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def label(self) -> str:
        return self.sid if self.sid else f"Statement[{self.index}]"

    def matches_action(self, action_lower: str) -> bool:
        hit = any(m(action_lower) for m in self.action_matchers)
        return not hit if self.not_action else hit

    def matches_resource(self, resource: str, context: Mapping[str, Any], missing: set[str] | None) -> bool:
        if self.resources is None:
            return True
        hit = False
        for pattern in self.resources:
            matcher = pattern.matcher
            if matcher(resource) if matcher is not None else pattern.match(resource, context, missing):
                hit = True
                break
        return not hit if self.not_resource else hit

    def matches_conditions(self, context: Mapping[str, Any], missing: set[str] | None) -> bool:
        for entry in self.conditions:
            if not entry.test(context, missing):
                return False
        return True

    def principal_grant(self, identifiers: Mapping[str, str], *, has_boundary: bool = False) -> str | None:
        """For resource-based statements: how the caller is named (None: the statement is not for it).

        ``NotPrincipal`` is read the strict way round for each effect: an ``Allow`` skips a caller if any of its
        forms is listed, a ``Deny`` spares it only if every one of its forms (session, role, account) is listed.
        A ``Deny`` with ``NotPrincipal`` "will always deny any IAM principal that has a permissions boundary policy
        attached, regardless of the values specified in the NotPrincipal element" (IAM User Guide, NotPrincipal).
        """
        if self.principal is None:
            return "any"
        if self.not_principal:
            if self.effect is Effect.DENY:
                if has_boundary:
                    return "any"
                return None if self.principal.names_all(identifiers) else "any"
            return None if self.principal.match(identifiers) is not None else "any"
        return self.principal.match(identifiers)


@dataclass(frozen=True, slots=True, eq=False)
class Policy:
    """A validated, compiled policy document. ``id`` labels it in decisions (the ``Id`` element or a name)."""

    id: str
    kind: PolicyKind
    version: str | None
    statements: tuple[Statement, ...]
    document: Mapping[str, Any] = field(repr=False)

    @property
    def uses_variables(self) -> bool:
        return self.version == "2012-10-17"
