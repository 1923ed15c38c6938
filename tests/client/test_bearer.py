"""BearerAuth: a login session (password + one-time code) or an outside token from a supplier, attached to every
request, renewed before it ends (an injected clock) and once when a server answers 401 invalid_token; never a loop
of retries, never a streamed body sent twice."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sts._support import BOB, PASSWORD, Clock, code, idp_token

from iam_middleware import IAM
from iam_middleware.client import BearerAuth, SuppliedToken, TokenServiceClient

from ._support import BASE, STS, AsyncCounting, Counting, asgi_transport, wsgi_transport

pytestmark = pytest.mark.anyio


async def test_a_login_session_is_attached_and_renewed_before_it_ends(iam: IAM, clock: Clock) -> None:
    transport = AsyncCounting(asgi_transport(iam))
    async with httpx.AsyncClient(transport=transport) as sts_client:
        sts = TokenServiceClient(STS, service="orders", region="local", async_client=sts_client, clock=clock)
        session = sts.login("bob", password=lambda: PASSWORD, code=lambda: code(iam, "bob", clock.now), margin=60)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, auth=BearerAuth(session)) as client:
            answers = [await client.get("/orders/42") for _ in range(3)]
            clock.tick(3600 - 61)  # 61 s left of the hour: still fresh
            answers.append(await client.get("/orders/42"))
            clock.tick(1)
            answers.append(await client.get("/orders/42"))
    assert all(answer.status_code == 200 for answer in answers), answers[-1].text
    assert answers[0].json()["caller"] == BOB and answers[0].json()["mfa"] is True
    assert transport.calls == ["/sts/login", "/sts/login"]


def test_a_401_invalid_token_renews_the_token_once_and_sends_again(iam: IAM, clock: Clock) -> None:
    transport = Counting(wsgi_transport(iam))
    sts = TokenServiceClient(STS, service="orders", region="local", client=httpx.Client(transport=transport),
                             clock=clock)
    session = sts.login("bob", password=lambda: PASSWORD, code=lambda: code(iam, "bob", clock.now))
    with httpx.Client(transport=transport, base_url=BASE, auth=BearerAuth(session)) as client:
        assert client.get("/orders/42").status_code == 200
        assert client.post(STS + "/logout").status_code == 200  # the session ends on the server
        clock.tick(30)  # the next one-time code
        again = client.post("/orders/42", content=b"body in memory")
    assert again.status_code == 200 and again.json()["caller"] == BOB, again.text
    assert transport.paths == ["/sts/login", "/orders/42", "/sts/logout", "/orders/42", "/sts/login", "/orders/42"]


async def test_an_outside_token_is_renewed_from_the_exp_it_carries(iam: IAM, clock: Clock) -> None:
    issued: list[str] = []

    def supplier() -> str:
        issued.append(idp_token(clock.now, exp=int(clock.now) + 600))
        return issued[-1]

    auth = BearerAuth(SuppliedToken(supplier, margin=30, clock=clock))
    async with httpx.AsyncClient(transport=asgi_transport(iam), base_url=BASE, auth=auth) as client:
        statuses = [(await client.get("/orders/42")).status_code for _ in range(3)]
        clock.tick(569)
        statuses.append((await client.get("/orders/42")).status_code)
        assert len(issued) == 1
        clock.tick(1)
        response = await client.get("/orders/42")
    assert statuses == [200] * 4 and response.status_code == 200, response.text
    assert response.json()["caller"].startswith("arn:app:sts::111122223333:assumed-role/partner/")
    assert len(issued) == 2


class Refusing(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Answers every request with ``status`` and ``challenge``, consuming a streamed body as a network transport
    does (httpx's MockTransport would read it into memory first)."""

    def __init__(self, challenge: str, status: int = 401) -> None:
        self.challenge, self.status = challenge, status
        self.sent: list[str] = []  # the Authorization header of each request, as sent

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        for _ in request.stream:
            pass
        return self._answer(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        async for _ in request.stream:
            pass
        return self._answer(request)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.headers["authorization"])
        return httpx.Response(self.status, headers={"WWW-Authenticate": self.challenge})


INVALID = 'Bearer realm="iam-middleware", error="invalid_token", error_description="expired"'


def test_the_same_token_again_is_not_sent_a_second_time() -> None:
    transport = Refusing(INVALID)
    with httpx.Client(transport=transport, auth=BearerAuth(lambda: "always-this")) as client:
        assert client.get(BASE + "/x").status_code == 401
    assert len(transport.sent) == 1


@pytest.mark.parametrize(("challenge", "status"), [('Bearer realm="iam-middleware"', 401),
                                                   ('Bearer error="insufficient_scope"', 401),
                                                   ("AWS4-HMAC-SHA256", 401), (INVALID, 403)])
def test_other_refusals_are_not_retried(challenge: str, status: int) -> None:
    transport = Refusing(challenge, status)
    tokens = iter(["one", "two"])
    with httpx.Client(transport=transport, auth=BearerAuth(lambda: next(tokens))) as client:
        assert client.get(BASE + "/x").status_code == status
    assert len(transport.sent) == 1


async def test_a_streamed_body_is_not_sent_twice_but_its_refused_token_is_dropped() -> None:
    transport = Refusing(INVALID)
    tokens = iter(["one", "two", "three"])

    async def stream() -> AsyncIterator[bytes]:
        yield b"once"

    async with httpx.AsyncClient(transport=transport, auth=BearerAuth(lambda: next(tokens))) as client:
        assert (await client.put(BASE + "/x", content=stream())).status_code == 401
        assert len(transport.sent) == 1
        assert (await client.put(BASE + "/x", content=b"in memory")).status_code == 401
    assert transport.sent == ["Bearer one", "Bearer two", "Bearer three"]


@pytest.mark.parametrize("token", ["opaque-token", "a.b.c", "e30.e30.x",  # {} as claims
                                   "eyJhbGciOiJub25lIn0.eyJleHAiOiJzb29uIn0.x"])  # {"exp": "soon"}
def test_a_token_without_a_readable_exp_is_kept_until_refused(clock: Clock, token: str) -> None:
    supplied: list[str] = []

    def supplier() -> str:
        supplied.append(token)
        return token

    source = SuppliedToken(supplier, clock=clock)
    assert source.token() == token
    clock.tick(86400 * 365)
    assert source.token() == token and len(supplied) == 1
    source.invalidate(token)
    assert source.token() == token and len(supplied) == 2
