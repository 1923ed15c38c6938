"""The token service as a Flask blueprint: password + one-time-code login and temporary credentials in-process.

The same calls, answers and refusals as the ASGI token service (``iam_middleware.sts``), AWS's Query API at its
root included; the blueprint only reads the body (bounded by the gate's limit) and sends the reply. Its views are
public to ``IAMFlask``: each call authenticates and authorizes its own ``sts:*`` action.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from iam_middleware import IAM, public
from iam_middleware.gate import Gate, Reply
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

from ._extension import read_body, request_view

__all__ = ["token_service_blueprint"]


def token_service_blueprint(iam: IAM, *, name: str = "iam_token_service", max_body_bytes: int = 64 * 1024
                            ) -> Blueprint:
    """A blueprint with the token service's endpoints (``POST /login``, ``/logout``, ``/GetSessionToken``,
    ``/AssumeRole``, ``/AssumeRoleWithWebIdentity``, ``/GetCallerIdentity``, ``/revoke``, AWS's Query API at
    ``/``, and ``GET /.well-known/jwks.json``): ``app.register_blueprint(bp, url_prefix="/sts")``."""
    gate = Gate(iam, max_body_bytes=max_body_bytes)
    blueprint = Blueprint(name, __name__)
    # Every method reaches the views, so a wrong one is the service's 405 (and any other path its 404), as under
    # ASGI and Django, rather than an unknown route.
    for path, operation in OPERATIONS.items():
        blueprint.add_url_rule(path, endpoint=path.strip("/"), view_func=public(_view(gate, operation)),
                               methods=_METHODS)
    blueprint.add_url_rule(JWKS_PATH, endpoint="jwks", view_func=public(_jwks_view(gate)), methods=_METHODS)
    blueprint.add_url_rule("/<path:rest>", endpoint="unknown", view_func=public(_no_such_operation(gate)),
                           methods=_METHODS)
    blueprint.add_url_rule("/", endpoint="query", view_func=public(_query_view(gate)), methods=_METHODS)
    return blueprint


_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _no_such_operation(gate: Gate) -> Callable[..., Response]:
    def view(rest: str = "") -> Response:
        return _response(not_routed(gate, gate.begin(request_view()), method_allowed=True))

    return view


def _view(gate: Gate, operation: Callable[..., object]) -> Callable[[], Response]:
    def view() -> Response:
        context = gate.begin(request_view())
        if request.method != "POST":
            return _response(not_routed(gate, context, method_allowed=False))
        try:
            raw = read_body(gate.max_body_bytes) if context.error is None else b""
        except RequestEntityTooLarge:
            return _response(refused(gate, context, gate.body_too_large()))
        return _response(handle(gate, context, operation, raw, request.headers.get("Content-Type")))  # type: ignore[arg-type]

    view.__name__ = operation.__name__
    return view


def _jwks_view(gate: Gate) -> Callable[[], Response]:
    def jwks() -> Response:
        return _response(jwks_reply(gate, gate.begin(request_view())))

    return jwks


def _query_view(gate: Gate) -> Callable[[], Response]:
    def query() -> Response:
        context = gate.begin(request_view())
        try:
            raw = read_body(gate.max_body_bytes) if context.error is None else b""
        except RequestEntityTooLarge:
            return _response(query_refused(gate, context, gate.body_too_large()))
        return _response(handle_query(gate, context, raw, request.headers.get("Content-Type")))

    return query


def _response(reply: Reply) -> Response:
    return Response(reply.body, status=reply.status, headers=reply.headers)
