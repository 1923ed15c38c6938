"""AWS's policy evaluation logic, as a pure function of its inputs.

Order (IAM User Guide, Policy evaluation logic): an explicit deny in any layer wins; then guardrails (the role of
SCPs) must allow; then, in one account, a resource-based grant or the identity path (identity policies, limited by
the permissions boundary and the session policy) allows, with AWS's principal-type rules for resource-based grants;
across accounts both the principal's side and the resource policy must allow. Errors close: any exception while
evaluating becomes a deny that names the failure.

The account root user (``arn:…:iam::<account>:root`` as the caller) has every permission on its own account's
resources: no identity policy, permissions boundary or session policy exists for it, so none is consulted (IAM
User Guide, "AWS account root user"). What limits it is what limits the account: the guardrails (SCPs limit the
root user of a member account) and explicit denies in resource-based policies. A resource whose ARN names another
account is a cross-account request even when ``resource_account`` is not given: the root user reaches it only where
that account's resource policy grants it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._decision import Decision, DecisionKind, MatchedStatement
from ._model import Effect, role_key
from ._policyset import Entry, PolicySet

__all__ = ["Caller", "CallerKind", "evaluate"]


class CallerKind(enum.StrEnum):
    USER = "user"
    ROLE_SESSION = "role-session"
    FEDERATED_USER = "federated-user"
    ROOT = "root"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks, as the evaluator needs it: the ARN, the account, and every form a Principal element may name."""

    arn: str
    account: str
    kind: CallerKind
    #: identifier -> kind of grant (``"arn:...:user/bob"`` -> ``user``, ``"111122223333"`` -> ``account``, ...)
    identifiers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_arn(cls, arn: str, *, extra: Mapping[str, str] | None = None) -> Caller:
        """Derive the caller's kind, account and Principal-element forms from an IAM- or STS-style ARN."""
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn":
            forms = {arn: "session"}
            if "." in arn and ":" not in arn:  # a service principal (``ec2.amazonaws.com``) is named as Service
                forms[f"Service:{arn}"] = "service"
            return cls(arn, "", CallerKind.OTHER, MappingProxyType({**forms, **(extra or {})}))
        _, partition, service, _, account, resource = parts
        ids: dict[str, str] = {}
        root = f"arn:{partition}:iam::{account}:root"
        kind = CallerKind.OTHER
        if service == "iam" and resource.startswith("user/"):
            kind = CallerKind.USER
            ids[arn] = "user"
        elif service == "sts" and resource.startswith("assumed-role/"):
            kind = CallerKind.ROLE_SESSION
            role_name = resource.split("/")[1] if resource.count("/") >= 2 else resource[len("assumed-role/"):]
            ids[arn] = "session"
            ids[f"arn:{partition}:iam::{account}:role/{role_name}"] = "role"
        elif service == "iam" and resource.startswith("role/"):
            kind = CallerKind.ROLE_SESSION
            ids[arn] = "role"
            ids[role_key(arn)] = "role"  # named in a policy with or without its path
        elif service == "sts" and resource.startswith("federated-user/"):
            kind = CallerKind.FEDERATED_USER
            ids[arn] = "federated"
        elif service == "iam" and resource == "root":
            kind = CallerKind.ROOT
            ids[arn] = "account"  # the root user is the account principal itself
        else:
            ids[arn] = "session"
        if account:
            ids.setdefault(root, "account")
            ids.setdefault(account, "account")
        if extra:
            ids.update(extra)
        return cls(arn, account, kind, MappingProxyType(ids))


_NONE: tuple[list[Entry], list[Entry], list[str]] = ([], [], [])


