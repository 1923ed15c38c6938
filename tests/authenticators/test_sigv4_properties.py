"""Property tests: whatever botocore signs verifies, and any single-byte change to a signed part fails."""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Iterator
from urllib.parse import quote, unquote_plus

import pytest
from botocore.utils import normalize_url_path
from hypothesis import given, settings
from hypothesis import strategies as st

from iam_middleware._exceptions import IAMError, SignatureError
from iam_middleware._request import RequestView
from iam_middleware.authenticators._sigv4_canonical import aws_query, normalized_path, split_query

from .test_sigv4_helpers import NOW, URL, freeze_botocore, signed_view, verifier

UNRESERVED = string.ascii_letters + string.digits + "-._~"
ALNUM = string.ascii_letters + string.digits
ESCAPE = st.integers(0, 255).map(lambda byte: f"%{byte:02X}")
PATH_CHARS = st.sampled_from(UNRESERVED + "!$&'()*+,;=:@")
QUERY_KEY_CHARS = st.sampled_from(UNRESERVED + "!$'()*,;:@/?+")
QUERY_VALUE_CHARS = st.sampled_from(UNRESERVED + "!$'()*,;:@/?+=")

SEGMENT = st.lists(st.one_of(PATH_CHARS, ESCAPE), min_size=1, max_size=6).map("".join)
CLEAN_PATH = st.lists(SEGMENT.filter(lambda s: s not in (".", "..")), min_size=1, max_size=4).map(
    lambda segments: "/" + "/".join(segments)
)
ANY_PATH = st.lists(st.one_of(SEGMENT, st.sampled_from([".", "..", ""])), min_size=1, max_size=5).map(
    lambda segments: "/" + "/".join(segments)
)
QUERY = st.lists(
    st.tuples(
        st.lists(st.one_of(QUERY_KEY_CHARS, ESCAPE), max_size=5).map("".join),
        st.none() | st.lists(st.one_of(QUERY_VALUE_CHARS, ESCAPE), max_size=6).map("".join),
    ),
    max_size=4,
).map(lambda pairs: "&".join(key if value is None else f"{key}={value}" for key, value in pairs))
HEADERS = st.dictionaries(
    st.text(string.ascii_lowercase, min_size=1, max_size=6).map(lambda name: "x-p-" + name),
    st.text(st.sampled_from(string.printable[:95] + "\t"), max_size=12),
    max_size=3,
)
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"])


@pytest.fixture(scope="module", autouse=True)
def _frozen_botocore() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        freeze_botocore(patch)
        yield


def _url(path: str, query: str) -> str:
    return URL + path + ("?" + query if query else "")


@settings(deadline=None, max_examples=150)
@given(method=METHODS, path=ANY_PATH, query=QUERY, headers=HEADERS, body=st.binary(max_size=64))
def test_whatever_botocore_signs_verifies(
    method: str, path: str, query: str, headers: dict[str, str], body: bytes
) -> None:
    view = signed_view(method, _url(path, query), body=body, headers=headers)
    verifier().verify(view, now=NOW)


@settings(deadline=None, max_examples=60)
@given(path=ANY_PATH, query=QUERY, headers=HEADERS)
def test_whatever_botocore_presigns_verifies(path: str, query: str, headers: dict[str, str]) -> None:
    view = signed_view("GET", _url(path, query), headers=headers, presign=900)
    verifier().verify(view, now=NOW + 900)


def _mutable_positions(text: str) -> list[int]:
    """Positions of letters and digits outside a %XX escape: changing one always changes what the server reads."""
    return [index for index, char in enumerate(text) if char in ALNUM and "%" not in text[max(0, index - 2) : index]]


def _replace_at(text: str, index: int, char: str) -> str:
    return text[:index] + char + text[index + 1 :]


