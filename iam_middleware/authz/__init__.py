"""The external authorizer: nginx ``auth_request`` and Envoy ``ext_authz`` (HTTP service) over the gate.

A gateway asks, for each request, whether it may reach the upstream; the authorizer answers with the same rules
table, authenticators, policies and decision log as the middleware, and hands the principal to the upstream in
response headers (``PRINCIPAL_HEADERS``). Serve it with ``iam-middleware authz --directory iam.toml`` or mount
``Authorizer(iam)`` in an ASGI app; docs/gateways.md has the gateway configurations.
"""

from __future__ import annotations

from ._answers import PRINCIPAL_HEADERS
from ._app import ENVOY_PREFIX, NGINX_PATH, Authorizer
from ._errors import NotAGatewayPathError, PayloadNotForwardedError
from ._forms import BODY_DECLARATION, InvalidSubrequestError

__all__ = [
    "BODY_DECLARATION",
    "ENVOY_PREFIX",
    "NGINX_PATH",
    "PRINCIPAL_HEADERS",
    "Authorizer",
    "InvalidSubrequestError",
    "NotAGatewayPathError",
    "PayloadNotForwardedError",
]
