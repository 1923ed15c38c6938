"""Authorizer: one principal's compiled policy layers plus a decision cache that can never turn a deny into an allow.

The cache key is the action, the resource, the resource policy (by identity) and the value of every context key
that any statement in any layer reads (condition keys and policy variables). Everything else a decision depends on
is fixed for the object's life: the principal and its layers. A policy change builds new Authorizers (a new
directory snapshot), so stale entries die with the old object; time-dependent keys such as ``aws:CurrentTime`` are
part of the key like any other, so a cached decision is never reused at another time value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._decision import Decision
from ._evaluate import Caller, evaluate
from ._policyset import PolicySet

__all__ = ["Authorizer"]


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


class Authorizer:
    """Decides requests for one caller against its identity policies, boundary, session policy and guardrails."""

    __slots__ = ("caller", "identity", "boundary", "session", "guardrails", "_keys", "_cache", "_cache_size")

    def __init__(
        self,
        caller: Caller,
        *,
        identity: PolicySet | None = None,
        boundary: PolicySet | None = None,
        session: PolicySet | None = None,
        guardrails: PolicySet | None = None,
        cache_size: int = 4096,
    ) -> None:
        self.caller = caller
        self.identity = identity
        self.boundary = boundary
        self.session = session
        self.guardrails = guardrails
        keys: set[str] = set()
        for layer in (identity, boundary, session, guardrails):
            if layer is not None:
                keys |= layer.condition_keys
        self._keys: tuple[str, ...] = tuple(sorted(keys))
        self._cache: dict[Any, Decision] = {}
        self._cache_size = cache_size

    def authorize(
        self,
        action: str,
        resource: str,
        context: Mapping[str, Any],
        *,
        resource_policy: PolicySet | None = None,
        resource_account: str | None = None,
    ) -> Decision:
        """Decide one request. ``context`` must have lower-cased keys (the middleware builds it so)."""
        keys = self._keys
        if resource_policy is not None:
            keys = tuple(sorted(set(keys) | resource_policy.condition_keys))
        get = context.get
        # PolicySet hashes by identity; holding it in the key keeps it alive while the entry lives.
        key: tuple[Any, ...] = (action, resource, resource_policy, resource_account, *map(get, keys))
        try:
            decision = self._cache.get(key)
        except TypeError:  # a list value: make it hashable (rare: multivalued keys)
            key = tuple(_hashable(part) for part in key)
            decision = self._cache.get(key)
        if decision is not None:
            return decision
        decision = self.decide(action, resource, context, resource_policy=resource_policy,
                               resource_account=resource_account)
        if decision.error is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[key] = decision
        return decision

    def decide(
        self,
        action: str,
        resource: str,
        context: Mapping[str, Any],
        *,
        resource_policy: PolicySet | None = None,
        resource_account: str | None = None,
    ) -> Decision:
        """Decide without the cache (the same answer, always computed afresh)."""
        return evaluate(
            self.caller, action, resource, context,
            identity=self.identity, boundary=self.boundary, session=self.session,
            resource_policy=resource_policy, resource_account=resource_account, guardrails=self.guardrails,
            context_is_lower=True,
        )

    def clear(self) -> None:
        self._cache.clear()
