"""The outcome of an authorization: allowed or which kind of deny, the statements that decided it, and why."""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

__all__ = ["Decision", "DecisionKind", "MatchedStatement"]


class DecisionKind(enum.StrEnum):
    ALLOWED = "Allowed"
    IMPLICITLY_DENIED = "ImplicitlyDenied"
    EXPLICITLY_DENIED = "ExplicitlyDenied"


#: How each policy layer is named in AWS's access-denied messages.
LAYER_NAMES = {
    "identity": "identity-based policy",
    "boundary": "permissions boundary",
    "session": "session policy",
    "resource": "resource-based policy",
    "guardrail": "service control policy",
}


class MatchedStatement(NamedTuple):
    """A statement that took part in the decision: which policy, which layer, which statement."""

    policy_id: str
    layer: str
    index: int  # type: ignore[assignment]  # the statement's position; shadows tuple.index, which nobody calls here
    sid: str | None
    effect: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy_id,
            "type": self.layer,
            "statement": self.index,
            "sid": self.sid,
            "effect": self.effect,
        }


class Decision(NamedTuple):
    """An authorization decision with its explanation. Immutable (a tuple), so cached decisions can be shared.

    ``denied_by`` names the layer that decided a deny (``identity``, ``boundary``, ``session``, ``resource``,
    ``guardrail``; ``error`` when evaluation failed and closed). ``layers`` holds each layer's own verdict
    (True allows, False does not, None not consulted), as IAM's simulator reports for boundaries and SCPs.
    """

    kind: DecisionKind
    principal_arn: str
    action: str
    resource: str
    matched: tuple[MatchedStatement, ...] = ()
    denied_by: str | None = None
    layers: tuple[tuple[str, bool | None], ...] = ()
    missing_context_keys: tuple[str, ...] = ()
    error: str | None = None

    @property
    def allowed(self) -> bool:
        return self.kind is DecisionKind.ALLOWED

    @property
    def message(self) -> str:
        """The explanation, in the form of AWS's AccessDenied messages."""
        who = f"User: {self.principal_arn}"
        if self.allowed:
            by = ", ".join(f"{LAYER_NAMES[m.layer]} {m.policy_id} ({m.sid or f'Statement[{m.index}]'})"
                           for m in self.matched)
            return f"{who} is authorized to perform: {self.action} on resource: {self.resource}" + (
                f" (allowed by {by})" if by else ""
            )
        head = f"{who} is not authorized to perform: {self.action} on resource: {self.resource}"
        if self.error is not None:
            return f"{head} because the request could not be evaluated"
        layer = LAYER_NAMES.get(self.denied_by or "identity", "identity-based policy")
        if self.kind is DecisionKind.EXPLICITLY_DENIED:
            article = "an" if layer[0] in "aeiou" else "a"
            return f"{head} with an explicit deny in {article} {layer}"
        return f"{head} because no {layer} allows the {self.action} action"

    def layer(self, name: str) -> bool | None:
        """The verdict of one layer (``identity``, ``boundary``, ...), or None if it was not consulted."""
        return dict(self.layers).get(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.kind.value,
            "matched": [m.as_dict() for m in self.matched],
            "message": self.message,
            "missing_context_keys": list(self.missing_context_keys),
            "layers": {name: verdict for name, verdict in self.layers},
        }
