"""A route as the access report reads it: method, path, and what it requires, with its request values unknown.

``{account}``, ``{partition}`` and ``{region}`` are fixed for a principal (``gate.render_permission`` fills them
from the caller and the settings); every other placeholder (a path parameter, ``query.X``, ``header.X``) is a
request value: in the resource it is an unknown id, in a context value it makes the key unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..routing import _PLACEHOLDER, PUBLIC, Permission, Requirement, RuleTable, render, render_template
from ._glob import Hole, TemplatePart
from ._knowledge import Knowledge

__all__ = ["RouteSpec", "resource_template", "route_knowledge", "routes_of_table", "shown"]


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One method of one route; ``requirement`` None: nothing is declared (denied to everyone)."""

    method: str
    path: str
    requirement: Requirement | None

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def public(self) -> bool:
        return self.requirement is PUBLIC


def routes_of_table(table: RuleTable) -> list[RouteSpec]:
    """The routes of a rules table (the directory's ``[[routes]]``), in its order."""
    return [RouteSpec(rule.method, rule.path, rule.requirement) for rule in table.rules]


def resource_template(permission: Permission, fixed: Mapping[str, str]) -> tuple[TemplatePart, ...]:
    """The permission's resource with the fixed values put in (encoded as the gate encodes them) and every request
    value left as a Hole."""
    text = permission.resource
    pieces: list[TemplatePart] = []
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        pieces.append(text[position:match.start()])
        name = match.group(1)
        pieces.append(render_template(match.group(0), fixed) if name in fixed else Hole(name))
        position = match.end()
    pieces.append(text[position:])
    joined: list[TemplatePart] = []
    for piece in pieces:
        if isinstance(piece, str) and joined and isinstance(joined[-1], str):
            joined[-1] += piece
        elif piece != "":
            joined.append(piece)
    return tuple(joined)


def shown(template: Iterable[TemplatePart]) -> str:
    """A resource template as text, ids as ``{name}``."""
    return "".join(f"{{{part.name}}}" if isinstance(part, Hole) else part for part in template)


def route_knowledge(permission: Permission, fixed: Mapping[str, str]) -> Knowledge:
    """The context keys a route adds: a value made of fixed values only is known, one that names a request value
    is not (the gate leaves a key out when its query parameter or header is missing, so it may be absent too)."""
    _, known = render(Permission(permission.action, "*", permission.context), fixed)
    unknown = frozenset(key.lower() for key in permission.context if key.lower() not in known)
    return Knowledge(MappingProxyType(known), unknown)
