"""PolicySet: the statements of one policy layer, indexed by action so cost follows what can apply."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ._decision import MatchedStatement
from ._model import Policy, Statement
from ._variables import Variable

__all__ = ["PolicySet"]

Entry = tuple[int, Policy, Statement]  # (order, policy, statement): order keeps explanations deterministic


class PolicySet:
    """Compiled, immutable statements of one layer (a principal's identity policies, a boundary, ...).

    The action index maps exact action names and trailing-``*`` prefixes to statements; only the few patterns with
    other wildcards and ``NotAction`` statements are tested one by one. Candidate lists are memoised per action
    (bounded), since an application asks about few distinct actions.
    """

    __slots__ = ("policies", "_exact", "_prefix", "_other", "_memo", "_min_prefix", "_max_prefix", "condition_keys",
                 "time_dependent", "_statement_count", "_explained")

    _MEMO_LIMIT = 4096
    _TIME_KEYS = frozenset({"aws:currenttime", "aws:epochtime", "aws:multifactorauthage", "aws:tokenissuetime"})

    def __init__(self, policies: Iterable[Policy]) -> None:
        self.policies: tuple[Policy, ...] = tuple(policies)
        self._exact: dict[str, list[Entry]] = {}
        self._prefix: dict[str, list[Entry]] = {}
        self._other: list[Entry] = []
        self._memo: dict[str, tuple[Entry, ...]] = {}
        self._explained: dict[tuple[str, int], MatchedStatement] = {}
        keys: set[str] = set()
        order = 0
        for policy in self.policies:
            for statement in policy.statements:
                entry = (order, policy, statement)
                order += 1
                self._index(entry)
                for condition in statement.conditions:
                    keys.add(condition.key)
                    keys.update(condition.variable_keys)
                keys.update(_variable_keys(statement))
        self._statement_count = order
        prefixes = [len(p) for p in self._prefix]
        self._min_prefix = min(prefixes, default=0)
        self._max_prefix = max(prefixes, default=0)
        #: Lower-cased context keys any statement reads: what a cached decision must be keyed by.
        self.condition_keys: frozenset[str] = frozenset(keys)
        self.time_dependent = bool(keys & self._TIME_KEYS)

    def _index(self, entry: Entry) -> None:
        statement = entry[2]
        if statement.not_action:
            self._other.append(entry)
            return
        for action in statement.actions:
            lowered = action.lower()
            wild = [i for i, ch in enumerate(lowered) if ch in "*?"]
            if not wild:
                self._exact.setdefault(lowered, []).append(entry)
            elif wild == [len(lowered) - 1] and lowered[-1] == "*":
                self._prefix.setdefault(lowered[:-1], []).append(entry)
            else:
                self._other.append(entry)

    def __len__(self) -> int:
        return self._statement_count

    def __bool__(self) -> bool:
        return bool(self.policies)

    def candidates(self, action_lower: str) -> tuple[Entry, ...]:
        """Statements whose Action/NotAction matches ``action_lower``, in policy order."""
        found = self._memo.get(action_lower)
        if found is not None:
            return found
        hits: dict[int, Entry] = {}
        for entry in self._exact.get(action_lower, ()):
            hits[entry[0]] = entry
        if self._prefix:
            prefix_map = self._prefix
            for size in range(self._min_prefix, min(self._max_prefix, len(action_lower)) + 1):
                listed = prefix_map.get(action_lower[:size])
                if listed:
                    for entry in listed:
                        hits[entry[0]] = entry
        for entry in self._other:
            if entry[0] not in hits and entry[2].matches_action(action_lower):
                hits[entry[0]] = entry
        found = tuple(hits[k] for k in sorted(hits))
        if len(self._memo) >= self._MEMO_LIMIT:
            self._memo.clear()
        self._memo[action_lower] = found
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
        if policies is None:
            return None
        if isinstance(policies, Policy):
            return cls([policies])
        return cls(policies)


def _variable_keys(statement: Statement) -> set[str]:
    keys: set[str] = set()
    for pattern in statement.resources or ():
        for part in pattern.template or ():
            if isinstance(part, Variable):
                keys.add(part.key)
    return keys
