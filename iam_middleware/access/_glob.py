"""Resource patterns against resource templates whose ids are unknown: does a pattern match for every id, for none,
or only for some (and then, which ids)?

A route's resource is a template such as ``arn:app:orders::111122223333:order/{order_id}``. The id is a request
value, percent-encoded when it is put in (``routing.render_template``), so it is a string over the URL-unreserved
characters and ``%``: it never holds ``:``, ``/``, ``*`` or ``?``. A Resource pattern is read with the evaluator's
own wildcard rules (``policy/_match.py``: ``?`` and ``*`` stay within a colon-separated segment, a segment-final
``*`` may cross ``:``) as a small automaton; an unknown id is "any string over that alphabet". Following the
automaton's sets of states through the template answers both questions at once: some id matches if some reachable
set accepts, every id matches if every reachable set does. Characters the pattern does not name behave alike, so
one stands for all of them and the search is finite.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from ..policy._match import tokens
from ..policy._variables import Part

__all__ = ["ALWAYS", "HOLE_CHARACTERS", "LITERAL", "MAYBE", "NEVER", "ONE", "RUN", "Hole", "TemplatePart", "classify",
           "hole_pattern", "hole_tokens"]

#: What an encoded request value may hold: RFC 3986's unreserved characters and the ``%`` of an escape.
HOLE_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-._~%")

ALWAYS = "always"
NEVER = "never"
MAYBE = "maybe"


@dataclass(frozen=True, slots=True)
class Hole:
    """An unknown request value in a resource template (a path parameter, ``query.X`` or ``header.X``), encoded
    as the gate encodes it; ``free``: any text at all (a whole resource nobody has named yet)."""

    name: str
    free: bool = False


TemplatePart = str | Hole

# Token kinds of the pattern automaton.
_LITERAL, _ONE, _RUN_SEGMENT, _RUN_ANY = range(4)


class _Automaton:
    """The positions of a resource pattern; state ``i`` means its first ``i`` tokens matched."""

    def __init__(self, parts: Sequence[Part]) -> None:
        toks = tokens(parts)
        self.size = len(toks)
        self.kinds: list[int] = []
        self.chars: list[str] = []
        for i, (ch, wild) in enumerate(toks):
            if not wild:
                self.kinds.append(_LITERAL)
            elif ch == "?":
                self.kinds.append(_ONE)
            else:
                segment_final = i + 1 == len(toks) or toks[i + 1] == (":", False)
                self.kinds.append(_RUN_ANY if segment_final else _RUN_SEGMENT)
            self.chars.append(ch)
        named = {ch for ch, kind in zip(self.chars, self.kinds, strict=True) if kind == _LITERAL}
        # The characters an id can hold, up to what the pattern can tell apart: each one it names, and one other.
        others = sorted(HOLE_CHARACTERS - named)
        self.id_symbols = tuple(sorted(named & HOLE_CHARACTERS)) + tuple(others[:1])
        self.free_symbols = tuple(sorted(named | {":", "/"})) + tuple(others[:1])
        self.start = self.close({0})

    def close(self, states: set[int]) -> frozenset[int]:
        """Add the states a run of nothing reaches (a ``*`` may match the empty string)."""
        for i in sorted(states):
            j = i
            while j < self.size and self.kinds[j] in (_RUN_SEGMENT, _RUN_ANY):
                j += 1
                states.add(j)
        return frozenset(states)

    def step(self, states: frozenset[int], ch: str) -> frozenset[int]:
        following: set[int] = set()
        for i in states:
            if i == self.size:
                continue
            kind = self.kinds[i]
            if kind == _LITERAL:
                if self.chars[i] == ch:
                    following.add(i + 1)
            elif kind == _ONE:
                if ch != ":":
                    following.add(i + 1)
            elif kind == _RUN_ANY or ch != ":":
                following.add(i)
        return self.close(following)

    def any_value(self, states: frozenset[int], free: bool = False) -> set[frozenset[int]]:
        """Every set of states reachable from ``states`` by reading some id (the empty one included); ``free``:
        by reading any text."""
        seen = {states}
        pending = [states]
        symbols = self.free_symbols if free else self.id_symbols
        while pending:
            current = pending.pop()
            for ch in symbols:
                found = self.step(current, ch)
                if found not in seen:
                    seen.add(found)
                    pending.append(found)
        return seen

    def accepts(self, states: frozenset[int]) -> bool:
        return self.size in states


@lru_cache(maxsize=65536)
def _automaton(parts: tuple[Part, ...]) -> _Automaton:
    return _Automaton(parts)


@lru_cache(maxsize=65536)  # the same patterns meet the same routes for every principal that shares a policy
def classify(parts: tuple[Part, ...], template: tuple[TemplatePart, ...]) -> str:
    """``ALWAYS`` if the pattern matches the template whatever its ids are, ``NEVER`` if for no ids, else
    ``MAYBE``. ``parts`` is a Resource entry as the evaluator substitutes it (policy text and Literal values)."""
    automaton = _automaton(parts)
    reachable = {automaton.start}
    for part in template:
        if isinstance(part, Hole):
            reachable = set().union(*(automaton.any_value(states, part.free) for states in reachable))
        else:
            for ch in part:
                reachable = {automaton.step(states, ch) for states in reachable}
        if reachable == {frozenset()}:
            return NEVER  # every way through has failed already
    accepted = [automaton.accepts(states) for states in reachable]
    if all(accepted):
        return ALWAYS
    return MAYBE if any(accepted) else NEVER


@lru_cache(maxsize=65536)
def hole_pattern(parts: tuple[Part, ...], template: tuple[TemplatePart, ...]) -> tuple[str, bool] | None:
    """For a template that ends in its only id: what that id must be for the pattern to match, as
    (pattern text, has wildcards), e.g. ``("archived-*", True)`` or ``("42", False)``; None when the condition on
    the id cannot be told apart from the rest of the pattern (several ids, or a wildcard that straddles the id)."""
    found = hole_tokens(parts, template)
    if found is None:
        return None
    return "".join(ch for ch, _ in found), any(kind != LITERAL for _, kind in found)


#: Token kinds ``hole_tokens`` gives: a literal character, ``?`` (one character), ``*`` (any run).
LITERAL, ONE, RUN = "literal", "one", "run"


@lru_cache(maxsize=65536)
def hole_tokens(parts: tuple[Part, ...], template: tuple[TemplatePart, ...]) -> tuple[tuple[str, str], ...] | None:
    """For a template that ends in its only id: the glob the id must match, as (character, kind) tokens (kind
    ``LITERAL``, ``ONE`` or ``RUN``: a literal ``*`` from ``${*}`` or a substituted value stays ``LITERAL``); None
    when the condition on the id cannot be told apart from the rest of the pattern (several ids, or a wildcard that
    straddles the id). The id is read as the gate puts it in the resource (encoded: no ``:``), so a ``*`` within a
    segment and one that may cross ``:`` mean the same there."""
    last = template[-1] if template else None
    if not isinstance(last, Hole) or last.free or any(isinstance(p, Hole) for p in template[:-1]):
        return None
    automaton = _automaton(parts)
    states = automaton.start
    for part in template[:-1]:
        for ch in str(part):  # only text before the one id
            states = automaton.step(states, ch)
    # Only the places from which some id can still reach the end matter: a wildcard that would have to read a ``:``
    # or a ``/`` after the id can never be satisfied by it.
    live = [i for i in sorted(states) if any(map(automaton.accepts, automaton.any_value(automaton.close({i}))))]
    if not live or not set(live) <= automaton.close({live[0]}):
        return None  # several places in the pattern: a wildcard straddles the id's start
    kinds = {_LITERAL: LITERAL, _ONE: ONE, _RUN_SEGMENT: RUN, _RUN_ANY: RUN}
    return tuple((automaton.chars[i], kinds[automaton.kinds[i]]) for i in range(live[0], automaton.size))
