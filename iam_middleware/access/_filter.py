"""List filtering: "which orders may alice read?" as a query, not a loop (docs/access.md, "List filtering").

For one principal, one action and a resource pattern with one free id (``arn:app:orders::{account}:order/{order_id}``),
partial evaluation (``_partial``) runs with everything of the request known but the id and the resource's own
attributes (``aws:ResourceTag/owner``, ``orders:Status``: keys the caller names, whose values come from each row).
What is left is a ``ResourceFilter``: allow-all, deny-all, or an expression over the id and those attributes, which
``allows`` evaluates in Python and ``iam_middleware.access.sqlalchemy.where`` turns into a ``WHERE`` clause.

The filter decides a row exactly as ``IAM.authorize(principal, action, filter.resource(id), context | attributes)``
does: the resource a row stands for is the pattern rendered as a route renders it (``routing.render_template``:
the id percent-encoded), so a list shows the rows the route ``GET /orders/{order_id}`` would let through.
``tests/access/test_filter.py`` checks it row for row over generated policies and ids.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias

from .._decisions import _merged
from ..policy._conditions import OPERATORS, split_operator
from ..policy._match import compile_plain, tokens
from ..policy._variables import Literal, Part, parse_template, substitute
from ..routing import Permission, render_template
from ._glob import LITERAL, ONE, Hole, TemplatePart, hole_tokens
from ._knowledge import Knowledge
from ._partial import Atom, ConditionAtom, Residual, ResourceAtom, Terms, partial_decide
from ._routes import resource_template

if TYPE_CHECKING:
    from .._iam import IAM
    from .._principal import Principal
    from .._request import RequestView

__all__ = ["AllOf", "AnyOf", "AttributeCondition", "Expression", "Glob", "IdMatches", "Not", "ResourceFilter",
           "UnsupportedFilter", "Wildcard", "resource_filter"]


class UnsupportedFilter(ValueError):
    """The policies decide on something a filter (or a ``WHERE`` clause) cannot express exactly; the message says
    what. Refused rather than widened: a list must never show a row the per-row check would deny."""


class Wildcard(enum.Enum):
    """IAM's wildcards: ``*`` any run of characters (none included), ``?`` exactly one."""

    ANY = "*"
    ONE = "?"


@dataclass(frozen=True, slots=True)
class Glob:
    """A pattern of literal text and wildcards. Text parts are literal, ``*`` and ``?`` in them included."""

    parts: tuple[str | Wildcard, ...]

    @property
    def literal(self) -> str | None:
        """The text, when the pattern has no wildcard (it matches that text alone)."""
        if any(isinstance(part, Wildcard) for part in self.parts):
            return None
        return "".join(part for part in self.parts if isinstance(part, str))

    def matches(self, text: str) -> bool:
        matcher = compile_plain([Literal(part) if isinstance(part, str) else part.value for part in self.parts])
        return matcher(text)

    def __str__(self) -> str:
        """As a policy writes it: literal ``*``, ``?`` and ``$`` as ``${*}``, ``${?}``, ``${$}``."""
        return "".join(part.value if isinstance(part, Wildcard) else
                       part.replace("$", "${$}").replace("*", "${*}").replace("?", "${?}") for part in self.parts)


@dataclass(frozen=True, slots=True)
class IdMatches:
    """The free id matches one of ``patterns``. The patterns read the id as the resource holds it: percent-encoded
    as a route renders it (``order 7/a`` is ``7%2Fa``; letters, digits and ``-._~`` stay as they are)."""

    name: str
    patterns: tuple[Glob, ...]

    def holds(self, encoded_id: str) -> bool:
        return any(pattern.matches(encoded_id) for pattern in self.patterns)


@dataclass(frozen=True, slots=True)
class AttributeCondition:
    """A condition of the policies on one attribute of the resource: ``key`` as the policy spells it, its operator
    as written (``StringEquals``, ``StringNotLikeIfExists``, ``ForAnyValue:StringLike``, ``Null``, ...) and its
    values with the principal's and the request's policy variables put in (a ``Glob`` for ``*Like`` operators)."""

    key: str
    operator: str
    values: tuple[str | Glob, ...]
    #: The evaluator's own compiled test of the condition, given the attribute's value (None: absent).
    test: Callable[[Any], bool] = field(repr=False, compare=False)

    def holds(self, value: Any) -> bool:
        return self.test(value)


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expression


