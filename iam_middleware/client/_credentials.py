"""What a client signs with: an access key (with its session token when temporary), and the providers that hand
one out when a request is about to be signed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

__all__ = ["Credentials", "CredentialsProvider", "StaticCredentials"]


@dataclass(frozen=True, slots=True, eq=False)
class Credentials:
    """An access key id and its secret; temporary credentials add their session token and expiry (epoch seconds).

    ``eq=False``: compared by identity, so nothing compares secrets with a short-circuiting ``==``. The repr masks
    the secret and the token.
    """

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    expires_at: float | None = None

    def __post_init__(self) -> None:
        if not self.access_key_id or not self.secret_access_key:
            raise ValueError("an access key id and its secret are both needed")

    def __repr__(self) -> str:
        token = None if self.session_token is None else "********"
        expires = None if self.expires_at is None else datetime.fromtimestamp(self.expires_at, UTC).isoformat()
        return (f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key='********', "
                f"session_token={token!r}, expires_at={expires!r})")


@runtime_checkable
class CredentialsProvider(Protocol):
    """Hands out the credentials to sign the next request with: the sync client calls ``credentials``, the async
    client ``acredentials``. ``invalidate`` drops credentials the server called expired, so the next call gets new
    ones (a provider that cannot renew them ignores it)."""

    def credentials(self) -> Credentials: ...

    async def acredentials(self) -> Credentials: ...

    def invalidate(self, credentials: Credentials) -> None: ...


class StaticCredentials:
    """A provider of one fixed set of credentials (a long-term access key)."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def __repr__(self) -> str:
        return f"StaticCredentials({self._credentials!r})"

    def credentials(self) -> Credentials:
        return self._credentials

    async def acredentials(self) -> Credentials:
        return self._credentials

    def invalidate(self, credentials: Credentials) -> None:
        """Nothing to renew: fixed credentials stay as they are."""
