"""End to end through the real nginx: the configuration of docs/gateways.md as written (ports aside), the authorizer
served as ``iam-middleware authz`` serves it (test_cli_authz.py runs the command itself), and an upstream written for
node's ``http`` module that reports what it got.

Every case checks what the upstream received, not what the authorizer saw: an allowed request arrives with the
principal headers and the target exactly as sent; a refused one never arrives at all.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from adapters._support import KEYS, botocore_headers, raw_request

from iam_middleware import IAM
from iam_middleware.testing import session_token

from . import _gateway
from ._gateway import headers_of, seen

ACCOUNT = "111122223333"
ALICE = f"arn:app:iam::{ACCOUNT}:user/alice"
IDP_SECRET = "demo-idp-hmac-secret-0123456789abcdef0123"  # examples/iam.toml's outside provider


class Stack:
    """The running gateway, and what the tests need to call it."""

    def __init__(self, iam: IAM, port: int, authz_port: int, api_port: int, prefix: Path) -> None:
        self.iam = iam
        self.port = port
        self.authz_port = authz_port
        self.api_port = api_port
        self.base = f"http://127.0.0.1:{port}"
        self.prefix = prefix

    def get(self, path: str, *, method: str = "GET", headers: dict[str, str] | None = None,
            content: bytes | None = None, local: str | None = None) -> httpx.Response:
        transport = httpx.HTTPTransport(local_address=local) if local else None
        with httpx.Client(base_url=self.base, transport=transport, timeout=10) as client:
            return client.request(method, path, headers=headers, content=content)

    def bearer(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {session_token(self.iam, user)}"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    nginx_binary = _gateway.binary("nginx", package="nginx")
    node = _gateway.binary("node", package="nodejs")
    folder = tmp_path_factory.mktemp("gateway")
    directory = _gateway.gateway_directory(folder)
    iam = IAM.from_file(directory)
    with (_gateway.authorizer(iam) as authz_port,
          _gateway.upstream(node, folder / "upstream.log") as api_port,
          _gateway.nginx(nginx_binary, folder / "nginx", authz_port, api_port) as port):
        yield Stack(iam, port, authz_port, api_port, folder / "nginx")


@pytest.fixture(autouse=True)
def fresh(stack: Stack) -> Stack:
    seen(stack.api_port)  # forget what earlier tests sent
    return stack


def only_request(stack: Stack) -> dict[str, Any]:
    received = seen(stack.api_port)
    assert len(received) == 1, received
    return received[0]


def assert_refused(stack: Stack, response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["error"] == code and body["request_id"] == response.headers["x-request-id"]
    assert seen(stack.api_port) == []  # the upstream never saw it
    return body


def test_nginx_runs_the_docs_block_as_written(stack: Stack) -> None:
    config = (stack.prefix / "nginx.conf").read_text()
    assert _gateway.doc_block_for(stack.port, stack.authz_port, stack.api_port) in config


# Bearer credentials and sessions --------------------------------------------------------------------------------


def test_a_session_bearer_is_allowed_and_the_upstream_gets_the_principal(stack: Stack) -> None:
    response = stack.get("/orders/42?view=full", headers={**stack.bearer("alice"), "X-Request-Id": "trace-1"})
    assert response.status_code == 200, response.text
    received = only_request(stack)
    headers = headers_of(received)
    assert received["method"] == "GET" and received["target"] == "/orders/42?view=full"
    assert headers["x-iam-principal-arn"] == [ALICE]
    assert headers["x-iam-principal-account"] == [ACCOUNT]
    assert headers["x-iam-principal-type"] == ["User"]
    assert "x-iam-session-name" not in headers
    assert headers["x-request-id"] == ["trace-1"]  # the id of the decision in the authorizer's log


def test_a_denied_session_gets_the_json_refusal_and_never_reaches_the_upstream(stack: Stack) -> None:
    body = assert_refused(stack, stack.get("/orders/42", method="DELETE", headers=stack.bearer("alice")), 403,
                          "AccessDenied")
    assert "orders:DeleteOrder" in body["message"]


def test_a_session_with_mfa_may_delete(stack: Stack) -> None:
    assert stack.get("/orders/42", method="DELETE", headers=stack.bearer("bob")).status_code == 200
    assert headers_of(only_request(stack))["x-iam-principal-arn"] == [f"arn:app:iam::{ACCOUNT}:user/bob"]


def test_no_credential_is_a_401_with_its_challenge(stack: Stack) -> None:
    response = stack.get("/orders/42")
    assert_refused(stack, response, 401, "MissingAuthenticationToken")
    assert response.headers["www-authenticate"] == 'Bearer realm="iam-middleware", AWS4-HMAC-SHA256'


def test_a_bad_token_is_a_401_that_says_why(stack: Stack) -> None:
    response = stack.get("/orders/42", headers={"Authorization": "Bearer abc.def.ghi"})
    assert_refused(stack, response, 401, "MalformedToken")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_an_outside_jwt_becomes_a_role_session(stack: Stack) -> None:
    now = int(time.time())
    token = jwt.encode({"iss": "https://idp.example", "aud": "orders-api", "sub": "partner-7", "iat": now,
                        "exp": now + 600, "team": "blue"}, IDP_SECRET, algorithm="HS256")
    assert stack.get("/orders/7", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    headers = headers_of(only_request(stack))
    assert headers["x-iam-principal-arn"] == [f"arn:app:sts::{ACCOUNT}:assumed-role/partner/partner-7"]
    assert headers["x-iam-principal-type"] == ["AssumedRole"]
    assert headers["x-iam-session-name"] == ["partner-7"]
    assert_refused(stack, stack.get("/orders", method="POST", headers={"Authorization": f"Bearer {token}"}), 403,
                   "AccessDenied")


def test_a_session_cookie_is_checked_for_cross_site_writes(stack: Stack) -> None:
    cookie = {"Cookie": f"{stack.iam.settings.cookie_name}={session_token(stack.iam, 'bob')}"}
    assert_refused(stack, stack.get("/orders/42", method="DELETE", headers={**cookie, "Origin": "https://evil.example"}),
                   403, "CSRFCheckFailed")
    same_site = stack.get("/orders/42", method="DELETE", headers={**cookie, "Origin": stack.base})
    assert same_site.status_code == 200, same_site.text


# Public routes and spoofed principal headers ---------------------------------------------------------------------


SPOOFED = {"X-IAM-Principal-Arn": "arn:app:iam::111122223333:user/root", "X-IAM-Principal-Type": "User",
           "X-IAM-Session-Name": "admin"}


def test_a_public_route_passes_without_a_credential_and_without_a_clients_principal_headers(stack: Stack) -> None:
    assert stack.get("/health", headers=SPOOFED).status_code == 200
    headers = headers_of(only_request(stack))
    assert not {"x-iam-principal-arn", "x-iam-principal-type", "x-iam-session-name"} & set(headers)


def test_a_clients_principal_headers_are_replaced_by_the_authorizers(stack: Stack) -> None:
    assert stack.get("/orders/1", headers={**stack.bearer("alice"), **SPOOFED}).status_code == 200
    headers = headers_of(only_request(stack))
    assert headers["x-iam-principal-arn"] == [ALICE] and "x-iam-session-name" not in headers


def test_head_is_authorized_as_get(stack: Stack) -> None:
    assert stack.get("/orders/1", method="HEAD", headers=stack.bearer("alice")).status_code == 200
    assert only_request(stack)["method"] == "HEAD"


# SigV4 ----------------------------------------------------------------------------------------------------------


def test_botocore_sigv4_is_allowed(stack: Stack) -> None:
    url = f"{stack.base}/orders/9?b=2&a=1"
    assert stack.get("/orders/9?b=2&a=1", headers=botocore_headers("GET", url, "carol")).status_code == 200
    headers = headers_of(only_request(stack))
    assert headers["x-iam-principal-arn"] == [f"arn:app:iam::{ACCOUNT}:user/carol"]


def test_a_tampered_signature_is_refused(stack: Stack) -> None:
    headers = botocore_headers("GET", f"{stack.base}/orders/9", "carol")
    headers["Authorization"] = headers["Authorization"][:-4] + "0000"
    assert_refused(stack, stack.get("/orders/9", headers=headers), 401, "SignatureDoesNotMatch")


def test_a_signed_body_nginx_does_not_forward_is_refused_as_such(stack: Stack) -> None:
    body = b'{"item": "mug"}'
    headers = botocore_headers("POST", f"{stack.base}/orders", "carol", body=body)
    response = stack.get("/orders", method="POST", headers=headers, content=body)
    assert_refused(stack, response, 401, "PayloadNotForwarded")
    assert response.headers["www-authenticate"] == "AWS4-HMAC-SHA256"


def test_a_signed_empty_post_is_verified(stack: Stack) -> None:
    headers = botocore_headers("POST", f"{stack.base}/orders", "carol", headers={"Content-Length": "0"})
    response = stack.get("/orders", method="POST", headers=headers, content=b"")
    assert response.status_code == 200, response.text
    assert only_request(stack)["method"] == "POST"


def test_curl_aws_sigv4(stack: Stack) -> None:
    curl = _gateway.binary("curl", package="curl")
    key, secret = KEYS["alice"]
    command = [curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--aws-sigv4", "aws:amz:local:orders",
               "--user", f"{key}:{secret}", f"{stack.base}/orders/5"]
    status = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
    assert status == "200", shlex.join(command)
    assert headers_of(only_request(stack))["x-iam-principal-arn"] == [ALICE]
    command[-1] = f"{stack.base}/orders/5"
    command[-1:-1] = ["-X", "DELETE"]
    assert subprocess.run(command, capture_output=True, text=True, timeout=30).stdout == "403"
    assert seen(stack.api_port) == []


# Paths ----------------------------------------------------------------------------------------------------------

#: Targets nginx normalizes into /orders/42 (or that an upstream might read so), sent by a caller allowed to GET
#: /orders/42: each is refused, as the authorizer decides on the target the upstream receives ($request_uri).
PATH_TRICKS = [
    "//orders/42", "/orders//42", "/./orders/42", "/orders/./42", "/health/../orders/42",
    "/health/%2e%2e/orders/42", "/health/..%2Forders/42", "/orders%2F42", "/orders/%2F42", "/orders/42%00",
    "/orders/42;x=1", "/health;/../orders/42", "/orders/42%5C", "/ORDERS/42", "/Orders/42", "/orders/%2e/42",
    "/health%2F..%2Forders%2F42", "/orders/4%252",
]


@pytest.mark.parametrize("target", PATH_TRICKS)
def test_path_tricks_never_reach_the_upstream(stack: Stack, target: str) -> None:
    status, _, _ = raw_request(stack.port, "GET", target, stack.bearer("alice"))
    assert status in (400, 401, 403, 404), target
    assert seen(stack.api_port) == []


def test_a_trailing_slash_is_the_same_rule_and_reaches_the_upstream_as_sent(stack: Stack) -> None:
    status, _, _ = raw_request(stack.port, "GET", "/orders/42/", stack.bearer("alice"))
    assert status == 200
    assert only_request(stack)["target"] == "/orders/42/"


def test_an_encoded_letter_is_decided_as_decoded_and_forwarded_as_sent(stack: Stack) -> None:
    status, _, _ = raw_request(stack.port, "GET", "/orders/%34%32", stack.bearer("alice"))
    assert status == 200
    assert only_request(stack)["target"] == "/orders/%34%32"


def test_the_authorization_location_is_internal(stack: Stack) -> None:
    status, _, _ = raw_request(stack.port, "GET", "/_iam_authz", stack.bearer("alice"))
    assert status == 404 and seen(stack.api_port) == []


def test_an_invalid_path_keeps_its_own_status(stack: Stack) -> None:
    status, headers, body = raw_request(stack.port, "GET", "//orders/42", stack.bearer("alice"))
    assert status == 400 and b'"InvalidPath"' in body and headers["content-type"] == "application/json"


# The caller's address -------------------------------------------------------------------------------------------


def test_the_callers_address_comes_through_the_trusted_gateway(stack: Stack) -> None:
    dave = stack.bearer("dave")
    assert stack.get("/reports", headers=dave, local="127.0.0.2").status_code == 200
    seen(stack.api_port)
    assert_refused(stack, stack.get("/reports", headers=dave, local="127.0.0.3"), 403, "AccessDenied")
    spoofed = {**dave, "X-Forwarded-For": "127.0.0.2", "X-Real-IP": "127.0.0.2"}
    assert_refused(stack, stack.get("/reports", headers=spoofed, local="127.0.0.3"), 403, "AccessDenied")


def test_the_scheme_is_the_gateways_never_the_clients(stack: Stack) -> None:
    dave = stack.bearer("dave")
    assert_refused(stack, stack.get("/secure-reports", headers=dave), 403, "AccessDenied")  # http: not secure
    claims = {**dave, "X-Forwarded-Proto": "https", "X-Original-URL": f"https://127.0.0.1:{stack.port}/secure-reports"}
    assert_refused(stack, stack.get("/secure-reports", headers=claims), 403, "AccessDenied")


# Websocket handshakes -------------------------------------------------------------------------------------------

WEBSOCKET = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
             "Sec-WebSocket-Version": "13"}


def handshake(stack: Stack, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    return raw_request(stack.port, "GET", path, {**WEBSOCKET, **headers})


def test_an_allowed_handshake_reaches_the_upstream_with_the_principal(stack: Stack) -> None:
    status, headers, _ = handshake(stack, "/orders/feed", stack.bearer("alice"))
    assert status == 101 and headers["upgrade"] == "websocket"
    received = only_request(stack)
    assert received["upgraded"] and received["target"] == "/orders/feed"
    forwarded = headers_of(received)
    assert forwarded["upgrade"] == ["websocket"] and forwarded["connection"] == ["upgrade"]
    assert forwarded["x-iam-principal-arn"] == [ALICE]


def test_a_handshake_without_a_credential_never_reaches_the_upstream(stack: Stack) -> None:
    status, headers, body = handshake(stack, "/orders/feed", {})
    assert status == 401 and b'"MissingAuthenticationToken"' in body and headers["content-type"] == "application/json"
    assert seen(stack.api_port) == []


def test_a_cross_site_handshake_with_the_session_cookie_is_refused(stack: Stack) -> None:
    cookie = {"Cookie": f"{stack.iam.settings.cookie_name}={session_token(stack.iam, 'alice')}"}
    status, _, body = handshake(stack, "/orders/feed", {**cookie, "Origin": "https://evil.example"})
    assert status == 403 and b'"CSRFCheckFailed"' in body
    assert seen(stack.api_port) == []
    status, _, body = handshake(stack, "/orders/feed", cookie)  # neither Origin nor Referer: not shown same-site
    assert status == 403 and b'"CSRFCheckFailed"' in body
    assert seen(stack.api_port) == []
    status, _, _ = handshake(stack, "/orders/feed", {**cookie, "Origin": stack.base})
    assert status == 101 and only_request(stack)["upgraded"]


def test_the_same_cookie_on_a_plain_get_needs_no_origin(stack: Stack) -> None:
    cookie = {"Cookie": f"{stack.iam.settings.cookie_name}={session_token(stack.iam, 'alice')}"}
    assert stack.get("/orders/feed", headers={**cookie, "Origin": "https://evil.example"}).status_code == 200
    assert not only_request(stack).get("upgraded")


def test_a_path_without_a_websocket_rule_is_governed_by_its_get_rule(stack: Stack) -> None:
    status, _, _ = handshake(stack, "/orders/42", stack.bearer("alice"))  # GET /orders/{order_id}
    assert status == 101 and only_request(stack)["upgraded"]
    status, _, body = handshake(stack, "/orders", stack.bearer("alice"))  # POST only: no rule governs a handshake
    assert status == 403 and b'"AccessDenied"' in body
    assert seen(stack.api_port) == []


def test_a_client_cannot_claim_an_upgrade_it_does_not_make(stack: Stack) -> None:
    # X-Original-Upgrade is set by the configuration ($http_upgrade): a client's own is replaced, so a plain GET
    # with it is decided as the GET it is, and a handshake cannot pass itself off as a plain GET either.
    cookie = {"Cookie": f"{stack.iam.settings.cookie_name}={session_token(stack.iam, 'alice')}"}
    response = stack.get("/orders/feed", headers={**cookie, "X-Original-Upgrade": "websocket",
                                                  "Origin": "https://evil.example"})
    assert response.status_code == 200 and not only_request(stack).get("upgraded")
    status, _, _ = handshake(stack, "/orders/feed", {**cookie, "X-Original-Upgrade": "",
                                                     "Origin": "https://evil.example"})
    assert status == 403 and seen(stack.api_port) == []
