"""A signature over the query as written (curl 7.88 signs ``?b=2&a=1`` unsorted) fails without
``sigv4_verbatim_fallback`` with a message that names the setting; with it, the same request verifies. The hint
depends on the request only: an unknown key gets the very same answer."""

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
QUERY = b"b=2&a=1"  # as written, not sorted


def view(key_id: str = KEY_ID) -> RequestView:
    values = {"host": ["example.amazonaws.com"], "x-amz-date": [STAMP]}
    signed = ("host", "x-amz-date")
    request = canon.canonical_request("GET", b"/x", QUERY, canon.canonical_headers(signed, values), "host;x-amz-date",
                                      EMPTY)
    signature = canon.sign_string(canon.derive_signing_key(SECRET, STAMP[:8], REGION, SERVICE),
                                  canon.string_to_sign(STAMP, SCOPE, request))
    authorization = (f"AWS4-HMAC-SHA256 Credential={key_id}/{SCOPE}, SignedHeaders=host;x-amz-date, "
                     f"Signature={signature}")
    return RequestView("GET", b"/x", query_string=QUERY, body=b"", scheme="https",
                       headers=(("host", "example.amazonaws.com"), ("x-amz-date", STAMP),
                                ("authorization", authorization)))


def test_the_refusal_names_the_setting_and_the_setting_accepts_it() -> None:
    with pytest.raises(SignatureError) as refused:
        verifier().verify(view(), now=NOW)
    assert "sigv4_verbatim_fallback" in refused.value.message
    with pytest.raises(SignatureError) as unknown:
        verifier().verify(view("AKIDUNKNOWNKEY000000"), now=NOW)
    assert unknown.value.message == refused.value.message  # the same answer for an unknown key
    assert verifier(verbatim_fallback=True).verify(view(), now=NOW).access_key_id == KEY_ID


def test_no_hint_where_the_query_is_already_canonical() -> None:
    sorted_query = RequestView("GET", b"/x", query_string=b"a=1&b=2", body=b"", scheme="https",
                               headers=tuple((k, v) for k, v in view().headers))
    with pytest.raises(SignatureError) as refused:
        verifier().verify(sorted_query, now=NOW)
    assert "sigv4_verbatim_fallback" not in refused.value.message