@settings(deadline=None, max_examples=200)
@given(
    method=METHODS,
    path=CLEAN_PATH,
    query=QUERY,
    headers=HEADERS,
    body=st.binary(max_size=32),
    target=st.sampled_from(["method", "path", "query", "header", "body", "signature", "date"]),
    data=st.data(),
)
def test_any_single_byte_change_to_a_signed_part_fails(
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    target: str,
    data: st.DataObject,
) -> None:
    view = signed_view(method, _url(path, query), body=body, headers=headers)
    verifier().verify(view, now=NOW)

    def change(text: str) -> str | None:
        positions = _mutable_positions(text)
        if not positions:
            return None
        index = data.draw(st.sampled_from(positions))
        return _replace_at(text, index, data.draw(st.sampled_from(ALNUM.replace(text[index], ""))))

    mutated: RequestView | None = None
    if target == "method":
        mutated = dataclasses.replace(view, method=data.draw(METHODS.filter(lambda m: m != method)))
    elif target == "path":
        new_path = change(path)
        mutated = None if new_path is None else dataclasses.replace(view, raw_path=new_path.encode())
    elif target == "query":
        new_query = change(query)
        mutated = None if new_query is None else dataclasses.replace(view, query_string=new_query.encode())
    elif target == "header":
        mutated = _mutate_header(view, "x-p-", change)
    elif target == "body":
        assert view.body is not None
        if body:
            index = data.draw(st.integers(0, len(body) - 1))
            byte = data.draw(st.integers(0, 255).filter(lambda b: b != body[index]))
            mutated = dataclasses.replace(view, body=body[:index] + bytes([byte]) + body[index + 1 :])
        else:
            mutated = dataclasses.replace(view, body=b"\x00")
    elif target == "signature":
        mutated = _mutate_header(view, "authorization", lambda value: _flip_last_hex_digit(value, data))
    else:
        mutated = _mutate_header(view, "x-amz-date", change)
    if mutated is None:
        return  # nothing to change in this component (e.g. no query); other examples cover it
    with pytest.raises(SignatureError):
        verifier().verify(mutated, now=NOW)


def _mutate_header(view: RequestView, prefix: str, change: object) -> RequestView | None:
    assert callable(change)
    headers = list(view.headers)
    for index, (name, value) in enumerate(headers):
        if name.startswith(prefix):
            new_value = change(value)
            if new_value is None:
                continue
            headers[index] = (name, new_value)
            return dataclasses.replace(view, headers=tuple(headers))
    return None


def _flip_last_hex_digit(value: str, data: st.DataObject) -> str:
    index = data.draw(st.integers(len(value) - 64, len(value) - 1))
    return _replace_at(value, index, data.draw(st.sampled_from("0123456789abcdef".replace(value[index], ""))))


@settings(deadline=None, max_examples=300)
@given(path=st.one_of(ANY_PATH, st.text(st.sampled_from(UNRESERVED + "/%."), max_size=12)))
def test_canonical_path_is_botocores(path: str) -> None:
    expected = quote(normalize_url_path(path), safe="/~").encode()
    assert normalized_path(path.encode()) == expected


@settings(deadline=None, max_examples=300)
@given(query=QUERY)
def test_aws_query_form_equals_decoding_then_botocore_params_encoding(query: str) -> None:
    pairs = [(key, value) for key, _, value in (piece.partition("=") for piece in query.split("&"))] if query else []
    decoded = [
        (unquote_plus(key, errors="surrogateescape"), unquote_plus(value, errors="surrogateescape"))
        for key, value in pairs
    ]
    expected = "&".join(
        f"{key}={value}"
        for key, value in sorted(
            (
                quote(key.encode("utf-8", "surrogateescape"), safe="-_.~"),
                quote(value.encode("utf-8", "surrogateescape"), safe="-_.~"),
            )
            for key, value in decoded
        )
    )
    assert aws_query(split_query(query.encode())) == expected.encode()


AUTH_PREFIXES = st.sampled_from(["", "AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256 Credential=", "AWS4-X "])
GARBAGE = st.text(st.characters(codec="latin-1"), max_size=80)
QUERY_NAMES = st.sampled_from(
    [b"X-Amz-Algorithm", b"X-Amz-Credential", b"X-Amz-Date", b"X-Amz-Expires", b"X-Amz-SignedHeaders"]
    + [b"X-Amz-Signature", b"X-Amz-Security-Token", b"x", b""]
)


@settings(deadline=None, max_examples=300)
@given(
    prefix=AUTH_PREFIXES,
    authorization=GARBAGE,
    query=st.lists(st.tuples(QUERY_NAMES, st.binary(max_size=20)), max_size=8),
    extra=st.lists(st.tuples(st.sampled_from(["x-amz-date", "date", "host", "x-amz-content-sha256"]), GARBAGE)),
    use_header=st.booleans(),
    body=st.none() | st.binary(max_size=8),
)
def test_malformed_input_gets_a_precise_error_never_a_crash(
    prefix: str,
    authorization: str,
    query: list[tuple[bytes, bytes]],
    extra: list[tuple[str, str]],
    use_header: bool,
    body: bytes | None,
) -> None:
    headers = (("authorization", prefix + authorization),) if use_header else ()
    view = RequestView(
        method="GET",
        raw_path=b"/x",
        query_string=b"&".join(key + b"=" + value for key, value in query),
        headers=headers + (("host", "example.amazonaws.com"), *extra),
        body=body,
    )
    with pytest.raises(IAMError) as caught:
        verifier().verify(view, now=NOW)
    # Every rejection comes from a named check, not from the catch-all that turns a crash into a 401.
    assert caught.value.code != "SignatureVerificationFailed"
