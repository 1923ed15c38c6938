"""install(): put IAM in front of a FastAPI app: the middleware, the JSON error answers, and the OpenAPI schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from iam_middleware import IAM, PUBLIC, IAMError, IAMMiddleware, Permission, Rule, RuleTable
from iam_middleware.asgi import request_view
from iam_middleware.asgi_routing import all_routes, requirement_of, routes_of
from iam_middleware.gate import Gate
from iam_middleware.routing import Requirement
from iam_middleware.sts import TokenService

from ._authorize import refused_context

__all__ = ["install", "security_schemes"]

#: Any one of the three credentials satisfies an operation (OpenAPI: alternatives are separate list items).
_ANY_CREDENTIAL: list[dict[str, list[str]]] = [{"bearer": []}, {"sigv4": []}, {"session": []}]


def install(app: FastAPI, iam: IAM, *, middleware: bool = True, public_docs: bool = False, explain: bool = False,
            token_service: str | None = None, **middleware_options: Any) -> None:
    """Protect ``app`` with ``iam``.

    With ``middleware`` (the default) every request goes through ``IAMMiddleware`` (resolving routes with the app's
    own router; ``middleware_options`` are its keyword arguments: ``rules``, ``undeclared``, ``cors_preflight``,
    ``max_body_bytes``), so undeclared routes are denied, FastAPI's own documentation pages included unless
    ``public_docs`` declares them public. With ``middleware=False`` only routes depending on ``Authorize`` are
    checked, by the dependency itself. Either way ``IAMError`` is answered in the middleware's JSON form, and the
    OpenAPI schema gains the security schemes and each operation's ``x-iam-action``. ``token_service`` mounts
    the token service (login, temporary credentials) at that path, public to the middleware since each call checks
    its own ``sts:*`` permission.
    """
    app.state.iam = iam
    gate = Gate(iam, explain=explain, cors_preflight=middleware_options.get("cors_preflight", False),
                max_body_bytes=middleware_options.get("max_body_bytes", 10 * 1024 * 1024),
                on_error=middleware_options.get("on_error"))
    app.state.iam_gate = gate
    if token_service is not None:
        app.mount(token_service, TokenService(iam))
    rules = middleware_options.pop("rules", None) or iam.rules  # given here, or the directory file's [[routes]]
    if public_docs:
        docs = (app.openapi_url, app.docs_url, app.redoc_url, app.docs_url and app.swagger_ui_oauth2_redirect_url)
        rules = RuleTable([*rules.rules, *(Rule("GET", path, PUBLIC) for path in docs if path)])
    if middleware:
        app.add_middleware(IAMMiddleware, iam=iam, routes_from=app, rules=rules, explain=explain,
                           **middleware_options)
    app.add_exception_handler(IAMError, _error_handler(gate))
    _extend_openapi(app, iam, rules)


def _error_handler(gate: Gate) -> Callable[[Request, Exception], Response]:
    def handle(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, IAMError):  # pragma: no cover - registered for IAMError only
            raise exc
        state = request.scope.get("state", {})
        context = refused_context(state, exc)
        if context is None:  # raised by the endpoint itself: rendered as the gate renders any refusal
            context = gate.refuse(gate.begin(request_view(request.scope)), exc)
            context.request_id = state.get("request_id") or context.request_id
        status, headers, payload = gate.render(context)
        response = Response(payload, status_code=status)
        response.raw_headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        return response

    return handle


def security_schemes(iam: IAM) -> dict[str, dict[str, Any]]:
    """The OpenAPI ``securitySchemes``: a bearer token, a SigV4 ``Authorization`` header, or the session cookie."""
    settings = iam.settings
    return {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A session token from a password + one-time-code login, or a JWT of a trusted identity "
                           "provider (mapped to a role).",
        },
        "sigv4": {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": f"AWS Signature Version 4 with an access key: service {settings.service!r}, region "
                           f"{settings.regions[0]!r} (botocore SigV4Auth, curl --aws-sigv4).",
            "x-amazon-apigateway-authtype": "awsSigv4",
        },
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.cookie_name,
            "description": "The session cookie set at login; unsafe methods must come from an allowed origin.",
        },
    }


def _extend_openapi(app: FastAPI, iam: IAM, rules: RuleTable) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(security_schemes(iam))
        paths = schema.get("paths", {})
        for _, route in all_routes(routes_of(app) or []):
            # APIRoutes, and the routes of included routers (FastAPI resolves those lazily, APIRoute-like).
            path = getattr(route, "path_format", None)
            if not getattr(route, "include_in_schema", False) or path not in paths:
                continue
            for method in getattr(route, "methods", None) or ():
                operation = paths[path].get(method.lower())
                if operation is not None:
                    _annotate(operation, _requirement(route, method, rules))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _requirement(route: BaseRoute, method: str, rules: RuleTable) -> Requirement | None:
    found = requirement_of(route, method)
    if found is not None:
        return found
    rule = rules.for_template(method, getattr(route, "path", ""))
    return rule.requirement if rule is not None else None


def _annotate(operation: dict[str, Any], requirement: Requirement | None) -> None:
    if requirement is PUBLIC:
        operation["security"] = []
    elif isinstance(requirement, Permission):
        operation["x-iam-action"] = requirement.action
        operation["x-iam-resource"] = requirement.resource
        if requirement.context:
            operation["x-iam-context"] = dict(requirement.context)
        operation["security"] = list(_ANY_CREDENTIAL)
