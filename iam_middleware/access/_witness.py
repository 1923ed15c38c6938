"""Counterexamples: concrete values for a cell's unknown keys and ids under which one answer allows and another
does not (new access a change grants, or access it takes away).

Candidate values come from the conditions and Resource entries that are still open (a value each condition accepts
and one it refuses, ``absent``, an id each pattern matches and one it does not); requests are tried with the fewest
keys set first, so the counterexample a person reads is the smallest the search finds. Each candidate request is
decided by the evaluator itself (``Authorizer.decide``), so a counterexample is a real decision, not a reading of
the residual.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from ..policy._conditions import OPERATORS, parse_date, parse_number, split_operator
from ..policy._variables import Variable
from ..routing import Permission, render_template
from ._describe import filled
from ._glob import HOLE_CHARACTERS, Hole, hole_pattern
from ._partial import Atom, ConditionAtom, ResourceAtom
from ._report import Cell

__all__ = ["Witness", "allows", "find_witness", "request_of"]

#: Requests tried per counterexample at most.
_LIMIT = 4096
_ABSENT = object()
_OUTSIDE = ("203.0.113.9", "2001:db8::9")
_SAFE_ID = HOLE_CHARACTERS - {"%"}


@dataclass(frozen=True, slots=True)
class Witness:
    """A concrete request: the unknown keys that have a value (lower-cased; any other unknown key is absent) and the
    raw value of each id."""

    context: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    ids: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def request_of(cell: Cell, witness: Witness) -> tuple[str, str, dict[str, Any]] | None:
    """(action, resource, whole lower-cased context) of a witness for a cell's principal and route; None for a
    public route (nothing is decided)."""
    requirement = cell.route.requirement
    if not isinstance(requirement, Permission):
        return None
    resource = render_template(requirement.resource, {**cell.fixed, **witness.ids})
    context = dict(cell.knowledge.values)
    context.update((key, value) for key, value in witness.context.items() if key in cell.knowledge.unknown)
    return requirement.action, resource, context


def allows(cell: Cell | None, witness: Witness) -> bool:
    """Whether the evaluator allows the witness's request on this cell (a public route: always; no cell: never)."""
    if cell is None:
        return False
    request = request_of(cell, witness)
    return request is None or cell.subject.authorizer.decide(*request).allowed


def find_witness(granting: Cell, other: Cell | None) -> Witness | None:
    """A request ``granting`` allows and ``other`` (the same principal and route elsewhere, or None) does not."""
    if other is not None and other.residual is None:
        return None  # the other side is public: it allows every request
    if granting.residual is not None and granting.outcome == "Denied":
        return None
    if other is not None and other.residual is not None and other.outcome == "Allowed" and \
            granting.residual is not None:
        return None
    atoms = [atom for cell in (granting, other) if cell is not None and cell.residual is not None
             for atom in cell.residual.atoms()]
    keys = _key_candidates(atoms, granting, other)
    holes = _id_candidates(atoms, granting, other)
    for witness in _requests(keys, holes):
        if allows(granting, witness) and not allows(other, witness):
            return witness
    return None


def _requests(keys: dict[str, list[Any]], holes: dict[str, list[str]]) -> Iterator[Witness]:
    """Requests with the fewest keys set and ids off their first choice first, at most ``_LIMIT``."""
    names = [*keys, *holes]
    options = [[_ABSENT, *keys[k]] for k in keys] + [holes[h] for h in holes]
    tried = 0
    for weight in range(len(names) + 1):
        for chosen in itertools.combinations(range(len(names)), weight):
            choices = [options[i][1:] if i in chosen else options[i][:1] for i in range(len(names))]
            for picked in itertools.product(*choices):
                tried += 1
                if tried > _LIMIT:
                    return
                context = {name: value for name, value in zip(names[:len(keys)], picked[:len(keys)], strict=True)
                           if value is not _ABSENT}
                ids = dict(zip(names[len(keys):], picked[len(keys):], strict=True))
                yield Witness(MappingProxyType(context), MappingProxyType(ids))