@dataclass(frozen=True, slots=True)
class AllOf:
    operands: tuple[Expression, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    operands: tuple[Expression, ...]




#: A filter's condition: ``True`` (every row), ``False`` (none), or a combination of id and attribute conditions.
Expression: TypeAlias = bool | IdMatches | AttributeCondition | Not | AllOf | AnyOf


@dataclass(frozen=True, slots=True)
class ResourceFilter:
    """The rows ``action`` is allowed on: ``expression`` over the free id (``id_name``) and the ``attributes``."""

    action: str
    pattern: str
    id_name: str
    attributes: tuple[str, ...]
    expression: Expression
    #: ``{account}``, ``{partition}`` and ``{region}`` as the principal's requests fill them.
    fixed: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @property
    def allows_all(self) -> bool:
        return self.expression is True

    @property
    def allows_none(self) -> bool:
        return self.expression is False

    def resource(self, id_value: str) -> str:
        """The resource a row stands for, rendered as a route renders it."""
        return render_template(self.pattern, {**self.fixed, self.id_name: id_value})

    def allows(self, id_value: str, attributes: Mapping[str, Any] | None = None) -> bool:
        """Whether the row of this id and these attribute values (keys case-insensitive; a missing key or None is
        absent) passes the filter: the per-row check, without the evaluator."""
        values = {key.lower(): value for key, value in (attributes or {}).items()}
        return _holds(self.expression, render_template("{id}", {"id": id_value}), values)


def _holds(expression: Expression, encoded_id: str, attributes: Mapping[str, Any]) -> bool:
    if isinstance(expression, bool):
        return expression
    if isinstance(expression, IdMatches):
        return expression.holds(encoded_id)
    if isinstance(expression, AttributeCondition):
        return expression.holds(attributes.get(expression.key.lower()))
    if isinstance(expression, Not):
        return not _holds(expression.operand, encoded_id, attributes)
    if isinstance(expression, AllOf):
        return all(_holds(operand, encoded_id, attributes) for operand in expression.operands)
    return any(_holds(operand, encoded_id, attributes) for operand in expression.operands)


# Building the expression ----------------------------------------------------------------------------------------


def _all(operands: Iterable[Expression]) -> Expression:
    kept: list[Expression] = []
    for operand in operands:
        if operand is False:
            return False
        if operand is True:
            continue
        for item in operand.operands if isinstance(operand, AllOf) else (operand,):
            if item not in kept:
                kept.append(item)
    return True if not kept else kept[0] if len(kept) == 1 else AllOf(tuple(kept))


def _any(operands: Iterable[Expression]) -> Expression:
    kept: list[Expression] = []
    for operand in operands:
        if operand is True:
            return True
        if operand is False:
            continue
        for item in operand.operands if isinstance(operand, AnyOf) else (operand,):
            if item not in kept:
                kept.append(item)
    return False if not kept else kept[0] if len(kept) == 1 else AnyOf(tuple(kept))


def _not(operand: Expression) -> Expression:
    if isinstance(operand, bool):
        return not operand
    return operand.operand if isinstance(operand, Not) else Not(operand)


class _Builder:
    """Turns a residual's atoms into expressions, with what is known of the request."""

    def __init__(self, template: tuple[TemplatePart, ...], id_name: str, context: Mapping[str, Any],
                 attributes: frozenset[str]) -> None:
        self.template = template
        self.id_name = id_name
        self.context = context
        self.attributes = attributes

    def residual(self, residual: Residual) -> Expression:
        allowed = _all(self.terms(terms) for terms in residual.allow)
        return _all((allowed, _not(self.terms(residual.deny))))

    def terms(self, terms: Terms) -> Expression:
        ordered = sorted(terms, key=lambda term: sorted((atom.rank, atom.text) for atom in term))
        return _any(_all(self.atom(atom) for atom in sorted(term, key=lambda a: (a.rank, a.text)))
                    for term in ordered)

    def atom(self, atom: Atom) -> Expression:
        if isinstance(atom, ResourceAtom):
            return self.resource(atom)
        return self.condition(atom)

    def resource(self, atom: ResourceAtom) -> Expression:
        if not isinstance(self.template[-1], Hole):
            raise UnsupportedFilter(f"the Resource entries {' or '.join(p.text for p in atom.patterns)} decide on "
                                    f"{{{self.id_name}}}, which does not end the resource pattern: a filter needs "
                                    "the free id last")
        patterns: list[Glob] = []
        for pattern, parts in zip(atom.patterns, atom.parts, strict=True):
            if parts is None:
                raise UnsupportedFilter(f"the Resource entry {pattern.text} reads {', '.join(atom.keys)}, a value of "
                                        "the row, as a policy variable")
            found = hole_tokens(parts, self.template)
            if found is None:
                raise UnsupportedFilter(f"the Resource entry {pattern.text} has a wildcard that spans the text "
                                        f"before {{{self.id_name}}}: what it asks of the id alone cannot be told")
            patterns.append(_glob((ch, kind == LITERAL, kind == ONE) for ch, kind in found))
        matches: Expression = IdMatches(self.id_name, tuple(patterns))
        return _not(matches) if atom.negated else matches

    def condition(self, atom: ConditionAtom) -> Expression:
        entry = atom.entry
        unknown = {key for key in (entry.key, *entry.variable_keys) if key in self.attributes}
        if entry.key not in self.attributes or unknown - {entry.key}:
            raise UnsupportedFilter(f"the condition {entry.operator} on {entry.key_name} reads an attribute of the "
                                    "row as a policy variable; a filter compares an attribute with known values "
                                    "only")
        parsed = split_operator(entry.operator)
        family = OPERATORS[parsed[1]][0] if parsed is not None else "string"
        known = {key: self.context[key] for key in entry.variable_keys if key in self.context}
        values: list[str | Glob] = []
        for value in entry.values:
            parts: tuple[Part, ...] | None = (value,)
            if atom.variables and "${" in value and family in ("string", "string_ci", "string_like", "arn"):
                parts = substitute(parse_template(value), self.context, None)
            if parts is None:
                continue  # an unresolved variable: the evaluator's value matches nothing
            if family == "string_like":
                values.append(_glob((ch, not wild, ch == "?") for ch, wild in tokens(parts)))
            else:
                values.append("".join(part.text if isinstance(part, Literal) else str(part) for part in parts))
        key = entry.key

        def test(value: Any) -> bool:
            return entry.test({**known, key: value} if value is not None else known, None)

        return AttributeCondition(entry.key_name, entry.operator, tuple(values), test)


def _glob(characters: Iterable[tuple[str, bool, bool]]) -> Glob:
    """A glob from (character, is literal, is ``?``) triples."""
    parts: list[str | Wildcard] = []
    for ch, literal, one in characters:
        if literal:
            if parts and isinstance(parts[-1], str):
                parts[-1] += ch
            else:
                parts.append(ch)
        elif one:
            parts.append(Wildcard.ONE)
        elif not parts or parts[-1] is not Wildcard.ANY:  # ``**`` is ``*``
            parts.append(Wildcard.ANY)
    return Glob(tuple(parts))


def resource_filter(iam: IAM, principal: Principal, action: str, pattern: str, *,
                    attributes: Iterable[str] = (), context: Mapping[str, Any] | None = None,
                    request: RequestView | None = None, now: float | None = None) -> ResourceFilter:
    """The filter of the resources of ``pattern`` (one free id, e.g. ``{order_id}``; ``{account}``, ``{partition}``
    and ``{region}`` filled as the gate fills them) that ``principal`` may perform ``action`` on.

    The request is known as ``IAM.authorize`` builds it (from ``request``, ``context`` and ``now``); ``attributes``
    names the condition keys whose values come from each row (``aws:ResourceTag/owner``), which the policies' may
    compare. Raises ``UnsupportedFilter`` where the policies decide on something a filter cannot express, and
    ValueError for a pattern without exactly one free id or an attribute the request itself sets."""
    settings = iam.settings
    fixed = MappingProxyType({"account": principal.account, "partition": settings.partition,
                              "region": settings.regions[0]})
    permission = Permission(action, pattern)
    free = sorted(permission.placeholders() - set(fixed))
    if len(free) != 1 or free[0].startswith(("query.", "header.")):
        raise ValueError(f"{pattern!r} must name exactly one free id such as {{order_id}} (besides {{account}}, "
                         f"{{partition}} and {{region}}); it names {', '.join(free) or 'none'}")
    now = iam.clock() if now is None else now
    computed = iam.decisions.context_for(principal, request, now=now)
    full = _merged(context, dict(computed))
    wanted = {key.lower(): key for key in attributes}
    clash = sorted(name for key, name in wanted.items() if key in computed)
    if clash:
        raise ValueError(f"{', '.join(clash)}: the request itself sets these keys; they cannot be the row's")
    known = MappingProxyType({key: value for key, value in full.items() if key not in wanted})
    knowledge = Knowledge(known, frozenset(wanted))
    template = resource_template(permission, fixed)
    authorizer = iam.decisions.compiled(principal)
    residual = partial_decide(authorizer.caller.kind, action, template, knowledge, identity=authorizer.identity,
                              boundary=authorizer.boundary, session=authorizer.session,
                              guardrails=authorizer.guardrails, caller_account=principal.account)
    expression = _Builder(template, free[0], known, frozenset(wanted)).residual(residual)
    return ResourceFilter(action, pattern, free[0], tuple(wanted.values()), expression, fixed)
