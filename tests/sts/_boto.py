"""A real boto3 ``sts`` client whose requests reach the in-process token service (no tests here): botocore builds,
signs (at the test clock, ``freeze_botocore``) and parses as against AWS; only the sending is replaced, by httpx's
ASGI transport, so no server, port or wall clock is involved."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.config
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from ._support import BASE, Client

__all__ = ["boto_sts"]


class _Body:
    """The raw body botocore reads an answer from (``AWSResponse.content`` joins ``stream()``)."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._content


def boto_sts(client: Client, key: tuple[str, ...] | None) -> Any:
    """``boto3.client("sts")`` for the token service of ``client`` (its root, as an AWS profile names it), signing
    with ``key`` (id, secret[, session token]); None for an unsigned client. One attempt per call: no retries."""
    credentials: dict[str, Any] = {}
    if key is not None:
        credentials = {"aws_access_key_id": key[0], "aws_secret_access_key": key[1],
                       "aws_session_token": key[2] if len(key) > 2 else None}
    config = botocore.config.Config(retries={"total_max_attempts": 1},
                                    signature_version=None if key is not None else botocore.UNSIGNED)
    sts = boto3.client("sts", endpoint_url=f"{BASE}{client.prefix}/", region_name="local", config=config,
                       **credentials)

    def send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        parts = urlsplit(request.url)
        path = parts.path[len(client.prefix):] + (f"?{parts.query}" if parts.query else "")
        body = request.body.encode() if isinstance(request.body, str) else request.body
        response = client.request(request.method, path, content=body, headers=dict(request.headers.items()))
        return AWSResponse(request.url, response.status_code, dict(response.headers), _Body(response.content))

    sts.meta.events.register("before-send.sts", send)
    return sts
