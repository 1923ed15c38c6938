"""Authorize: the FastAPI dependency that requires a permission and hands the endpoint its principal.

Behind ``IAMMiddleware`` the middleware has already decided (it finds the permission through the dependency tree,
see ``find_requirement``), so the dependency only hands over the principal it put in the scope. Without the
middleware the dependency authenticates and decides itself, with the same core and the same rendering of the
resource, and raises the ``IAMError`` that ``install``'s exception handler answers exactly as the middleware does.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi.dependencies.models import Dependant
from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection, Request
from starlette.routing import BaseRoute

from iam_middleware import IAM, ConfigurationError, IAMCredentials, IAMError, Permission, Principal
from iam_middleware.asgi import decide_async, read_body, request_digest, request_view
from iam_middleware.asgi_routing import REQUIREMENT_FINDERS, ROUTE_CHILDREN, requirement_of
from iam_middleware.gate import Gate, RequestContext, Target, render_permission
from iam_middleware.policy import Decision
from iam_middleware.recent import RecentDecisions, header_placeholders

__all__ = ["Authorize", "find_requirement", "gate_of", "included_routes"]


class Authorize:
    """A dependency (``Depends`` or ``Security``) requiring ``action`` on ``resource``; returns the ``Principal``.

    ``resource`` and ``context`` values may name path parameters (``{order_id}``), ``{account}``, ``{partition}``
    and ``{region}``, and in context values ``{query.NAME}`` / ``{header.NAME}``, as ``@permission`` does. ``iam``
    is needed only without ``install``: by default the dependency uses the IAM that ``install`` put on the app.
    """

    def __init__(
        self, action: str, resource: str = "*", *, context: Mapping[str, str] | None = None, iam: IAM | None = None
    ) -> None:
        self.permission = Permission(action, resource, context or {})
        self.iam = iam
        self._gate: Gate | None = None
        # Exact repeats of requests this dependency allowed on its own (without the middleware), per gate.
        self._recent: weakref.WeakKeyDictionary[Gate, RecentDecisions] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"Authorize({self.permission.action!r}, resource={self.permission.resource!r})"

    async def __call__(self, connection: HTTPConnection) -> Principal:
        scope = connection.scope
        state = scope.setdefault("state", {})
        principal: Principal | None = state.get("iam_principal")
        decision: Decision | None = state.get("iam_decision")
        if principal is not None and state.get("iam_permission") is self.permission:
            return principal  # the middleware decided exactly this permission, rendered from this route's match
        if principal is not None and decision is not None and decision.action == self.permission.action:
            # The middleware decided this route's one permission. Where the IAM is at hand (not in a mounted app
            # without install), check it rendered the same resource too.
            iam = self._find_iam(connection)
            if iam is None or decision.resource == render_permission(
                    iam, request_view(scope), self.permission, scope.get("path_params", {}), principal)[0]:
                return principal
        # No middleware, or it did not decide this permission (a CORS preflight it let through): the gate decides.
        return await self._check(connection, state)

    async def _check(self, connection: HTTPConnection, state: dict[str, Any]) -> Principal:
        scope = connection.scope
        gate = self._gate_for(connection)
        route = scope.get("route")
        if isinstance(route, BaseRoute):
            # Raises ConfigurationError when @permission on the endpoint names another permission.
            requirement_of(route, scope.get("method", "GET"))
        websocket = scope["type"] == "websocket"
        key: bytes | None = None
        if not websocket:
            recent_decisions = self._recent_for(gate)
            key, _ = request_digest(scope, recent_decisions.asgi_headers())
            recent = recent_decisions.lookup(key)
            if recent is not None:  # an exact repeat of a request this dependency allowed
                return self._allow(scope, state, recent.principal, recent.decision)
        context = gate.begin(request_view(scope), websocket=websocket, root_path=scope.get("root_path", ""))
        context.request_id = state.get("request_id") or context.request_id
        state["request_id"] = context.request_id
        target = Target(self.permission, scope.get("path_params", {}), getattr(route, "path", ""), True)
        try:
            if isinstance(connection, Request) and gate.needs_body(context, target):
                key = None  # a signed body is verified every time
                context.request = context.request.with_body(await _body(connection, gate))
        except IAMError as error:
            gate.refuse(context, error)
        else:
            await decide_async(gate, context, target)
        if context.error is not None:
            state["iam_context"] = context
            if websocket:
                raise WebSocketException(code=1008, reason=context.error.code) from None
            raise context.error
        principal = context.principal
        assert principal is not None  # an allowed, non-public decision always has its principal
        if key is not None:
            self._recent_for(gate).remember(key, principal, context.decision, None)
        return self._allow(scope, state, principal, context.decision)

    def _allow(self, scope: Any, state: dict[str, Any], principal: Principal, decision: Decision | None) -> Principal:
        state["iam_principal"] = principal
        state["iam_decision"] = decision
        state["iam_permission"] = self.permission
        scope["user"] = principal
        scope["auth"] = IAMCredentials(principal, decision)
        return principal

    def _recent_for(self, gate: Gate) -> RecentDecisions:
        found = self._recent.get(gate)
        if found is None:
            found = self._recent[gate] = RecentDecisions(gate.iam)
            found.name_headers(header_placeholders(self.permission))
        return found

    def _find_iam(self, connection: HTTPConnection) -> IAM | None:
        if self.iam is not None:
            return self.iam
        found = getattr(getattr(connection.scope.get("app"), "state", None), "iam", None)
        return found if isinstance(found, IAM) else None

    def _gate_for(self, connection: HTTPConnection) -> Gate:
        if self.iam is not None:
            if self._gate is None:
                self._gate = Gate(self.iam)
            return self._gate
        found = gate_of(connection.scope.get("app"))
        if found is None:
            raise ConfigurationError(f"{self!r} has no IAM: call iam_middleware_fastapi.install(app, iam) or pass "
                                     "Authorize(..., iam=iam)")
        return found


def gate_of(app: Any) -> Gate | None:
    """The gate ``install`` put on ``app`` (None without ``install``)."""
    found = getattr(getattr(app, "state", None), "iam_gate", None)
    return found if isinstance(found, Gate) else None


def refused_context(state: Mapping[str, Any], error: Exception) -> RequestContext | None:
    """The gate's context of a refusal this dependency raised, for the exception handler to render."""
    context = state.get("iam_context")
    return context if isinstance(context, RequestContext) and context.error is error else None


