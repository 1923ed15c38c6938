"""The token service as an HTTP service: mounting, JSON in and out, error shape, bounds, and never a 500."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from iam_middleware.state import MemoryStore
from iam_middleware.sts import TokenService, token_service

from ._support import PARTNER, START, Client, Clock, code, idp_token, make_iam

OPERATIONS = ["/login", "/logout", "/GetSessionToken", "/AssumeRole", "/AssumeRoleWithWebIdentity", "/revoke"]


def assert_error_shape(response: Any, status: int, error: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "message", "request_id"}
    assert body["request_id"] == response.headers["x-request-id"]
    if error is not None:
        assert body["error"] == error


def test_the_service_works_at_any_mount_path(iam: Any) -> None:
    for prefix in ("/sts", "/api/v2/token-service", "/t.s-s~x"):
        client = Client(iam, prefix=prefix)
        # SigV4 signs the full raw path as the client sent it, mount prefix included.
        response = client.signed("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "mounted"})
        assert response.status_code == 200, (prefix, response.text)


def test_it_is_an_asgi_app_on_its_own(iam: Any) -> None:
    service = token_service(iam)
    assert isinstance(service, TokenService)
    client = Client(iam)
    client.app = service  # type: ignore[assignment]
    client.prefix = ""
    assert client.post("/AssumeRoleWithWebIdentity", {"WebIdentityToken": idp_token(START)}).status_code == 200


def test_unknown_paths_and_methods_answer_in_the_error_shape(client: Client) -> None:
    assert_error_shape(client.post("/GetFederationToken", {}), 404, "NotFound")
    wrong_method = client.request("GET", "/login")
    assert_error_shape(wrong_method, 405, "MethodNotAllowed")
    assert wrong_method.headers["allow"] == "POST"


def test_malformed_bodies_are_400(client: Client) -> None:
    json_header = {"content-type": "application/json"}
    for raw in (b"{", b"[]", b'"text"', b'{"username": "a", "username": "b"}', b"\xff\xfe{", b"[" * 100_000,
                b'{"code": NaN}'):
        response = client.post("/login", content=raw[:60_000], headers=json_header)
        assert_error_shape(response, 400, "MalformedJSON")


def test_a_body_must_be_declared_json(client: Client) -> None:
    body = json.dumps({"username": "bob", "password": "x", "code": "123456"}).encode()
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded", "application/jsonp"):
        headers = {"content-type": content_type} if content_type else {}
        assert_error_shape(client.post("/login", content=body, headers=headers), 415, "UnsupportedMediaType")
    ok = client.post("/login", content=body, headers={"content-type": "Application/JSON; charset=utf-8"})
    assert ok.status_code == 401  # parsed, then refused as a login


def test_bodies_are_bounded(client: Client) -> None:
    huge = json.dumps({"WebIdentityToken": "x" * (64 * 1024)})
    response = client.post("/AssumeRoleWithWebIdentity", content=huge.encode(),
                           headers={"content-type": "application/json"})
    assert_error_shape(response, 413, "EntityTooLarge")


def test_a_given_request_id_is_kept_and_a_bad_one_replaced(client: Client) -> None:
    kept = client.post("/AssumeRole", {}, headers={"x-request-id": "trace-123"})
    assert kept.json()["request_id"] == "trace-123"
    replaced = client.post("/AssumeRole", {}, headers={"x-request-id": "bad id\twith junk"})
    assert replaced.json()["request_id"] != "bad id\twith junk"


class Broken(MemoryStore):
    """A store with a bug: writes raise something that is not a StateStore error."""

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        raise RuntimeError("unexpected failure with secret-looking detail AKIA0000")


def test_an_unexpected_failure_fails_closed_without_a_500(clock: Clock) -> None:
    iam = make_iam(clock, store=Broken())
    response = Client(iam).post("/login", {"username": "bob", "password": "correct horse battery staple",
                                           "code": code(iam, "bob", START)})
    assert_error_shape(response, 403, "RequestFailed")
    assert "AKIA0000" not in response.text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(["username", "password", "code", "duration", "RoleArn", "RoleSessionName",
                               "DurationSeconds", "Policy", "WebIdentityToken", "AccessKeyId", "everywhere"])


@settings(deadline=None, max_examples=60)
@given(path=st.sampled_from(OPERATIONS), body=st.dictionaries(field_names, json_values, max_size=5) | json_values)
def test_arbitrary_json_never_gets_a_500_or_credentials(path: str, body: Any) -> None:
    iam = make_iam(Clock())
    response = Client(iam).post(path, body)
    assert response.status_code in (400, 401, 403), response.text
    assert_error_shape(response, response.status_code)
