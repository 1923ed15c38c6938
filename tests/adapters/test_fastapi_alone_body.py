"""FastAPI's Authorize without the middleware reads a SigV4 body bounded even when it is chunked (no
Content-Length), and the endpoint reads the very bytes that were verified."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, Request

from iam_middleware import IAM, Principal
from iam_middleware.testing import sign_request
from iam_middleware_fastapi import Authorize, install

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
pytestmark = pytest.mark.anyio
MayList = Annotated[Principal, Depends(Authorize("orders:ListOrders", resource="arn:app:orders::{account}:order/*"))]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _app(max_body_bytes: int = 10 * 1024 * 1024) -> tuple[FastAPI, IAM]:
    iam = IAM.from_file(EXAMPLES / "iam.toml")
    app = FastAPI()
    install(app, iam, middleware=False, max_body_bytes=max_body_bytes)

    @app.post("/orders/search")
    async def search(request: Request, principal: MayList) -> dict[str, str]:
        return {"body": (await request.body()).decode(), "by": principal.arn}

    return app, iam


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 4):
        yield body[start:start + 4]


async def _post_chunked(app: FastAPI, iam: IAM, body: bytes) -> httpx.Response:
    url = "http://testserver/orders/search"
    signed = sign_request(iam, "POST", url, user="alice", body=body)
    headers = {k: v for k, v in signed.headers.items() if k.lower() != "content-length"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        return await client.post(signed.url, content=_chunks(body), headers=headers)


async def test_a_chunked_signed_body_is_verified_and_reaches_the_endpoint_intact() -> None:
    app, iam = _app()
    body = b'{"status": "open", "limit": 10}'
    response = await _post_chunked(app, iam, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"body": body.decode(), "by": "arn:app:iam::111122223333:user/alice"}


async def test_a_chunked_body_past_the_limit_is_refused_while_reading() -> None:
    app, iam = _app(max_body_bytes=16)
    response = await _post_chunked(app, iam, b"x" * 64)
    assert response.status_code == 413
    assert response.json()["error"] == "EntityTooLarge"