def _applicable(
    policy_set: PolicySet | None,
    action_lower: str,
    resource: str,
    context: Mapping[str, Any],
    missing: set[str],
    caller: Caller | None = None,
    has_boundary: bool = False,
) -> tuple[list[Entry], list[Entry], list[str]]:
    """(matching Allow statements, matching Deny statements, principal grant kinds of the allows)."""
    if policy_set is None:
        return _NONE
    candidates = policy_set.candidates(action_lower)
    if not candidates:
        return _NONE
    allows: list[Entry] = []
    denies: list[Entry] = []
    grants: list[str] = []
    for entry in candidates:
        statement = entry[2]
        grant = "any"
        if caller is not None and statement.principal is not None:
            found = statement.principal_grant(caller.identifiers, has_boundary=has_boundary)
            if found is None:
                continue
            grant = found
        if statement.resources is not None and not statement.matches_resource(resource, context, missing):
            continue
        if statement.conditions and not statement.matches_conditions(context, missing):
            continue
        if statement.effect is Effect.DENY:
            denies.append(entry)
        else:
            allows.append(entry)
            grants.append(grant)
    return allows, denies, grants


def _matched(layer: str, entries: list[Entry], policy_set: PolicySet | None) -> list[MatchedStatement]:
    if not entries or policy_set is None:
        return []
    return policy_set.explain(layer, entries)


def evaluate(
    caller: Caller,
    action: str,
    resource: str,
    context: Mapping[str, Any],
    *,
    identity: PolicySet | None = None,
    boundary: PolicySet | None = None,
    session: PolicySet | None = None,
    resource_policy: PolicySet | None = None,
    resource_account: str | None = None,
    guardrails: PolicySet | None = None,
    context_is_lower: bool = False,
) -> Decision:
    """Decide one request. ``context`` keys are matched case-insensitively; pass lower-cased keys and
    ``context_is_lower=True`` to skip the copy. ``session`` is None when the caller has no session policy."""
    try:
        ctx = context if context_is_lower else {str(k).lower(): v for k, v in context.items()}
        if caller.kind is CallerKind.ROOT:
            # Nothing but guardrails and resource policies applies to the root user (the module's docstring).
            identity = boundary = session = None
            if resource_account is None:
                resource_account = _arn_account(resource)
        return _evaluate(caller, action, resource, ctx, identity, boundary, session, resource_policy,
                         resource_account, guardrails)
    except Exception as exc:  # noqa: BLE001 - evaluation errors close (IAM: "generates an exception and closes")
        return Decision(
            DecisionKind.IMPLICITLY_DENIED, caller.arn, action, resource, denied_by="error",
            error=f"{type(exc).__name__}: {exc}",
        )


