"""Authorize: the FastAPI dependency that requires a permission and hands the endpoint its principal.

Behind ``IAMMiddleware`` the middleware has already decided (it finds the permission through the dependency tree,
see ``find_requirement``), so the dependency only hands over the principal it put in the scope. Without the
middleware the dependency authenticates and decides itself, with the same core and the same rendering of the
resource, and raises the ``IAMError`` that ``install``'s exception handler answers exactly as the middleware does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import anyio.to_thread
from fastapi.dependencies.models import Dependant
from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection, Request
from starlette.routing import BaseRoute

from iam_middleware._asgi import (
    IAMCredentials,
    log_decision,
    new_request_id,
    render_permission,
    request_view,
    source_ip,
)
from iam_middleware._exceptions import BadRequestError, ConfigurationError, IAMError, MissingCredentialError
from iam_middleware._iam import IAM
from iam_middleware._principal import Principal
from iam_middleware._request import RequestView
from iam_middleware._resolve import REQUIREMENT_FINDERS, ROUTE_CHILDREN, requirement_of
from iam_middleware._routes import Permission
from iam_middleware.policy import Decision
from iam_middleware.state import MemoryStore

__all__ = ["Authorize", "find_requirement", "included_routes"]

#: Upper bound of a body read to verify a SigV4 payload hash when no middleware read it first.
MAX_BODY_BYTES = 10 * 1024 * 1024


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

    def __repr__(self) -> str:
        return f"Authorize({self.permission.action!r}, resource={self.permission.resource!r})"

    async def __call__(self, connection: HTTPConnection) -> Principal:
        scope = connection.scope
        state = scope.setdefault("state", {})
        principal: Principal | None = state.get("iam_principal")
        decision: Decision | None = state.get("iam_decision")
        if principal is not None and decision is not None and decision.action == self.permission.action:
            # The middleware decided this route's one permission. Where the IAM is at hand (not in a mounted app
            # without install), check it rendered the same resource too.
            iam = self._find_iam(connection)
            if iam is None or decision.resource == render_permission(
                    iam, request_view(scope), self.permission, scope.get("path_params", {}), principal)[0]:
                return principal
        # No middleware, or it did not decide this permission (a CORS preflight it let through): decide here.
        return await self._check(connection, state, principal)

    async def _check(self, connection: HTTPConnection, state: dict[str, Any], principal: Principal | None) -> Principal:
        scope = connection.scope
        iam = self._iam(connection)
        route = scope.get("route")
        if isinstance(route, BaseRoute):
            # Raises ConfigurationError when @permission on the endpoint names another permission.
            requirement_of(route, scope.get("method", "GET"))
        view = request_view(scope)
        request_id = state.get("request_id") or new_request_id(view.header("x-request-id"))
        state["request_id"] = request_id
        ip = source_ip(view, iam.settings.trusted_proxies)
        try:
            if isinstance(connection, Request) and iam.sigv4.needs_body(view):
                view = request_view(scope, await _body(connection))
            if principal is None:
                principal = await _authenticate(iam, view)
            if principal is None:
                raise MissingCredentialError("This resource requires authentication.")
            resource, context = render_permission(iam, view, self.permission, scope.get("path_params", {}), principal)
            principal, decision = iam.check(view, self.permission.action, resource, context=context,
                                            principal=principal, source_ip=ip)
        except IAMError as error:
            _log(scope, request_id, principal, None, error, ip, self.permission.action)
            if scope["type"] == "websocket":
                raise WebSocketException(code=1008, reason=error.code) from None
            raise
        _log(scope, request_id, principal, decision, None, ip, self.permission.action)
        state["iam_principal"] = principal
        state["iam_decision"] = decision
        scope["user"] = principal
        scope["auth"] = IAMCredentials(principal, decision)
        return principal

    def _find_iam(self, connection: HTTPConnection) -> IAM | None:
        if self.iam is not None:
            return self.iam
        found = getattr(getattr(connection.scope.get("app"), "state", None), "iam", None)
        return found if isinstance(found, IAM) else None

    def _iam(self, connection: HTTPConnection) -> IAM:
        found = self._find_iam(connection)
        if found is None:
            raise ConfigurationError(f"{self!r} has no IAM: call iam_middleware_fastapi.install(app, iam) or pass "
                                     "Authorize(..., iam=iam)")
        return found


async def _authenticate(iam: IAM, view: RequestView) -> Principal | None:
    if isinstance(iam.store, MemoryStore):
        return iam.authenticate(view)
    # Shared state over the network (Redis): keep blocking I/O off the event loop, as the middleware does.
    return await anyio.to_thread.run_sync(lambda: iam.authenticate(view))


def _too_large() -> BadRequestError:
    error = BadRequestError(f"The request body is larger than {MAX_BODY_BYTES} bytes.", code="EntityTooLarge")
    error.status_code = 413
    return error


async def _body(request: Request) -> bytes:
    """The body (kept for the endpoint), refused past MAX_BODY_BYTES: by Content-Length before reading, and while
    reading when there is none (chunked), so an unbounded body is never buffered."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            raise _too_large()
        return await request.body()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # what Request.body() returns from now on: the endpoint reads the same bytes
    return body


def _log(scope: Any, request_id: str, principal: Principal | None, decision: Decision | None,
         error: IAMError | None, ip: str | None, action: str) -> None:
    log_decision(request_id=request_id, method=scope.get("method", "WEBSOCKET"), path=scope.get("path"),
                 principal=principal, source_ip=ip, decision=decision, error=error, action=action,
                 outcome=decision.kind.value if decision is not None else None)


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
