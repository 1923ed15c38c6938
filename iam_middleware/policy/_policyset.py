"""PolicySet: the statements of one policy layer, indexed by action so cost follows what can apply."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar, Generic, TypeVar

from ._decision import MatchedStatement
from ._match import Matcher, compile_action
from ._model import Policy, Statement
from ._variables import Variable

__all__ = ["PolicySet"]

Entry = tuple[int, Policy, Statement]  # (order, policy, statement): order keeps explanations deterministic
T = TypeVar("T")


class _ActionIndex(Generic[T]):
    """Lower-cased action patterns mapped to values, searched without testing every pattern.

    Exact names are one dict lookup; trailing-``*`` prefixes are grouped by service (the text before ``:``), so an
    action is tested only against its own service's prefixes; the rare other wildcards are matched one by one.
    """

    __slots__ = ("_exact", "_by_service", "_global", "_other")

    def __init__(self) -> None:
        self._exact: dict[str, tuple[T, ...]] = {}  # tuples: most names list one statement, and a tuple is small
        self._by_service: dict[str, list[tuple[str, T]]] = {}
        self._global: list[tuple[str, T]] = []  # prefixes without a ``:`` (``*``, ``s3*``) may fit any service
        self._other: list[tuple[Matcher, T]] = []

    def add(self, pattern: str, value: T) -> None:
        lowered = pattern.lower()
        wild = [i for i, ch in enumerate(lowered) if ch in "*?"]
        if not wild:
            self._exact[lowered] = (*self._exact.get(lowered, ()), value)
        elif wild == [len(lowered) - 1] and lowered[-1] == "*":
            prefix = lowered[:-1]
            service, colon, _ = prefix.partition(":")
            if colon:
                self._by_service.setdefault(service, []).append((prefix, value))
            else:
                self._global.append((prefix, value))
        else:
            self._other.append((compile_action(lowered), value))

    def find(self, action_lower: str) -> list[T]:
        """Every value whose pattern matches ``action_lower`` (a value may appear more than once)."""
        found = list(self._exact.get(action_lower, ()))
        service = action_lower.partition(":")[0]
        for prefix, value in self._by_service.get(service, ()):
            if action_lower.startswith(prefix):
                found.append(value)
        for prefix, value in self._global:
            if action_lower.startswith(prefix):
                found.append(value)
        for matcher, value in self._other:
            if matcher(action_lower):
                found.append(value)
        return found


class PolicySet:
    """Compiled, immutable statements of one layer (a principal's identity policies, a boundary, ...).

    ``Action`` patterns go in one action index; each ``NotAction`` statement has an index of its own patterns and
    applies when that index finds nothing. Candidate lists are memoised per action (bounded), since an application
    asks about few distinct actions. ``PolicySet.of`` compiles a policy, or a list of policies, once: policies are
    immutable, so a new version of a document is a new ``Policy`` and gets a new set.
    """

    __slots__ = ("policies", "_index", "_not_action", "_memo", "_keys_memo", "condition_keys", "_statement_keys",
                 "_statement_count", "_explained")

    _MEMO_LIMIT = 4096
    _OF_LIMIT = 1024
    _of_cache: ClassVar[dict[tuple[Policy, ...], PolicySet]] = {}

    def __init__(self, policies: Iterable[Policy]) -> None:
        self.policies: tuple[Policy, ...] = tuple(policies)
        self._index: _ActionIndex[Entry] = _ActionIndex()
        self._not_action: list[tuple[_ActionIndex[bool], Entry]] = []
        self._memo: dict[str, tuple[Entry, ...]] = {}
        self._keys_memo: dict[str, frozenset[str]] = {}
        self._explained: dict[tuple[str, int], MatchedStatement] = {}
        self._statement_keys: list[tuple[str, ...]] = []
        order = 0
        for policy in self.policies:
            for statement in policy.statements:
                entry = (order, policy, statement)
                order += 1
                if statement.not_action:
                    excluded: _ActionIndex[bool] = _ActionIndex()
                    for action in statement.actions:
                        excluded.add(action, True)
                    self._not_action.append((excluded, entry))
                else:
                    for action in statement.actions:
                        self._index.add(action, entry)
                self._statement_keys.append(_context_keys(statement))
        self._statement_count = order
        #: Lower-cased context keys any statement reads.
        self.condition_keys: frozenset[str] = frozenset().union(*self._statement_keys)

    def __len__(self) -> int:
        return self._statement_count

    def __bool__(self) -> bool:
        return bool(self.policies)

    def candidates(self, action_lower: str) -> tuple[Entry, ...]:
        """Statements whose Action/NotAction matches ``action_lower``, in policy order."""
        found = self._memo.get(action_lower)
        if found is not None:
            return found
        hits = {entry[0]: entry for entry in self._index.find(action_lower)}
        for excluded, entry in self._not_action:
            if not excluded.find(action_lower):
                hits[entry[0]] = entry
        found = tuple(hits[k] for k in sorted(hits))
        if len(self._memo) >= self._MEMO_LIMIT:
            self._memo.clear()
        self._memo[action_lower] = found
        return found

    def context_keys(self, action_lower: str) -> frozenset[str]:
        """Lower-cased context keys read by the statements that can apply to ``action_lower``.

        A decision about the action depends on the request context only through these keys.
        """
        found = self._keys_memo.get(action_lower)
        if found is None:
            keys = self._statement_keys
            found = frozenset().union(*(keys[entry[0]] for entry in self.candidates(action_lower)))
            if len(self._keys_memo) >= self._MEMO_LIMIT:
                self._keys_memo.clear()
            self._keys_memo[action_lower] = found
        return found

    def explain(self, layer: str, entries: Iterable[Entry]) -> list[MatchedStatement]:
        """The MatchedStatement records for ``entries`` of this set, built once per statement and layer."""
        out = []
        for order, policy, statement in entries:
            matched = self._explained.get((layer, order))
            if matched is None:
                matched = MatchedStatement(policy.id, layer, statement.index, statement.sid, statement.effect.value)
                self._explained[(layer, order)] = matched
            out.append(matched)
        return out

    @classmethod
    def of(cls, policies: Sequence[Policy] | Policy | None) -> PolicySet | None:
        """The compiled set of ``policies``, built once per distinct list of Policy objects (bounded)."""
        if policies is None:
            return None
        key = (policies,) if isinstance(policies, Policy) else tuple(policies)
        found = cls._of_cache.get(key)
        if found is None:
            if len(cls._of_cache) >= cls._OF_LIMIT:
                cls._of_cache.clear()
            found = cls._of_cache[key] = cls(key)
        return found


def _context_keys(statement: Statement) -> tuple[str, ...]:
    """The lower-cased context keys a statement reads: its condition keys and every policy variable it uses."""
    keys: set[str] = set()
    for condition in statement.conditions:
        keys.add(condition.key)
        keys.update(condition.variable_keys)
    for pattern in statement.resources or ():
        for part in pattern.template or ():
            if isinstance(part, Variable):
                keys.add(part.key)
    return tuple(sorted(keys))