def _evaluate(
    caller: Caller,
    action: str,
    resource: str,
    ctx: Mapping[str, Any],
    identity: PolicySet | None,
    boundary: PolicySet | None,
    session: PolicySet | None,
    resource_policy: PolicySet | None,
    resource_account: str | None,
    guardrails: PolicySet | None,
) -> Decision:
    action_lower = action.lower()
    missing: set[str] = set()
    # Absent layers are skipped here rather than in _applicable: most callers have two or three of the five.
    g_allow, g_deny, _ = (_NONE if guardrails is None
                          else _applicable(guardrails, action_lower, resource, ctx, missing))
    r_allow, r_deny, r_grants = (_NONE if resource_policy is None
                                 else _applicable(resource_policy, action_lower, resource, ctx, missing, caller,
                                                  boundary is not None))
    i_allow, i_deny, _ = _NONE if identity is None else _applicable(identity, action_lower, resource, ctx, missing)
    b_allow, b_deny, _ = _NONE if boundary is None else _applicable(boundary, action_lower, resource, ctx, missing)
    s_allow, s_deny, _ = _NONE if session is None else _applicable(session, action_lower, resource, ctx, missing)
    missing_keys = tuple(sorted(missing)) if missing else ()

    # 1. Explicit deny anywhere wins. The first layer in AWS's order names the message.
    if g_deny or r_deny or i_deny or b_deny or s_deny:
        layer = next(name for name, denies in (("guardrail", g_deny), ("resource", r_deny), ("identity", i_deny),
                                               ("boundary", b_deny), ("session", s_deny)) if denies)
        matched = (
            _matched("guardrail", g_deny, guardrails) + _matched("resource", r_deny, resource_policy)
            + _matched("identity", i_deny, identity) + _matched("boundary", b_deny, boundary)
            + _matched("session", s_deny, session)
        )
        return Decision(DecisionKind.EXPLICITLY_DENIED, caller.arn, action, resource, tuple(matched), layer, (),
                        missing_keys)

    layers: list[tuple[str, bool | None]] = []
    # 2. Guardrails (SCP role): when present, something in them must allow.
    if guardrails:
        layers.append(("guardrail", bool(g_allow)))
        if not g_allow:
            return Decision(DecisionKind.IMPLICITLY_DENIED, caller.arn, action, resource, (), "guardrail",
                            tuple(layers), missing_keys)

    boundary_ok = not boundary or bool(b_allow)
    if caller.kind is CallerKind.FEDERATED_USER:
        session_ok = bool(session) and bool(s_allow)  # federated sessions need a session policy to have any permission
    else:
        session_ok = not session or bool(s_allow)
    identity_ok = bool(i_allow) or caller.kind is CallerKind.ROOT
    if boundary:
        layers.append(("boundary", bool(b_allow)))
    if session is not None or caller.kind is CallerKind.FEDERATED_USER:
        layers.append(("session", session_ok))
    layers.append(("identity", identity_ok))
    if resource_policy is not None:
        layers.append(("resource", bool(r_allow)))

    # A root user has every permission in its own account, which is the trusted side of a cross-account request.
    cross_account = resource_account is not None and caller.account != "" and resource_account != caller.account
    via_identity = identity_ok and boundary_ok and session_ok
    allowed: list[MatchedStatement] | None = None
    if cross_account:
        # Both sides must allow: the principal's account (identity path) and the resource's (resource policy).
        if r_allow and via_identity:
            allowed = (
                _matched("guardrail", g_allow, guardrails) + _matched("resource", r_allow, resource_policy)
                + _matched("identity", i_allow, identity) + _matched("boundary", b_allow, boundary)
                + _matched("session", s_allow, session)
            )
        denied_by = "resource" if via_identity else _first_failing(identity_ok, boundary_ok, session_ok)
    else:
        # Same account: a resource-based grant, by how it names the caller, or the identity path.
        direct = [
            entry for entry, grant in zip(r_allow, r_grants, strict=True)
            if grant in _DIRECT or (grant == "role" and boundary_ok and session_ok)
        ]
        # Allowed: every statement that allowed on a path that holds (direct grants, then the identity path).
        if direct or via_identity:
            allowed = _matched("guardrail", g_allow, guardrails) + _matched("resource", direct, resource_policy)
            if via_identity:
                allowed += (
                    _matched("identity", i_allow, identity) + _matched("boundary", b_allow, boundary)
                    + _matched("session", s_allow, session)
                )
        if "role" in r_grants and not identity_ok:
            # A grant to the role was there and a boundary or session policy stopped it: name that layer.
            denied_by = _first_failing(True, boundary_ok, session_ok)
        else:
            denied_by = _first_failing(identity_ok, boundary_ok, session_ok)
    if allowed is not None:
        return Decision(DecisionKind.ALLOWED, caller.arn, action, resource, tuple(allowed), None, tuple(layers),
                        missing_keys)
    return Decision(DecisionKind.IMPLICITLY_DENIED, caller.arn, action, resource, (), denied_by, tuple(layers),
                    missing_keys)


def _arn_account(resource: str) -> str | None:
    """The account field of an ARN (``arn:partition:service:region:account:resource``); None when it has none
    (``*``, an S3-style ARN without an account): such a resource is taken to be the caller's account's."""
    parts = resource.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and parts[4]:
        return parts[4]
    return None


#: Resource-based grants that name the caller itself are not limited by its identity policies (or, for users and
#: sessions, by its boundary): IAM User Guide, "Evaluating effective permissions with boundaries".
_DIRECT = frozenset({"any", "user", "session", "federated", "web", "service"})


def _first_failing(identity_ok: bool, boundary_ok: bool, session_ok: bool) -> str:
    if not identity_ok:
        return "identity"
    if not boundary_ok:
        return "boundary"
    if not session_ok:
        return "session"
    return "resource"
