"""The example apps, read by newcomers, behave as their policies say: the same callers get the same answers on
Starlette, FastAPI and Flask."""

from __future__ import annotations

import importlib

import pytest

from iam_middleware.testing import AsyncRouteClient, RouteClient


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

# (method, path, caller, via, expected status) against the demo directory in examples/iam.toml.
CASES = [
    ("GET", "/health", None, None, 200),
    ("GET", "/orders/42", None, None, 401),
    ("GET", "/orders/42", "alice", "sigv4", 200),
    ("GET", "/orders/42", "alice", "session", 200),
    ("DELETE", "/orders/42", "alice", "sigv4", 403),
    ("DELETE", "/orders/archived-7", "carol", "sigv4", 403),  # carol's boundary forbids archived orders
    ("DELETE", "/orders/42", "bob", "sigv4", 403),  # bob's writes need MFA: a long-term key has none
    ("DELETE", "/orders/42", "bob", "session", 200),  # a password + TOTP session carries MFA
]


def _caller(user: str | None, via: str | None) -> dict[str, str]:
    return {} if user is None else {"user": user, "via": via or "session"}


@pytest.mark.anyio
@pytest.mark.parametrize("module", ["examples.starlette_app", "examples.fastapi_app"])
@pytest.mark.parametrize(("method", "path", "user", "via", "status"), CASES)
async def test_asgi_examples_answer_as_their_policies_say(
    module: str, method: str, path: str, user: str | None, via: str | None, status: int
) -> None:
    example = importlib.import_module(module)
    app = example.app
    iam = getattr(app, "iam", None) or app.state.iam
    async with AsyncRouteClient(app, iam) as client:
        await client.expect(status, method, path, **_caller(user, via))


@pytest.mark.parametrize(("method", "path", "user", "via", "status"), CASES)
def test_flask_example_answers_as_its_policies_say(
    method: str, path: str, user: str | None, via: str | None, status: int
) -> None:
    example = importlib.import_module("examples.flask_app")
    with RouteClient(example.app, example.guard.iam) as client:
        client.expect(status, method, path, **_caller(user, via))
