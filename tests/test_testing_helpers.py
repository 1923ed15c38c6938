"""iam_middleware.testing: the credentials it builds verify with the real core, its assertions pass and fail as
the policies decide, and its route clients call real ASGI (FastAPI) and WSGI (Flask) apps."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from flask import Flask, g

from iam_middleware import (
    IAM,
    AuthenticationError,
    CredentialKind,
    DecisionKind,
    InvalidTokenError,
    Principal,
    PrincipalType,
    public,
)
from iam_middleware._request import RequestView
from iam_middleware.authenticators._sigv4 import SigningCredential
from iam_middleware.testing import (
    AsyncRouteClient,
    RouteClient,
    assert_allowed,
    assert_denied,
    principal_for,
    session_token,
    sign_request,
    web_identity_token,
)
from iam_middleware_fastapi import Authorize, install
from iam_middleware_flask import IAMFlask

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "iam.toml"
NOW = 1_780_000_000.0
ORDER = "arn:app:orders::111122223333:order/1"
ALICE = "arn:app:iam::111122223333:user/alice"
BOB = "arn:app:iam::111122223333:user/bob"
# Module level: FastAPI evaluates string annotations (PEP 563) in the module's namespace.
READ = Authorize("orders:GetOrder", "arn:app:orders::{account}:order/{order_id}")
DELETE = Authorize("orders:DeleteOrder", "arn:app:orders::{account}:order/{order_id}")


@pytest.fixture
def iam() -> IAM:
    return IAM.from_file(EXAMPLES, clock=lambda: NOW)


def wire(signed_url: str, headers: dict[str, str], method: str = "GET", body: bytes = b"") -> RequestView:
    """The request a server receives for a signed URL and headers (Host from the URL, as clients send it)."""
    url = httpx.URL(signed_url)
    sent = [("host", url.netloc.decode()), *((name.lower(), value) for name, value in headers.items())]
    return RequestView(method=method, raw_path=url.raw_path.partition(b"?")[0], query_string=url.query,
                       headers=tuple(sent), body=body)


# Credentials -------------------------------------------------------------------------------------------------------


def test_sign_request_with_a_users_access_key(iam: IAM) -> None:
    signed = sign_request(iam, "POST", "http://api.test/orders?x=1", user="alice", body=b'{"a": 1}',
                          headers={"Content-Type": "application/json"})
    principal = iam.authenticate(wire(signed.url, signed.headers, "POST", b'{"a": 1}'))
    assert principal is not None and principal.arn == ALICE
    assert principal.credential_kind is CredentialKind.ACCESS_KEY
    assert "demo/alice" not in repr(signed) and signed.headers["Authorization"] not in repr(signed)


def test_signature_binds_the_body(iam: IAM) -> None:
    signed = sign_request(iam, "POST", "http://api.test/orders", user="alice", body=b"one")
    with pytest.raises(AuthenticationError):
        iam.authenticate(wire(signed.url, signed.headers, "POST", b"two"))


def test_presigned_url(iam: IAM) -> None:
    signed = sign_request(iam, "GET", "http://api.test/orders/1", user="alice", presign_expires=60)
    assert "X-Amz-Signature=" in signed.url and "Authorization" not in signed.headers
    principal = iam.authenticate(wire(signed.url, signed.headers))
    assert principal is not None and principal.arn == ALICE
    later = IAM.from_file(EXAMPLES, clock=lambda: NOW + 120)
    with pytest.raises(AuthenticationError):
        later.authenticate(wire(signed.url, signed.headers))


def test_sign_request_with_temporary_credentials(iam: IAM) -> None:
    temporary = iam.credentials.temporary.issue(kind="user", arn=ALICE, session_name="alice", now=NOW, duration=900,
                                    mfa_time=NOW)
    signed = sign_request(iam, "GET", "http://api.test/orders/1", credential=temporary)
    principal = iam.authenticate(wire(signed.url, signed.headers))
    assert principal is not None and principal.arn == ALICE and principal.mfa_present
    assert temporary.session_token not in repr(signed)


def test_sign_request_needs_exactly_one_caller(iam: IAM) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        sign_request(iam, "GET", "http://api.test/", user="alice",
                     credential=SigningCredential("AKIADEMOALICE0000001", "x"))
    with EXAMPLES.open("rb") as file:
        data = tomllib.load(file)
    del data["users"]["bob"]["access_keys"]
    keyless = IAM.from_dict(data, base_dir=EXAMPLES.parent, clock=lambda: NOW)
    with pytest.raises(LookupError, match="no active access key"):
        sign_request(keyless, "GET", "http://api.test/", user="bob")
    with pytest.raises(LookupError, match="no single user"):
        sign_request(iam, "GET", "http://api.test/", user="mallory")


def test_session_token_carries_mfa_and_its_age(iam: IAM) -> None:
    principal = iam.credentials.from_token(session_token(iam, "bob", mfa_age=600))
    assert principal.arn == BOB and principal.credential_kind is CredentialKind.SESSION
    keys = principal.context_keys(NOW)
    assert keys["aws:MultiFactorAuthPresent"] == "true" and keys["aws:MultiFactorAuthAge"] == "600"
    # bob's write policy wants MFA younger than an hour.
    fresh = iam.credentials.from_token(session_token(iam, "bob"))
    stale = iam.credentials.from_token(session_token(iam, "bob", mfa_age=4000))
    assert_allowed(iam, fresh, "orders:DeleteOrder", ORDER)
    assert_denied(iam, stale, "orders:DeleteOrder", ORDER)


def test_web_identity_token_maps_to_the_providers_role(iam: IAM) -> None:
    principal = iam.credentials.from_token(web_identity_token(iam, subject="partner-7", claims={"team": "green"}))
    assert principal.type is PrincipalType.ASSUMED_ROLE
    assert principal.arn == "arn:app:sts::111122223333:assumed-role/partner/partner-7"
    assert principal.tags["team"] == "green"
    assert_allowed(iam, principal, "orders:GetOrder", ORDER)
    assert_denied(iam, principal, "orders:DeleteOrder", ORDER)


def test_web_identity_token_the_trust_policy_refuses(iam: IAM) -> None:
    with pytest.raises(InvalidTokenError):
        iam.credentials.from_token(web_identity_token(iam, claims={"aud": "another-api"}))


def test_web_identity_token_needs_a_signing_key(iam: IAM) -> None:
    with pytest.raises(LookupError, match="name one provider"):
        web_identity_token(iam, provider="nobody")


# Policy assertions -------------------------------------------------------------------------------------------------


def test_assert_allowed_returns_the_decision(iam: IAM) -> None:
    decision = assert_allowed(iam, "alice", "orders:GetOrder", ORDER)
    assert decision.allowed and decision.principal_arn == ALICE


def test_assert_allowed_fails_with_the_denials_explanation(iam: IAM) -> None:
    with pytest.raises(AssertionError, match="alice is not authorized to perform: orders:DeleteOrder"):
        assert_allowed(iam, "alice", "orders:DeleteOrder", ORDER)


def test_assert_denied_tells_explicit_from_implicit(iam: IAM) -> None:
    assert assert_denied(iam, "alice", "orders:DeleteOrder", ORDER).kind is DecisionKind.IMPLICITLY_DENIED
    explicit = assert_denied(iam, "carol", "orders:DeleteOrder", "arn:app:orders::111122223333:order/archived-1")
    assert explicit.kind is DecisionKind.EXPLICITLY_DENIED
    with pytest.raises(AssertionError, match="is authorized"):
        assert_denied(iam, "carol", "orders:DeleteOrder", ORDER)


def test_principal_for_users_and_roles(iam: IAM) -> None:
    assert_denied(iam, principal_for(iam, "bob"), "orders:DeleteOrder", ORDER)  # an access key: no MFA
    assert_allowed(iam, principal_for(iam, "bob", mfa=True), "orders:DeleteOrder", ORDER)
    role = principal_for(iam, role="partner", session_name="ci")
    assert role.arn.endswith("assumed-role/partner/ci")
    assert_allowed(iam, role, "orders:ListOrders")
    assert_allowed(iam, "alice", "orders:GetOrder", ORDER, context={"aws:SourceIp": "10.0.0.1"})
    with pytest.raises(ValueError, match="exactly one"):
        principal_for(iam)


# Route clients -----------------------------------------------------------------------------------------------------


def fastapi_app(iam: IAM) -> FastAPI:
    app = FastAPI()
    install(app, iam)
    @app.get("/orders/{order_id}")
    async def get_order(order_id: str, principal: Annotated[Principal, Depends(READ)]) -> Any:
        return {"order": order_id, "by": principal.arn}

    @app.delete("/orders/{order_id}")
    def delete_order(order_id: str, principal: Annotated[Principal, Depends(DELETE)]) -> Any:
        return {"deleted": order_id}

    @app.post("/notes")
    async def add_note(note: dict[str, str],
                       principal: Annotated[Principal, Depends(Authorize("orders:CreateOrder"))]) -> Any:
        return {"note": note["text"], "by": principal.arn}

    @app.get("/ping")
    @public
    async def ping() -> Any:
        return "pong"

    return app


def test_async_route_client_calls_as_each_kind_of_caller(iam: IAM) -> None:
    async def scenario() -> None:
        async with AsyncRouteClient(fastapi_app(iam), iam) as client:
            response = await client.assert_allowed("GET", "/orders/1", user="alice", via="sigv4")
            assert response.json() == {"order": "1", "by": ALICE}
            await client.assert_allowed("GET", "/orders/1", user="bob")
            await client.assert_allowed("GET", "/orders/1", user="bob", via="cookie")
            await client.assert_allowed("DELETE", "/orders/1", user="bob", via="cookie")
            await client.assert_denied("DELETE", "/orders/1", user="alice", via="sigv4")
            await client.assert_denied("DELETE", "/orders/1")
            await client.expect(200, "GET", "/ping")
            await client.expect((401, 403), "GET", "/orders/1", token="not-a-token")
            response = await client.expect(200, "POST", "/notes", user="carol", via="sigv4", json={"text": "hi"})
            assert response.json() == {"note": "hi", "by": "arn:app:iam::111122223333:user/carol"}
            await client.assert_allowed("GET", "/orders/2", token=web_identity_token(iam))

    asyncio.run(scenario())


def test_async_route_client_failures_say_what_came_back(iam: IAM) -> None:
    async def scenario() -> None:
        async with AsyncRouteClient(fastapi_app(iam), iam) as client:
            with pytest.raises(AssertionError, match="DELETE /orders/1: expected the route to run, got 403"):
                await client.assert_allowed("DELETE", "/orders/1", user="alice")
            with pytest.raises(AssertionError, match="expected status 403, got 200"):
                await client.assert_denied("GET", "/orders/1", user="alice")
            with pytest.raises(AssertionError, match="expected status 200, got 401"):
                await client.expect(200, "GET", "/orders/1")

    asyncio.run(scenario())


def test_route_client_calls_a_flask_app(iam: IAM) -> None:
    app = Flask(__name__)
    guard = IAMFlask(app, iam)

    @app.get("/orders/<order_id>")
    @guard.permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")
    def get_order(order_id: str) -> Any:
        return {"order": order_id, "by": g.principal.arn}

    with RouteClient(app, iam) as client:
        assert client.assert_allowed("GET", "/orders/3", user="alice", via="sigv4").json()["by"] == ALICE
        client.assert_allowed("GET", "/orders/3", user="bob", via="cookie")
        client.assert_denied("GET", "/orders/3")
        client.expect(401, "GET", "/orders/3", token=session_token(iam, "bob")[:-3] + "abc")
        client.expect(403, "GET", "/nowhere", user="alice")  # refused as every shell refuses an unknown path
