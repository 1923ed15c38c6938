"""The token service (STS): logins, temporary credentials and revocation, each call authorized by the policy
engine as an ``sts:*`` action. As an ASGI app, mount it at a path of your choosing::

    app = Starlette(routes=[Mount("/sts", app=token_service(iam))])

(FastAPI: ``install(app, iam, token_service="/sts")``; Flask: ``app.register_blueprint(token_service_blueprint(iam),
url_prefix="/sts")``.) The ASGI app loads on first use, so the WSGI shells never import Starlette. At the mount's
root, every shell also speaks AWS STS's own Query API (``handle_query``): boto3 and the AWS CLI call it as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import (
    CredentialKindError,
    InvalidParameterError,
    MalformedJSONError,
    MalformedPolicyDocumentError,
    MissingParameterError,
    NoMFADeviceError,
    NotASessionError,
    PackedPolicyTooLargeError,
    UnsupportedMediaTypeError,
)
from ._handle import NOT_FOUND_MESSAGE, MethodNotAllowedError, NoSuchOperationError, handle, not_routed, refused
from ._jwks import JWKS_PATH, jwks_reply
from ._operations import OPERATIONS
from ._query import handle_query, query_refused

if TYPE_CHECKING:
    from ._app import TokenService, token_service

__all__ = [
    "JWKS_PATH",
    "NOT_FOUND_MESSAGE",
    "OPERATIONS",
    "CredentialKindError",
    "InvalidParameterError",
    "MalformedJSONError",
    "MalformedPolicyDocumentError",
    "MethodNotAllowedError",
    "MissingParameterError",
    "NoMFADeviceError",
    "NoSuchOperationError",
    "NotASessionError",
    "PackedPolicyTooLargeError",
    "TokenService",
    "UnsupportedMediaTypeError",
    "handle",
    "handle_query",
    "jwks_reply",
    "not_routed",
    "query_refused",
    "refused",
    "token_service",
]


def __getattr__(name: str) -> Any:
    if name in ("TokenService", "token_service"):
        from . import _app

        return getattr(_app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
