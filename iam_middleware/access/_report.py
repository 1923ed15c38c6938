"""The access report: every principal against every declared route, each answer Allowed, Denied, Conditional
(with what it depends on) or Public, from partial evaluation (``_partial``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from .._settings import Settings
from ..policy import DecisionKind
from ..routing import Permission
from ._glob import TemplatePart
from ._knowledge import Knowledge
from ._partial import Residual, Terms, describe_terms, partial_decide
from ._routes import RouteSpec, resource_template, route_knowledge, shown
from ._subjects import Subject

__all__ = ["AccessReport", "Cell", "build_report"]


@dataclass(frozen=True, slots=True)
class Cell:
    """One principal on one route: the resource its requests name (``template``), what is known of them, and the
    decision with the rest left open (``residual``; None for a public route)."""

    subject: Subject
    route: RouteSpec
    template: tuple[TemplatePart, ...]
    knowledge: Knowledge
    residual: Residual | None
    #: The values the principal's requests put in ``{account}``, ``{partition}`` and ``{region}``.
    fixed: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def resource(self) -> str:
        """The resource this principal's requests name, ids as ``{name}``."""
        return shown(self.template)

    @property
    def outcome(self) -> str:
        """``Allowed``, ``Denied``, ``Conditional`` or ``Public``."""
        return "Public" if self.residual is None else self.residual.outcome

    @property
    def decision(self) -> DecisionKind | None:
        """The evaluator's decision when the unknowns cannot change it (None: public, or it depends on them)."""
        return None if self.residual is None else self.residual.static

    @property
    def when(self) -> list[str]:
        """The alternatives under which the request is allowed (each ``a and b``); empty when nothing is needed."""
        if self.residual is None or self.outcome == "Denied":
            return []
        allow = self.residual.allow
        if len(allow) == 1:
            return describe_terms(allow[0])
        return [" and ".join(_either(terms) for terms in allow)] if allow else []

    @property
    def unless(self) -> list[str]:
        """The alternatives under which a Deny statement refuses it (each ``a and b``)."""
        if self.residual is None or self.outcome == "Denied":
            return []
        return describe_terms(self.residual.deny)

    @property
    def summary(self) -> str:
        """The condition in one phrase (``allowed when ... unless ...``), or the outcome."""
        if self.outcome != "Conditional":
            return self.outcome
        text = "allowed"
        if self.when:
            text += " when " + " or ".join(_grouped(self.when))
        if self.unless:
            text += (", unless " if self.when else " unless ") + " or ".join(_grouped(self.unless))
        return text


def _either(terms: Terms) -> str:
    return "(" + " or ".join(describe_terms(terms)) + ")"


def _grouped(alternatives: list[str]) -> list[str]:
    return [f"({a})" if len(alternatives) > 1 and " and " in a else a for a in alternatives]


@dataclass(frozen=True, slots=True)
class AccessReport:
    """The principals, the declared routes, a cell for each pair (route by route) and the undeclared routes."""

    subjects: tuple[Subject, ...]
    routes: tuple[RouteSpec, ...]
    cells: tuple[Cell, ...]
    undeclared: tuple[RouteSpec, ...]

    def cell(self, subject: str, route: str) -> Cell:
        """The cell of a principal's name and a route's ``METHOD /path``."""
        for cell in self.cells:
            if cell.subject.name == subject and cell.route.label == route:
                return cell
        raise KeyError((subject, route))


class _Routes:
    """A route's resource template and context, rendered once per account (every principal of an account fills
    ``{account}`` alike)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._rendered: dict[tuple[int, str], tuple[Mapping[str, str], tuple[TemplatePart, ...], Knowledge]] = {}

    def rendered(self, route: RouteSpec, permission: Permission,
                 account: str) -> tuple[Mapping[str, str], tuple[TemplatePart, ...], Knowledge]:
        key = (id(route), account)
        found = self._rendered.get(key)
        if found is None:
            settings = self.settings
            fixed = MappingProxyType({"account": account, "partition": settings.partition,
                                      "region": settings.regions[0]})
            found = self._rendered[key] = (fixed, resource_template(permission, fixed),
                                           route_knowledge(permission, fixed))
        return found


def _cell(subject: Subject, route: RouteSpec, routes: _Routes) -> Cell:
    requirement = route.requirement
    if not isinstance(requirement, Permission):
        return Cell(subject, route, (), subject.knowledge, None)
    fixed, template, added = routes.rendered(route, requirement, subject.principal.account)
    knowledge = subject.knowledge.merged(added) if added.values or added.unknown else subject.knowledge
    authorizer = subject.authorizer
    residual = partial_decide(authorizer.caller.kind, requirement.action, template, knowledge,
                              identity=authorizer.identity, boundary=authorizer.boundary,
                              session=authorizer.session, guardrails=authorizer.guardrails,
                              caller_account=subject.principal.account)
    return Cell(subject, route, template, knowledge, residual, fixed)


def build_report(subjects: Sequence[Subject], routes: Iterable[RouteSpec], settings: Settings) -> AccessReport:
    """Decide every subject on every declared route."""
    routes = list(routes)
    declared = tuple(route for route in routes if route.requirement is not None)
    undeclared = tuple(route for route in routes if route.requirement is None)
    rendering = _Routes(settings)
    cells = tuple(_cell(subject, route, rendering) for route in declared for subject in subjects)
    return AccessReport(tuple(subjects), declared, cells, undeclared)
