"""What is known of a request before it is made: the context keys whose values are fixed, and those that are not.

For a principal and a route, some keys are fixed (``aws:username``, ``aws:PrincipalTag/team``, a route's constant
context value), some vary from request to request (``aws:SourceIp``, ``aws:MultiFactorAuthPresent``, a query
parameter) and every other key is absent: the request context holds only the keys the credential, the connection
and the route put there (``DecisionPoint.context_for``, ``gate.render_permission``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["Knowledge"]


@dataclass(frozen=True, slots=True)
class Knowledge:
    """``values``: lower-cased keys with a known value; ``unknown``: lower-cased keys that may hold any value or be
    absent. Any other key is known to be absent."""

    values: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    unknown: frozenset[str] = frozenset()

    def is_known(self, key: str) -> bool:
        return key not in self.unknown

    def merged(self, other: Knowledge) -> Knowledge:
        """This knowledge with ``other``'s keys added where this one says nothing of them (this one wins, as the
        keys IAM computes win over a route's own: ``DecisionPoint.decide``)."""
        mine = set(self.values) | self.unknown
        values = {**{k: v for k, v in other.values.items() if k not in mine}, **self.values}
        unknown = self.unknown | {k for k in other.unknown if k not in mine}
        return Knowledge(MappingProxyType(values), frozenset(unknown))
