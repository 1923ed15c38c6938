"""SigV4Auth signs what httpx really sends exactly as botocore's SigV4Auth signs the same request at the same
instant, and the project's own verifier (strict: no verbatim fallback) accepts it, for any path, query, headers
and body (hypothesis), with the sync and the async client."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import botocore.auth
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sts._support import START

from iam_middleware.authenticators import SigningCredential, SigV4Verifier
from iam_middleware.client import Credentials, SigV4Auth

from ._support import BASE, Capture, botocore_authorization, view_of

KEY = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
TEMPORARY = Credentials("ASIAEXAMPLETEMPORARY", "temporary/secret+KEY000000000000000000",
                        "IQoJb3JpZ2luX2VjEXAMPLE//session+token/with=base64==", START + 3600)
SERVICE, REGION = "orders", "local"


@pytest.fixture(scope="module", autouse=True)
def _frozen_botocore() -> Iterator[None]:
    frozen = datetime.datetime.fromtimestamp(START, datetime.UTC).replace(tzinfo=None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: frozen)
        yield


def verifier(**options: Any) -> SigV4Verifier:
    known = {key.access_key_id: SigningCredential(key.access_key_id, key.secret_access_key,
                                                  session_token=key.session_token, expires_at=key.expires_at)
             for key in (KEY, TEMPORARY)}
    return SigV4Verifier(service=SERVICE, regions=[REGION], lookup=known.get, **options)


STRICT = verifier()


def send(method: str, url: str, *, credentials: Credentials = KEY, via: str = "sync", unsigned_payload: bool = False,
         **options: Any) -> tuple[httpx.Request, bytes]:
    """Send through SigV4Auth with a sync or async client; the request as it reached the transport, and its body."""
    capture = Capture()
    auth = SigV4Auth(credentials, service=SERVICE, region=REGION, unsigned_payload=unsigned_payload,
                     clock=lambda: START)
    if via == "sync":
        with httpx.Client(transport=httpx.MockTransport(capture.handler), auth=auth) as client:
            client.request(method, url, **options)
    else:
        async def run() -> None:
            async with httpx.AsyncClient(transport=httpx.MockTransport(capture.async_handler), auth=auth) as client:
                await client.request(method, url, **options)

        asyncio.run(run())
    return capture.sent[0], capture.bodies[0]


def check(sent: httpx.Request, body: bytes, credentials: Credentials = KEY, *, unsigned_payload: bool = False,
          checker: SigV4Verifier = STRICT) -> None:
    assert sent.headers["authorization"] == botocore_authorization(
        sent, credentials, service=SERVICE, region=REGION, unsigned_payload=unsigned_payload)
    verified = checker.verify(view_of(sent, body), now=START)
    assert verified.access_key_id == credentials.access_key_id


# Any text but '?' and '#' (they would end the path); httpx encodes the rest, '%' escapes valid or not included.
path_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"], exclude_characters="?#"),
                    max_size=12)
paths = st.lists(st.one_of(path_text, st.sampled_from([".", "..", "", "%2F", "%zz", "~a", "a b"])), max_size=5)
query_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
reserved = st.sampled_from(["&", "=", "+", ";", ",", "/", "?", ":", "@", "!", "$", "'", "(", ")", "*", "%", "%41",
                            "%zz", " ", "é", "☃", "[", "]"])
pieces = st.lists(st.one_of(query_text, reserved), max_size=4).map("".join)
# httpx refuses control characters in a URL it is given as text; in params it encodes them.
url_pieces = st.lists(st.one_of(st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"],
                                                      exclude_characters="#"), max_size=8), reserved),
                      max_size=4).map("".join)
params = st.lists(st.tuples(st.sampled_from(["a", "b", "A", "list", "é"]) | pieces, pieces), max_size=6)
raw_queries = st.lists(st.one_of(st.sampled_from(["a=1", "a=2", "b", "list=x,y", "e=", "=v", "x=a+b", "k=%20",
                                                  "z=%C3%A9", "&"]), url_pieces),
                       max_size=5).map("&".join)
header_names = st.sampled_from(["x-one", "X-Two", "x-custom-header", "content-type", "accept", "x-one"])
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e) | st.sampled_from(["\t", " "]),
                    max_size=20)
latin1 = st.binary(max_size=12).map(lambda raw: bytes(b for b in raw if b >= 0x20 and b != 0x7f))
header_values = st.one_of(printable, latin1)
headers = st.lists(st.tuples(header_names, header_values), max_size=6)


@settings(deadline=None, max_examples=150)
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]), segments=paths, query=params,
       headers=headers, body=st.binary(max_size=300), via=st.sampled_from(["sync", "async"]),
       temporary=st.booleans())
def test_matches_botocore_and_verifies_for_params(method: str, segments: list[str], query: list[tuple[str, str]],
                                                  headers: list[tuple[str, str | bytes]], body: bytes, via: str,
                                                  temporary: bool) -> None:
    credentials = TEMPORARY if temporary else KEY
    sent, received = send(method, BASE + "/" + "/".join(segments), params=query, headers=headers, content=body,
                          credentials=credentials, via=via)
    assert received == body
    check(sent, received, credentials)


@settings(deadline=None, max_examples=150)
@given(segments=paths, query=raw_queries, headers=headers, body=st.binary(max_size=100))
def test_matches_botocore_and_verifies_for_queries_written_in_the_url(segments: list[str], query: str,
                                                                     headers: list[tuple[str, str | bytes]],
                                                                     body: bytes) -> None:
    sent, received = send("POST", f"{BASE}/{'/'.join(segments)}?{query}", headers=headers, content=body)
    check(sent, received)


def chunks(body: bytes) -> Iterator[bytes]:
    yield from (body[i:i + 7] for i in range(0, len(body), 7))


async def achunks(body: bytes) -> AsyncIterator[bytes]:
    for piece in chunks(body):
        yield piece


@settings(deadline=None, max_examples=40)
@given(body=st.binary(min_size=1, max_size=200), via=st.sampled_from(["sync", "async"]))
def test_a_streamed_body_is_read_and_hashed_before_signing(body: bytes, via: str) -> None:
    stream = chunks(body) if via == "sync" else achunks(body)
    sent, received = send("PUT", BASE + "/orders/42", content=stream, via=via)
    assert received == body and "x-amz-content-sha256" not in sent.headers
    assert sent.headers["transfer-encoding"] == "chunked"  # still streamed on the wire, and left unsigned
    check(sent, received)


@pytest.mark.parametrize("via", ["sync", "async"])
def test_unsigned_payload_streams_over_https_and_matches_botocore(via: str) -> None:
    body = b"x" * 1000
    stream = chunks(body) if via == "sync" else achunks(body)
    sent, received = send("PUT", BASE + "/orders/42", content=stream, via=via, unsigned_payload=True)
    assert sent.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD" and received == body
    check(sent, received, unsigned_payload=True, checker=verifier(allow_unsigned_payload=True))
    with pytest.raises(Exception, match="UNSIGNED-PAYLOAD") as refused:  # a verifier that does not allow it
        STRICT.verify(view_of(sent, received), now=START)
    assert type(refused.value).__name__ == "PayloadHashError"


def test_unsigned_payload_is_never_used_over_plain_http_nor_for_a_body_in_memory() -> None:
    sent, received = send("PUT", "http://api.example/orders/42", content=chunks(b"abc" * 9), unsigned_payload=True)
    assert "x-amz-content-sha256" not in sent.headers
    check(sent, received)
    sent, received = send("PUT", BASE + "/orders/42", content=b"in memory", unsigned_payload=True)
    assert "x-amz-content-sha256" not in sent.headers
    check(sent, received)


def test_a_declared_payload_hash_is_signed_as_given_and_the_stream_is_not_read_first() -> None:
    body = b"known ahead" * 50
    declared = hashlib.sha256(body).hexdigest()
    sent, received = send("PUT", BASE + "/orders/42", content=chunks(body),
                          headers={"X-Amz-Content-SHA256": declared})
    assert received == body
    check(sent, received)


def test_an_existing_date_header_is_signed_at_the_signing_time_as_botocore_does() -> None:
    sent, received = send("GET", BASE + "/orders/42", headers={"Date": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert "x-amz-date" not in sent.headers and sent.headers["date"] == "Thu, 15 Jan 2026 12:00:00 -0000"
    check(sent, received)


def test_repeated_headers_are_joined_and_a_retry_signs_once_more_without_duplicates() -> None:
    auth = SigV4Auth(TEMPORARY, service=SERVICE, region=REGION, clock=lambda: START)
    request = httpx.Request("GET", BASE + "/x", headers=[("X-Rep", "1"), ("x-rep", " 2  3 ")])
    for _ in range(2):  # the flow signs the same request object again on a retry
        flow = auth.sync_auth_flow(request)
        sent = next(flow)
        flow.close()
    assert sent.headers.get_list("x-amz-security-token") == [TEMPORARY.session_token]
    assert len(sent.headers.get_list("authorization")) == 1 and len(sent.headers.get_list("x-amz-date")) == 1
    check(sent, b"", TEMPORARY)
