"""The middleware's answer to exact repeats of a recently allowed request is always the answer a fresh decision
would give: it ends with the credential's validity, the session revocation bound and any reload, and is never kept
for denials, clock-dependent decisions or SigV4."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from iam_middleware import IAM, DirectoryReloader, IAMMiddleware, permission
from iam_middleware.testing import session_token

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
T0 = 1_800_000_000.0
IDP_SECRET = "demo-idp-hmac-secret-0123456789abcdef0123"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(tmp_path: Path) -> tuple[IAM, Clock, Callable[[], httpx.AsyncClient], Path]:
    folder = tmp_path / "ex"
    shutil.copytree(EXAMPLES, folder)
    clock = Clock()
    iam = IAM.from_file(folder / "iam.toml", clock=clock)

    @permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")
    async def get_order(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.user.arn)

    app = IAMMiddleware(Starlette(routes=[Route("/orders/{order_id}", get_order)]), iam=iam)
    app.audit()

    def client() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver")

    return iam, clock, client, folder


def partner_token(exp: float) -> str:
    return jwt.encode({"iss": "https://idp.example", "aud": "orders-api", "sub": "p-1", "exp": int(exp),
                       "iat": int(T0)}, IDP_SECRET, algorithm="HS256")


async def test_a_repeat_ends_when_the_token_expires(setup: tuple[IAM, Clock, Callable[[], httpx.AsyncClient], Path]
                                                    ) -> None:
    iam, clock, client, _ = setup
    headers = {"Authorization": "Bearer " + partner_token(T0 + 10)}
    async with client() as http:
        assert (await http.get("/orders/42", headers=headers)).status_code == 200
        assert (await http.get("/orders/42", headers=headers)).status_code == 200
        clock.now = T0 + 10 + 60  # the provider's leeway (60 s) past exp: the verifier refuses it from here
        assert (await http.get("/orders/42", headers=headers)).status_code == 401


async def test_a_revoked_session_stops_within_the_session_cache_bound(
    setup: tuple[IAM, Clock, Callable[[], httpx.AsyncClient], Path]
) -> None:
    iam, clock, client, _ = setup
    token = session_token(iam, "alice")
    headers = {"Authorization": "Bearer " + token}
    async with client() as http:
        assert (await http.get("/orders/42", headers=headers)).status_code == 200
        claims = iam.credentials.sessions.verify(token, now=clock.now)
        iam.credentials.sessions.revoke(claims.session_id)
        clock.now += iam.settings.session_cache_seconds
        assert (await http.get("/orders/42", headers=headers)).status_code == 401


@pytest.mark.directory_file
async def test_a_reload_that_removes_the_permission_takes_effect_on_the_next_repeat(
    setup: tuple[IAM, Clock, Callable[[], httpx.AsyncClient], Path]
) -> None:
    iam, clock, client, folder = setup
    headers = {"Authorization": "Bearer " + partner_token(T0 + 3600)}
    async with client() as http:
        assert (await http.get("/orders/42", headers=headers)).status_code == 200
        text = (folder / "iam.toml").read_text()
        granted = 'max_session_duration = 3600\npolicies = ["OrdersReadOnly"]'  # the role partner's grant
        assert text.count(granted) == 1
        (folder / "iam.toml").write_text(text.replace(granted, 'max_session_duration = 3600\npolicies = []'))
        assert DirectoryReloader(iam).reload().ok
        assert (await http.get("/orders/42", headers=headers)).status_code == 403


@pytest.mark.directory_file
async def test_a_denial_is_never_reused_after_a_grant(setup: tuple[IAM, Clock, Callable[[], httpx.AsyncClient], Path]
                                                      ) -> None:
    iam, clock, client, folder = setup
    headers = {"Authorization": "Bearer " + partner_token(T0 + 3600)}
    policy = folder / "policies" / "orders-read-only.json"
    original = policy.read_text()
    policy.write_text(original.replace('"orders:GetOrder", ', ""))
    reloader = DirectoryReloader(iam)
    assert reloader.reload().ok
    async with client() as http:
        assert (await http.get("/orders/42", headers=headers)).status_code == 403
        policy.write_text(original)
        assert reloader.reload().ok
        assert (await http.get("/orders/42", headers=headers)).status_code == 200


async def test_clock_dependent_decisions_are_decided_afresh(tmp_path: Path) -> None:
    folder = tmp_path / "ex"
    shutil.copytree(EXAMPLES, folder)
    policy = folder / "policies" / "orders-read-only.json"
    policy.write_text('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder", '
                      '"Resource": "*", "Condition": {"NumericLessThan": {"aws:EpochTime": "' + str(int(T0 + 5))
                      + '"}}}]}')
    clock = Clock()
    iam = IAM.from_file(folder / "iam.toml", clock=clock)

    @permission("orders:GetOrder", resource="*")
    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = IAMMiddleware(Starlette(routes=[Route("/x", endpoint)]), iam=iam)
    headers = {"Authorization": "Bearer " + partner_token(T0 + 3600)}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://t") as http:
        assert (await http.get("/x", headers=headers)).status_code == 200
        clock.now = T0 + 5
        assert (await http.get("/x", headers=headers)).status_code == 403


async def test_method_override_headers_are_stripped_from_repeats_too(tmp_path: Path) -> None:
    folder = tmp_path / "ex"
    shutil.copytree(EXAMPLES, folder)
    iam = IAM.from_file(folder / "iam.toml", clock=Clock())

    @permission("orders:GetOrder", resource="*")
    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.headers.get("x-http-method-override")))

    app = IAMMiddleware(Starlette(routes=[Route("/x", endpoint)]), iam=iam)
    headers = {"Authorization": "Bearer " + partner_token(T0 + 3600), "X-HTTP-Method-Override": "DELETE"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://t") as http:
        for _ in range(3):  # the first decides; the repeats are answered from the recent decision
            response = await http.get("/x", headers=headers)
            assert response.status_code == 200 and response.text == "None"


@pytest.mark.directory_file
async def test_a_request_in_flight_finishes_on_the_snapshot_it_began_with(tmp_path: Path) -> None:
    folder = tmp_path / "ex"
    shutil.copytree(EXAMPLES, folder)
    iam = IAM.from_file(folder / "iam.toml", clock=Clock())
    reloader = DirectoryReloader(iam)
    policy = folder / "policies" / "orders-read-only.json"

    @permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")
    async def get_order(request: Request) -> PlainTextResponse:
        # A reload lands while this request runs: it removes GetOrder from the partner's policies.
        policy.write_text(policy.read_text().replace('"orders:GetOrder", ', ""))
        assert reloader.reload().ok
        again = iam.authorize(request.user, "orders:GetOrder", "arn:app:orders::111122223333:order/1")
        return PlainTextResponse(f"{again.kind.value} {iam.snapshot.version}")

    app = IAMMiddleware(Starlette(routes=[Route("/orders/{order_id}", get_order)]), iam=iam)
    headers = {"Authorization": "Bearer " + partner_token(T0 + 3600)}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://t") as http:
        first = await http.get("/orders/1", headers=headers)
        assert first.status_code == 200 and first.text == "Allowed 1"  # decided on version 1 to the end
        assert (await http.get("/orders/1", headers=headers)).status_code == 403  # the next one: version 2
    assert iam.snapshot.version == 2


async def test_a_repeat_is_pinned_to_its_snapshot_while_the_app_runs() -> None:
    # The app's own decisions during a remembered repeat are on the snapshot that repeat was decided on, even when
    # a reload swaps another in meanwhile (docs/operations.md): the warm path pins as the full path does.
    iam = IAM.from_file(EXAMPLES / "iam.toml", clock=Clock())
    seen: list[tuple[object, object]] = []

    @permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")
    async def get_order(request: Request) -> PlainTextResponse:
        before = iam.snapshot
        iam.snapshots.swap(IAM.from_file(EXAMPLES / "iam.toml").snapshot)  # a reload lands mid-request
        seen.append((before, iam.snapshot))
        return PlainTextResponse("ok")

    app = IAMMiddleware(Starlette(routes=[Route("/orders/{order_id}", get_order)]), iam=iam)
    app.audit()
    headers = {"Authorization": "Bearer " + partner_token(T0 + 3600)}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as http:
        assert (await http.get("/orders/42", headers=headers)).status_code == 200  # decided, then remembered
        first = iam.snapshot
        recent = app._recent
        assert len(recent._entries) == 1
        remembered = next(iter(recent._entries.values()))
        remembered_snapshot = remembered.snapshot
        # Put the remembered answer's snapshot back in force, so the next request is an exact repeat of it.
        iam.snapshots.swap(remembered_snapshot)
        assert (await http.get("/orders/42", headers=headers)).status_code == 200
    assert first is not remembered_snapshot
    assert len(seen) == 2 and all(before is during for before, during in seen)
    assert seen[1][0] is remembered_snapshot
