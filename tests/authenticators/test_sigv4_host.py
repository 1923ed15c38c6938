"""S5: a signature must cover ``host``, however well it is otherwise made. Signatures computed here over the exact
canonical request, so the only thing wrong is the missing ``host`` (header and presigned forms alike)."""

from __future__ import annotations

import hashlib

import pytest

from iam_middleware._exceptions import SignatureError
from iam_middleware._request import RequestView
from iam_middleware.authenticators import _sigv4_canonical as canon

from .test_sigv4_helpers import KEY_ID, NOW, REGION, SECRET, SERVICE, verifier

STAMP = canon.format_timestamp(NOW)
SCOPE = f"{STAMP[:8]}/{REGION}/{SERVICE}/aws4_request"
EMPTY = hashlib.sha256(b"").hexdigest()


def _signature(signed: tuple[str, ...], values: dict[str, list[str]], query: bytes) -> str:
    request = canon.canonical_request("GET", b"/x", query, canon.canonical_headers(signed, values), ";".join(signed),
                                      EMPTY if query == b"" else "UNSIGNED-PAYLOAD")
    key = canon.derive_signing_key(SECRET, STAMP[:8], REGION, SERVICE)
    return canon.sign_string(key, canon.string_to_sign(STAMP, SCOPE, request))


@pytest.mark.parametrize("signed", [("x-amz-date",), ("x-amz-content-sha256", "x-amz-date")])
def test_a_header_signature_without_host_is_refused(signed: tuple[str, ...]) -> None:
    values = {"host": ["example.amazonaws.com"], "x-amz-date": [STAMP], "x-amz-content-sha256": [EMPTY]}
    authorization = (f"AWS4-HMAC-SHA256 Credential={KEY_ID}/{SCOPE}, SignedHeaders={';'.join(signed)}, "
                     f"Signature={_signature(signed, values, b'')}")
    view = RequestView("GET", b"/x", headers=(*((k, v[0]) for k, v in values.items()),
                                              ("authorization", authorization)), body=b"", scheme="https")
    with pytest.raises(SignatureError) as refused:
        verifier().verify(view, now=NOW)
    assert "host" in refused.value.message


def test_a_presigned_url_without_host_is_refused() -> None:
    params = [("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", f"{KEY_ID}/{SCOPE}"),
              ("X-Amz-Date", STAMP), ("X-Amz-Expires", "60"), ("X-Amz-SignedHeaders", "x-amz-date")]
    query = canon.aws_query([(k.encode(), v.encode()) for k, v in params])
    values = {"x-amz-date": [STAMP]}
    signature = _signature(("x-amz-date",), values, query)
    target = query + b"&X-Amz-Signature=" + signature.encode()
    view = RequestView("GET", b"/x", query_string=target,
                       headers=(("host", "example.amazonaws.com"), ("x-amz-date", STAMP)), body=b"", scheme="https")
    with pytest.raises(SignatureError) as refused:
        verifier().verify(view, now=NOW)
    assert "host" in refused.value.message
