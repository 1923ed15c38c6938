"""``iam-middleware authz``: the command serves the authorizer in a process of its own, and refuses to start on a
directory it cannot serve."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
import pytest
import uvicorn

from iam_middleware.cli import main

from . import _gateway

ROOT = Path(__file__).resolve().parents[2]
IDP_SECRET = "demo-idp-hmac-secret-0123456789abcdef0123"  # examples/iam.toml's outside provider


def subrequest(token: str | None) -> dict[str, str]:
    """What the docs' nginx configuration sends for ``GET /orders/42``."""
    headers = {"Host": "api.example", "X-Original-Method": "GET", "X-Original-URI": "/orders/42",
               "X-Original-Framing": "HTTP/1.1 length= encoding="}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def test_the_command_serves_the_authorizer(tmp_path: Path) -> None:
    directory = _gateway.gateway_directory(tmp_path)
    now = int(time.time())
    token = jwt.encode({"iss": "https://idp.example", "aud": "orders-api", "sub": "p-1", "iat": now, "exp": now + 600},
                       IDP_SECRET, algorithm="HS256")
    with _gateway.authorizer_command(directory, tmp_path / "authz.log") as port:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            allowed = client.get("/nginx", headers=subrequest(token))
            anonymous = client.get("/nginx", headers=subrequest(None))
            elsewhere = client.get("/orders/42")
    assert allowed.status_code == 200
    assert allowed.headers["x-iam-principal-arn"] == "arn:app:sts::111122223333:assumed-role/partner/p-1"
    assert anonymous.status_code == 401 and anonymous.headers["x-iam-status"] == "401"
    assert elsewhere.status_code == 404 and elsewhere.json()["error"] == "NotFound"
    assert "warning" not in (tmp_path / "authz.log").read_text()  # trusted_proxies is set


def test_a_directory_without_routes_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["authz", "--directory", str(ROOT / "examples" / "iam.toml")]) == 1
    assert "no [[routes]]" in capsys.readouterr().err


def test_a_missing_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["authz", "--directory", str(tmp_path / "nowhere.toml")]) == 1
    assert "nowhere.toml" in capsys.readouterr().err


def test_no_trusted_proxies_is_warned_about(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    directory = _gateway.gateway_directory(tmp_path)
    directory.write_text(directory.read_text().replace('trusted_proxies = ["127.0.0.1/32"]\n', ""))
    served: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: served.append(self.config))
    assert main(["authz", "--directory", str(directory), "--port", "9123"]) == 0
    assert "trusted_proxies is empty" in capsys.readouterr().err
    assert served[0].port == 9123 and served[0].proxy_headers is False and served[0].timeout_keep_alive > 60
