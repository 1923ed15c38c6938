"""IAMMiddleware for Django: a shell over the gate, under WSGI and ASGI alike.

Django's own resolver decides the route (``resolve(request.path_info)``), so the path that is authorized is the
path that is dispatched; the view's declaration (``@permission`` / ``@public`` on a function view, or on a class-based
view's method handlers) or the directory's ``[[routes]]`` table says what it requires. The decision and the refusal
are the gate's, the same as every other shell's.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import Resolver404, ResolverMatch, resolve

from iam_middleware import IAM, AccessDeniedError, ConfigurationError, IAMError, RequestView
from iam_middleware.gate import NO_ROUTE, Gate, Reply, RequestContext, Target
from iam_middleware.interfaces import from_asgi_scope, from_wsgi_environ
from iam_middleware.routing import Requirement, declared
from iam_middleware.state import MemoryStore

__all__ = ["IAMMiddleware", "gate_for", "read_body", "request_view", "send"]

logger = logging.getLogger("iam_middleware")

_METHOD_OVERRIDES = ("HTTP_X_HTTP_METHOD_OVERRIDE", "HTTP_X_HTTP_METHOD", "HTTP_X_METHOD_OVERRIDE")
# Django's route syntax to the rules table's: <int:id> -> {id}, <path:p> -> {p:path}.
_DJANGO_PARAM = re.compile(r"<(?:([A-Za-z_]\w*):)?([A-Za-z_]\w*)>")
_GATES: weakref.WeakKeyDictionary[IAM, Gate] = weakref.WeakKeyDictionary()


def gate_for(iam: IAM | None = None) -> Gate:
    """The gate of ``iam``, or of the project's IAM: ``settings.IAM`` (an ``IAM``) or ``settings.IAM_FILE``.
    Options come from ``settings.IAM_OPTIONS`` (``cors_preflight``, ``explain``, ``max_body_bytes``, ``on_error``)."""
    if iam is None:
        iam = getattr(settings, "IAM", None)
        if iam is None:
            file = getattr(settings, "IAM_FILE", None)
            if not file:
                raise ConfigurationError("iam_middleware_django needs settings.IAM (an IAM) or settings.IAM_FILE")
            iam = IAM.from_file(file)
    if not isinstance(iam, IAM):
        raise ConfigurationError(f"settings.IAM must be an iam_middleware.IAM, not {type(iam).__name__}")
    found = _GATES.get(iam)
    if found is None:
        found = _GATES[iam] = Gate(iam, **getattr(settings, "IAM_OPTIONS", {}))
    return found


class IAMMiddleware:
    """Authenticate and authorize every request before its view runs (``MIDDLEWARE`` entry
    ``"iam_middleware_django.IAMMiddleware"``). The view gets the principal as ``request.user`` (and
    ``request.iam_principal``), the decision as ``request.iam_decision``. Undeclared views are denied."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.gate = gate_for()
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __repr__(self) -> str:
        return f"IAMMiddleware(gate={self.gate!r})"

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self._acall(request)
        token = self.gate.enter()
        try:
            refusal = self._check(request)
            return refusal if refusal is not None else self.get_response(request)
        finally:
            self.gate.exit(token)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        gate = self.gate
        token = gate.enter()
        try:
            if isinstance(gate.iam.store, MemoryStore):
                context, target = self._prepare(request)
                if context.error is None:
                    # On the loop; the one blocking load it may meet (a provider's key set) runs in a thread.
                    gate.decide(context, target, io="defer")
                    if context.pending_io is not None:
                        await sync_to_async(context.pending_io, thread_sensitive=False)()
                        gate.decide(context, target, io="skip")
                refusal = self._finish(request, context)
            else:  # shared state over the network (Redis): keep blocking I/O off the event loop
                refusal = await sync_to_async(self._check, thread_sensitive=False)(request)
            if refusal is not None:
                return refusal
            response: Awaitable[HttpResponseBase] = self.get_response(request)
            return await response
        finally:
            gate.exit(token)

    def _check(self, request: HttpRequest) -> HttpResponse | None:
        context, target = self._prepare(request)
        if context.error is None:
            self.gate.decide(context, target)
        return self._finish(request, context)

    def _prepare(self, request: HttpRequest) -> tuple[RequestContext, Target]:
        """The request's context and route, with the body read if a signature covers it (or the refusal)."""
        gate = self.gate
        context = gate.begin(request_view(request))
        target = NO_ROUTE
        try:
            target = NO_ROUTE if context.error is not None else self._target(request, gate.iam)
            if gate.needs_body(context, target):
                context.request = context.request.with_body(read_body(request, gate.max_body_bytes, gate))
        except IAMError as error:
            gate.refuse(context, error)
        except Exception:  # noqa: BLE001 - fail closed: a failing resolver is a refusal, never a 500
            logger.exception("authorization failed closed (request %s)", context.request_id)
            gate.refuse(context, AccessDeniedError("The request could not be authorized.", code="AuthorizationFailed"))
        return context, target

    def _finish(self, request: HttpRequest, context: RequestContext) -> HttpResponse | None:
        """The refusal to send, or None after handing the principal to the view."""
        if context.error is not None:
            return send(self.gate.render(context))
        for override in _METHOD_OVERRIDES:  # the action is the method received (docs/security.md)
            request.META.pop(override, None)
        request.iam_principal = context.principal  # type: ignore[attr-defined]
        request.iam_decision = context.decision  # type: ignore[attr-defined]
        request.iam_request_id = context.request_id  # type: ignore[attr-defined]
        if context.principal is not None:
            request.user = context.principal  # type: ignore[assignment]
        return None

    def _target(self, request: HttpRequest, iam: IAM) -> Target:
        try:
            match = resolve(request.path_info, urlconf=getattr(request, "urlconf", None))
        except Resolver404:
            return NO_ROUTE
        method = request.method or "GET"
        requirement, handles = requirement_of(match, method)
        template = "/" + _DJANGO_PARAM.sub(
            lambda m: f"{{{m.group(2)}:path}}" if m.group(1) == "path" else f"{{{m.group(2)}}}", match.route or "")
        if requirement is None:
            rule = iam.rules.for_template(method, template)
            requirement = rule.requirement if rule is not None else None
        elif iam.rules.for_template(method, template) is not None:
            raise ConfigurationError(f"{method} {template} is declared both on its view and in the rules table")
        return Target(requirement, match.kwargs, template, handles)


