"""The token service's own refusals: one class per answer, shared by the operations, the session-tag rules and the
Query API's translation (``_operations``, ``_tags``, ``_query``)."""

from __future__ import annotations

from .._exceptions import AccessDeniedError, BadRequestError, MalformedJSONError, UnsupportedMediaTypeError

__all__ = [
    "CredentialKindError",
    "InvalidParameterError",
    "MalformedJSONError",
    "MalformedPolicyDocumentError",
    "MissingParameterError",
    "NoMFADeviceError",
    "NotASessionError",
    "PackedPolicyTooLargeError",
    "UnsupportedMediaTypeError",
]


class MissingParameterError(BadRequestError):
    """A required field of the JSON body is absent."""

    code = "MissingParameter"


class InvalidParameterError(BadRequestError):
    """A field of the JSON body is unknown, of the wrong type, or out of range."""

    code = "ValidationError"


class MalformedPolicyDocumentError(BadRequestError):
    """The session policy given to AssumeRole is not a valid session policy."""

    code = "MalformedPolicyDocument"


class PackedPolicyTooLargeError(BadRequestError):
    """The session policy and session tags together pack past the limit (AWS's ``PackedPolicyTooLarge``)."""

    code = "PackedPolicyTooLarge"


class NotASessionError(BadRequestError):
    """Logout was called with a credential that is not a login session."""

    code = "NotASession"


class CredentialKindError(AccessDeniedError):
    """The operation cannot be called with this kind of credential (GetSessionToken needs a long-term key)."""

    code = "InvalidCredentialKind"


class NoMFADeviceError(AccessDeniedError):
    """A one-time code was given (GetSessionToken, AssumeRole with ``TokenCode``) and the caller has no TOTP
    device."""

    code = "NoMFADevice"
