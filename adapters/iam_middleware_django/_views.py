"""View-level protection and the token service for Django, over the same gate as the middleware."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from iam_middleware import IAM, IAMError, Permission, public
from iam_middleware.gate import Target
from iam_middleware.sts import (
    JWKS_PATH,
    OPERATIONS,
    handle,
    handle_query,
    jwks_reply,
    not_routed,
    query_refused,
    refused,
)

from ._middleware import gate_for, read_body, request_view, send

__all__ = ["permission_required", "token_service_urls"]

F = TypeVar("F", bound=Callable[..., Any])


def permission_required(action: str, resource: str = "*", *, context: Mapping[str, str] | None = None,
                        iam: IAM | None = None) -> Callable[[F], F]:
    """Require ``action`` on ``resource`` for a function view, with or without the middleware: behind it, the
    middleware already decided this very permission; without it, the gate decides here. ``{name}`` placeholders
    come from the URL's keyword arguments, as ``@permission``'s do."""
    wanted = Permission(action, resource, context or {})

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            decision = getattr(request, "iam_decision", None)
            if decision is None or decision.action != wanted.action:
                gate = gate_for(iam)
                checked = gate.decide(gate.begin(request_view(request)), Target(wanted, kwargs, "", True))
                if checked.error is not None:
                    return send(gate.render(checked))
                request.iam_principal = checked.principal  # type: ignore[attr-defined]
                request.iam_decision = checked.decision  # type: ignore[attr-defined]
                request.user = checked.principal  # type: ignore[assignment]
            return view(request, *args, **kwargs)

        wrapper.__iam_permission__ = wanted  # type: ignore[attr-defined]  # the middleware's audit sees it
        return wrapper  # type: ignore[return-value]

    return decorate


def token_service_urls(iam: IAM | None = None, *, max_body_bytes: int = 64 * 1024) -> list[URLPattern]:
    """The token service's URL patterns: ``path("sts/", include(token_service_urls()))``, AWS's Query API at its
    root. Each is public to the middleware (every call checks its own ``sts:*`` permission) and exempt from Django's
    CSRF middleware: the JSON calls take JSON only, which no page can send cross-site without a CORS preflight, and
    the Query API takes a SigV4 signature (or an outside token) only, never the session cookie."""
    patterns = []
    for route, operation in OPERATIONS.items():
        patterns.append(path(route.lstrip("/"), _view(iam, operation, max_body_bytes), name=f"iam-sts-{route[1:]}"))
    patterns.append(path(JWKS_PATH.lstrip("/"), _jwks_view(iam), name="iam-sts-jwks"))
    patterns.append(path("", _query_view(iam, max_body_bytes), name="iam-sts-query"))
    # Any other path below the service is the service's 404, as under ASGI and Flask.
    patterns.append(path("<path:rest>", _no_such_operation(iam), name="iam-sts-unknown"))
    return patterns


def _no_such_operation(iam: IAM | None) -> Callable[..., Any]:
    @csrf_exempt
    @public
    def view(request: HttpRequest, rest: str = "") -> HttpResponse:
        gate = gate_for(iam)
        return send(not_routed(gate, gate.begin(request_view(request)), method_allowed=True))

    return view


def _view(iam: IAM | None, operation: Callable[..., Any], max_body_bytes: int) -> Callable[[HttpRequest], Any]:
    @csrf_exempt
    @public
    def view(request: HttpRequest) -> HttpResponse:
        gate = gate_for(iam)
        context = gate.begin(request_view(request))
        if request.method != "POST":
            return send(not_routed(gate, context, method_allowed=False))
        try:
            body = read_body(request, max_body_bytes, gate)
        except IAMError as error:
            return send(refused(gate, context, error))
        return send(handle(gate, context, operation, body, request.META.get("CONTENT_TYPE")))

    view.__name__ = operation.__name__
    return view


def _jwks_view(iam: IAM | None) -> Callable[[HttpRequest], Any]:
    @csrf_exempt
    @public
    def jwks(request: HttpRequest) -> HttpResponse:
        gate = gate_for(iam)
        return send(jwks_reply(gate, gate.begin(request_view(request))))

    return jwks


def _query_view(iam: IAM | None, max_body_bytes: int) -> Callable[[HttpRequest], Any]:
    @csrf_exempt
    @public
    def query(request: HttpRequest) -> HttpResponse:
        gate = gate_for(iam)
        context = gate.begin(request_view(request))
        try:
            body = read_body(request, max_body_bytes, gate)
        except IAMError as error:
            return send(query_refused(gate, context, error))
        return send(handle_query(gate, context, body, request.META.get("CONTENT_TYPE")))

    return query
