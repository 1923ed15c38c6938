"""Write a directory mapping (what a directory file parses to) as TOML, for ``iam-middleware directory export``.

Sections for settings, accounts, policies, groups, users and roles, ``[[...]]`` for routes and web identity
providers, inline tables for the rest. Policy documents (JSON text) are written as multi-line literal strings, as a
person writes them, so an exported file reads like a hand-written one and loads back to the same directory.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["dump_toml"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(value: str) -> str:
    """A basic string: every character TOML requires escaped is (quotes, backslash, control characters)."""
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _text(value: str) -> str:
    """A multi-line literal string when the text allows one (a policy document), else a basic string."""
    if "\n" in value and "'''" not in value and not value.endswith("'") and not any(
            (ord(c) < 0x20 and c not in "\n\t") or ord(c) == 0x7F for c in value) and "\r" not in value:
        return "'''\n" + value + "'''"
    return _string(value)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return repr(value)
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list | tuple):
        if any(isinstance(item, Mapping) for item in value):
            return "[\n" + "".join(f"    {_value(item)},\n" for item in value) + "]"
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write a {type(value).__name__} in TOML")


def _table(lines: list[str], header: str, table: Mapping[str, Any], arrays: frozenset[str] = frozenset()) -> None:
    """``[header]`` with its values, then ``[[header.name]]`` for the lists of tables named in ``arrays``."""
    arrays = frozenset(k for k in arrays if isinstance(table.get(k), list) and table[k]
                       and all(isinstance(item, Mapping) for item in table[k]))
    lines.append(f"[{header}]")
    for key, value in table.items():
        if key not in arrays:
            lines.append(f"{_key(str(key))} = {_value(value)}")
    for key in arrays:
        for item in table[key]:
            lines.append("")
            lines.append(f"[[{header}.{_key(key)}]]")
            lines.extend(f"{_key(str(k))} = {_value(v)}" for k, v in item.items())
    lines.append("")


def dump_toml(data: Mapping[str, Any], *, header: str = "") -> str:
    """The TOML text of a directory mapping; ``header`` is put first as comment lines."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    if lines:
        lines.append("")
    if data.get("settings"):
        _table(lines, "settings", data["settings"], frozenset({"web_identity"}))
    for section in ("accounts", "policies", "groups", "users", "roles"):
        for name, entry in (data.get(section) or {}).items():
            _table(lines, f"{section}.{_key(str(name))}", entry)
    for rule in data.get("routes") or []:
        lines.append("[[routes]]")
        lines.extend(f"{_key(str(k))} = {_value(v)}" for k, v in rule.items())
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"

