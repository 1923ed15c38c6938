"""Find the requirement of the route a Starlette (or FastAPI) router will dispatch a request to.

The walk uses each route's own ``matches`` (the router's own logic, mounts included), so the path that is
authorized is the path that is dispatched: Starlette decodes ``%61dmin`` to ``admin`` before routing, and so do we.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from starlette.types import Scope

from ._routes import Requirement, declared

__all__ = ["Resolved", "resolve", "routes_of"]

#: Extra ways to find a requirement on a route (the FastAPI adapter registers its dependency walker here).
REQUIREMENT_FINDERS: list[Callable[[BaseRoute, str], Requirement | None]] = []


@dataclass(frozen=True, slots=True)
class Resolved:
    """A full match: the route, its path parameters, and what it requires (None: nothing declared)."""

    route: BaseRoute
    path_params: Mapping[str, Any]
    requirement: Requirement | None
    template: str


def routes_of(app: Any) -> list[BaseRoute] | None:
    """The routes of a Starlette app, FastAPI app or Router; None for any other ASGI app."""
    router = getattr(app, "router", None)
    routes = getattr(router, "routes", None) if router is not None else getattr(app, "routes", None)
    return list(routes) if isinstance(routes, Iterable) else None


def requirement_of(route: BaseRoute, method: str) -> Requirement | None:
    """The requirement declared for a route: on the endpoint (or its method handler), or by a registered finder.
    Declared in two places is a configuration error, raised by the finder that sees both."""
    found: list[Requirement] = []
    endpoint = getattr(route, "endpoint", None)
    if endpoint is not None:
        requirement = declared(endpoint, method)
        if requirement is not None:
            found.append(requirement)
    for finder in REQUIREMENT_FINDERS:
        extra = finder(route, method)
        if extra is not None:
            found.append(extra)
    if not found:
        return None
    if len(found) > 1 and any(r != found[0] for r in found[1:]):
        from ._exceptions import ConfigurationError

        raise ConfigurationError(f"route {getattr(route, 'path', route)!r} declares its permission in two places")
    return found[0]


def resolve(routes: list[BaseRoute], scope: Scope) -> tuple[Resolved | None, bool]:
    """(the fully matched route, whether some route matched partially, i.e. the router answers 405)."""
    partial = False
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if match is Match.PARTIAL:
            partial = True
            continue
        if isinstance(route, Mount):
            inner = routes_of(route.app)
            if inner is None:
                # A mounted ASGI app we cannot see into: its requirement is the mount's own, if declared.
                return Resolved(route, child.get("path_params", {}), requirement_of(route, scope.get("method", "")),
                                route.path), False
            merged = dict(scope)
            merged.update(child)
            found, inner_partial = resolve(inner, merged)
            if found is not None:
                return Resolved(found.route, found.path_params, found.requirement, route.path + found.template), False
            partial = partial or inner_partial
            continue
        if isinstance(route, (Route, WebSocketRoute)):
            method = scope.get("method", "GET") if scope["type"] == "http" else "WEBSOCKET"
            return Resolved(route, child.get("path_params", {}), requirement_of(route, method), route.path), False
        return Resolved(route, child.get("path_params", {}), requirement_of(route, scope.get("method", "")),
                        getattr(route, "path", "")), False
    return None, partial


def all_routes(routes: list[BaseRoute], prefix: str = "") -> Iterable[tuple[str, BaseRoute]]:
    """Every leaf route with its full path template (for the start-up audit)."""
    for route in routes:
        if isinstance(route, Mount):
            inner = routes_of(route.app)
            if inner is None:
                yield prefix + route.path, route
            else:
                yield from all_routes(inner, prefix + route.path)
        else:
            yield prefix + getattr(route, "path", ""), route
