"""``TemporaryCredentials``: a credentials provider over one token-service operation (GetSessionToken, AssumeRole,
AssumeRoleWithWebIdentity), cached and renewed before expiry by one caller at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from ._answers import credentials_from
from ._credentials import Credentials
from ._refresh import Refresher

if TYPE_CHECKING:
    from ._service import TokenServiceClient

__all__ = ["TemporaryCredentials"]


class TemporaryCredentials:
    """Temporary credentials from ``operation``; made by ``TokenServiceClient.get_session_token``,
    ``assume_role`` and ``assume_role_with_web_identity``.

    They are renewed once fewer than ``margin`` seconds are left: by one caller, while the others keep signing with
    the current ones; a caller that has nothing valid to sign with waits for that renewal instead of starting
    another. ``body`` builds the request body at each renewal (a fresh one-time code or outside token).
    """

    def __init__(self, service: TokenServiceClient, operation: str, body: Callable[[], dict[str, Any]], *,
                 auth: httpx.Auth | None, margin: float) -> None:
        self._service = service
        self._operation = operation
        self._body = body
        self._auth = auth
        self._cache: Refresher[Credentials] = Refresher(
            self._fetch, self._afetch, _expires_at, margin=margin, clock=service.clock,
            what=f"the credentials from {operation}")

    def __repr__(self) -> str:
        return f"TemporaryCredentials({self._operation}, {self._service!r}, margin={self._cache.margin:g})"

    def credentials(self) -> Credentials:
        """The current credentials, renewed first when needed."""
        return self._cache.get()

    async def acredentials(self) -> Credentials:
        """``credentials`` for async callers."""
        return await self._cache.aget()

    def invalidate(self, credentials: Credentials) -> None:
        """Renew at the next call if ``credentials`` are still the current ones (a server found them expired)."""
        self._cache.invalidate(lambda current: current is credentials)

    def _fetch(self) -> Credentials:
        return credentials_from(self._service.post(self._operation, self._body(), auth=self._auth))

    async def _afetch(self) -> Credentials:
        return credentials_from(await self._service.apost(self._operation, self._body(), auth=self._auth))


def _expires_at(credentials: Credentials) -> float | None:
    return credentials.expires_at
