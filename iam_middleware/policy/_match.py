"""Wildcard matching for actions, resources, ``*Like`` and ``Arn*`` operators, compiled once into the cheapest test.

Only ``*`` and ``?`` are wildcards; every other character is literal (a ``.`` is not a wildcard). Three flavours:

- plain (``StringLike``): ``*`` is any run of characters, ``?`` exactly one, across ``:`` and ``/``;
- resource (``Resource``/``NotResource``): wildcards stay within a colon-separated segment, except a ``*`` that is
  the last character of a segment, which may extend across the ``:`` (IAM User Guide, Resource element);
- ARN (``ArnLike``/``ArnEquals``): each of the six colon-delimited components is matched separately, so a pattern
  with fewer than six components matches nothing.

Matching takes time linear in the value's length for any pattern: a pattern with two or more ``*`` (where a
backtracking regex can take exponential time, and a caller chooses its session policy) runs as a bit-parallel
automaton over the pattern's positions instead of a regex (docs/security.md section 5).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from ._variables import Literal, Part

__all__ = ["Matcher", "compile_action", "compile_arn", "compile_plain", "compile_resource", "tokens"]

Matcher = Callable[[str], bool]
Token = tuple[str, bool]  # (character, is_wildcard)


def _always(_: str) -> bool:
    return True


def _any_run(_: int) -> str:
    return ".*"


def _any_char(_: int) -> str:
    return "."


def _segment_char(_: int) -> str:
    return "[^:]"


def tokens(parts: Sequence[Part]) -> list[Token]:
    """Characters with their wildcard flag: policy text keeps ``*``/``?`` as wildcards, literals never do."""
    out: list[Token] = []
    for part in parts:
        if isinstance(part, Literal):
            out.extend((ch, False) for ch in part.text)
        elif isinstance(part, str):
            out.extend((ch, ch in "*?") for ch in part)
    return out


def _from_tokens(toks: list[Token], star: Callable[[int], str], qmark: Callable[[int], str], flags: int) -> Matcher:
    """A matcher for tokens; ``star(i)``/``qmark(i)`` give the regex for the wildcard at position ``i``."""
    wild = [i for i, (_, w) in enumerate(toks) if w]
    text = "".join(ch for ch, _ in toks)
    if not wild:
        if flags & re.IGNORECASE:
            lowered = text.lower()
            return lambda value: value.lower() == lowered
        return text.__eq__
    if len(toks) == 1 and wild == [0] and toks[0][0] == "*" and star(0) == ".*":
        return _always
    if wild == [len(toks) - 1] and toks[-1][0] == "*" and star(len(toks) - 1) == ".*" and not flags & re.IGNORECASE:
        prefix = text[:-1]
        return lambda value: value.startswith(prefix)
    if sum(1 for i in wild if toks[i][0] == "*") >= 2:
        ignore_case = bool(flags & re.IGNORECASE)
        if all(toks[i][0] == "*" and star(i) == ".*" for i in wild):
            return _chunks(toks, ignore_case=ignore_case)
        return _automaton(toks, star, qmark, ignore_case=ignore_case)
    pattern = []
    for i, (ch, is_wild) in enumerate(toks):
        if not is_wild:
            pattern.append(re.escape(ch))
        elif ch == "*":
            pattern.append(star(i))
        else:
            pattern.append(qmark(i))
    regex = re.compile("".join(pattern), flags | re.DOTALL)
    fullmatch = regex.fullmatch
    return lambda value: fullmatch(value) is not None


def _chunks(toks: list[Token], *, ignore_case: bool) -> Matcher:
    """Literal chunks between unrestricted ``*``: the first must start the value, the last end it, and each middle
    one is taken at its leftmost place after the one before (never worse for what follows), so nothing backtracks."""
    pieces: list[str] = [""]
    for ch, wild in toks:
        if wild:
            pieces.append("")
        else:
            pieces[-1] += ch.lower() if ignore_case else ch
    first, middle, last = pieces[0], [piece for piece in pieces[1:-1] if piece], pieces[-1]
    least = len(first) + len(last) + sum(map(len, middle))

    def match(value: str) -> bool:
        if ignore_case:
            value = value.lower()
        if len(value) < least or not value.startswith(first) or not value.endswith(last):
            return False
        position, end = len(first), len(value) - len(last)
        for piece in middle:
            found = value.find(piece, position, end)
            if found < 0:
                return False
            position = found + len(piece)
        return True

    return match


def _automaton(toks: list[Token], star: Callable[[int], str], qmark: Callable[[int], str], *,
               ignore_case: bool) -> Matcher:
    """A shift-and automaton: bit ``i`` set means the first ``i`` tokens match the value read so far. Each value
    character costs a few integer operations whatever the pattern, so no input can make matching slow."""
    if ignore_case:
        toks = [(ch.lower(), wild) for ch, wild in toks]
    literal: dict[str, int] = {}
    advance_any = advance_segment = loop_any = loop_segment = 0
    for i, (ch, wild) in enumerate(toks):
        bit = 1 << i
        if not wild:
            literal[ch] = literal.get(ch, 0) | bit
        elif ch == "*":
            if star(i) == ".*":
                loop_any |= bit
            else:
                loop_segment |= bit
        elif qmark(i) == ".":
            advance_any |= bit
        else:
            advance_segment |= bit
    stars = loop_any | loop_segment
    final = 1 << len(toks)
    # What each character lets advance (one step) or stay (a star consuming it); a colon stops segment wildcards.
    other_advance, other_loop = advance_any | advance_segment, stars
    colon_advance, colon_loop = literal.get(":", 0) | advance_any, loop_any
    advance = {ch: bits | other_advance for ch, bits in literal.items()}
    advance[":"] = colon_advance

    def close(states: int) -> int:
        while True:  # a star may match nothing: its state also stands for the next position
            grown = states | ((states & stars) << 1)
            if grown == states:
                return states
            states = grown

    start = close(1)

    def match(value: str) -> bool:
        states = start
        for ch in value.lower() if ignore_case else value:
            if ch == ":":
                states = close(((states & colon_advance) << 1) | (states & colon_loop))
            else:
                states = close(((states & advance.get(ch, other_advance)) << 1) | (states & other_loop))
            if not states:
                return False
        return bool(states & final)

    return match


def compile_plain(parts: Sequence[Part], *, ignore_case: bool = False) -> Matcher:
    """``StringLike`` semantics: ``*`` and ``?`` cross every character, ``:`` and ``/`` included."""
    return _from_tokens(tokens(parts), _any_run, _any_char, re.IGNORECASE if ignore_case else 0)


def compile_action(pattern: str) -> Matcher:
    """Action semantics: plain wildcards, case-insensitive. The value passed in must already be lower-case."""
    return _cached_action(pattern.lower())


@lru_cache(maxsize=65536)
def _cached_action(lowered: str) -> Matcher:
    return _from_tokens(tokens([lowered]), _any_run, _any_char, 0)


def compile_resource(parts: Sequence[Part]) -> Matcher:
    """Resource semantics: wildcards within a segment; a segment-final ``*`` may cross ``:``."""
    try:
        return _cached_resource(tuple(parts))
    except TypeError:  # a part that is not hashable: compiled afresh
        return _compile_resource(parts)


@lru_cache(maxsize=65536)  # matchers are pure: one per distinct pattern, however many policies repeat it
def _cached_resource(parts: tuple[Part, ...]) -> Matcher:
    return _compile_resource(parts)


def _compile_resource(parts: Sequence[Part]) -> Matcher:
    toks = tokens(parts)

    def star(i: int) -> str:
        segment_final = i + 1 == len(toks) or toks[i + 1] == (":", False)
        return ".*" if segment_final else "[^:]*"

    return _from_tokens(toks, star, _segment_char, 0)


def compile_arn(parts: Sequence[Part]) -> Matcher:
    """ARN semantics: six components matched one by one; wildcards never cross a component boundary."""
    toks = tokens(parts)
    colons = [i for i, tok in enumerate(toks) if tok == (":", False)]
    if len(colons) < 5:
        return _never
    last_boundary = colons[4]

    # The sixth component (the resource) may itself hold colons, so wildcards there cross them.
    def star(i: int) -> str:
        return ".*" if i > last_boundary else "[^:]*"

    def qmark(i: int) -> str:
        return "." if i > last_boundary else "[^:]"

    return _from_tokens(toks, star, qmark, 0) if _needs_regex(toks) else _arn_exact(toks)


def _needs_regex(toks: list[Token]) -> bool:
    return any(w for _, w in toks)


def _arn_exact(toks: list[Token]) -> Matcher:
    return "".join(ch for ch, _ in toks).__eq__


def _never(_: str) -> bool:
    return False
