"""The exception tree. Every error a request can trigger renders itself as an HTTP answer.

    IAMError                          status_code, code, message, headers
    ├── BadRequestError               400  malformed request (ambiguous path, broken header grammar)
    │   └── BodyTooLargeError         413  a body past the limit a shell reads to verify a signed payload
    ├── AuthenticationError           401  no credential, or a credential that did not verify
    │   ├── MissingCredentialError         no credential where one is required
    │   ├── InvalidTokenError              bearer token (JWT or session) rejected
    │   ├── SignatureError                 SigV4 request rejected
    │   └── OTPError                       password + TOTP login rejected
    │       └── LockedOutError             too many failures; carries retry_after
    ├── AccessDeniedError             403  authenticated, but the policies do not allow it
    └── ServiceUnavailableError       503  shared state unreachable; carries retry_after

    PolicyValidationError (ValueError)     a policy document was rejected at load; carries every issue
    ConfigurationError (ValueError)        the directory or middleware configuration is invalid

Messages never contain secrets: the class formats its own message from non-secret data only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .policy._decision import Decision
    from .policy._issues import PolicyIssue

__all__ = [
    "AccessDeniedError",
    "AuthenticationError",
    "BadRequestError",
    "BodyTooLargeError",
    "ConfigurationError",
    "IAMError",
    "InvalidTokenError",
    "LockedOutError",
    "MalformedJSONError",
    "MethodNotAllowedError",
    "MissingCredentialError",
    "NotFoundError",
    "OTPError",
    "PolicyValidationError",
    "ServiceUnavailableError",
    "SignatureError",
    "UnsupportedMediaTypeError",
]


class IAMError(Exception):
    """Base of every error a request can trigger; renders as an HTTP status, a stable code and a message."""

    status_code: int = 500
    code: str = "InternalFailure"

    def __init__(self, message: str, *, code: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers: dict[str, str] = dict(headers or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class BadRequestError(IAMError):
    """The request is malformed or ambiguous and is refused before any credential or rule is looked at."""

    status_code = 400
    code = "BadRequest"


class BodyTooLargeError(BadRequestError):
    """The request body is larger than the shell reads (its ``max_body_bytes``): one status and code everywhere."""

    status_code = 413
    code = "EntityTooLarge"


class NotFoundError(IAMError):
    """A path below an endpoint's own app that none of its operations answers (the token service, AuthZEN)."""

    status_code = 404
    code = "NotFound"


class MethodNotAllowedError(IAMError):
    """An operation called with a method it does not answer (``Allow`` names the ones it does)."""

    status_code = 405
    code = "MethodNotAllowed"


class MalformedJSONError(BadRequestError):
    """A JSON body is not one strict JSON object (syntax, duplicate member names, NaN, nesting, another type)."""

    code = "MalformedJSON"


class UnsupportedMediaTypeError(BadRequestError):
    """A body was sent with a media type the endpoint does not take (JSON endpoints: ``application/json``, which a
    browser cannot send cross-site without a CORS preflight)."""

    status_code = 415
    code = "UnsupportedMediaType"


class AuthenticationError(IAMError):
    """No credential was given where one is needed, or the credential given did not verify."""

    status_code = 401
    code = "InvalidCredential"
    #: The authentication scheme to name in ``WWW-Authenticate`` (``Bearer``, ``AWS4-HMAC-SHA256``, ``Session``).
    scheme: str = "Bearer"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        scheme: str | None = None,
    ) -> None:
        super().__init__(message, code=code, headers=headers)
        if scheme is not None:
            self.scheme = scheme


class MissingCredentialError(AuthenticationError):
    """The route is protected and the request carries no credential at all."""

    code = "MissingAuthenticationToken"


class InvalidTokenError(AuthenticationError):
    """A bearer token (an outside JWT or a session token) was rejected."""

    code = "InvalidToken"
    scheme = "Bearer"


class SignatureError(AuthenticationError):
    """A SigV4-signed or presigned request was rejected."""

    code = "SignatureDoesNotMatch"
    scheme = "AWS4-HMAC-SHA256"


class OTPError(AuthenticationError):
    """A password + TOTP login was rejected. The message never says which factor failed."""

    code = "InvalidLogin"
    scheme = "Session"


class LockedOutError(OTPError):
    """Too many failed logins for this user; retry after ``retry_after`` seconds."""

    code = "LockedOut"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, int(retry_after + 0.999)))})
        self.retry_after = retry_after


class AccessDeniedError(IAMError):
    """The principal is known, and the policies do not allow the request."""

    status_code = 403
    code = "AccessDenied"

    def __init__(self, message: str, *, decision: Decision | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.decision = decision


class ServiceUnavailableError(IAMError):
    """Shared state (Redis) that a safe decision needs could not be reached; transient."""

    status_code = 503
    code = "ServiceUnavailable"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, int(retry_after + 0.999)))})
        self.retry_after = retry_after


class PolicyValidationError(ValueError):
    """A policy document was rejected. ``issues`` holds every error found, each with its location."""

    def __init__(self, issues: list[PolicyIssue], *, source: str | None = None) -> None:
        self.issues = issues
        self.source = source
        prefix = f"{source}: " if source else ""
        lines = [f"{prefix}{issue}" for issue in issues]
        super().__init__("invalid policy document:\n  " + "\n  ".join(lines) if len(lines) > 1 else lines[0])


class ConfigurationError(ValueError):
    """The directory or middleware configuration is invalid; the message names what and where."""
