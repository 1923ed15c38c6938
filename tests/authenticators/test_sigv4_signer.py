"""sign_request gives what botocore gives for the same inputs, and what it signs verifies."""

from __future__ import annotations

import string
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from iam_middleware._request import RequestView
from iam_middleware.authenticators._sigv4 import SigningCredential
from iam_middleware.authenticators._sigv4_signer import SignedRequest, sign_request

from .test_sigv4_helpers import (
    CREDENTIAL,
    KEY_ID,
    NOW,
    REGION,
    SECRET,
    SERVICE,
    TEMP_CREDENTIAL,
    TEMP_KEY_ID,
    TEMP_SECRET,
    TOKEN,
    URL,
    botocore_signed,
    freeze_botocore,
    verifier,
)


@pytest.fixture(scope="module", autouse=True)
def _frozen_botocore() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        freeze_botocore(patch)
        yield


def sign(
    method: str, url: str, headers: dict[str, str] | None = None, body: bytes = b"", **options: Any
) -> SignedRequest:
    options.setdefault("credential", CREDENTIAL)
    return sign_request(method, url, headers or {}, body, region=REGION, service=SERVICE, now=NOW, **options)


def as_view(method: str, signed: SignedRequest, body: bytes = b"") -> RequestView:
    """The request an HTTP client sends for ``signed``: Host from the URL unless given."""
    parts = urlsplit(signed.url)
    headers = [(name.lower(), value) for name, value in signed.headers.items()]
    if not any(name == "host" for name, _ in headers):
        headers.insert(0, ("host", parts.netloc.lower()))
    return RequestView(
        method=method,
        raw_path=parts.path.encode() or b"/",
        query_string=parts.query.encode(),
        headers=tuple(headers),
        scheme=parts.scheme or "https",
        body=body,
    )


def lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


HEADER_CASES = [
    pytest.param("GET", URL + "/", {}, b"", id="get-root"),
    pytest.param("POST", URL + "/items", {"Content-Type": "application/json"}, b'{"a": 1}', id="post-json"),
    pytest.param("GET", URL + "/a/./b/../c%20d//e?list=x,y&e&b=2&a=1", {"X-Tab": " a \t b "}, b"", id="messy"),
    pytest.param("GET", URL + "/x", {"Date": "whenever"}, b"", id="date-header"),
    pytest.param("GET", URL + "/x", {"User-Agent": "ua", "X-Amzn-Trace-Id": "t"}, b"", id="deny-listed"),
    pytest.param("PUT", "http://API.Example.com:8080/x", {}, b"data", id="port-and-case"),
    pytest.param("GET", "https://[::1]:8443/x", {}, b"", id="ipv6"),
    pytest.param("PUT", URL + "/x", {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}, b"stream", id="declared-hash"),
]


@pytest.mark.parametrize(("method", "url", "headers", "body"), HEADER_CASES)
@pytest.mark.parametrize("temporary", [False, True], ids=["long-term", "temporary"])
@pytest.mark.parametrize("s3", [False, True], ids=["service", "s3"])
def test_header_signing_matches_botocore(
    method: str, url: str, headers: dict[str, str], body: bytes, temporary: bool, s3: bool
) -> None:
    credential = TEMP_CREDENTIAL if temporary else CREDENTIAL
    expected = botocore_signed(
        method,
        url,
        body=body,
        headers=headers,
        key_id=credential.access_key_id,
        secret=credential.secret_access_key,
        token=credential.session_token,
        s3=s3,
    )
    signed = sign(method, url, headers, body, credential=credential, s3_style_paths=s3)
    assert signed.url == url
    assert lower(signed.headers) == lower(expected.headers)


@pytest.mark.parametrize(
    "url", [URL + "/", URL + "/report?format=csv&b=2", URL + "/a%20b/c?q=a+b&e=&list=x%2Cy", URL + "/p?x=%E2%82%AC"]
)
@pytest.mark.parametrize("temporary", [False, True], ids=["long-term", "temporary"])
@pytest.mark.parametrize("s3", [False, True], ids=["service", "s3"])
def test_presigning_matches_botocore(url: str, temporary: bool, s3: bool) -> None:
    credential = TEMP_CREDENTIAL if temporary else CREDENTIAL
    expected = botocore_signed(
        "GET",
        url,
        headers={"X-Custom": "v"},
        key_id=credential.access_key_id,
        secret=credential.secret_access_key,
        token=credential.session_token,
        presign=600,
        s3=s3,
    )
    signed = sign("GET", url, {"X-Custom": "v"}, credential=credential, presign_expires=600, s3_style_paths=s3)
    assert signed.url == expected.url
    assert signed.headers == {"X-Custom": "v"}


