"""``UNSIGNED-PAYLOAD`` per route, end to end through the real nginx over HTTPS: the configuration of
docs/gateways.md as written (its listener given a certificate), the docs' rules table, whose attachment upload
route has ``unsigned_payload = true``, and the node upstream that reports what it got.

nginx never forwards a body to ``auth_request``: on that route a request signed ``UNSIGNED-PAYLOAD`` is let
through with its body, while a request that signs its body's hash is still refused as unverifiable, there and
everywhere else.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.auth  # type: ignore[import-untyped]
import httpx
import pytest
from adapters._support import KEYS
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials as BotocoreCredentials  # type: ignore[import-untyped]

from iam_middleware import IAM
from iam_middleware.client import Credentials, SigV4Auth

from . import _gateway
from ._gateway import headers_of, seen

CAROL = "arn:app:iam::111122223333:user/carol"  # orders:* (examples/iam.toml)
ATTACHMENT = "/orders/42/attachment"
BODY = b"%PDF-1.7 an invoice, not read by the authorizer"


class TLSStack:
    def __init__(self, port: int, api_port: int, certificate: Path) -> None:
        self.base = f"https://127.0.0.1:{port}"
        self.api_port = api_port
        self.verify = ssl.create_default_context(cafile=str(certificate))

    def send(self, method: str, path: str, headers: dict[str, str], content: Any = None,
             auth: httpx.Auth | None = None) -> httpx.Response:
        with httpx.Client(base_url=self.base, verify=self.verify, timeout=10) as client:
            return client.request(method, path, headers=headers, content=content, auth=auth)


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSStack]:
    nginx_binary = _gateway.binary("nginx", package="nginx")
    node = _gateway.binary("node", package="nodejs")
    folder = tmp_path_factory.mktemp("gateway-tls")
    iam = IAM.from_file(_gateway.gateway_directory(folder))
    certificate, key = _gateway.tls_files(folder / "tls")
    with (_gateway.authorizer(iam) as authz_port,
          _gateway.upstream(node, folder / "upstream.log") as api_port,
          _gateway.nginx(nginx_binary, folder / "nginx", authz_port, api_port, tls=(certificate, key)) as port):
        yield TLSStack(port, api_port, certificate)


@pytest.fixture(autouse=True)
def fresh(tls_stack: TLSStack) -> TLSStack:
    seen(tls_stack.api_port)
    return tls_stack


def signed(method: str, url: str, body: bytes, *, unsigned: bool) -> dict[str, str]:
    """The headers real botocore signs for carol's key: the body's SHA-256, or ``UNSIGNED-PAYLOAD`` (botocore's
    own choice over HTTPS when payload signing is off; the header says so to the server)."""
    key, secret = KEYS["carol"]
    headers = {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"} if unsigned else {}
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    request.context["payload_signing_enabled"] = not unsigned
    botocore.auth.SigV4Auth(BotocoreCredentials(key, secret), "orders", "local").add_auth(request)
    return dict(request.headers.items())


def only_request(stack: TLSStack) -> dict[str, Any]:
    received = seen(stack.api_port)
    assert len(received) == 1, received
    return received[0]


def test_unsigned_payload_on_the_route_that_accepts_it_reaches_the_upstream_with_its_body(tls_stack: TLSStack) -> None:
    headers = signed("PUT", tls_stack.base + ATTACHMENT, BODY, unsigned=True)
    response = tls_stack.send("PUT", ATTACHMENT, headers, BODY)
    assert response.status_code == 200, response.text
    received = only_request(tls_stack)
    assert received["method"] == "PUT" and received["body"] == BODY.decode("latin-1")
    assert headers_of(received)["x-iam-principal-arn"] == [CAROL]


def test_a_signed_body_hash_still_needs_the_body_on_that_route(tls_stack: TLSStack) -> None:
    headers = signed("PUT", tls_stack.base + ATTACHMENT, BODY, unsigned=False)
    response = tls_stack.send("PUT", ATTACHMENT, headers, BODY)
    assert response.status_code == 401 and response.json()["error"] == "PayloadNotForwarded", response.text
    assert seen(tls_stack.api_port) == []


def test_unsigned_payload_elsewhere_is_refused(tls_stack: TLSStack) -> None:
    headers = signed("POST", tls_stack.base + "/orders", BODY, unsigned=True)
    response = tls_stack.send("POST", "/orders", headers, BODY)
    assert response.status_code == 401 and response.json()["error"] == "PayloadNotForwarded", response.text
    assert seen(tls_stack.api_port) == []


def test_a_changed_signature_is_refused_on_that_route_too(tls_stack: TLSStack) -> None:
    headers = signed("PUT", tls_stack.base + ATTACHMENT, BODY, unsigned=True)
    headers["Authorization"] = headers["Authorization"][:-4] + ("0000" if not headers["Authorization"].endswith(
        "0000") else "1111")
    response = tls_stack.send("PUT", ATTACHMENT, headers, BODY)
    assert response.status_code == 401 and response.json()["error"] == "SignatureDoesNotMatch"
    assert seen(tls_stack.api_port) == []


def test_the_projects_client_streams_an_upload_unread(tls_stack: TLSStack) -> None:
    key, secret = KEYS["carol"]
    auth = SigV4Auth(Credentials(key, secret), service="orders", region="local", unsigned_payload=True)

    def pieces() -> Iterator[bytes]:
        yield from (b"x" * 1000 for _ in range(8))

    response = tls_stack.send("PUT", ATTACHMENT, {}, pieces(), auth=auth)
    assert response.status_code == 200, response.text
    received = only_request(tls_stack)
    assert len(received["body"]) == 8000 and headers_of(received)["x-amz-content-sha256"] == ["UNSIGNED-PAYLOAD"]
