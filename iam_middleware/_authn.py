"""Authenticators: the ordered chain that turns a request into a Principal.

Each authenticator recognises one kind of credential. ``authenticate`` returns None when the request carries no
credential of its kind (the next one is asked), the Principal when it proves one, and raises an
``AuthenticationError`` (401) when one is present but bad: a bad credential never falls through to another kind.
The built-ins are SigV4 access keys, bearer tokens (this service's session tokens and outside providers' JWTs) and
the session cookie. A custom authenticator (an API key, mTLS, token introspection) goes before them
(``iam.authenticators.insert(0, mine)``): the bearer authenticator refuses an ``Authorization`` scheme it does not
know, so nothing after it sees one. The built-ins ask the credential resolver (``iam.credentials``) to verify.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ._exceptions import AuthenticationError, InvalidTokenError
from ._principal import Principal
from ._request import RequestView

if TYPE_CHECKING:
    from ._credentials import CredentialResolver
    from ._snapshots import SnapshotHandle
    from .authenticators._sigv4 import SigV4Verifier
    from .directory._last_used import LastUsedTracker

__all__ = ["Authenticator", "AuthenticatorChain", "BearerAuthenticator", "CookieAuthenticator", "SigV4Authenticator"]

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
_MAX_AUTHORIZATION = 16 * 1024


@runtime_checkable
class Authenticator(Protocol):
    """One kind of credential: None when absent, the Principal when proven, AuthenticationError when bad."""

    def authenticate(self, request: RequestView, *, now: float) -> Principal | None: ...


class AuthenticatorChain(list[Authenticator]):
    """``iam.authenticators``: the ordered authenticators, a list to insert yours into, and ``authenticate``, which
    runs them. Each authentication first runs the snapshot's refresh hooks (a reload that is due applies)."""

    def __init__(self, authenticators: Iterable[Authenticator], *, snapshots: SnapshotHandle,
                 clock: Callable[[], float]) -> None:
        super().__init__(authenticators)
        self._snapshots = snapshots
        self._clock = clock

    def authenticate(self, request: RequestView, *, now: float | None = None,
                     authenticators: Sequence[Authenticator] | None = None) -> Principal | None:
        """The principal a request proves, or None if it carries no credential. Raises AuthenticationError (401)
        for a credential that is present but bad: a bad credential never falls through to another kind.
        ``authenticators`` replaces the chain for this request (an endpoint that takes fewer kinds)."""
        now = self._clock() if now is None else now
        self._snapshots.refresh(now)
        authorization = request.header_values("authorization")
        if len(authorization) > 1:
            raise AuthenticationError("The request has more than one Authorization header.", code="InvalidHeader")
        if authorization and len(authorization[0]) > _MAX_AUTHORIZATION:
            raise AuthenticationError("The Authorization header is too long.", code="InvalidHeader")
        for authenticator in self if authenticators is None else authenticators:
            principal = authenticator.authenticate(request, now=now)
            if principal is not None:
                return principal
        return None


class _BuiltIn:
    """A built-in authenticator: it asks the credential resolver, and shows nothing of it in its repr."""

    def __init__(self, credentials: CredentialResolver) -> None:
        self.credentials = credentials

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SigV4Authenticator(_BuiltIn):
    """``Authorization: AWS4-HMAC-SHA256 …`` or a presigned query: a user's access key or temporary credentials.
    ``verifier`` replaces the resolver's (``iam.credentials.sigv4``): the token service's Query API verifies the
    ``sts`` signing name with the same keys."""

    def __init__(self, credentials: CredentialResolver, verifier: SigV4Verifier | None = None, *,
                 last_used: LastUsedTracker | None = None) -> None:
        super().__init__(credentials)
        self.verifier = verifier
        #: Records each long-term key's last use (date, region, service), at most once a window per key.
        self.last_used = last_used

    def authenticate(self, request: RequestView, *, now: float) -> Principal | None:
        credentials = self.credentials
        verifier = credentials.sigv4 if self.verifier is None else self.verifier
        if not verifier.recognizes(request):
            return None
        verified = verifier.verify(request, now=now)
        if credentials.replay_protection and request.method not in _IDEMPOTENT:
            credentials.refuse_replay(verified, now)
        principal = credentials.from_signature(verified, now)
        if self.last_used is not None:
            self.last_used.access_key_used(verified.access_key_id, now=now, region=verified.region,
                                           service=verifier.service)
        return principal


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
        return self.credentials.from_token(token, now=now, request=request)


class CookieAuthenticator(_BuiltIn):
    """The session cookie set at login; unsafe methods must come from an allowed origin (CSRF)."""

    def authenticate(self, request: RequestView, *, now: float) -> Principal | None:
        credentials = self.credentials
        token = credentials.sessions.token_from_cookie(request)
        if token is None:
            return None
        credentials.csrf.check(request)
        return credentials.from_session(token, now)
