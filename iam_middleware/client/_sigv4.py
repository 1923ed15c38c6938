"""``SigV4Auth``: an ``httpx.Auth`` that signs each request with AWS Signature Version 4 in the header form.

The signature travels in a header, before the body, so the body's SHA-256 must be known first (docs/client.md,
"Bodies"): a body in memory is hashed as it is; a stream is read into memory and hashed, unless the request
declares its own ``X-Amz-Content-SHA256``, or ``unsigned_payload=True`` and the URL is HTTPS, where it streams with
``UNSIGNED-PAYLOAD`` (the project's verifier takes that only over HTTPS and only with ``allow_unsigned_payload``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncGenerator, Callable, Generator

import httpx

from ..authenticators._sigv4_canonical import UNSIGNED_PAYLOAD
from ._body import body_in_memory
from ._credentials import Credentials, CredentialsProvider, StaticCredentials
from ._sign import sign

__all__ = ["SigV4Auth"]


class SigV4Auth(httpx.Auth):
    """Signs requests for ``service`` in ``region`` with ``credentials`` (fixed, or a provider asked before each
    request, such as ``TokenServiceClient.assume_role(...)``); works with ``httpx.Client`` and ``httpx.AsyncClient``.

    A 401 ``ExpiredToken`` answer (the server's clock is ahead of ours) makes the provider renew the credentials
    and the request is signed and sent once more, when its body can be sent again.
    """

    def __init__(self, credentials: Credentials | CredentialsProvider, *, service: str, region: str,
                 unsigned_payload: bool = False, clock: Callable[[], float] = time.time) -> None:
        if not service or "/" in service or not region or "/" in region:
            raise ValueError("service and region must be non-empty names without '/'")
        self._provider = StaticCredentials(credentials) if isinstance(credentials, Credentials) else credentials
        self.service = service
        self.region = region
        self.unsigned_payload = unsigned_payload
        self._clock = clock

    def __repr__(self) -> str:
        return (f"SigV4Auth({self._provider!r}, service={self.service!r}, region={self.region!r}, "
                f"unsigned_payload={self.unsigned_payload!r})")

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        payload_hash = self._payload_hash(request)
        if payload_hash is None:
            payload_hash = hashlib.sha256(request.read()).hexdigest()
        credentials = self._provider.credentials()
        self._sign(request, credentials, payload_hash)
        response = yield request
        if response.status_code != 401:
            return
        response.read()
        if not _expired_token(response):
            return
        self._provider.invalidate(credentials)
        if body_in_memory(request) is None:
            return  # a stream is gone once sent; the next request signs with the new credentials
        fresh = self._provider.credentials()
        if fresh is not credentials:
            self._sign(request, fresh, payload_hash)
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        payload_hash = self._payload_hash(request)
        if payload_hash is None:
            payload_hash = hashlib.sha256(await request.aread()).hexdigest()
        credentials = await self._provider.acredentials()
        self._sign(request, credentials, payload_hash)
        response = yield request
        if response.status_code != 401:
            return
        await response.aread()
        if not _expired_token(response):
            return
        self._provider.invalidate(credentials)
        if body_in_memory(request) is None:
            return  # a stream is gone once sent; the next request signs with the new credentials
        fresh = await self._provider.acredentials()
        if fresh is not credentials:
            self._sign(request, fresh, payload_hash)
            yield request

    def _payload_hash(self, request: httpx.Request) -> str | None:
        """The payload hash to sign without reading a stream, or ``None`` when the stream must be read first."""
        declared: str | None = request.headers.get("x-amz-content-sha256")
        if declared is not None:
            return declared  # the caller vouches for it; botocore signs a declared hash as it is, too
        body = body_in_memory(request)
        if body is not None:
            return hashlib.sha256(body).hexdigest()
        if self.unsigned_payload and request.url.scheme == "https":
            request.headers["X-Amz-Content-SHA256"] = UNSIGNED_PAYLOAD
            return UNSIGNED_PAYLOAD
        return None

    def _sign(self, request: httpx.Request, credentials: Credentials, payload_hash: str) -> None:
        sign(request, credentials, service=self.service, region=self.region, now=self._clock(),
             payload_hash=payload_hash)


def _expired_token(response: httpx.Response) -> bool:
    try:
        answer = response.json()
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("error") == "ExpiredToken"
