"""The token service (STS): an ASGI app for logins, temporary credentials and revocation, each call authorized by
the policy engine as an ``sts:*`` action. Mount it at a path of your choosing::

    app = Starlette(routes=[Mount("/sts", app=token_service(iam))])
"""

from __future__ import annotations

from ._app import TokenService, token_service
from ._operations import (
    CredentialKindError,
    InvalidParameterError,
    MalformedJSONError,
    MalformedPolicyDocumentError,
    MissingParameterError,
    NoMFADeviceError,
    NotASessionError,
    UnsupportedMediaTypeError,
)

__all__ = [
    "CredentialKindError",
    "InvalidParameterError",
    "MalformedJSONError",
    "MalformedPolicyDocumentError",
    "MissingParameterError",
    "NoMFADeviceError",
    "NotASessionError",
    "TokenService",
    "UnsupportedMediaTypeError",
    "token_service",
]
