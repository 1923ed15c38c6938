"""SigV4Auth against the real apps in process: IAMMiddleware through httpx's ASGI transport (async client) and
IAMFlask through its WSGI transport (sync client), with long-term keys, temporary credentials, bodies in memory
and streamed, UNSIGNED-PAYLOAD where the directory allows it, and one renewal on an ExpiredToken answer."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from sts._support import ALICE, ALICE_KEY, PARTNER, Clock, demo_data, make_iam

from iam_middleware import IAM
from iam_middleware.client import Credentials, SigV4Auth, TokenServiceClient

from ._support import BASE, STS, AsyncCounting, Counting, asgi_transport, wsgi_transport

pytestmark = pytest.mark.anyio
ALICE_CREDENTIALS = Credentials(*ALICE_KEY)
BODY = b'{"item": "teapot"}' * 100
SESSION = "arn:app:sts::111122223333:assumed-role/partner/svc-a"


def signer(clock: Clock, credentials: Credentials = ALICE_CREDENTIALS, *, unsigned_payload: bool = False) -> SigV4Auth:
    return SigV4Auth(credentials, service="orders", region="local", unsigned_payload=unsigned_payload, clock=clock)


async def pieces() -> AsyncIterator[bytes]:
    for start in range(0, len(BODY), 500):
        yield BODY[start:start + 500]


def sync_pieces() -> Iterator[bytes]:
    yield from (BODY[start:start + 500] for start in range(0, len(BODY), 500))


async def test_async_client_through_the_middleware(iam: IAM, clock: Clock) -> None:
    async with httpx.AsyncClient(transport=asgi_transport(iam), base_url=BASE, auth=signer(clock)) as client:
        got = await client.get("/orders/42", params=[("b", "2"), ("a", "x y"), ("a", "é")])
        posted = await client.post("/orders/42", content=BODY, headers={"content-type": "application/json"})
        streamed = await client.put("/orders/42", content=pieces())
    assert got.status_code == 200, got.text
    assert got.json()["caller"] == ALICE and got.json()["mfa"] is None  # a long-term key carries no MFA
    for response in (posted, streamed):
        assert response.status_code == 200, response.text
        assert response.json()["sha256"] == hashlib.sha256(BODY).hexdigest()


def test_sync_client_through_flask(iam: IAM, clock: Clock) -> None:
    with httpx.Client(transport=wsgi_transport(iam), base_url=BASE, auth=signer(clock)) as client:
        got = client.get("/orders/42", params={"q": "a&b=c"})
        # A stream of known length (WSGI reads no body without Content-Length, and httpx's WSGI transport sends
        # a chunked body without marking its end).
        streamed = client.put("/orders/42", content=sync_pieces(), headers={"content-length": str(len(BODY))})
    assert got.status_code == 200 and got.json()["caller"] == ALICE, got.text
    assert streamed.status_code == 200 and streamed.json()["sha256"] == hashlib.sha256(BODY).hexdigest()


async def test_a_wrong_secret_is_refused(iam: IAM, clock: Clock) -> None:
    wrong = Credentials(ALICE_KEY[0], "not-the-secret")
    async with httpx.AsyncClient(transport=asgi_transport(iam), base_url=BASE, auth=signer(clock, wrong)) as client:
        response = await client.get("/orders/42")
    assert response.status_code == 401 and response.json()["error"] == "SignatureDoesNotMatch"


async def test_unsigned_payload_is_refused_unless_the_directory_allows_it(clock: Clock) -> None:
    data = demo_data()
    results = {}
    for allowed in (False, True):
        data["settings"]["allow_unsigned_payload"] = allowed
        iam = make_iam(clock, data)
        auth = signer(clock, unsigned_payload=True)
        async with httpx.AsyncClient(transport=asgi_transport(iam), base_url=BASE, auth=auth) as client:
            results[allowed] = await client.put("/orders/42", content=pieces())
    assert results[False].status_code == 401 and results[False].json()["error"] == "InvalidPayloadHash"
    assert results[True].status_code == 200, results[True].text
    assert results[True].json()["sha256"] == hashlib.sha256(BODY).hexdigest()


async def test_temporary_credentials_from_assume_role_sign_as_the_role_session(iam: IAM, clock: Clock) -> None:
    transport = asgi_transport(iam)
    async with httpx.AsyncClient(transport=transport) as sts_client:
        sts = TokenServiceClient(STS, service="orders", region="local", async_client=sts_client, clock=clock)
        role = sts.assume_role(ALICE_CREDENTIALS, PARTNER, "svc-a")
        async with httpx.AsyncClient(transport=transport, base_url=BASE, auth=sts.signer(role)) as client:
            response = await client.post("/orders/42", content=BODY)
    assert response.status_code == 200, response.text
    assert response.json()["caller"] == SESSION


def late(clock: Clock) -> Callable[[], float]:
    """A client clock 200 s behind the server's (inside the 300 s signing window): it still believes credentials
    fresh that the server has already seen expire."""
    return lambda: clock.now - 200


async def test_an_expired_token_answer_renews_the_credentials_and_sends_once_more(iam: IAM, clock: Clock) -> None:
    transport = AsyncCounting(asgi_transport(iam))
    async with httpx.AsyncClient(transport=transport) as sts_client:
        sts = TokenServiceClient(STS, service="orders", region="local", async_client=sts_client, clock=late(clock))
        role = sts.assume_role(ALICE_CREDENTIALS, PARTNER, "svc-a", duration=900, margin=60)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, auth=sts.signer(role)) as client:
            first = await client.get("/orders/42")
            clock.tick(950)
            second = await client.post("/orders/42", content=BODY)
    assert first.status_code == 200 and second.status_code == 200, second.text
    # The refused request went once more, after one renewal.
    assert transport.paths == ["/sts/AssumeRole", "/orders/42", "/orders/42", "/sts/AssumeRole", "/orders/42"]


def test_an_expired_token_answer_renews_the_credentials_with_a_sync_client_too(iam: IAM, clock: Clock) -> None:
    transport = Counting(wsgi_transport(iam))
    with httpx.Client(transport=transport) as sts_client:
        sts = TokenServiceClient(STS, service="orders", region="local", client=sts_client, clock=late(clock))
        role = sts.assume_role(ALICE_CREDENTIALS, PARTNER, "svc-a", duration=900, margin=60)
        with httpx.Client(transport=transport, base_url=BASE, auth=sts.signer(role)) as client:
            first = client.get("/orders/42")
            clock.tick(950)
            second = client.post("/orders/42", content=BODY)
    assert first.status_code == 200 and second.status_code == 200, second.text
    assert transport.paths == ["/sts/AssumeRole", "/orders/42", "/orders/42", "/sts/AssumeRole", "/orders/42"]


async def test_an_unsigned_stream_is_not_sent_twice_but_the_expired_credentials_are_dropped(clock: Clock) -> None:
    data = demo_data()
    data["settings"]["allow_unsigned_payload"] = True
    transport = AsyncCounting(asgi_transport(make_iam(clock, data)))

    async with httpx.AsyncClient(transport=transport) as sts_client:
        sts = TokenServiceClient(STS, service="orders", region="local", async_client=sts_client, clock=late(clock))
        role = sts.assume_role(ALICE_CREDENTIALS, PARTNER, "svc-a", duration=900, margin=60)
        auth = SigV4Auth(role, service="orders", region="local", unsigned_payload=True, clock=late(clock))
        async with httpx.AsyncClient(transport=transport, base_url=BASE, auth=auth) as client:
            assert (await client.get("/orders/42")).status_code == 200
            clock.tick(950)
            streamed = await client.put("/orders/42", content=pieces())
            after = await client.get("/orders/42")
    assert streamed.status_code == 401 and streamed.json()["error"] == "ExpiredToken"
    assert after.status_code == 200
    assert transport.paths == ["/sts/AssumeRole", "/orders/42", "/orders/42", "/sts/AssumeRole", "/orders/42"]
