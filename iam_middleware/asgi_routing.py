"""Find the requirement of the route a Starlette (or FastAPI) router will dispatch a request to.

The walk uses each route's own ``matches`` (the router's own logic, mounts included), so the path that is
authorized is the path that is dispatched: Starlette decodes ``%61dmin`` to ``admin`` before routing, and so do we.
Like ``Router.app``, the first full match wins, even a mount whose own routes then match nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute, Host, Match, Mount, Route, WebSocketRoute
from starlette.types import Scope

from ._exceptions import ConfigurationError
from .routing import Requirement, declared

__all__ = [
    "REQUIREMENT_FINDERS",
    "ROUTE_CHILDREN",
    "Resolved",
    "all_routes",
    "requirement_of",
    "resolve",
    "routes_of",
]

#: Extra ways to find a requirement on a route (the FastAPI adapter registers its dependency walker here).
REQUIREMENT_FINDERS: list[Callable[[BaseRoute, str], Requirement | None]] = []

#: Ways to see into routes that hold routes without being a Mount (FastAPI's included routers, registered by the
#: FastAPI adapter): each gives a route's children, whose templates are full paths, or None.
ROUTE_CHILDREN: list[Callable[[BaseRoute], list[BaseRoute] | None]] = []


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


def _children(route: BaseRoute) -> list[BaseRoute] | None:
    for finder in ROUTE_CHILDREN:
        children = finder(route)
        if children is not None:
            return children
    return None


def _opaque_app(route: BaseRoute) -> Any:
    """The app a Mount or Host hands requests to when it is not a router we can see into, else None."""
    if isinstance(route, (Mount, Host)) and routes_of(route.app) is None:
        return route.app
    return None


def requirement_of(route: BaseRoute, method: str) -> Requirement | None:
    """The requirement declared for a route: on the endpoint (or its method handler, or the app mounted there),
    or by a registered finder. Declared in two places is a configuration error."""
    found: list[Requirement] = []
    endpoint = getattr(route, "endpoint", None)
    if endpoint is None:
        endpoint = _opaque_app(route)
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
        raise ConfigurationError(f"route {getattr(route, 'path', route)!r} declares its permission in two places")
    return found[0]


def _method(scope: Scope) -> str:
    return str(scope.get("method", "GET")) if scope["type"] == "http" else "WEBSOCKET"


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
        children = _children(route)
        if children is not None:
            found, inner_partial = resolve(children, scope)
            return (found, False) if found is not None else (None, inner_partial)
        prefix = route.path if isinstance(route, Mount) else ""
        if isinstance(route, (Mount, Host)) and _opaque_app(route) is None:
            merged = dict(scope)
            merged.update(child)
            found, inner_partial = resolve(routes_of(route.app) or [], merged)
            if found is None:
                # The router hands the request to this mount all the same; nothing after it is consulted.
                return None, inner_partial
            return Resolved(found.route, found.path_params, found.requirement, prefix + found.template), False
        template = prefix if isinstance(route, (Mount, Host)) else getattr(route, "path", "")
        return Resolved(route, child.get("path_params", {}), requirement_of(route, _method(scope)), template), False
    return None, partial


def methods_of(route: BaseRoute) -> tuple[str, ...]:
    """The methods a route answers, for the start-up audit: ``WEBSOCKET`` for websocket routes, the handlers of a
    class-based endpoint, ``*`` for a mounted app or an ASGI endpoint that answers any method."""
    if isinstance(route, WebSocketRoute):
        return ("WEBSOCKET",)
    if isinstance(route, Route):
        if route.methods:
            return tuple(sorted(route.methods))
        endpoint = route.endpoint
        if isinstance(endpoint, type):
            verbs = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
            found = [v for v in verbs if hasattr(endpoint, v.lower()) or (v == "HEAD" and hasattr(endpoint, "get"))]
            return tuple(found) or ("*",)
    methods = getattr(route, "methods", None)
    return tuple(sorted(methods)) if methods else ("*",)


def all_routes(routes: list[BaseRoute], prefix: str = "") -> Iterable[tuple[str, BaseRoute]]:
    """Every leaf route with its full path template (for the start-up audit)."""
    for route in routes:
        children = _children(route)
        if children is not None:
            yield from all_routes(children, prefix)
        elif isinstance(route, (Mount, Host)):
            inner = routes_of(route.app)
            path = prefix + (route.path if isinstance(route, Mount) else "")
            if inner is None:
                yield path, route
            else:
                yield from all_routes(inner, path)
        else:
            yield prefix + getattr(route, "path", ""), route
