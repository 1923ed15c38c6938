"""Flask: repeats of an allowed request end with the session revocation bound and with reloads, as in the ASGI
middleware (both use RecentDecisions)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flask import Flask, g

from iam_middleware import IAM, DirectoryReloader
from iam_middleware.testing import session_token
from iam_middleware_flask import IAMFlask

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _app(tmp_path: Path) -> tuple[Flask, IAM, Clock, Path]:
    folder = tmp_path / "ex"
    shutil.copytree(EXAMPLES, folder)
    clock = Clock()
    iam = IAM.from_file(folder / "iam.toml", clock=clock)
    app = Flask(__name__)
    guard = IAMFlask(app, iam)

    @app.get("/orders/<order_id>")
    @guard.permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")
    def get_order(order_id: str) -> str:
        return str(g.principal.arn)

    return app, iam, clock, folder


def test_a_revoked_session_stops_within_the_bound(tmp_path: Path) -> None:
    app, iam, clock, _ = _app(tmp_path)
    token = session_token(iam, "alice")
    client = app.test_client()
    headers = {"Authorization": "Bearer " + token}
    assert client.get("/orders/42", headers=headers).status_code == 200
    assert client.get("/orders/42", headers=headers).status_code == 200
    iam.credentials.sessions.revoke(iam.credentials.sessions.verify(token, now=clock.now).session_id)
    clock.now += iam.settings.session_cache_seconds
    assert client.get("/orders/42", headers=headers).status_code == 401


@pytest.mark.directory_file
def test_a_reload_that_removes_the_permission_applies_to_the_next_repeat(tmp_path: Path) -> None:
    app, iam, clock, folder = _app(tmp_path)
    client = app.test_client()
    headers = {"Authorization": "Bearer " + session_token(iam, "alice")}
    assert client.get("/orders/42", headers=headers).status_code == 200
    policy = folder / "policies" / "orders-read-only.json"
    policy.write_text(policy.read_text().replace('"orders:GetOrder", ', ""))
    assert DirectoryReloader(iam).reload().ok
    assert client.get("/orders/42", headers=headers).status_code == 403


@pytest.mark.directory_file
def test_a_request_in_flight_finishes_on_the_snapshot_it_began_with(tmp_path: Path) -> None:
    folder = tmp_path / "ex"
    shutil.copytree(EXAMPLES, folder)
    iam = IAM.from_file(folder / "iam.toml", clock=Clock())
    reloader = DirectoryReloader(iam)
    policy = folder / "policies" / "orders-read-only.json"
    app = Flask(__name__)
    guard = IAMFlask(app, iam)

    @app.get("/orders/<order_id>")
    @guard.permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")
    def get_order(order_id: str) -> str:
        policy.write_text(policy.read_text().replace('"orders:GetOrder", ', ""))
        assert reloader.reload().ok
        again = iam.authorize(g.principal, "orders:GetOrder", "arn:app:orders::111122223333:order/1")
        return f"{again.kind.value} {iam.snapshot.version}"

    client = app.test_client()
    headers = {"Authorization": "Bearer " + session_token(iam, "alice")}
    first = client.get("/orders/1", headers=headers)
    assert first.status_code == 200 and first.text == "Allowed 1"
    assert client.get("/orders/1", headers=headers).status_code == 403
    assert iam.snapshot.version == 2  # unpinned after the request
