"""SigV4 canonical forms shared by the verifier and the signer: path, query, headers, timestamps, signing keys.

Each function mirrors botocore's ``SigV4Auth`` (``botocore/auth.py``, ``botocore/utils.py``) byte for byte, so a
request botocore signed canonicalizes to the same bytes here. Paths and queries are handled as bytes, exactly as the
server received them, so no decoding step can fail or change what the signature binds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime
from urllib.parse import quote_from_bytes, unquote_to_bytes

__all__ = [
    "ALGORITHM",
    "MAX_PRESIGN_EXPIRES",
    "TERMINATOR",
    "UNSIGNED_HEADERS",
    "UNSIGNED_PAYLOAD",
    "aws_query",
    "canonical_headers",
    "canonical_request",
    "decode_query_component",
    "derive_signing_key",
    "format_timestamp",
    "normalized_path",
    "parse_amz_date",
    "raw_sorted_query",
    "sign_string",
    "split_query",
    "string_to_sign",
]

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
MAX_PRESIGN_EXPIRES = 604800  # seven days, the AWS limit for X-Amz-Expires
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
#: botocore's ``SIGNED_HEADERS_BLACKLIST``: hop-by-hop and proxy-rewritten headers a signer must leave out.
UNSIGNED_HEADERS = frozenset(
    {
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    }
)

_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z", re.ASCII)
# Fast paths (the common case costs no decode/encode round trip): a path of unreserved characters without empty,
# "." or ".." segments is its own canonical form, and so is a query component of unreserved characters.
_PLAIN_PATH = re.compile(rb"(?:/(?!\.\.?(?:/|\Z))[A-Za-z0-9._~-]+)+/?|/")
_UNRESERVED = re.compile(rb"[A-Za-z0-9._~-]*")
_EPOCH = datetime(1970, 1, 1)


def normalized_path(raw_path: bytes) -> bytes:
    """The non-S3 canonical URI: dot segments and empty segments removed, then every byte outside
    ``A-Za-z0-9-._~/`` percent-encoded, so an already-encoded wire path ends up encoded twice.

    Same as botocore's ``quote(normalize_url_path(path), safe="/~")``.
    """
    if _PLAIN_PATH.fullmatch(raw_path):
        return raw_path
    if not raw_path:
        return b"/"
    kept: list[bytes] = []
    for segment in raw_path.split(b"/"):
        if segment == b".." and kept:
            kept.pop()
        elif segment and segment not in (b".", b".."):
            kept.append(segment)
    lead = b"/" if raw_path.startswith(b"/") else b""
    trail = b"/" if raw_path.endswith(b"/") and kept else b""
    return quote_from_bytes(lead + b"/".join(kept) + trail, safe="/~").encode("ascii")


def split_query(query: bytes) -> list[tuple[bytes, bytes]]:
    """Raw ``(key, value)`` pairs in arrival order; a bare ``key`` has an empty value, as botocore splits it."""
    if not query:
        return []
    pairs: list[tuple[bytes, bytes]] = []
    for piece in query.split(b"&"):
        key, _, value = piece.partition(b"=")
        pairs.append((key, value))
    return pairs


def decode_query_component(raw: bytes) -> bytes:
    """Form-decode one query key or value (``+`` is a space), as web frameworks read it."""
    if b"%" not in raw and b"+" not in raw:
        return raw
    return unquote_to_bytes(raw.replace(b"+", b" "))


def _aws_encode(raw: bytes) -> bytes:
    if _UNRESERVED.fullmatch(raw):
        return raw
    return quote_from_bytes(decode_query_component(raw), safe="").encode("ascii")


def aws_query(pairs: list[tuple[bytes, bytes]]) -> bytes:
    """The canonical query of the AWS specification: each key and value decoded, re-encoded with the RFC 3986
    unreserved set (space as ``%20``), sorted by key then value, joined as ``k=v`` with ``&``."""
    encoded = sorted((_aws_encode(key), _aws_encode(value)) for key, value in pairs)
    return b"&".join(key + b"=" + value for key, value in encoded)


def raw_sorted_query(pairs: list[tuple[bytes, bytes]]) -> bytes:
    """botocore's canonical query for a query already in the URL: pairs sorted but kept exactly as written."""
    return b"&".join(key + b"=" + value for key, value in sorted(pairs))


def canonical_headers(names: tuple[str, ...], values: dict[str, list[str]]) -> bytes:
    """``name:value\\n`` per signed header; each value trimmed with inner whitespace runs collapsed, repeats joined
    with ``,`` in arrival order (botocore's ``_header_value``)."""
    lines = [name + ":" + ",".join(" ".join(value.split()) for value in values[name]) + "\n" for name in names]
    return "".join(lines).encode("utf-8")


def canonical_request(
    method: str, uri: bytes, query: bytes, headers: bytes, signed_headers: str, payload_hash: str
) -> bytes:
    """The six-part canonical request (``headers`` already ends with its own newline, hence the blank line)."""
    return b"\n".join(
        (method.encode("utf-8"), uri, query, headers, signed_headers.encode("ascii"), payload_hash.encode("ascii"))
    )


def string_to_sign(timestamp: str, scope: str, request_bytes: bytes) -> bytes:
    """``AWS4-HMAC-SHA256\\n<timestamp>\\n<date>/<region>/<service>/aws4_request\\n<hex sha256 of the request>``."""
    digest = hashlib.sha256(request_bytes).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}".encode()


def derive_signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The HMAC chain ``"AWS4" + secret -> date -> region -> service -> "aws4_request"``."""
    key = hmac.digest(("AWS4" + secret).encode("utf-8"), date.encode("utf-8"), "sha256")
    for part in (region, service, TERMINATOR):
        key = hmac.digest(key, part.encode("utf-8"), "sha256")
    return key


def sign_string(signing_key: bytes, to_sign: bytes) -> str:
    """The hex signature of a string to sign."""
    return hmac.digest(signing_key, to_sign, "sha256").hex()


def parse_amz_date(value: str) -> float | None:
    """Epoch seconds of a ``YYYYMMDDTHHMMSSZ`` timestamp, or ``None`` if it is not one (or not a real instant)."""
    match = _AMZ_DATE.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = map(int, match.groups())
    try:
        return (datetime(year, month, day, hour, minute, second) - _EPOCH).total_seconds()
    except ValueError:
        return None


def format_timestamp(epoch: float) -> str:
    """``YYYYMMDDTHHMMSSZ`` for an epoch time, truncated to the second as botocore does."""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y%m%dT%H%M%SZ")