@pytest.mark.parametrize("presign", [None, 60])
def test_what_it_signs_verifies(presign: int | None) -> None:
    for credential in (CREDENTIAL, TEMP_CREDENTIAL):
        signed = sign(
            "POST",
            URL + "/items?b=1&a=2",
            {"Content-Type": "text/plain"},
            b"body",
            credential=credential,
            presign_expires=presign,
        )
        verified = verifier().verify(as_view("POST", signed, b"body"), now=NOW)
        assert verified.credential is credential
        assert verified.presigned is (presign is not None)


def test_a_path_with_a_host_header_can_be_signed() -> None:
    signed = sign("GET", "/items?x=1", {"Host": "api.internal:9000"})
    assert signed.url == "/items?x=1"
    verifier().verify(as_view("GET", signed), now=NOW)
    with pytest.raises(ValueError, match="Host header"):
        sign("GET", "/items")


@pytest.mark.parametrize("expires", [0, 604801, -5])
def test_presign_expiry_must_be_within_seven_days(expires: int) -> None:
    with pytest.raises(ValueError, match="1 to 604800"):
        sign("GET", URL + "/x", presign_expires=expires)


def test_header_names_must_not_repeat_case_insensitively() -> None:
    with pytest.raises(ValueError, match="repeat"):
        sign("GET", URL + "/x", {"X-A": "1", "x-a": "2"})


def test_repr_masks_signature_token_and_authorization() -> None:
    credential = SigningCredential(TEMP_KEY_ID, TEMP_SECRET, session_token=TOKEN)
    for presign in (None, 60):
        signed = sign("GET", URL + "/x?a=1", credential=credential, presign_expires=presign)
        text = repr(signed)
        assert TOKEN not in text and TEMP_SECRET not in text
        assert "********" in text
        signature = signed.url[-64:] if presign else signed.headers["Authorization"][-64:]
        assert signature not in text


def test_signer_reproduces_the_aws_test_suite_vector() -> None:
    signed = sign("GET", URL + "/", credential=SigningCredential(KEY_ID, SECRET))
    assert signed.headers["Authorization"].endswith("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")


TOKENS = st.lists(
    st.one_of(
        st.sampled_from(string.ascii_letters + string.digits + "-._~!$'()*,;:@"),
        st.integers(0, 255).map("%{:02X}".format),
    ),
    max_size=5,
).map("".join)


@settings(deadline=None, max_examples=80)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.lists(TOKENS.filter(bool), min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts)),
    query=st.dictionaries(TOKENS.filter(bool), TOKENS, max_size=3),
    headers=st.dictionaries(
        st.text(string.ascii_lowercase, min_size=1, max_size=5).map(lambda name: "x-h-" + name),
        st.text(st.sampled_from(string.printable[:95]), max_size=10),
        max_size=3,
    ),
    body=st.binary(max_size=40),
    presign=st.none() | st.integers(1, 604800),
    s3=st.booleans(),
)
def test_random_requests_sign_like_botocore_and_verify(
    method: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    presign: int | None,
    s3: bool,
) -> None:
    url = URL + path + ("?" + "&".join(f"{key}={value}" for key, value in query.items()) if query else "")
    if presign is not None:
        body = b""  # botocore moves a presigned body into the query; keep the comparison about the URL
        # botocore keeps only the first of keys that decode alike (%80 and %81 both become U+FFFD); ours keeps every
        # repeat on purpose (see sign_request), so such queries are compared by the verify step alone.
        assume(len({unquote(key, errors="replace") for key in query}) == len(query))
    expected = botocore_signed(method, url, body=body, headers=headers, presign=presign, s3=s3)
    signed = sign(method, url, headers, body, presign_expires=presign, s3_style_paths=s3)
    if presign is None:
        assert lower(signed.headers) == lower(expected.headers)
    else:
        assert signed.url == expected.url
    check = verifier(s3_style_paths=s3)
    check.verify(as_view(method, signed, body), now=NOW)
