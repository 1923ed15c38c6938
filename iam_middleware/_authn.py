"""Authenticators: the ordered chain that turns a request into a Principal.

Each authenticator recognises one kind of credential. ``authenticate`` returns None when the request carries no
credential of its kind (the next one is asked), the Principal when it proves one, and raises an
``AuthenticationError`` (401) when one is present but bad: a bad credential never falls through to another kind.
The built-ins are SigV4 access keys, bearer tokens (this service's session tokens and outside providers' JWTs) and
the session cookie. A custom authenticator (an API key, mTLS, token introspection) goes before them
(``iam.authenticators.insert(0, mine)``): the bearer authenticator refuses an ``Authorization`` scheme it does not
know, so nothing after it sees one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ._exceptions import AuthenticationError, InvalidTokenError
from ._principal import Principal
from ._request import RequestView

if TYPE_CHECKING:
    from ._iam import IAM
    from .authenticators._sigv4 import SigV4Verifier

__all__ = ["Authenticator", "BearerAuthenticator", "CookieAuthenticator", "SigV4Authenticator"]

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


@runtime_checkable
class Authenticator(Protocol):
    """One kind of credential: None when absent, the Principal when proven, AuthenticationError when bad."""

    def authenticate(self, request: RequestView, *, now: float) -> Principal | None: ...


class _BuiltIn:
    """A built-in authenticator: it asks the IAM it belongs to, and shows nothing of it in its repr."""

    def __init__(self, iam: IAM) -> None:
        self.iam = iam

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SigV4Authenticator(_BuiltIn):
    """``Authorization: AWS4-HMAC-SHA256 …`` or a presigned query: a user's access key or temporary credentials.
    ``verifier`` replaces the facade's (``iam.sigv4``): the token service's Query API verifies the ``sts`` signing
    name with the same keys."""

    def __init__(self, iam: IAM, verifier: SigV4Verifier | None = None) -> None:
        super().__init__(iam)
        self.verifier = verifier

    def authenticate(self, request: RequestView, *, now: float) -> Principal | None:
        iam = self.iam
        verifier = iam.sigv4 if self.verifier is None else self.verifier
        if not verifier.recognizes(request):
            return None
        verified = verifier.verify(request, now=now)
        if iam.settings.sigv4_replay_protection and request.method not in _IDEMPOTENT:
            iam._refuse_replay(verified, now)
        return iam._from_signature(verified, now)


class BearerAuthenticator(_BuiltIn):
    """``Authorization: Bearer <jwt>``: a session token of this service, or a configured provider's JWT."""

    def authenticate(self, request: RequestView, *, now: float) -> Principal | None:
        authorization = request.header_values("authorization")
        if not authorization:
            return None
        scheme, _, token = authorization[0].strip().partition(" ")
        if scheme.lower() != "bearer":
            # The value is not echoed: a credential sent without its scheme would end up in the answer.
            raise AuthenticationError("Unsupported Authorization scheme; use Bearer or AWS4-HMAC-SHA256.",
                                      code="InvalidHeader")
        token = token.strip()
        if not token or " " in token:
            raise InvalidTokenError("The bearer token is malformed.", code="InvalidToken",
                                    headers={"WWW-Authenticate": 'Bearer error="invalid_request"'})
        return self.iam.from_token(token, now=now, request=request)


class CookieAuthenticator(_BuiltIn):
    """The session cookie set at login; unsafe methods must come from an allowed origin (CSRF)."""

    def authenticate(self, request: RequestView, *, now: float) -> Principal | None:
        iam = self.iam
        token = iam.sessions.token_from_cookie(request)
        if token is None:
            return None
        iam.csrf.check(request)
        return iam._from_session(token, now)
