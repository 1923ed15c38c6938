"""Bearer tokens for outbound calls: ``BearerAuth`` attaches a token and renews it; ``LoginSession`` and
``SuppliedToken`` are the token providers it renews from."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import httpx

from ._body import body_in_memory
from ._errors import TokenServiceError
from ._refresh import Refresher

if TYPE_CHECKING:
    from ._service import TokenServiceClient

__all__ = ["BearerAuth", "LoginSession", "SuppliedToken", "TokenProvider"]

# RFC 6750 section 3: the challenge of a refused bearer token names error="invalid_token".
_INVALID_TOKEN = re.compile(r'\bbearer\b.*\berror\s*=\s*"?invalid_token\b', re.IGNORECASE | re.ASCII)


@runtime_checkable
class TokenProvider(Protocol):
    """Hands out the bearer token for the next request (``token`` for the sync client, ``atoken`` for the async
    one); ``invalidate`` drops a token a server refused, so the next call gets a new one."""

    def token(self) -> str: ...

    async def atoken(self) -> str: ...

    def invalidate(self, token: str) -> None: ...


class _Token(NamedTuple):
    value: str
    expires_at: float | None


class _RenewedToken:
    """A ``TokenProvider`` over a ``Refresher`` of tokens (the renewal rules are the refresher's)."""

    _cache: Refresher[_Token]

    def token(self) -> str:
        """The current token, renewed first when needed."""
        return self._cache.get().value

    async def atoken(self) -> str:
        """``token`` for async callers."""
        return (await self._cache.aget()).value

    def invalidate(self, token: str) -> None:
        """Renew at the next call if ``token`` is still the current one."""
        self._cache.invalidate(lambda current: current.value == token)


class SuppliedToken(_RenewedToken):
    """Tokens from ``supplier`` (an outside identity provider's, or your own), kept until ``margin`` seconds before
    the ``exp`` they carry (read without verifying: it only schedules the renewal; a token without one is kept
    until a server refuses it). The supplier is called from the calling thread, sync or async: keep it quick."""

    def __init__(self, supplier: Callable[[], str], *, margin: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._supplier = supplier
        self._cache = Refresher(self._fetch, self._afetch, _expires_at, margin=margin, clock=clock,
                                what="the supplied bearer token")

    def __repr__(self) -> str:
        return f"SuppliedToken({getattr(self._supplier, '__qualname__', type(self._supplier).__name__)})"

    def _fetch(self) -> _Token:
        token = self._supplier()
        return _Token(token, _jwt_expiry(token))

    async def _afetch(self) -> _Token:
        return self._fetch()


class LoginSession(_RenewedToken):
    """A session token of the token service's ``login`` (password and one-time code), renewed ``margin`` seconds
    before it ends; made by ``TokenServiceClient.login``."""

    def __init__(self, service: TokenServiceClient, username: str, *, password: Callable[[], str],
                 code: Callable[[], str], margin: float) -> None:
        self._service = service
        self.username = username
        self._password = password
        self._code = code
        self._cache = Refresher(self._fetch, self._afetch, _expires_at, margin=margin, clock=service.clock,
                                what=f"the session of {username}")

    def __repr__(self) -> str:
        return f"LoginSession({self.username!r}, {self._service!r})"

    def _body(self) -> dict[str, Any]:
        return {"username": self.username, "password": self._password(), "code": self._code()}

    def _fetch(self) -> _Token:
        return _session(self._service.post("login", self._body()))

    async def _afetch(self) -> _Token:
        return _session(await self._service.apost("login", self._body()))


class BearerAuth(httpx.Auth):
    """Sends ``Authorization: Bearer <token>`` from a ``TokenProvider`` (or a plain supplier function, wrapped in
    ``SuppliedToken``). A 401 whose challenge says ``invalid_token`` drops that token, and the request goes once
    more with a new one, when its body can be sent again and the new token differs."""

    def __init__(self, token: TokenProvider | Callable[[], str]) -> None:
        self._source: TokenProvider = token if isinstance(token, TokenProvider) else SuppliedToken(token)

    def __repr__(self) -> str:
        return f"BearerAuth({self._source!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._source.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if not _refused(response):
            return
        self._source.invalidate(token)
        if body_in_memory(request) is None:
            return  # a stream is gone once sent; the next request gets the new token
        fresh = self._source.token()
        if fresh != token:
            request.headers["Authorization"] = f"Bearer {fresh}"
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._source.atoken()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if not _refused(response):
            return
        self._source.invalidate(token)
        if body_in_memory(request) is None:
            return  # a stream is gone once sent; the next request gets the new token
        fresh = await self._source.atoken()
        if fresh != token:
            request.headers["Authorization"] = f"Bearer {fresh}"
            yield request


def _refused(response: httpx.Response) -> bool:
    """A 401 for the token itself (not, say, a missing permission)."""
    return response.status_code == 401 and any(
        _INVALID_TOKEN.search(value) for value in response.headers.get_list("www-authenticate"))


def _session(answer: dict[str, Any]) -> _Token:
    token, expires_at = answer.get("token"), answer.get("expires_at")
    if not isinstance(token, str) or not isinstance(expires_at, int | float) or isinstance(expires_at, bool):
        raise TokenServiceError(200, "InvalidResponse", "The token service's login answer holds no session token.")
    return _Token(token, float(expires_at))


def _expires_at(token: _Token) -> float | None:
    return token.expires_at


def _jwt_expiry(token: str) -> float | None:
    """The numeric ``exp`` claim of a JWT, unverified; ``None`` for anything else."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    expiry = claims.get("exp") if isinstance(claims, dict) else None
    return float(expiry) if isinstance(expiry, int | float) and not isinstance(expiry, bool) else None
