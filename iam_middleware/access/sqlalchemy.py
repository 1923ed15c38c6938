"""A ``ResourceFilter`` as a SQLAlchemy ``WHERE`` clause (``pip install 'iam-middleware[sql]'``; docs/access.md,
"List filtering").

The id patterns become ``=`` or ``LIKE ... ESCAPE '/'``: IAM's ``*`` is ``%``, ``?`` is ``_``, and a ``%``, ``_``
or ``/`` of the id itself is escaped. Conditions on the row's attributes become comparisons with the columns the
caller maps them to (``StringEquals`` is ``IN``, ``StringLike`` is ``LIKE``, ``Null`` is ``IS NULL``, with IAM's
rules for a missing value: a NULL column is an absent key). Every clause is two-valued (a NULL never turns a ``NOT``
into "unknown"), so the rows selected are exactly the rows the filter allows.

The patterns read the id as a route puts it in the resource: percent-encoded. With ``ids="any"`` (the default) the
clause is exact whatever the column holds, and a pattern whose meaning on the encoded id cannot be said of the
stored id (a ``?``, one encoded character; a ``*`` followed by a hex digit, which could end inside an escape) is
refused. With ``ids="unreserved"`` the caller vouches that the ids hold only ``A-Z a-z 0-9 - . _ ~`` (integers,
UUIDs, slugs): those encode as themselves, so every pattern translates.

``LIKE`` must compare case-sensitively, as IAM does: it does in PostgreSQL; in SQLite turn on
``PRAGMA case_sensitive_like``; in MySQL give the columns a binary or ``_cs`` collation.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any, Literal

try:
    from sqlalchemy import and_, false, not_, or_, true
    from sqlalchemy.sql.elements import ColumnElement
except ImportError as exc:  # pragma: no cover - the extra is installed wherever this module is tested
    raise ImportError("iam_middleware.access.sqlalchemy needs SQLAlchemy: pip install 'iam-middleware[sql]'") from exc

from ..policy._conditions import OPERATORS, split_operator
from ._filter import (
    AllOf,
    AttributeCondition,
    Expression,
    Glob,
    IdMatches,
    Not,
    ResourceFilter,
    UnsupportedFilter,
    Wildcard,
)

__all__ = ["ESCAPE", "where"]

#: The escape character of the ``LIKE`` patterns (SQLAlchemy's own ``autoescape`` uses it too).
ESCAPE = "/"
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_HEX = frozenset("0123456789ABCDEF")  # the digits of the gate's escapes (``quote`` writes them upper-case)


def where(filter: ResourceFilter, id_column: ColumnElement[Any], *,
          columns: Mapping[str, ColumnElement[Any]] | None = None,
          ids: Literal["any", "unreserved"] = "any") -> ColumnElement[bool]:
    """The ``WHERE`` clause of ``filter``: ``id_column`` holds the free id (as text), ``columns`` maps each attribute
    the filter reads (``aws:ResourceTag/owner``, keys case-insensitive) to its column. Raises ``UnsupportedFilter``
    for what cannot be said exactly in SQL: never a wider clause."""
    if ids not in ("any", "unreserved"):
        raise ValueError(f"ids must be 'any' or 'unreserved', not {ids!r}")
    mapped = {key.lower(): column for key, column in (columns or {}).items()}
    return _Translator(id_column, mapped, ids).expression(filter.expression)


class _Translator:
    def __init__(self, id_column: ColumnElement[Any], columns: Mapping[str, ColumnElement[Any]], ids: str) -> None:
        self.id_column = id_column
        self.columns = columns
        self.ids = ids

    def expression(self, expression: Expression) -> ColumnElement[bool]:
        if isinstance(expression, bool):
            return true() if expression else false()
        if isinstance(expression, IdMatches):
            return self.id_matches(expression)
        if isinstance(expression, AttributeCondition):
            return self.attribute(expression)
        if isinstance(expression, Not):
            return not_(self.expression(expression.operand))
        operands = [self.expression(operand) for operand in expression.operands]
        return and_(*operands) if isinstance(expression, AllOf) else _or(operands)

    def id_matches(self, expression: IdMatches) -> ColumnElement[bool]:
        clauses: list[ColumnElement[bool]] = []
        for pattern in expression.patterns:
            found = _id_pattern(pattern, expression.name, self.ids)
            if found is None:
                continue  # no id encodes to something this pattern matches
            kind, text = found
            clauses.append(self.id_column == text if kind == "equals" else self.id_column.like(text, escape=ESCAPE))
        return and_(self.id_column.is_not(None), _or(clauses))

    def attribute(self, condition: AttributeCondition) -> ColumnElement[bool]:
        column = self.columns.get(condition.key.lower())
        if column is None:
            raise UnsupportedFilter(f"the policies compare {condition.key}: map it to a column (columns=...)")
        parsed = split_operator(condition.operator)
        if parsed is None:  # pragma: no cover - compiled conditions have known operators
            raise UnsupportedFilter(f"unknown condition operator {condition.operator}")
        qualifier, base, if_exists = parsed
        family, negated = OPERATORS[base]
        empty = or_(column.is_(None), column == "")
        if family == "null":
            expect = {str(value).lower() == "true" for value in condition.values}
            if qualifier is not None:
                return true() if qualifier == "all" else false()
            if expect == {True, False}:
                return true()
            return empty if expect == {True} else not_(empty)
        if family == "string":
            texts = [value for value in condition.values if isinstance(value, str)]
            positive: ColumnElement[bool] = column.in_(texts) if texts else false()
        elif family == "string_like":
            positive = _or([_like(column, value) for value in condition.values if isinstance(value, Glob)])
        else:
            raise UnsupportedFilter(f"{condition.operator} on {condition.key}: only the String(Not)Equals, "
                                    "String(Not)Like and Null operators become SQL comparisons")
        tested = not_(positive) if negated else positive
        if qualifier is None:
            # A NULL column is an absent key: IfExists and the negated operators hold, the others do not.
            present = and_(column.is_not(None), tested)
            return or_(column.is_(None), present) if if_exists or negated else present
        # ForAllValues / ForAnyValue over one value: an empty one (NULL or '') is an empty set.
        filled = and_(not_(empty), tested)
        return or_(empty, filled) if qualifier == "all" or if_exists else filled


def _or(clauses: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    return or_(*clauses) if clauses else false()


def _escape(text: str) -> str:
    return text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def _like(column: ColumnElement[Any], glob: Glob) -> ColumnElement[bool]:
    """An attribute's ``*Like`` value: the column holds the value itself, so the wildcards map one to one."""
    text = glob.literal
    if text is not None:
        return column == text
    pattern = "".join(("%" if part is Wildcard.ANY else "_") if isinstance(part, Wildcard) else _escape(part)
                      for part in glob.parts)
    return column.like(pattern, escape=ESCAPE)