def requirement_of(match: ResolverMatch, method: str) -> tuple[Requirement | None, bool]:
    """(what the resolved view requires for ``method``, whether the view itself handles ``method``)."""
    view = match.func
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        found = declared(view_class, method)
        handler = "get" if method == "HEAD" and not hasattr(view_class, "head") else method.lower()
        # A class-based view answers OPTIONS itself (View.options) only as Django's automatic answer.
        handles = hasattr(view_class, handler) and not (method == "OPTIONS" and "options" not in view_class.__dict__)
        return (found if found is not None else declared(view, method)), handles
    return declared(view, method), True


def request_view(request: HttpRequest) -> RequestView:
    """The sans-IO view of a Django request: under ASGI the scope as the server sent it (raw path, every header),
    under WSGI the environ (``request.META``) with the scheme Django computed."""
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict):
        return from_asgi_scope(scope)
    return from_wsgi_environ(request.META, scheme=request.scheme)


def read_body(request: HttpRequest, limit: int, gate: Gate) -> bytes:
    """The body, refused past ``limit`` by its Content-Length before it is read, and by its size when it has none
    (Django's handlers have buffered it already; the view's ``request.body`` answers the same bytes)."""
    length = request.META.get("CONTENT_LENGTH")
    if length and (not str(length).isdigit() or int(length) > limit):
        raise gate.body_too_large()
    body = request.body
    if len(body) > limit:
        raise gate.body_too_large()
    return body


def send(reply: Reply) -> HttpResponse:
    """A gate reply as a Django response."""
    response = HttpResponse(reply.body, status=reply.status)
    for name, value in reply.headers:
        response[name] = value
    return response
