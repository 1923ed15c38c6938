"""The app's action catalog: the actions and resource patterns its routes declare, plus the token service's and the
admin endpoints' own; and the policy entries no request to this app can ever match, with the nearest real name (as
IAM Access Analyzer reports unknown actions; docs/access.md, "Names no route can match").

A policy's ``Action`` entry is unknown when it matches no action of the catalog; a ``Resource`` entry when it can
match no resource a route renders, whatever the route's ids, account and region (its variables read as ``*``).
``NotAction`` and ``NotResource`` entries name what is excluded and are not checked.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..policy import Policy, PolicyIssue, Severity
from ..policy._match import compile_action
from ..policy._variables import Part, TemplateError, Variable, parse_template
from ..routing import _PLACEHOLDER, Permission
from ._glob import NEVER, Hole, TemplatePart, classify
from ._routes import RouteSpec, resource_template, shown

__all__ = ["BUILT_IN_ACTIONS", "UNKNOWN_NAME", "Catalog", "catalog_of", "declares_any", "unknown_names"]

#: Actions the project itself authorizes: the token service (docs/credentials.md), the admin endpoints and the
#: AuthZEN decision point's check on each subject.
BUILT_IN_ACTIONS = (
    "sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:GetCallerIdentity", "sts:GetSessionToken", "sts:Login",
    "sts:RevokeCredentials", "sts:SetSourceIdentity", "sts:TagSession",
    "iam:GetDirectoryStatus", "iam:ReloadDirectory", "iam:SimulatePrincipalPolicy",
)
#: Their resources: roles, users, sessions and the directory, in any partition and account.
_BUILT_IN_RESOURCES = tuple((f"arn:{{partition}}:{service}::{{account}}:{{name}}",) for service in ("iam", "sts"))
#: The code of its findings (``PolicyIssue.code``): warnings that never fail a check, even a strict one.
UNKNOWN_NAME = "unknown-name"


@dataclass(frozen=True, slots=True)
class Catalog:
    """Action names and resource templates (ids as Holes) that some request to the app can carry."""

    actions: tuple[str, ...]
    resources: tuple[tuple[TemplatePart, ...], ...]


def catalog_of(routes: Iterable[RouteSpec]) -> Catalog:
    """The catalog of declared routes and the built-in actions."""
    actions = dict.fromkeys(BUILT_IN_ACTIONS)
    resources: dict[tuple[TemplatePart, ...], None] = {}
    for route in routes:
        if isinstance(route.requirement, Permission):
            actions[route.requirement.action] = None
            resources[resource_template(route.requirement, {})] = None
    built_in = (resource_template(Permission("sts:AssumeRole", text[0]), {}) for text in _BUILT_IN_RESOURCES)
    free = (tuple(Hole(part.name, free=True) if isinstance(part, Hole) else part for part in template)
            for template in built_in)  # a role or session name may hold ``/`` and ``:``
    resources.update(dict.fromkeys(free))
    return Catalog(tuple(actions), tuple(resources))


def declares_any(routes: Iterable[RouteSpec]) -> bool:
    """Whether some route declares a permission: without one there is no catalog to compare policies with."""
    return any(isinstance(route.requirement, Permission) for route in routes)


def unknown_names(policy: Policy, catalog: Catalog) -> list[PolicyIssue]:
    """A warning for each Action and Resource entry of ``policy`` that no request to the app can match."""
    issues: list[PolicyIssue] = []
    names = {action.lower(): action for action in catalog.actions}
    for statement in policy.statements:
        where = f"Statement[{statement.index}]"
        if not statement.not_action:
            for pattern in statement.actions:
                if not any(compile_action(pattern)(name) for name in names):
                    message = (f"{pattern} matches no action of the app's routes or the token service"
                               + _nearest(pattern, catalog.actions, 0.8))
                    issues.append(PolicyIssue(f"{where}.Action", message, Severity.WARNING, UNKNOWN_NAME))
        if statement.resources is None or statement.not_resource:
            continue
        for resource in statement.resources:
            parts = _parts(resource.text, policy.uses_variables)
            if parts is not None and all(classify(parts, template) == NEVER for template in catalog.resources):
                shapes = [_filled(resource.text, shown(template)) for template in catalog.resources]
                message = (f"{resource.text} matches no resource of the app's routes"
                           + _nearest(resource.text, shapes, 0.5))
                issues.append(PolicyIssue(f"{where}.Resource", message, Severity.WARNING, UNKNOWN_NAME))
    return issues


def _parts(text: str, variables: bool) -> tuple[Part, ...] | None:
    """The entry as the matcher reads it, each variable as ``*`` (any value); None when it cannot be read."""
    if not variables or "${" not in text:
        return (text,)
    try:
        template = parse_template(text)
    except TemplateError:
        return None
    return tuple("*" if isinstance(part, Variable) else part for part in template)


def _filled(resource: str, shape: str) -> str:
    """A route's resource shape with each placeholder segment the resource fills taken from the resource: the
    nearest name offered is then the entry with its typo mended (``arn:app:order::1:order/42`` gives
    ``arn:app:orders::1:order/42``), not a pattern to fill in."""
    given = resource.split(":")
    segments = shape.split(":")
    if len(given) != len(segments):
        return shape
    out = []
    for mine, theirs in zip(given, segments, strict=True):
        literals = _PLACEHOLDER.split(theirs)[::2]
        fits = len(literals) > 1 and re.fullmatch(".*".join(map(re.escape, literals)), mine, re.DOTALL)
        out.append(mine if fits else theirs)
    return ":".join(out)


def _nearest(name: str, candidates: Iterable[str], cutoff: float) -> str:
    """``; did you mean X?`` for the closest candidate. Action names are short, so only a near miss (a typo) is
    suggested; an ARN differs from its route's pattern by the ids, so a looser likeness is enough."""
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=cutoff)
    return f"; did you mean {found[0]}?" if found else ""
