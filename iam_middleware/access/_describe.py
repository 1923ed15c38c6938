"""Conditions and resource patterns in words, for the access report: ``aws:MultiFactorAuthPresent is true``,
``aws:MultiFactorAuthAge < 3600``, ``{order_id} matches archived-*``.

Values keep the policy's text, with the policy variables whose values are known for the principal put in (a report
is read per principal: ``alice-*`` says more to its reader than ``${aws:username}-*``); unknown ones stay as written.
"""

from __future__ import annotations

import json

from ..policy._conditions import ConditionEntry, split_operator
from ..policy._variables import Literal, TemplateError, Variable, parse_template, resolve_value
from ._knowledge import Knowledge

__all__ = ["describe_condition", "describe_ids", "filled"]

_COMPARISONS = {
    "NumericEquals": "=", "NumericNotEquals": "!=", "NumericLessThan": "<", "NumericLessThanEquals": "<=",
    "NumericGreaterThan": ">", "NumericGreaterThanEquals": ">=",
    "DateEquals": "=", "DateNotEquals": "!=", "DateLessThan": "<", "DateLessThanEquals": "<=",
    "DateGreaterThan": ">", "DateGreaterThanEquals": ">=",
}
#: (word for one value, word for several) of the operators that compare text.
_WORDS = {
    "StringEquals": ("=", "in"), "StringNotEquals": ("!=", "not in"),
    "StringEqualsIgnoreCase": ("= (any case)", "in (any case)"),
    "StringNotEqualsIgnoreCase": ("!= (any case)", "not in (any case)"),
    "StringLike": ("matches", "matches one of"), "StringNotLike": ("does not match", "matches none of"),
    "ArnEquals": ("=", "in"), "ArnLike": ("matches", "matches one of"),
    "ArnNotEquals": ("!=", "not in"), "ArnNotLike": ("does not match", "matches none of"),
    "IpAddress": ("in", "in one of"), "NotIpAddress": ("not in", "in none of"),
    "BinaryEquals": ("=", "in"),
}


def filled(text: str, knowledge: Knowledge) -> str:
    """``text`` with the policy variables whose values are known put in; unknown ones stay as written."""
    if "${" not in text:
        return text
    try:
        template = parse_template(text)
    except TemplateError:
        return text
    out = []
    for part in template:
        if isinstance(part, Variable):
            value = resolve_value(knowledge.values.get(part.key)) if knowledge.is_known(part.key) else None
            if value is None and knowledge.is_known(part.key) and part.default is not None:
                value = part.default
            default = f", '{part.default}'" if part.default is not None else ""
            out.append(value if value is not None else "${" + part.name + default + "}")
        elif isinstance(part, Literal):
            out.append("${" + part.text + "}")
        else:
            out.append(part)
    return "".join(out)


def _quoted(value: str) -> str:
    return json.dumps(value)


def describe_condition(entry: ConditionEntry, knowledge: Knowledge) -> str:
    """One condition (operator, key, values) as a short phrase."""
    parsed = split_operator(entry.operator)
    if parsed is None:  # pragma: no cover - a compiled entry always has a known operator
        return f"{entry.key_name} {entry.operator} {list(entry.values)}"
    qualifier, base, if_exists = parsed
    values = [filled(v, knowledge) for v in entry.values]
    key = entry.key_name
    if qualifier == "any":
        key = f"any value of {key}"
    elif qualifier == "all":
        key = f"every value of {key}"
    if base == "Null":
        truth = {v.lower() for v in values}
        text = f"{key} is absent" if truth == {"true"} else f"{key} is present" if truth == {"false"} else \
            f"{key} is absent or present"
    elif base == "Bool":
        text = f"{key} is " + " or ".join(v.lower() for v in values)
    elif base in _COMPARISONS:
        text = f"{key} {_COMPARISONS[base]} " + " or ".join(values)
    else:
        one, many = _WORDS[base]
        if base.startswith(("String", "Arn")):
            shown = [_quoted(v) for v in values]
        else:
            shown = values
        text = f"{key} {one} {shown[0]}" if len(shown) == 1 else f"{key} {many} [{', '.join(shown)}]"
    return f"{text} (or absent)" if if_exists else text


def describe_ids(patterns: list[tuple[str, bool]], hole: str, negated: bool) -> str:
    """What an id must be (or must not be) for one of ``patterns`` ((text, has wildcards)) to match."""
    exact = [text for text, wild in patterns if not wild]
    like = [text for text, wild in patterns if wild]
    phrases = []
    if exact:
        word = ("!=" if negated else "=") if len(exact) == 1 else ("not in" if negated else "in")
        phrases.append(f"{{{hole}}} {word} " + (exact[0] if len(exact) == 1 else "[" + ", ".join(exact) + "]"))
    if like:
        word = "does not match" if negated else "matches"
        phrases.append(f"{{{hole}}} {word} " + " or ".join(like))
    return (" and " if negated else " or ").join(phrases)
