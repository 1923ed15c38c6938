"""Small builders shared by the policy tests: documents, compiled layers, one-call decisions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from iam_middleware._exceptions import PolicyValidationError
from iam_middleware.policy import (
    Caller,
    Decision,
    Policy,
    PolicyIssue,
    PolicyKind,
    PolicySet,
    evaluate,
    parse_policy,
)

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Reader"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/Reader/alice-session"
FEDERATED = f"arn:aws:sts::{ACCOUNT}:federated-user/carol"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
OBJECT = "arn:aws:s3:::bucket/key"

Document = dict[str, Any]


def statement(effect: str = "Allow", action: Any = "s3:GetObject", resource: Any = "*", **extra: Any) -> Document:
    """One statement; ``action=None``/``resource=None`` leave the element out (for NotAction, NotResource, ...)."""
    out: Document = {"Effect": effect}
    if action is not None:
        out["Action"] = action
    if resource is not None:
        out["Resource"] = resource
    out.update(extra)
    return out


def allow(action: Any = "s3:GetObject", resource: Any = "*", **extra: Any) -> Document:
    return statement("Allow", action, resource, **extra)


def deny(action: Any = "s3:GetObject", resource: Any = "*", **extra: Any) -> Document:
    return statement("Deny", action, resource, **extra)


def doc(*statements: Document, version: str | None = "2012-10-17") -> Document:
    out: Document = {"Statement": list(statements)}
    if version is not None:
        out["Version"] = version
    return out


def compile_set(
    documents: Sequence[Document | Policy] | Mapping[str, Any] | None,
    kind: PolicyKind = PolicyKind.IDENTITY,
    label: str = "p",
) -> PolicySet | None:
    """A PolicySet of parsed documents; None stays None (the layer is absent)."""
    if documents is None:
        return None
    listed = [documents] if isinstance(documents, Mapping) else list(documents)
    return PolicySet(
        [d if isinstance(d, Policy) else parse_policy(d, kind=kind, policy_id=f"{label}{i}")
         for i, d in enumerate(listed)]
    )


def decide(
    *identity: Document,
    principal: str = USER,
    action: str = "s3:GetObject",
    resource: str = OBJECT,
    context: Mapping[str, Any] | None = None,
    boundary: Document | None = None,
    session: Document | None = None,
    resource_policy: Document | None = None,
    resource_account: str | None = None,
    guardrails: Sequence[Document] | None = None,
) -> Decision:
    """Evaluate one request against the given layers (identity policies positional)."""
    return evaluate(
        Caller.from_arn(principal),
        action,
        resource,
        context or {},
        identity=compile_set(list(identity), label="identity"),
        boundary=compile_set(boundary, PolicyKind.BOUNDARY, "boundary"),
        session=compile_set(session, PolicyKind.SESSION, "session"),
        resource_policy=compile_set(resource_policy, PolicyKind.RESOURCE, "resource"),
        resource_account=resource_account,
        guardrails=compile_set(guardrails, PolicyKind.GUARDRAIL, "guardrail"),
    )


def errors(document: Any, kind: PolicyKind | str = PolicyKind.IDENTITY) -> list[PolicyIssue]:
    """The issues a rejected document reports; fails the test if the document is accepted."""
    with pytest.raises(PolicyValidationError) as info:
        parse_policy(document, kind=kind)
    return info.value.issues


def condition_holds(
    operator: str, key: str, value: Any, context: Mapping[str, Any], version: str | None = "2012-10-17"
) -> bool:
    """Whether a one-condition Allow statement applies to a request with ``context``."""
    policy = doc(allow(Condition={operator: {key: value}}), version=version)
    return decide(policy, context=context).allowed
