"""SigV4 header signing of one ``httpx.Request`` as it will go on the wire, in the forms botocore's ``SigV4Auth``
produces (see docs/client.md): the path normalized and encoded again, the query pairs sorted as written, every
header but botocore's deny-list signed (repeats joined with ``,``), ``X-Amz-Date`` added (or an existing ``Date``
refreshed), the session token in ``X-Amz-Security-Token``.

Headers are read as the bytes httpx sends, decoded as Latin-1: exactly what a server shell hands the verifier.
"""

from __future__ import annotations

from email.utils import formatdate

import httpx

from ..authenticators._sigv4_canonical import (
    ALGORITHM,
    TERMINATOR,
    UNSIGNED_HEADERS,
    canonical_headers,
    canonical_request,
    derive_signing_key,
    format_timestamp,
    normalized_path,
    raw_sorted_query,
    sign_string,
    split_query,
    string_to_sign,
)
from ._credentials import Credentials

__all__ = ["sign"]

# Set by signing; removed first, so signing a request again (a retry) leaves one of each.
_SIGNING_HEADERS = ("authorization", "x-amz-date", "x-amz-security-token")


def sign(request: httpx.Request, credentials: Credentials, *, service: str, region: str, now: float,
         payload_hash: str) -> None:
    """Add the SigV4 headers to ``request`` for the body whose hash (or ``UNSIGNED-PAYLOAD``) is ``payload_hash``."""
    headers = request.headers
    for name in _SIGNING_HEADERS:
        headers.pop(name, None)
    timestamp = format_timestamp(now)
    if "date" in headers:
        headers["Date"] = formatdate(int(now))  # botocore signs an existing Date (at the signing time) instead
    else:
        headers["X-Amz-Date"] = timestamp
    if credentials.session_token is not None:
        headers["X-Amz-Security-Token"] = credentials.session_token

    values: dict[str, list[str]] = {}
    for raw_name, raw_value in headers.raw:
        name = raw_name.decode("latin-1").lower()
        if name not in UNSIGNED_HEADERS:
            values.setdefault(name, []).append(raw_value.decode("latin-1"))
    names = tuple(sorted(values))
    signed_headers = ";".join(names)
    path, _, query = request.url.raw_path.partition(b"?")
    creq = canonical_request(request.method.upper(), normalized_path(path), raw_sorted_query(split_query(query)),
                             canonical_headers(names, values), signed_headers, payload_hash)
    scope = f"{timestamp[:8]}/{region}/{service}/{TERMINATOR}"
    key = derive_signing_key(credentials.secret_access_key, timestamp[:8], region, service)
    signature = sign_string(key, string_to_sign(timestamp, scope, creq))
    headers["Authorization"] = (f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
                                f"SignedHeaders={signed_headers}, Signature={signature}")
