"""Strict JSON: the one parser for every document that crosses a trust boundary (tokens, request bodies, key sets,
directory and secrets files, records in the shared state).

Python's ``json`` accepts what RFC 8259 forbids or leaves to each parser, and two parsers that read one document
differently are a way around a check (docs/security.md). Refused here, each with a ``JSONError`` naming the problem:
duplicate member names (``json`` keeps the last, other parsers the first), ``NaN`` and ``Infinity`` (not JSON, and
false in every comparison), numbers too large for a float (they would become infinite), unpaired UTF-16 surrogates
(not Unicode text: they fail later, far from the input), text that is not UTF-8, and nesting deeper than
``MAX_DEPTH`` (code that walks the result recursively would run out of stack). Sans-IO, standard library only.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_DEPTH", "JSONError", "ObjectHook", "loads", "parser"]

#: The deepest nesting of arrays and objects accepted.
MAX_DEPTH = 64

#: Builds what an object becomes from its members (names already checked unique), e.g. a read-only mapping.
ObjectHook = Callable[[dict[str, Any]], Any]

_WHITESPACE = " \t\n\r"  # RFC 8259's four; anything else around the value is an error
_LONGEST_SHALLOW = 2 * MAX_DEPTH + 1  # characters: deeper nesting opens and closes MAX_DEPTH + 1 times
_SHOWN_NAME_CHARS = 64  # a duplicated name is named in the message, cut to this length
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_AS_PARENTHESES = str.maketrans("[{]}", "(())")
# An escaped backslash, a surrogate pair, or (group 1) a surrogate escape on its own. Escaped backslashes are matched
# so that the "\\ud800" of a literal backslash followed by "ud800" is not taken for an escape.
_ESCAPE = re.compile(r"\\(?:\\|ud[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}|(ud[89a-f][0-9a-f]{2}))", re.IGNORECASE)


class JSONError(ValueError):
    """A document is not strict JSON; the message names the problem. ``member`` is the name that occurs twice, when
    that is the problem (the message shows at most 64 characters of it)."""

    def __init__(self, problem: str, *, member: str | None = None) -> None:
        super().__init__(problem)
        self.member = member


def _duplicate(pairs: list[tuple[str, Any]]) -> JSONError:
    name = next(name for name, count in Counter(name for name, _ in pairs).items() if count > 1)
    return JSONError(f"duplicate member name {name[:_SHOWN_NAME_CHARS]!r}", member=name)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise _duplicate(pairs)
    return members


def _constant(name: str) -> Any:
    raise JSONError(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise JSONError("a number is too large (it would be infinite)")
    return number


def _too_deep(text: str) -> bool:
    """Whether valid JSON ``text`` nests deeper than ``MAX_DEPTH``: strings dropped, brackets kept, one level of
    innermost pairs removed per round (each round a C-speed replace, at most ``MAX_DEPTH`` of them)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).translate(_AS_PARENTHESES)
    for _ in range(MAX_DEPTH):
        if not brackets:
            return False
        brackets = brackets.replace("()", "")
    return bool(brackets)


def parser(object_hook: ObjectHook | None = None) -> Callable[[str | bytes | bytearray], Any]:
    """A strict ``loads`` whose objects are what ``object_hook`` makes of each (default: the dict itself).

    Build it once, at import: the JWT path parses every bearer token with one, so nothing is looked up per call.
    """
    if object_hook is None:
        pairs_hook: Callable[[list[tuple[str, Any]]], Any] = _unique
    else:
        def pairs_hook(pairs: list[tuple[str, Any]]) -> Any:
            members = dict(pairs)  # _unique inlined: one call less per object
            if len(members) != len(pairs):
                raise _duplicate(pairs)
            return object_hook(members)
    decode = json.JSONDecoder(object_pairs_hook=pairs_hook, parse_constant=_constant, parse_float=_finite).raw_decode

    def strict_loads(data: str | bytes | bytearray) -> Any:
        """The value of one strict JSON document (bytes must be UTF-8), or ``JSONError`` naming the problem."""
        if isinstance(data, str):
            text = data
            if not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise JSONError("the text has an unpaired surrogate, which is not Unicode") from None
        else:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise JSONError(f"not UTF-8 (byte {exc.start})") from None
        text = text.strip(_WHITESPACE)
        try:
            value, end = decode(text)
        except JSONError:
            raise
        except json.JSONDecodeError as exc:
            raise JSONError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
        except ValueError as exc:  # an integer longer than int() reads (Python's own guard against slow parsing)
            raise JSONError(str(exc)) from None
        except RecursionError:
            raise JSONError(f"nested deeper than {MAX_DEPTH} levels") from None
        if end != len(text):
            raise JSONError(f"extra data after the value at position {end}")
        # Each check below scans only a text that could fail it (long enough, with enough brackets; with an escape).
        if len(text) > _LONGEST_SHALLOW and text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(text):
            raise JSONError(f"nested deeper than {MAX_DEPTH} levels")
        if "\\" in text and any(match.group(1) for match in _ESCAPE.finditer(text)):
            raise JSONError("a string has an unpaired UTF-16 surrogate escape, which is not Unicode text")
        return value

    return strict_loads


#: Strict ``json.loads``: objects are dicts with unique member names (see ``parser`` for other objects).
loads = parser()
