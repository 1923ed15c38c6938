"""Shared helpers for the SigV4 tests (no tests here): sign with real botocore under a frozen clock, and turn
the request botocore would send into the RequestView a server shell would build from the wire."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from iam_middleware._request import RequestView
from iam_middleware.authenticators._sigv4 import SigningCredential, SigV4Verifier

# The AWS documentation's example key pair and the instant the AWS SigV4 test suite signs at.
KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TEMP_KEY_ID = "ASIAEXAMPLETEMP"
TEMP_SECRET = "temporary/secret+KEY0000000000000000000"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//session+token/with=base64=="
FROZEN = datetime.datetime(2015, 8, 30, 12, 36, 0)
NOW = FROZEN.replace(tzinfo=datetime.UTC).timestamp()
SERVICE = "service"
REGION = "us-east-1"
URL = "https://example.amazonaws.com"

CREDENTIAL = SigningCredential(KEY_ID, SECRET)
TEMP_CREDENTIAL = SigningCredential(TEMP_KEY_ID, TEMP_SECRET, session_token=TOKEN, expires_at=NOW + 3600)
DIRECTORY = {KEY_ID: CREDENTIAL, TEMP_KEY_ID: TEMP_CREDENTIAL}


def freeze_botocore(monkeypatch: pytest.MonkeyPatch, when: datetime.datetime = FROZEN) -> None:
    """Make botocore sign at ``when`` (it reads the clock through ``botocore.auth.get_current_datetime``)."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: when)


def verifier(**options: Any) -> SigV4Verifier:
    """A verifier for the test service and region over DIRECTORY; options override the defaults."""
    settings: dict[str, Any] = {"service": SERVICE, "regions": [REGION], "lookup": DIRECTORY.get}
    settings.update(options)
    return SigV4Verifier(**settings)


def wire_view(request: AWSRequest, *, scheme: str | None = None) -> RequestView:
    """The RequestView a server builds from what botocore puts on the wire: raw path and query as sent, Host from
    the URL (as the HTTP client adds it), header names lower-cased, order and repeats kept."""
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    headers = [(name.lower(), value) for name, value in prepared.headers.items()]
    if not any(name == "host" for name, _ in headers):
        headers.insert(0, ("host", parts.netloc.lower()))
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return RequestView(
        method=prepared.method,
        raw_path=parts.path.encode("utf-8") or b"/",
        query_string=parts.query.encode("utf-8"),
        headers=tuple(headers),
        scheme=scheme or parts.scheme,
        body=body,
    )


def botocore_signed(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    key_id: str = KEY_ID,
    secret: str = SECRET,
    token: str | None = None,
    service: str = SERVICE,
    region: str = REGION,
    presign: int | None = None,
    s3: bool = False,
) -> AWSRequest:
    """A request signed by real botocore: SigV4Auth / S3SigV4Auth, or SigV4QueryAuth / S3SigV4QueryAuth to presign."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}), params=dict(params or {}))
    credentials = Credentials(key_id, secret, token)
    signer: botocore.auth.SigV4Auth
    if presign is not None:
        query_auth = botocore.auth.S3SigV4QueryAuth if s3 else botocore.auth.SigV4QueryAuth
        signer = query_auth(credentials, service, region, expires=presign)
    else:
        header_auth = botocore.auth.S3SigV4Auth if s3 else botocore.auth.SigV4Auth
        signer = header_auth(credentials, service, region)
    signer.add_auth(request)
    return request


def signed_view(method: str, url: str, **options: Any) -> RequestView:
    """``wire_view(botocore_signed(...))``; ``scheme`` goes to the view, everything else to botocore."""
    scheme = options.pop("scheme", None)
    return wire_view(botocore_signed(method, url, **options), scheme=scheme)