def _id_pattern(glob: Glob, name: str, ids: str) -> tuple[str, str] | None:
    """``("equals", id)`` or ``("like", pattern)`` over the stored id; None when no id matches the glob."""
    stored: list[str | Wildcard] = []
    for index, part in enumerate(glob.parts):
        if isinstance(part, Wildcard):
            if part is Wildcard.ONE and ids == "any":
                raise UnsupportedFilter(
                    f"{glob} asks {{{name}}} for '?': one character of the percent-encoded id, which is one stored "
                    "character only if it is a letter, digit or one of - . _ ~; pass ids='unreserved' if every id "
                    "is made of those")
            stored.append(part)
            continue
        if ids == "unreserved":
            raw = part if set(part) <= _UNRESERVED else None  # such ids never hold another character
        else:  # text parts never follow one another: a wildcard is on each side where there is a neighbour
            raw = _decoded(part, glob, name, after=index > 0, before=index + 1 < len(glob.parts))
        if raw is None:
            return None
        stored.append(raw)
    if not any(isinstance(part, Wildcard) for part in stored):
        return "equals", "".join(part for part in stored if isinstance(part, str))
    return "like", "".join(("%" if part is Wildcard.ANY else "_") if isinstance(part, Wildcard) else _escape(part)
                           for part in stored)


def _decoded(text: str, glob: Glob, name: str, *, after: bool, before: bool) -> str | None:
    """The stored text whose encoding is ``text`` (a run of the pattern between wildcards); None when no encoding
    holds it (a character the gate always escapes, an escape it never writes). Raises ``UnsupportedFilter`` where
    a wildcard next to the run could take part of an escape (or of a character's UTF-8 bytes)."""
    if after and text[0] in _HEX:
        raise UnsupportedFilter(f"{glob} has a '*' before {text[0]!r}: the run could end inside an escape of the "
                                f"percent-encoded {{{name}}} (as '%2' of '%20'); pass ids='unreserved' if every id is "
                                "made of letters, digits and - . _ ~")
    out: list[str] = []
    pending = bytearray()
    position = 0

    def flush(at_end: bool) -> bool:
        if not pending:
            return True
        try:
            out.append(pending.decode("utf-8"))
        except UnicodeDecodeError as error:
            partial_start = after and error.start == 0 and len(out) == 0 and 0x80 <= pending[0] < 0xC0
            partial_end = at_end and before and error.reason == "unexpected end of data"
            if partial_start or partial_end:
                raise UnsupportedFilter(f"{glob} cuts a character's UTF-8 escapes in {{{name}}} at a '*'") from None
            return False
        pending.clear()
        return True

    while position < len(text):
        ch = text[position]
        if ch == "%":
            digits = text[position + 1:position + 3]
            if len(digits) < 2 and before and set(digits) <= _HEX:
                raise UnsupportedFilter(f"{glob} ends an escape of {{{name}}} with a '*' ({text[position:]!r})")
            if len(digits) < 2 or not set(digits) <= _HEX:
                return None
            byte = int(digits, 16)
            if byte < 0x80 and chr(byte) in _UNRESERVED:
                return None  # the gate never escapes these
            pending.append(byte)
            position += 3
            continue
        if ch not in _UNRESERVED or not flush(False):
            return None
        out.append(ch)
        position += 1
    return "".join(out) if flush(True) else None
