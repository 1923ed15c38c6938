"""Authorizer: one principal's compiled policy layers plus a decision cache that can never turn a deny into an allow.

A decision depends on the caller and its layers (fixed for the object's life), the action, the resource, the
resource policy and account, and the values of the context keys read by the statements that can apply to the
action. The cache key is exactly that: per action, the keys its candidate statements read (its "plan"), so a
request is keyed by a handful of values rather than every key any statement reads, and keys that cannot matter
(another action's conditions) neither cost time nor split the cache. A policy change builds new Authorizers (a new
directory snapshot), so every entry of the old version dies with the old object at once; time keys such as
``aws:CurrentTime`` are part of the key like any other, so a decision is never reused at another time value.

Values are keyed exactly. A fast key holds the raw values when each is a str, None, bool or int. No other
built-in value equals a string, so an entry whose values are strings needs no further check; but ``True == 1``, so
an entry whose key holds a bool or an int also records where they are and their types, and a hit must match them.
Any other value is keyed by type and value (``1.0`` and ``1``, ``-0.0`` and ``0.0``, a list and a tuple are told
apart), and a value of a type outside plain data (str, bool, int, float, None, lists and tuples of them) is not
cached at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._decision import Decision
from ._evaluate import Caller, evaluate
from ._policyset import PolicySet

__all__ = ["Authorizer"]

#: Value types a fast key may hold (bools and ints with their types checked on a hit, since True == 1).
_PLAIN = frozenset({str, type(None), bool, int})
#: Marks an exact (type-tagged) key: never equal to the plain value in the same position of a fast key.
_EXACT = object()


#: Where a fast key holds a bool or an int, and its type; None when it holds neither.
_Checks = tuple[tuple[int, type], ...] | None


def _same_types(key: tuple[Any, ...], checks: _Checks) -> bool:
    """Whether ``key``, equal to a stored key, also has the types that key was stored with."""
    return checks is None or all(type(key[position]) is kind for position, kind in checks)


class _Uncacheable(Exception):
    """A context value of a type the cache does not key (the decision is computed afresh)."""


def _exact(value: Any) -> Any:
    """A hashable form of ``value`` that only an identical value (same types, same text) shares."""
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return kind, value
    if kind is float:
        return kind, repr(value)  # -0.0 == 0.0, but they substitute as different text
    if kind is list or kind is tuple:
        return kind, tuple(map(_exact, value))
    raise _Uncacheable


class Authorizer:
    """Decides requests for one caller against its identity policies, boundary, session policy and guardrails."""

    __slots__ = ("caller", "identity", "boundary", "session", "guardrails", "_layers", "_plans", "_cache",
                 "_cache_size")

    _PLAN_LIMIT = 4096

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
        self._layers = tuple(layer for layer in (identity, boundary, session, guardrails) if layer is not None)
        self._plans: dict[str, tuple[str, ...]] = {}
        #: key -> (decision, the position and type of each bool or int in the key, or None if there is none)
        self._cache: dict[tuple[Any, ...], tuple[Decision, _Checks]] = {}
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
        """Decide one request, from the cache when it can. ``context`` must have lower-cased keys (the middleware
        builds it so)."""
        if resource_policy is None and resource_account is None:
            keys = self._plans.get(action)
            if keys is not None:
                # Spelled out for the common plan sizes: a third cheaper than unpacking a map.
                get = context.get
                size = len(keys)
                key: tuple[Any, ...]
                if size == 1:
                    key = (action, resource, get(keys[0]))
                elif size == 2:
                    key = (action, resource, get(keys[0]), get(keys[1]))
                elif size == 3:
                    key = (action, resource, get(keys[0]), get(keys[1]), get(keys[2]))
                elif size == 4:
                    key = (action, resource, get(keys[0]), get(keys[1]), get(keys[2]), get(keys[3]))
                else:
                    key = (action, resource, *map(get, keys))
                try:
                    entry = self._cache.get(key)
                except TypeError:  # an unhashable value (a list): keyed exactly below
                    entry = None
                if entry is not None:
                    checks = entry[1]
                    if checks is None:
                        return entry[0]
                    for position, kind in checks:
                        if type(key[position]) is not kind:
                            break
                    else:
                        return entry[0]
        return self._authorize(action, resource, context, resource_policy, resource_account)

    def _authorize(
        self,
        action: str,
        resource: str,
        context: Mapping[str, Any],
        resource_policy: PolicySet | None,
        resource_account: str | None,
    ) -> Decision:
        keys = self._plan(action)
        if resource_policy is not None:
            keys = tuple(sorted({*keys, *resource_policy.context_keys(action.lower())}))
        values = [context.get(k) for k in keys]
        key: tuple[Any, ...] | None
        checks: _Checks = None
        if resource_policy is None and resource_account is None and all(type(v) in _PLAIN for v in values):
            key = (action, resource, *values)
            # True == 1 == 1.0: a hit on a bool or an int must also match its type.
            checks = tuple((i, type(v)) for i, v in enumerate(key) if type(v) is bool or type(v) is int) or None
        else:
            try:
                # Holding the PolicySet keeps it alive while the entry lives, so its identity is never reused.
                key = (action, resource, _EXACT, resource_policy, resource_account, *map(_exact, values))
            except _Uncacheable:
                key = None
        if key is not None:
            entry = self._cache.get(key)
            if entry is not None and _same_types(key, entry[1]):
                return entry[0]
        decision = self.decide(action, resource, context, resource_policy=resource_policy,
                               resource_account=resource_account)
        if key is not None and decision.error is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[key] = (decision, checks)
        return decision

    def plan(self, action: str) -> tuple[str, ...]:
        """The lower-cased context keys a decision about ``action`` can read (without a resource policy): the
        caller may build only these, since no other key can change the decision (nor its cache key)."""
        keys = self._plans.get(action)
        return keys if keys is not None else self._plan(action)

    def _plan(self, action: str) -> tuple[str, ...]:
        """The context keys a decision about ``action`` reads, in a fixed order (computed once per action)."""
        keys = self._plans.get(action)
        if keys is None:
            lowered = action.lower()
            keys = tuple(sorted(frozenset().union(*(layer.context_keys(lowered) for layer in self._layers))))
            if len(self._plans) >= self._PLAN_LIMIT:
                self._plans.clear()
            self._plans[action] = keys
        return keys

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
