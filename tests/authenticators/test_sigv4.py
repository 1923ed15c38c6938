"""SigV4 verifier against real botocore signatures: every docs/security.md section 2 item (S1-S17) as a test."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from typing import Any

import boto3
import pytest

from iam_middleware._exceptions import (
    BadRequestError,
    ConfigurationError,
    IAMError,
    ServiceUnavailableError,
    SignatureError,
)
from iam_middleware._request import RequestView
from iam_middleware.authenticators import _sigv4_canonical
from iam_middleware.authenticators._sigv4 import (
    CredentialScopeError,
    ExpiredTokenError,
    HostNotAllowedError,
    IncompleteSignatureError,
    InvalidSecurityTokenError,
    PayloadHashError,
    PayloadHashMismatchError,
    RequestTooLargeError,
    SignatureDoesNotMatchError,
    SignatureExpiredError,
    SignatureNotYetCurrentError,
    SigningCredential,
    TooManyParametersError,
    VerifiedSignature,
)

from .test_sigv4_helpers import (
    CREDENTIAL,
    DIRECTORY,
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
    signed_view,
    verifier,
)


@pytest.fixture(autouse=True)
def _frozen_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_botocore(monkeypatch)


def replace_header(view: RequestView, name: str, value: str | None) -> RequestView:
    """The view with every ``name`` header dropped and, unless ``value`` is None, one ``name: value`` appended."""
    headers = tuple((key, val) for key, val in view.headers if key != name)
    if value is not None:
        headers += ((name, value),)
    return dataclasses.replace(view, headers=headers)


def with_authorization(view: RequestView, transform: Any) -> RequestView:
    return replace_header(view, "authorization", transform(view.header("authorization")))


def expect(error: type[IAMError], view: RequestView, *, now: float = NOW, **options: Any) -> IAMError:
    with pytest.raises(error) as caught:
        verifier(**options).verify(view, now=now)
    return caught.value


# --- S1: the canonical request, the string to sign and the key derivation -----------------------------------------


def test_known_answer_vector_from_the_aws_test_suite() -> None:
    # aws4_testsuite "get-vanilla": GET / on example.amazonaws.com at 20150830T123600Z with the example key.
    view = RequestView(
        method="GET",
        raw_path=b"/",
        headers=(("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")),
        body=b"",
        scheme="https",
    )
    signature = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={signature}"
    )
    assert botocore_signed("GET", URL + "/").headers["Authorization"] == authorization
    verified = verifier().verify(replace_header(view, "authorization", authorization), now=NOW)
    assert verified.access_key_id == KEY_ID


def test_header_signed_post_verifies_and_reports_what_was_signed() -> None:
    view = signed_view("POST", URL + "/items", body=b'{"name": "x"}', headers={"Content-Type": "application/json"})
    verified = verifier().verify(view, now=NOW)
    assert verified == VerifiedSignature(
        access_key_id=KEY_ID,
        credential=CREDENTIAL,
        signed_at=NOW,
        region=REGION,
        presigned=False,
        signed_headers=("content-type", "host", "x-amz-date"),
        signature=(view.header("authorization") or "")[-64:],
        valid_until=NOW + 300,
    )


def test_signing_key_is_the_documented_hmac_chain() -> None:
    key = _sigv4_canonical.derive_signing_key(SECRET, "20150830", REGION, SERVICE)
    expected = ("AWS4" + SECRET).encode()
    for part in ("20150830", REGION, SERVICE, "aws4_request"):
        expected = hmac.digest(expected, part.encode(), "sha256")
    assert key == expected


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda v: dataclasses.replace(v, method="PUT"), id="method"),
        pytest.param(lambda v: dataclasses.replace(v, raw_path=b"/items/2"), id="path"),
        pytest.param(lambda v: dataclasses.replace(v, query_string=b"id=2"), id="query-value"),
        pytest.param(lambda v: dataclasses.replace(v, query_string=b"id=1&extra=1"), id="query-added"),
        pytest.param(lambda v: dataclasses.replace(v, query_string=b""), id="query-dropped"),
        pytest.param(lambda v: replace_header(v, "content-type", "text/plain"), id="signed-header"),
        pytest.param(lambda v: dataclasses.replace(v, body=b'{"name": "y"}'), id="body"),
        pytest.param(lambda v: replace_header(v, "x-amz-date", "20150830T123601Z"), id="date"),
        pytest.param(lambda v: replace_header(v, "host", "other.amazonaws.com"), id="host"),
        pytest.param(lambda v: with_authorization(v, lambda a: a.replace("us-east-1", "eu-west-1")), id="scope-region"),
        pytest.param(lambda v: with_authorization(v, lambda a: a[:-1] + ("0" if a[-1] != "0" else "1")), id="sig"),
        pytest.param(
            lambda v: with_authorization(v, lambda a: a.replace("content-type;", "")), id="signed-headers-list"
        ),
    ],
)
def test_any_change_to_a_signed_part_is_rejected(mutate: Any) -> None:
    view = signed_view(
        "POST", URL + "/items/1?id=1", body=b'{"name": "x"}', headers={"Content-Type": "application/json"}
    )
    verifier(regions=[REGION, "eu-west-1"]).verify(view, now=NOW)
    with pytest.raises(SignatureError):
        verifier(regions=[REGION, "eu-west-1"]).verify(mutate(view), now=NOW)


def test_unsigned_headers_may_be_added_in_transit() -> None:
    view = signed_view("GET", URL + "/items")
    added = view.headers + (("user-agent", "proxy/1.0"), ("x-forwarded-for", "10.0.0.1"), ("via", "1.1 proxy"))
    verifier().verify(dataclasses.replace(view, headers=added), now=NOW)


# --- S2: canonical URI ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/a/b%20c/d", "/a/./b/../c", "//a//b//", "/a/b/..", "/%E2%82%AC/x~y/a-b_c.d", "/a%2Fb", "/"],
)
def test_botocore_non_s3_path_rules_verify(path: str) -> None:
    view = signed_view("GET", URL + path)
    assert view.raw_path == path.encode()
    verifier().verify(view, now=NOW)


def test_non_s3_paths_are_signed_double_encoded() -> None:
    assert _sigv4_canonical.normalized_path(b"/a/b%20c/d") == b"/a/b%2520c/d"
    assert _sigv4_canonical.normalized_path(b"/a/./b/../c//d/") == b"/a/c/d/"
    assert _sigv4_canonical.normalized_path(b"/../..") == b"/"
    assert _sigv4_canonical.normalized_path(b"") == b"/"


@pytest.mark.parametrize("path", ["/bucket/key%20with%20spaces", "/bucket/a/./b", "/bucket//double", "/b/%2Fx"])
def test_s3_style_paths_sign_the_path_unchanged(path: str) -> None:
    view = signed_view("GET", URL + path, s3=True)
    verifier(s3_style_paths=True).verify(view, now=NOW)
    with pytest.raises(SignatureDoesNotMatchError):
        verifier().verify(view, now=NOW)


def test_s16_dot_and_empty_segments_share_the_normalized_paths_signature() -> None:
    # As on AWS, the non-S3 signature binds the normalized path. The router sees the raw path, so the shell must
    # refuse non-canonical raw paths before routing (docs/security.md S16); this pins what the verifier leaves to it.
    view = signed_view("GET", URL + "/a/b")
    for raw in (b"/a/./b", b"/a//b", b"/x/../a/b"):
        verifier().verify(dataclasses.replace(view, raw_path=raw), now=NOW)
    with pytest.raises(SignatureDoesNotMatchError):
        verifier(s3_style_paths=True).verify(dataclasses.replace(view, raw_path=b"/a/./b"), now=NOW)


def test_a_signature_for_one_path_does_not_verify_another_that_decodes_differently() -> None:
    view = signed_view("GET", URL + "/files/a%20b")
    for other in (b"/files/a%2520b", b"/files/a+b", b"/files/a%20b/"):
        with pytest.raises(SignatureDoesNotMatchError):
            verifier(verbatim_fallback=True).verify(dataclasses.replace(view, raw_path=other), now=NOW)


# --- S3: canonical query ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "b=2&a=1",  # botocore sorts a query that is already in the URL
        "list=x,y&e",  # ... but does not re-encode it, and signs a bare key as "e="
        "a=1&a=0&a=10",  # repeated keys sort by value
        "k=%E2%82%AC&sp=a%20b&t=~-_.",
        "empty=&=novalue&x",
        "a=1&&b=2",
        "q=a+b",
    ],
)
def test_queries_already_in_the_url_verify_as_botocore_signs_them(query: str) -> None:
    view = signed_view("GET", URL + "/search?" + query)
    assert view.query_string == query.encode()
    verifier().verify(view, now=NOW)


def test_params_given_to_botocore_are_sent_form_encoded_and_verify() -> None:
    params = {"q": "a b", "list": "x,y", "utf8": "\u20ac", "tilde": "~", "plus": "1+1", "slash": "a/b"}
    view = signed_view("GET", URL + "/search", params=params)
    assert b"q=a+b" in view.query_string  # urlencode sends a space as "+", botocore signs it as "%20"
    verifier().verify(view, now=NOW)


def test_aws_query_form_encodes_decodes_and_sorts() -> None:
    pairs = _sigv4_canonical.split_query(b"b=x,y&a=%7e&c=a+b&a&d=%2f")
    assert _sigv4_canonical.aws_query(pairs) == b"a=&a=~&b=x%2Cy&c=a%20b&d=%2F"
    assert _sigv4_canonical.raw_sorted_query(pairs) == b"a=&a=%7e&b=x,y&c=a+b&d=%2f"


def test_reordering_repeated_query_values_does_not_matter_but_changing_them_does() -> None:
    view = signed_view("GET", URL + "/x?a=1&a=2")
    verifier().verify(dataclasses.replace(view, query_string=b"a=2&a=1"), now=NOW)
    with pytest.raises(SignatureDoesNotMatchError):
        verifier().verify(dataclasses.replace(view, query_string=b"a=2&a=2"), now=NOW)


def test_too_many_query_parameters_are_refused_before_any_crypto() -> None:
    view = signed_view("GET", URL + "/x")
    many = b"&".join(b"p%d=1" % index for index in range(1001))
    error = expect(TooManyParametersError, dataclasses.replace(view, query_string=many))
    assert isinstance(error, BadRequestError)
    assert error.status_code == 400


# --- S4: canonical headers --------------------------------------------------------------------------------------


def test_header_values_are_trimmed_collapsed_and_repeats_joined() -> None:
    view = signed_view(
        "GET", URL + "/h", headers={"X-Multi": "  one   two  ", "X-Tab": "a\t\tb", "X-Dup": "first,second value"}
    )
    verifier().verify(view, now=NOW)
    # A header repeated on the wire is signed as its values joined with "," in arrival order.
    split = replace_header(view, "x-dup", None).headers + (("x-dup", "first"), ("x-dup", "  second   value "))
    verifier().verify(dataclasses.replace(view, headers=split), now=NOW)
    swapped = replace_header(view, "x-dup", None).headers + (("x-dup", "second value"), ("x-dup", "first"))
    with pytest.raises(SignatureDoesNotMatchError):
        verifier().verify(dataclasses.replace(view, headers=swapped), now=NOW)


def test_canonical_headers_block() -> None:
    values = {"host": ["h"], "x-a": ["  a   b ", "c"]}
    assert _sigv4_canonical.canonical_headers(("host", "x-a"), values) == b"host:h\nx-a:a b,c\n"


# --- S5: SignedHeaders ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signed_headers", "message"),
    [
        ("x-amz-date", "must include 'host'"),
        ("x-amz-date;host", "sorted"),
        ("host;host;x-amz-date", "sorted"),
        ("host;x-absent;x-amz-date", "does not carry"),
        ("Host;x-amz-date", "lower-case"),
        ("host;;x-amz-date", "lower-case"),
        ("", "lower-case"),
        ("authorization;host;x-amz-date", "Authorization"),
    ],
)
def test_signed_headers_list_rules(signed_headers: str, message: str) -> None:
    view = with_authorization(
        signed_view("GET", URL + "/x"),
        lambda a: a.replace("SignedHeaders=host;x-amz-date", f"SignedHeaders={signed_headers}"),
    )
    error = expect(IncompleteSignatureError, view)
    assert message in error.message


@pytest.mark.parametrize("name", ["x-amz-target", "x-amz-security-token", "x-amz-content-sha256", "x-amz-meta-a"])
def test_an_unsigned_x_amz_header_is_rejected(name: str) -> None:
    view = signed_view("GET", URL + "/x")
    error = expect(IncompleteSignatureError, dataclasses.replace(view, headers=view.headers + ((name, "v"),)))
    assert name in error.message


def test_a_second_host_header_is_rejected() -> None:
    view = signed_view("GET", URL + "/x")
    expect(IncompleteSignatureError, dataclasses.replace(view, headers=view.headers + (("host", "evil.example"),)))


def test_botocore_signs_every_header_but_its_deny_list_and_all_verify() -> None:
    headers = {"User-Agent": "ua", "X-Amzn-Trace-Id": "t", "Content-Type": "text/plain", "X-Custom": "c"}
    verified = verifier().verify(signed_view("PUT", URL + "/x", body=b"data", headers=headers), now=NOW)
    assert verified.signed_headers == ("content-type", "host", "x-amz-date", "x-custom")


# --- S6: dates --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "20150830T123600",
        "20150830T123600.000Z",
        "2015-08-30T12:36:00Z",
        "20150830t123600z",
        "20151330T123600Z",
        "20150830T246000Z",
        " 20150830T123600Z",
        "1440938160",
    ],
)
def test_malformed_x_amz_date_is_rejected(value: str) -> None:
    error = expect(IncompleteSignatureError, replace_header(signed_view("GET", URL + "/x"), "x-amz-date", value))
    assert "YYYYMMDDTHHMMSSZ" in error.message


def test_botocore_signs_an_existing_date_header_instead_of_x_amz_date() -> None:
    view = signed_view("GET", URL + "/x", headers={"Date": "Thu, 01 Jan 1970 00:00:00 GMT"})
    assert view.header("date") == "Sun, 30 Aug 2015 12:36:00 -0000"
    assert view.header("x-amz-date") is None
    verified = verifier().verify(view, now=NOW)
    assert verified.signed_at == NOW
    with pytest.raises(SignatureDoesNotMatchError):
        verifier().verify(replace_header(view, "date", "Sun, 30 Aug 2015 12:36:01 GMT"), now=NOW)


@pytest.mark.parametrize(
    "value", ["Sun, 30 Aug 2015 12:36:00 +0200", "30 Aug 2015 12:36:00 GMT", "Sun, 31 Feb 2015 12:36:00 GMT"]
)
def test_malformed_date_header_is_rejected(value: str) -> None:
    view = signed_view("GET", URL + "/x", headers={"Date": "now"})
    expect(IncompleteSignatureError, replace_header(view, "date", value))


def test_a_request_without_any_date_is_rejected() -> None:
    error = expect(IncompleteSignatureError, replace_header(signed_view("GET", URL + "/x"), "x-amz-date", None))
    assert "X-Amz-Date or a Date header" in error.message


def test_unsigned_date_header_cannot_carry_the_timestamp() -> None:
    view = signed_view("GET", URL + "/x", headers={"Date": "now"})
    view = with_authorization(view, lambda a: a.replace("SignedHeaders=date;host", "SignedHeaders=host"))
    error = expect(IncompleteSignatureError, view)
    assert "date header must be listed" in error.message


def test_scope_date_must_equal_the_timestamp_date() -> None:
    view = with_authorization(signed_view("GET", URL + "/x"), lambda a: a.replace("/20150830/", "/20150831/"))
    error = expect(CredentialScopeError, view)
    assert "YYYYMMDD" in error.message


# --- S7: clock skew, both directions, both edges ----------------------------------------------------------------


@pytest.mark.parametrize("skew", [300.0, 900.0])
def test_clock_skew_edges(skew: float) -> None:
    view = signed_view("GET", URL + "/x")
    check = verifier(max_skew=skew)
    check.verify(view, now=NOW + skew)
    check.verify(view, now=NOW - skew)
    with pytest.raises(SignatureExpiredError) as late:
        check.verify(view, now=NOW + skew + 1)
    assert late.value.code == "RequestExpired"
    assert "Signature expired" in late.value.message
    with pytest.raises(SignatureNotYetCurrentError) as early:
        check.verify(view, now=NOW - skew - 1)
    assert "Signature not yet current" in early.value.message


# --- S8: credential scope and algorithm -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"region": "eu-west-1"}, "valid region"),
        ({"service": "other"}, "correct service"),
    ],
)
def test_scope_must_name_a_configured_region_and_the_service(options: dict[str, str], message: str) -> None:
    error = expect(CredentialScopeError, signed_view("GET", URL + "/x", **options))
    assert message in error.message


@pytest.mark.parametrize(
    ("credential", "error"),
    [
        (f"{KEY_ID}/20150830/us-east-1/service/AWS4_REQUEST", CredentialScopeError),
        (f"{KEY_ID}/20150830/us-east-1/service/aws4_request/extra", CredentialScopeError),
        (f"{KEY_ID}/20150830/us-east-1/service", CredentialScopeError),
        (f"{KEY_ID}/2015083/us-east-1/service/aws4_request", CredentialScopeError),
        ("AKID-BAD/20150830/us-east-1/service/aws4_request", IncompleteSignatureError),
        ("/20150830/us-east-1/service/aws4_request", IncompleteSignatureError),
    ],
)
def test_credential_must_have_exactly_five_valid_parts(credential: str, error: type[IAMError]) -> None:
    view = with_authorization(
        signed_view("GET", URL + "/x"),
        lambda a: a.replace(f"Credential={KEY_ID}/20150830/us-east-1/service/aws4_request", f"Credential={credential}"),
    )
    expect(error, view)


@pytest.mark.parametrize("algorithm", ["AWS4-ECDSA-P256-SHA256", "aws4-hmac-sha256", "AWS4-HMAC-SHA512", "AWS"])
def test_only_the_hmac_sha256_algorithm_is_accepted(algorithm: str) -> None:
    view = with_authorization(signed_view("GET", URL + "/x"), lambda a: a.replace("AWS4-HMAC-SHA256", algorithm, 1))
    error = expect(IncompleteSignatureError, view)
    assert "only AWS4-HMAC-SHA256" in error.message


# --- S9: Authorization header grammar ---------------------------------------------------------------------------


def _authorization() -> tuple[str, str, str]:
    view = signed_view("GET", URL + "/x")
    header = view.header("authorization") or ""
    parts = dict(part.strip().split("=", 1) for part in header.removeprefix("AWS4-HMAC-SHA256 ").split(","))
    return parts["Credential"], parts["SignedHeaders"], parts["Signature"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}", "lacks its Signature"),
        ("AWS4-HMAC-SHA256 SignedHeaders={h}, Signature={s}", "lacks its Credential"),
        ("AWS4-HMAC-SHA256 Credential={c}, Signature={s}", "lacks its SignedHeaders"),
        ("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={s}, Signature={s}", "repeats"),
        ("AWS4-HMAC-SHA256 Credential={c}, Credential={c}, SignedHeaders={h}, Signature={s}", "repeats"),
        ("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={s}, Extra=1", "must read"),
        ("AWS4-HMAC-SHA256 Credential={c} SignedHeaders={h} Signature={s}", "must read"),
        ("AWS4-HMAC-SHA256", "must read"),
        ("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={upper}", "64 lower-case hexadecimal"),
        ("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={short}", "64 lower-case hexadecimal"),
        ("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={nonhex}", "64 lower-case hexadecimal"),
        ("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={s}, {padding}", "longer than 4096"),
    ],
)
def test_authorization_header_grammar(template: str, message: str) -> None:
    credential, signed, signature = _authorization()
    value = template.format(
        c=credential,
        h=signed,
        s=signature,
        upper=signature.upper(),
        short=signature[:63],
        nonhex="g" + signature[1:],
        padding="x" * 4096,
    )
    error = expect(IncompleteSignatureError, replace_header(signed_view("GET", URL + "/x"), "authorization", value))
    assert message in error.message
    assert error.status_code == 401


def test_components_may_come_in_any_order_and_without_spaces() -> None:
    credential, signed, signature = _authorization()
    value = f"AWS4-HMAC-SHA256 Signature={signature},Credential={credential},SignedHeaders={signed}"
    verifier().verify(replace_header(signed_view("GET", URL + "/x"), "authorization", value), now=NOW)


def test_two_authorization_headers_are_rejected() -> None:
    view = signed_view("GET", URL + "/x")
    twice = view.headers + (("authorization", view.header("authorization") or ""),)
    error = expect(IncompleteSignatureError, dataclasses.replace(view, headers=twice))
    assert "more than one Authorization" in error.message


def test_header_and_query_authentication_together_are_rejected() -> None:
    header_signed = signed_view("GET", URL + "/x")
    presigned = signed_view("GET", URL + "/x", presign=60)
    both = dataclasses.replace(
        presigned, headers=presigned.headers + (("authorization", header_signed.header("authorization") or ""),)
    )
    error = expect(IncompleteSignatureError, both)
    assert "not both" in error.message


# --- S10: payload hash ------------------------------------------------------------------------------------------


def test_body_is_hashed_when_no_payload_hash_header_is_sent() -> None:
    view = signed_view("POST", URL + "/x", body=b"payload")
    assert view.header("x-amz-content-sha256") is None
    verifier().verify(view, now=NOW)
    with pytest.raises(SignatureDoesNotMatchError):
        verifier().verify(dataclasses.replace(view, body=b"payloaD"), now=NOW)


def test_signed_payload_hash_header_must_match_the_body() -> None:
    view = signed_view("PUT", URL + "/bucket/key", body=b"content", s3=True)
    assert view.header("x-amz-content-sha256") == hashlib.sha256(b"content").hexdigest()
    verifier(s3_style_paths=True).verify(view, now=NOW)
    error = expect(PayloadHashMismatchError, dataclasses.replace(view, body=b"tampered"), s3_style_paths=True)
    assert error.code == "XAmzContentSHA256Mismatch"


def _unsigned_payload_view(body: bytes, scheme: str) -> RequestView:
    return signed_view(
        "PUT", URL + "/up", body=body, headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}, scheme=scheme
    )


def test_unsigned_payload_needs_the_option_and_https_unless_the_body_is_empty() -> None:
    with_body = _unsigned_payload_view(b"stream", "https")
    error = expect(PayloadHashError, with_body)
    assert "UNSIGNED-PAYLOAD" in error.message
    verifier(allow_unsigned_payload=True).verify(with_body, now=NOW)
    expect(PayloadHashError, _unsigned_payload_view(b"stream", "http"), allow_unsigned_payload=True)
    verifier().verify(_unsigned_payload_view(b"", "http"), now=NOW)


@pytest.mark.parametrize(
    "declared", ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "abc", "A" * 64]
)
def test_streaming_and_malformed_payload_hashes_are_refused(declared: str) -> None:
    view = signed_view("PUT", URL + "/up", body=b"x", headers={"X-Amz-Content-SHA256": declared})
    expect(PayloadHashError, view, allow_unsigned_payload=True)


def test_body_size_is_capped_before_hashing() -> None:
    view = signed_view("POST", URL + "/x", body=b"x" * 1025)
    error = expect(RequestTooLargeError, view, max_body_bytes=1024)
    assert error.status_code == 413
    verifier(max_body_bytes=1025).verify(view, now=NOW)


def test_a_body_the_shell_did_not_buffer_fails_closed() -> None:
    view = dataclasses.replace(signed_view("POST", URL + "/x", body=b"data"), body=None)
    error = expect(PayloadHashError, view)
    assert "body was not made available" in error.message


# --- S11: presigned URLs ----------------------------------------------------------------------------------------


def test_botocore_presigned_url_verifies() -> None:
    view = signed_view("GET", URL + "/report?format=csv", presign=3600)
    assert b"X-Amz-Signature=" in view.query_string
    verified = verifier().verify(view, now=NOW + 3600)
    assert verified.presigned
    assert verified.signed_headers == ("host",)


def test_valid_until_bounds_a_replay_cache_entry() -> None:
    # S15: SigV4 has no nonce; the verifier says how long the same request stays acceptable.
    header_signed = signed_view("POST", URL + "/x", body=b"1")
    verified = verifier(max_skew=120).verify(header_signed, now=NOW)
    assert verified.valid_until == NOW + 120
    verifier(max_skew=120).verify(header_signed, now=verified.valid_until)
    assert verifier().verify(signed_view("GET", URL + "/x", presign=900), now=NOW).valid_until == NOW + 900


def test_presigned_expiry_edges() -> None:
    view = signed_view("GET", URL + "/x", presign=60)
    verifier().verify(view, now=NOW + 60)
    error = expect(SignatureExpiredError, view, now=NOW + 61)
    assert "Request has expired" in error.message
    verifier().verify(view, now=NOW - 300)
    expect(SignatureNotYetCurrentError, view, now=NOW - 301)


@pytest.mark.parametrize("expires", [1, 604800])
def test_presigned_expires_bounds_accepted(expires: int) -> None:
    verifier().verify(signed_view("GET", URL + "/x", presign=expires), now=NOW + expires)


@pytest.mark.parametrize("expires", ["0", "604801", "-1", "1.5", "abc", "", "+60", "99999999"])
def test_presigned_expires_must_be_a_whole_number_from_1_to_604800(expires: str) -> None:
    view = signed_view("GET", URL + "/x", presign=60)
    query = view.query_string.replace(b"X-Amz-Expires=60", b"X-Amz-Expires=" + expires.encode())
    error = expect(IncompleteSignatureError, dataclasses.replace(view, query_string=query))
    assert "1 to 604800" in error.message


@pytest.mark.parametrize(
    "param", ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders"]
)
def test_presigned_parameters_are_all_required(param: str) -> None:
    view = signed_view("GET", URL + "/x", presign=60)
    query = b"&".join(p for p in view.query_string.split(b"&") if not p.startswith(param.encode() + b"="))
    error = expect(IncompleteSignatureError, dataclasses.replace(view, query_string=query))
    assert param in error.message


def test_presigned_without_signature_is_rejected() -> None:
    view = signed_view("GET", URL + "/x", presign=60)
    query = view.query_string.split(b"&X-Amz-Signature=")[0]
    error = expect(IncompleteSignatureError, dataclasses.replace(view, query_string=query))
    assert "X-Amz-Signature" in error.message


def test_presigned_parameter_repeated_is_rejected() -> None:
    view = signed_view("GET", URL + "/x", presign=60)
    query = view.query_string + b"&X-Amz-Expires=60"
    error = expect(IncompleteSignatureError, dataclasses.replace(view, query_string=query))
    assert "repeats the X-Amz-Expires" in error.message


@pytest.mark.parametrize(
    ("old", "new"),
    [(b"format=csv", b"format=json"), (b"X-Amz-Expires=60", b"X-Amz-Expires=600"), (b"format=csv", b"format=csv&x=1")],
)
def test_presigned_query_tampering_is_rejected(old: bytes, new: bytes) -> None:
    view = signed_view("GET", URL + "/x?format=csv", presign=60)
    expect(SignatureDoesNotMatchError, dataclasses.replace(view, query_string=view.query_string.replace(old, new)))


def test_the_signature_parameter_is_not_part_of_what_is_signed_wherever_it_sits() -> None:
    view = signed_view("GET", URL + "/x?a=1", presign=60)
    rest, signature = view.query_string.split(b"&X-Amz-Signature=")
    moved = b"X-Amz-Signature=" + signature + b"&" + rest
    verifier().verify(dataclasses.replace(view, query_string=moved), now=NOW)


def test_s3_presigned_url_signs_unsigned_payload() -> None:
    view = signed_view("GET", URL + "/bucket/my%20key", presign=300, s3=True)
    verifier(s3_style_paths=True).verify(view, now=NOW)
    # UNSIGNED-PAYLOAD leaves a body unbound: without the option (and https) a body is refused.
    expect(PayloadHashError, dataclasses.replace(view, body=b"smuggled"), s3_style_paths=True)
    verifier(s3_style_paths=True, allow_unsigned_payload=True).verify(
        dataclasses.replace(view, body=b"upload"), now=NOW
    )


def test_presigned_request_binds_the_body_botocore_hashed() -> None:
    # botocore moves a (JSON or form) body into the query and signs the hash of the now empty body.
    view = signed_view("POST", URL + "/x", presign=60, body=b'{"a": "1"}')
    assert b"a=1&" in view.query_string and view.body == b""
    verifier().verify(view, now=NOW)
    expect(SignatureDoesNotMatchError, dataclasses.replace(view, body=b"smuggled"))


def test_presigned_request_must_sign_x_amz_headers_it_carries() -> None:
    view = signed_view("GET", URL + "/x", presign=60)
    expect(IncompleteSignatureError, dataclasses.replace(view, headers=view.headers + (("x-amz-meta", "1"),)))


# --- S12: session tokens ----------------------------------------------------------------------------------------


def _boto3_credentials(token: str | None) -> Any:
    session = boto3.Session(aws_access_key_id=TEMP_KEY_ID, aws_secret_access_key=TEMP_SECRET, aws_session_token=token)
    return session.get_credentials().get_frozen_credentials()


def test_boto3_temporary_credentials_verify_with_header_auth() -> None:
    frozen = _boto3_credentials(TOKEN)
    view = signed_view(
        "POST", URL + "/x", body=b"{}", key_id=frozen.access_key, secret=frozen.secret_key, token=frozen.token
    )
    assert view.header("x-amz-security-token") == TOKEN
    verified = verifier().verify(view, now=NOW)
    assert verified.credential is TEMP_CREDENTIAL
    assert "x-amz-security-token" in verified.signed_headers


def test_boto3_temporary_credentials_verify_presigned() -> None:
    frozen = _boto3_credentials(TOKEN)
    view = signed_view(
        "GET", URL + "/x", presign=60, key_id=frozen.access_key, secret=frozen.secret_key, token=frozen.token
    )
    assert b"X-Amz-Security-Token=" in view.query_string
    assert view.header("x-amz-security-token") is None
    assert verifier().verify(view, now=NOW).presigned


def test_temporary_key_without_its_token_is_rejected() -> None:
    view = signed_view("GET", URL + "/x", key_id=TEMP_KEY_ID, secret=TEMP_SECRET)
    error = expect(InvalidSecurityTokenError, view)
    assert "needs its session token" in error.message
    presigned = signed_view("GET", URL + "/x", key_id=TEMP_KEY_ID, secret=TEMP_SECRET, presign=60)
    expect(InvalidSecurityTokenError, presigned)


def test_temporary_key_with_another_token_is_rejected() -> None:
    for presign in (None, 60):
        view = signed_view(
            "GET", URL + "/x", key_id=TEMP_KEY_ID, secret=TEMP_SECRET, token=TOKEN + "x", presign=presign
        )
        error = expect(InvalidSecurityTokenError, view)
        assert error.code == "InvalidClientTokenId"
        assert TOKEN not in error.message


def test_a_token_with_a_long_term_key_is_rejected() -> None:
    error = expect(InvalidSecurityTokenError, signed_view("GET", URL + "/x", token=TOKEN))
    assert "long-term access key" in error.message


def test_expired_temporary_credential_is_rejected() -> None:
    view = signed_view("GET", URL + "/x", key_id=TEMP_KEY_ID, secret=TEMP_SECRET, token=TOKEN)
    assert TEMP_CREDENTIAL.expires_at is not None
    expired = {TEMP_KEY_ID: dataclasses.replace(TEMP_CREDENTIAL, expires_at=NOW)}
    error = expect(ExpiredTokenError, view, lookup=expired.get)
    assert error.code == "ExpiredToken"


def test_token_in_the_wrong_place_is_rejected() -> None:
    header_signed = signed_view(
        "GET", URL + "/x?X-Amz-Security-Token=t", key_id=TEMP_KEY_ID, secret=TEMP_SECRET, token=TOKEN
    )
    error = expect(IncompleteSignatureError, header_signed)
    assert "not in the query" in error.message
    presigned = signed_view(
        "GET",
        URL + "/x",
        key_id=TEMP_KEY_ID,
        secret=TEMP_SECRET,
        token=TOKEN,
        presign=60,
        headers={"X-Amz-Security-Token": TOKEN},
    )
    error = expect(IncompleteSignatureError, presigned)
    assert "query only" in error.message


def test_temporary_key_needs_its_token_in_the_directory() -> None:
    with pytest.raises(ConfigurationError, match="session_token"):
        SigningCredential("ASIATEMPORARYKEY", "secret")


# --- S13 / S14: unknown, inactive and wrong keys look the same and cost the same ------------------------------


class CountingHMAC:
    """Counts HMAC computations the verifier makes, and still computes them (a spy, not a mock)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real_new, real_digest = hmac.new, hmac.digest

        def new(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real_new(*args, **kwargs)

        def digest(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real_digest(*args, **kwargs)

        monkeypatch.setattr(hmac, "new", new)
        monkeypatch.setattr(hmac, "digest", digest)


def _outcome(view: RequestView, lookup: Any, counter: CountingHMAC) -> tuple[str, str, str, int]:
    counter.calls = 0
    with pytest.raises(SignatureError) as caught:
        verifier(lookup=lookup).verify(view, now=NOW)
    return type(caught.value).__name__, caught.value.code, caught.value.message, counter.calls


def test_unknown_inactive_and_wrong_keys_give_the_same_error_after_the_same_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view = signed_view("GET", URL + "/x?b=x,y")  # the query needs two canonical forms: the work is not trivial
    inactive = {KEY_ID: dataclasses.replace(CREDENTIAL, active=False)}
    wrong_secret = {KEY_ID: SigningCredential(KEY_ID, "another-secret")}
    counter = CountingHMAC(monkeypatch)
    outcomes = {
        "unknown": _outcome(view, {}.get, counter),
        "inactive": _outcome(view, inactive.get, counter),
        "wrong secret": _outcome(view, wrong_secret.get, counter),
        "wrong signature": _outcome(with_authorization(view, lambda a: a[:-4] + "0000"), DIRECTORY.get, counter),
    }
    assert len(set(outcomes.values())) == 1, outcomes
    name, code, message, calls = outcomes["unknown"]
    assert (name, code) == ("SignatureDoesNotMatchError", "SignatureDoesNotMatch")
    assert calls == 4 + 2  # a cold key derivation, then one signature per canonical query form


def test_a_warm_signing_key_saves_the_derivation_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    view = signed_view("GET", URL + "/x")
    check = verifier()
    counter = CountingHMAC(monkeypatch)
    check.verify(view, now=NOW)
    cold = counter.calls
    counter.calls = 0
    check.verify(view, now=NOW)
    assert (cold, counter.calls) == (5, 1)


def test_a_rotated_secret_is_never_served_from_the_cache() -> None:
    directory = dict(DIRECTORY)
    check = verifier(lookup=directory.get)
    view = signed_view("GET", URL + "/x")
    check.verify(view, now=NOW)
    directory[KEY_ID] = SigningCredential(KEY_ID, "rotated-secret")
    with pytest.raises(SignatureDoesNotMatchError):
        check.verify(view, now=NOW)
    check.verify(signed_view("GET", URL + "/x", secret="rotated-secret"), now=NOW)


def test_a_credential_the_lookup_returns_for_another_key_id_is_not_used() -> None:
    view = signed_view("GET", URL + "/x")
    expect(SignatureDoesNotMatchError, view, lookup=lambda key_id: SigningCredential("AKIDOTHER", SECRET))


def test_signature_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    view = signed_view("GET", URL + "/x")
    verifier().verify(view, now=NOW)
    signature = (view.header("authorization") or "")[-64:]
    assert (signature, signature) in compared


# --- S17: host binding ------------------------------------------------------------------------------------------


def test_host_allow_list() -> None:
    view = signed_view("GET", "https://API.example.com:8443/x")
    verifier(allowed_hosts=["api.example.com"]).verify(view, now=NOW)
    verifier(allowed_hosts=["api.example.com:8443"]).verify(view, now=NOW)
    error = expect(HostNotAllowedError, view, allowed_hosts=["other.example.com"])
    assert error.code == "HostNotAllowed"
    verifier(allowed_hosts=["[::1]"]).verify(signed_view("GET", "http://[::1]:8080/x"), now=NOW)


# --- recognizes / needs_body ------------------------------------------------------------------------------------


def test_recognizes_header_and_query_signatures_only() -> None:
    check = verifier()
    assert check.recognizes(signed_view("GET", URL + "/x"))
    assert check.recognizes(signed_view("GET", URL + "/x", presign=60))
    bare = RequestView(method="GET", raw_path=b"/x", headers=(("host", "h"),))
    assert not check.recognizes(bare)
    assert not check.recognizes(replace_header(bare, "authorization", "Bearer abc"))
    assert not check.recognizes(dataclasses.replace(bare, query_string=b"X-Other=1&x-amz-signature=1"))
    assert check.recognizes(replace_header(bare, "authorization", "AWS4-ECDSA-P256-SHA256 Credential=x"))
    assert check.recognizes(dataclasses.replace(bare, query_string=b"X%2DAmz-Signature=abc"))


def test_needs_body_only_when_the_payload_is_hashed() -> None:
    check = verifier(allow_unsigned_payload=True)
    bare = RequestView(method="GET", raw_path=b"/x", headers=(("host", "h"),))
    assert not check.needs_body(bare)
    assert check.needs_body(signed_view("POST", URL + "/x", body=b"x"))
    assert check.needs_body(signed_view("GET", URL + "/x", presign=60))
    assert not check.needs_body(_unsigned_payload_view(b"x", "https"))
    assert check.needs_body(_unsigned_payload_view(b"x", "http"))
    assert not check.needs_body(replace_header(signed_view("PUT", URL + "/x"), "x-amz-content-sha256", "STREAMING-X"))
    s3 = verifier(s3_style_paths=True, allow_unsigned_payload=True)
    assert not s3.needs_body(signed_view("GET", URL + "/b/k", presign=60, s3=True))
    assert verifier(s3_style_paths=True).needs_body(signed_view("GET", URL + "/b/k", presign=60, s3=True))


def test_a_request_without_sigv4_is_rejected_if_verified_anyway() -> None:
    error = expect(IncompleteSignatureError, RequestView(method="GET", raw_path=b"/x", headers=(("host", "h"),)))
    assert "no AWS Signature Version 4" in error.message


# --- fail closed, no secrets in output --------------------------------------------------------------------------


def test_an_unexpected_error_ends_as_a_signature_error_without_its_cause() -> None:
    def broken(key_id: str) -> SigningCredential | None:
        raise RuntimeError(f"db failed for {TOKEN}")

    error = expect(SignatureError, signed_view("GET", URL + "/x"), lookup=broken)
    assert error.status_code == 401
    assert error.code == "SignatureVerificationFailed"
    assert error.__cause__ is None and error.__suppress_context__
    assert TOKEN not in str(error)


def test_directory_outage_is_reported_as_such() -> None:
    def down(key_id: str) -> SigningCredential | None:
        raise ServiceUnavailableError("directory unreachable")

    expect(ServiceUnavailableError, signed_view("GET", URL + "/x"), lookup=down)


def test_secrets_never_appear_in_reprs_or_messages() -> None:
    view = signed_view("GET", URL + "/x", key_id=TEMP_KEY_ID, secret=TEMP_SECRET, token=TOKEN)
    verified = verifier().verify(view, now=NOW)
    for text in (repr(TEMP_CREDENTIAL), repr(verified), repr(verifier()), repr(view)):
        assert TEMP_SECRET not in text and TOKEN not in text
    assert verified.signature not in repr(verified)
    wrong = {TEMP_KEY_ID: dataclasses.replace(TEMP_CREDENTIAL, session_token="other-token")}
    error = expect(InvalidSecurityTokenError, view, lookup=wrong.get)
    assert TOKEN not in repr(error) and "other-token" not in str(error)


def test_every_error_is_an_authentication_failure_with_the_sigv4_scheme() -> None:
    errors: list[type[SignatureError]] = [
        IncompleteSignatureError,
        CredentialScopeError,
        SignatureExpiredError,
        SignatureNotYetCurrentError,
        PayloadHashError,
        HostNotAllowedError,
        InvalidSecurityTokenError,
    ]
    for error in errors:
        instance = error("message")
        assert (instance.status_code, instance.scheme) == (401, "AWS4-HMAC-SHA256")
    assert SignatureDoesNotMatchError().code == "SignatureDoesNotMatch"
    assert PayloadHashMismatchError().status_code == ExpiredTokenError().status_code == 401


# --- configuration ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"service": ""},
        {"service": "a/b"},
        {"regions": []},
        {"regions": "us-east-1"},
        {"regions": [""]},
        {"max_skew": 0},
        {"max_skew": float("nan")},
        {"max_body_bytes": -1},
        {"allowed_hosts": []},
        {"allowed_hosts": "api.example.com"},
    ],
)
def test_invalid_configuration_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        verifier(**options)


@pytest.mark.parametrize(("key_id", "secret"), [("", SECRET), ("has space", SECRET), ("x" * 129, SECRET), (KEY_ID, "")])
def test_invalid_credential_is_refused(key_id: str, secret: str) -> None:
    with pytest.raises(ConfigurationError):
        SigningCredential(key_id, secret)
