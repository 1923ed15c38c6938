"""Wildcard matching for actions, resources, ``*Like`` and ``Arn*`` operators, compiled once into the cheapest test.

Only ``*`` and ``?`` are wildcards; every other character is literal (a ``.`` is not a wildcard). Three flavours:

- plain (``StringLike``): ``*`` is any run of characters, ``?`` exactly one, across ``:`` and ``/``;
- resource (``Resource``/``NotResource``): wildcards stay within a colon-separated segment, except a ``*`` that is
  the last character of a segment, which may extend across the ``:`` (IAM User Guide, Resource element);
- ARN (``ArnLike``/``ArnEquals``): each of the six colon-delimited components is matched separately, so a pattern
  with fewer than six components matches nothing.
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
