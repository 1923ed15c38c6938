"""A small SigV4 signer, so tests, demos and Python clients can sign requests without botocore.

``sign_request`` gives what botocore's ``SigV4Auth`` (header) or ``SigV4QueryAuth`` (presigned URL) gives for the
same inputs and clock: the same canonical request, the same signature, the same added headers or query parameters.
With ``s3_style_paths`` it signs like botocore's S3 signers (path unchanged, ``X-Amz-Content-SHA256`` header,
``UNSIGNED-PAYLOAD`` for presigned URLs). One deliberate difference: presigning keeps every repeat of a query key,
where botocore keeps only the first.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import SplitResult, parse_qsl, quote, urlsplit, urlunsplit

from ._sigv4 import SigningCredential
from ._sigv4_canonical import (
    ALGORITHM,
    MAX_PRESIGN_EXPIRES,
    TERMINATOR,
    UNSIGNED_HEADERS,
    UNSIGNED_PAYLOAD,
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

__all__ = ["SignedRequest", "sign_request"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SECRET_PARAMS = re.compile(r"((?:^|&)(?:X-Amz-Signature|X-Amz-Security-Token)=)[^&]*")
_SECRET_HEADERS = frozenset({"authorization", "x-amz-security-token"})


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What to send: ``url`` (with the presigned query when presigning) and every header, the signed ones added."""

    url: str
    headers: dict[str, str]

    def __repr__(self) -> str:
        # A presigned URL is a bearer credential until it expires, so its signature and token are masked too.
        parts = urlsplit(self.url)
        url = urlunsplit(parts._replace(query=_SECRET_PARAMS.sub(r"\1********", parts.query)))
        headers = {
            name: "********" if name.lower() in _SECRET_HEADERS else value for name, value in self.headers.items()
        }
        return f"SignedRequest(url={url!r}, headers={headers!r})"


def sign_request(
    method: str,
    url_or_path: str,
    headers: Mapping[str, str],
    body: bytes = b"",
    *,
    credential: SigningCredential,
    region: str,
    service: str,
    now: float,
    presign_expires: int | None = None,
    s3_style_paths: bool = False,
) -> SignedRequest:
    """Sign a request at time ``now`` (epoch seconds) with an Authorization header, or presign it for
    ``presign_expires`` seconds (1 to 604800).

    ``url_or_path`` is a full URL, or a path (and query) when ``headers`` carries ``Host``. The path and query must
    be encoded as they will go on the wire. The result's headers are ``headers`` plus what signing adds; as with
    botocore, ``Host`` is signed but not added (the HTTP client sends it from the URL).
    """
    parts = urlsplit(url_or_path)
    out = dict(headers)
    names = {name.lower(): name for name in out}
    if len(names) != len(out):
        raise ValueError("headers repeat a name (header names are case-insensitive)")
    host = out[names["host"]] if "host" in names else _host_from_url(parts)
    timestamp = format_timestamp(now)
    date = timestamp[:8]
    scope = f"{date}/{region}/{service}/{TERMINATOR}"
    path = (parts.path or "/").encode("utf-8")
    uri = path if s3_style_paths else normalized_path(path)

    if presign_expires is not None:
        if not 1 <= presign_expires <= MAX_PRESIGN_EXPIRES:
            raise ValueError(f"presign_expires must be from 1 to {MAX_PRESIGN_EXPIRES} seconds")
        signed = _headers_to_sign(out, host)
        auth_params = [
            ("X-Amz-Algorithm", ALGORITHM),
            ("X-Amz-Credential", f"{credential.access_key_id}/{scope}"),
            ("X-Amz-Date", timestamp),
            ("X-Amz-Expires", str(presign_expires)),
            ("X-Amz-SignedHeaders", ";".join(signed)),
        ]
        if credential.session_token is not None:
            auth_params.append(("X-Amz-Security-Token", credential.session_token))
        params = parse_qsl(parts.query, keep_blank_values=True) + auth_params
        query = "&".join(f"{quote(key, safe='-_.~')}={quote(value, safe='-_.~')}" for key, value in params)
        if s3_style_paths:
            payload_hash = UNSIGNED_PAYLOAD
        elif "x-amz-content-sha256" in names:
            payload_hash = out[names["x-amz-content-sha256"]]
        else:
            payload_hash = hashlib.sha256(body).hexdigest()
        signature = _signature(method, uri, query, signed, payload_hash, credential, timestamp, scope, region, service)
        url = urlunsplit(parts._replace(query=f"{query}&X-Amz-Signature={signature}"))
        return SignedRequest(url, out)

    replaced = ["authorization", "x-amz-date"]
    if credential.session_token is not None:
        replaced.append("x-amz-security-token")
    if s3_style_paths:
        replaced.append("x-amz-content-sha256")
    for name in replaced:
        if name in names:
            del out[names.pop(name)]
    if "date" in names:
        # botocore signs an existing Date header (refreshed to the signing time) instead of adding X-Amz-Date.
        out[names["date"]] = formatdate(int(now))
    else:
        out["X-Amz-Date"] = timestamp
    if credential.session_token is not None:
        out["X-Amz-Security-Token"] = credential.session_token
    if s3_style_paths:
        out["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
    # Like botocore, a payload hash header already present is signed as the payload hash.
    declared = next((value for name, value in out.items() if name.lower() == "x-amz-content-sha256"), None)
    payload_hash = hashlib.sha256(body).hexdigest() if declared is None else declared
    signed = _headers_to_sign(out, host)
    query = parts.query
    signature = _signature(method, uri, query, signed, payload_hash, credential, timestamp, scope, region, service)
    out["Authorization"] = (
        f"{ALGORITHM} Credential={credential.access_key_id}/{scope}, SignedHeaders={';'.join(signed)}, "
        f"Signature={signature}"
    )
    return SignedRequest(url_or_path, out)


def _headers_to_sign(headers: dict[str, str], host: str) -> dict[str, str]:
    """Every header except botocore's deny-list, lower-cased and sorted, with ``host`` added if absent."""
    signed = {name.lower(): value for name, value in headers.items() if name.lower() not in UNSIGNED_HEADERS}
    signed.setdefault("host", host)
    return dict(sorted(signed.items()))


def _signature(
    method: str,
    uri: bytes,
    query: str,
    signed: dict[str, str],
    payload_hash: str,
    credential: SigningCredential,
    timestamp: str,
    scope: str,
    region: str,
    service: str,
) -> str:
    names = tuple(signed)
    block = canonical_headers(names, {name: [value] for name, value in signed.items()})
    canonical_query = raw_sorted_query(split_query(query.encode("utf-8")))
    creq = canonical_request(method.upper(), uri, canonical_query, block, ";".join(names), payload_hash)
    key = derive_signing_key(credential.secret_access_key, timestamp[:8], region, service)
    return sign_string(key, string_to_sign(timestamp, scope, creq))


def _host_from_url(parts: SplitResult) -> str:
    """The Host value botocore derives: lower-case host name, IPv6 in brackets, the port unless it is the default."""
    if not parts.hostname:
        raise ValueError("a path without a scheme and host needs a Host header")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host
