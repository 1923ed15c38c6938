"""Policy variables: ``${aws:username}``, ``${aws:PrincipalTag/team, 'x'}``, and the ``${*}`` ``${?}`` ``${$}``.

A template is a tuple of parts: ``str`` parts are policy text (where ``*`` and ``?`` keep their wildcard meaning in
pattern positions), ``Literal`` parts are text that must match verbatim (``${*}`` and substituted values), and
``Variable`` parts are resolved from the request context at evaluation time. A substituted value is always literal,
so a user named ``*`` never becomes a wildcard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Literal", "Template", "TemplateError", "Variable", "parse_template", "resolve_value", "scalar_text"]

_SPECIAL = {"*": "*", "?": "?", "$": "$"}


@dataclass(frozen=True, slots=True)
class Literal:
    """Text that matches only itself, even ``*`` or ``?``."""

    text: str


@dataclass(frozen=True, slots=True)
class Variable:
    """A context key to substitute; ``key`` is lower-cased (context keys are case-insensitive)."""

    key: str
    name: str
    default: str | None = None


Part = str | Literal | Variable
Template = tuple[Part, ...]


class TemplateError(ValueError):
    """A malformed ``${...}`` reference; the message follows IAM Access Analyzer's wording."""


def parse_template(text: str) -> Template:
    """Split ``text`` into policy text, literals and variables. Raises TemplateError on a malformed reference."""
    parts: list[Part] = []
    pos = 0
    while True:
        start = text.find("${", pos)
        if start < 0:
            if pos < len(text):
                parts.append(text[pos:])
            return tuple(parts)
        if start > pos:
            parts.append(text[pos:start])
        end = text.find("}", start + 2)
        if end < 0:
            raise TemplateError(f"Missing brace in variable: {text[start:]!r} has no closing '}}'")
        parts.append(_parse_reference(text[start + 2 : end]))
        pos = end + 1


def _parse_reference(body: str) -> Literal | Variable:
    if body in _SPECIAL:
        return Literal(_SPECIAL[body])
    if not body.strip():
        raise TemplateError("Empty variable: '${}' names no context key")
    default: str | None = None
    name = body
    if "," in body:
        name, _, rest = body.partition(",")
        if not rest.startswith(" "):
            raise TemplateError(f"Missing space in variable: the default of ${{{body}}} must follow ', '")
        rest = rest[1:]
        if len(rest) < 2 or not (rest.startswith("'") and rest.endswith("'")):
            raise TemplateError(f"Missing quote in variable: the default of ${{{body}}} must be in single quotes")
        default = rest[1:-1]
        if "'" in default:
            raise TemplateError(f"Missing quote in variable: the default of ${{{body}}} has a stray quote")
    if not name or name != name.strip() or " " in name:
        raise TemplateError(f"Unsupported space in variable: ${{{body}}}")
    if "'" in name or "$" in name or "{" in name:
        raise TemplateError(f"Invalid character in variable name: ${{{body}}}")
    return Variable(key=name.lower(), name=name, default=default)


def has_variables(template: Template) -> bool:
    return any(isinstance(part, Variable) for part in template)


def scalar_text(value: Any) -> str:
    """A JSON scalar as IAM compares it: ``true`` -> ``"true"``, ``3600`` -> ``"3600"``, ``1.0`` -> ``"1.0"``.

    A float keeps the form JSON wrote it in (``repr`` is the shortest text that reads back the same), so a context
    value ``1.0`` equals the policy string ``"1.0"`` and a variable substitutes as ``1.0``, never ``1``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def resolve_value(value: Any) -> str | None:
    """The string a context value substitutes as, or None when it cannot (absent, null, multivalued)."""
    if value is None or isinstance(value, (list, tuple, set, frozenset)):
        return None
    return scalar_text(value)


def substitute(template: Template, context: Mapping[str, Any], missing: set[str] | None) -> tuple[Part, ...] | None:
    """Replace variables with Literal parts. None if a variable has neither a value nor a default."""
    out: list[Part] = []
    for part in template:
        if isinstance(part, Variable):
            value = resolve_value(context.get(part.key))
            if value is None:
                if part.default is None:
                    if missing is not None:
                        missing.add(part.name)
                    return None
                value = part.default
            out.append(Literal(value))
        else:
            out.append(part)
    return tuple(out)


def literal_text(parts: tuple[Part, ...]) -> str:
    """Join parts as plain text (no wildcard meaning): for operators that compare whole strings."""
    return "".join(part.text if isinstance(part, Literal) else part for part in parts if not isinstance(part, Variable))
