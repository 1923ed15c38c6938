"""Who can perform an action at all (``--check-not-granted``): every principal against an action and a resource,
the resource given (``{account}`` and ids allowed) or left wholly unknown, by the same partial evaluation."""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from .._settings import Settings
from ..routing import Permission
from ._glob import Hole, TemplatePart
from ._partial import partial_decide
from ._report import Cell
from ._routes import RouteSpec, resource_template
from ._subjects import Subject

__all__ = ["granted"]


def granted(subjects: Iterable[Subject], actions: Iterable[str], resource: str | None,
            settings: Settings) -> list[tuple[str, Cell]]:
    """(action, cell) for each principal that may perform an action (Allowed or Conditional), action by action.
    Without ``resource``, any resource: the whole ARN is unknown."""
    found: list[tuple[str, Cell]] = []
    subjects = list(subjects)
    for action in actions:
        permission = Permission(action, resource or "*")
        route = RouteSpec("ANY", resource or "(any resource)", permission)
        for subject in subjects:
            fixed = {"account": subject.principal.account, "partition": settings.partition,
                     "region": settings.regions[0]}
            template: tuple[TemplatePart, ...] = (
                resource_template(permission, fixed) if resource else (Hole("resource", free=True),))
            authorizer = subject.authorizer
            residual = partial_decide(authorizer.caller.kind, action, template, subject.knowledge,
                                      identity=authorizer.identity, boundary=authorizer.boundary,
                                      session=authorizer.session, guardrails=authorizer.guardrails,
                                      caller_account=subject.principal.account)
            if residual.outcome != "Denied":
                found.append((action, Cell(subject, route, template, subject.knowledge, residual,
                                           MappingProxyType(fixed))))
    return found