async def _body(request: Request, gate: Gate) -> bytes:
    """The body (kept for the endpoint), refused past the gate's limit: by Content-Length before reading, and while
    reading (``read_body``, the middleware's reader) when there is none, so an unbounded body is never buffered."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > gate.max_body_bytes):
        raise gate.body_too_large()
    read: bytes | None = getattr(request, "_body", None)  # FastAPI reads it first for an endpoint's body parameters
    if read is not None:
        if len(read) > gate.max_body_bytes:
            raise gate.body_too_large()
        return read
    body = await read_body(request.receive, gate)
    request._body = body  # what Request.body() returns from now on: the endpoint reads the same bytes
    return body


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def find_requirement(route: BaseRoute, method: str) -> Permission | None:
    """The permission a route requires through ``Authorize`` anywhere in its dependency tree (route, router and
    sub-dependencies alike). Registered in ``REQUIREMENT_FINDERS`` so the middleware sees the route as declared."""
    dependant = getattr(route, "dependant", None)
    if not isinstance(dependant, Dependant):
        return None
    found: list[Permission] = []
    for dependency in _dependencies(dependant):
        if isinstance(dependency.call, Authorize) and dependency.call.permission not in found:
            found.append(dependency.call.permission)
    if len(found) > 1:
        actions = ", ".join(p.action for p in found)
        raise ConfigurationError(f"route {getattr(route, 'path', route)!r} requires {len(found)} different permissions "
                                 f"through Authorize ({actions}); a route performs one action: declare one")
    return found[0] if found else None


def included_routes(route: BaseRoute) -> list[BaseRoute] | None:
    """The routes of a router included with ``include_router`` (FastAPI resolves them lazily, each with the
    including router's prefix and dependencies applied), so the middleware resolves and audits them too."""
    candidates = getattr(route, "effective_candidates", None)
    if not callable(candidates) or not hasattr(route, "original_router"):
        return None
    return list(candidates())


if find_requirement not in REQUIREMENT_FINDERS:
    REQUIREMENT_FINDERS.append(find_requirement)
if included_routes not in ROUTE_CHILDREN:
    ROUTE_CHILDREN.append(included_routes)