def _key_candidates(atoms: list[Atom], granting: Cell, other: Cell | None) -> dict[str, list[Any]]:
    """Open key -> values to try (besides absent), from the conditions and Resource variables that read it."""
    found: dict[str, list[Any]] = {}
    for atom in atoms:
        if isinstance(atom, ConditionAtom):
            values = [filled(v, granting.knowledge) for v in atom.entry.values]
            for value in _condition_values(atom.entry.operator, values):
                _add(found, atom.entry.key, value)
            for key in atom.entry.variable_keys:
                _add(found, key, "x")
        else:
            # A variable in a Resource entry (``order/${aws:PrincipalTag/team}``): the ids the entry suggests.
            for pattern in atom.patterns:
                for part in pattern.template or ():
                    if isinstance(part, Variable):
                        for value in ["x", *_id_values(atom, granting)]:
                            _add(found, part.key, value)
    unknown = granting.knowledge.unknown | (other.knowledge.unknown if other is not None else frozenset())
    return {key: values for key, values in found.items() if key in unknown}


def _add(found: dict[str, list[Any]], key: str, value: Any) -> None:
    values = found.setdefault(key, [])
    if value not in values:
        values.append(value)


def _id_candidates(atoms: list[Atom], granting: Cell, other: Cell | None) -> dict[str, list[str]]:
    """Id -> values to try: ``1`` first (an ordinary id), then what the open Resource entries suggest."""
    names: list[str] = []
    for cell in (granting, other):
        for part in cell.template if cell is not None else ():
            if isinstance(part, Hole) and part.name not in names:
                names.append(part.name)
    found: dict[str, list[str]] = {name: ["1"] for name in names}
    for atom in atoms:
        if isinstance(atom, ResourceAtom):
            for name in atom.ids:
                for value in _id_values(atom, granting):
                    if value not in found[name]:
                        found[name].append(value)
    return found


def _safe(text: str) -> str:
    """An id made of characters that encode as themselves, so the path and the resource agree."""
    return "".join(ch if ch in _SAFE_ID else "x" for ch in text) or "x"


def _id_values(atom: ResourceAtom, cell: Cell) -> list[str]:
    """Ids an entry matches (its wildcards filled in, or dropped) and, through the wildcard-free part, ids it does
    not: from what the entry asks of the id, or else from the entry's last segment."""
    values = []
    for pattern in atom.patterns:
        text = filled(pattern.text, cell.knowledge)
        shape = hole_pattern((text,), cell.template)
        if shape is not None:
            text = shape[0]
        tail = text.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        if "${" in tail:
            continue
        values += [_safe(tail.replace("*", "x").replace("?", "x")), _safe(tail.replace("*", "").replace("?", "x"))]
    return values


def _condition_values(operator: str, values: list[str]) -> list[Any]:
    """Values the key may take to make the condition hold or fail."""
    parsed = split_operator(operator)
    if parsed is None:  # pragma: no cover - compiled entries have known operators
        return ["x"]
    qualifier, base, _ = parsed
    family = OPERATORS[base][0]
    out: list[Any] = []
    for value in values:
        out.extend(_one_value(family, value))
    if family == "bool":
        out += ["true", "false"]
    elif family == "ip":
        out += list(_OUTSIDE)
    else:
        out.append("x")  # matches none of the policy's values (and is present, for Null)
    if qualifier is not None:
        return [[v] for v in out] + [[]]
    return out


def _one_value(family: str, value: str) -> list[Any]:
    if family in ("string", "string_ci", "binary"):
        return [value]
    if family in ("string_like", "arn"):
        return [value.replace("*", "x").replace("?", "x"), value.replace("*", "").replace("?", "x")]
    if family.startswith("numeric_"):
        number = parse_number(value)
        return [] if number is None else [str(number), str(number - 1), str(number + 1)]
    if family.startswith("date_"):
        return _dates(value)
    if family == "ip":
        try:
            return [str(ipaddress.ip_network(value, strict=False).network_address)]
        except ValueError:
            return []
    return []


def _dates(value: str) -> list[str]:
    nanoseconds = parse_date(value)
    if nanoseconds is None:
        return []
    try:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=int(Decimal(nanoseconds) / 10**9))
    except OverflowError:
        return [value]
    return [value] + [(moment + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ") for s in (-1, 1)]

