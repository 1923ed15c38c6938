"""TokenServiceClient's providers against the real token service in process: GetSessionToken with a one-time code
supplier, AssumeRole (a session policy, role chaining from another provider), AssumeRoleWithWebIdentity with a
token supplier; cached, renewed exactly when the margin is reached (an injected clock, no sleeping), kept in use
when a renewal fails while they are still valid, and the service's refusals as TokenServiceError."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from sts._support import ALICE, ALICE_KEY, CAROL_KEY, PARTNER, Clock, code, demo_data, idp_token, make_iam

from iam_middleware import IAM
from iam_middleware.client import Credentials, TemporaryCredentials, TokenServiceClient, TokenServiceError

from ._support import BASE, STS, AsyncCounting, Counting, asgi_transport, wsgi_transport

pytestmark = pytest.mark.anyio
ALICE_CREDENTIALS = Credentials(*ALICE_KEY)


class Codes:
    """alice's authenticator, asked by the provider; counts how often."""

    def __init__(self, iam: IAM, clock: Clock) -> None:
        self.iam, self.clock, self.asked = iam, clock, 0

    def __call__(self) -> str:
        self.asked += 1
        return code(self.iam, "alice", self.clock.now)


def sync_service(iam: IAM, clock: Clock) -> tuple[TokenServiceClient, Counting]:
    transport = Counting(wsgi_transport(iam))
    return TokenServiceClient(STS, service="orders", region="local", client=httpx.Client(transport=transport),
                              clock=clock), transport


def test_get_session_token_is_cached_and_renewed_when_the_margin_is_reached(iam: IAM, clock: Clock) -> None:
    sts, transport = sync_service(iam, clock)
    codes = Codes(iam, clock)
    provider = sts.get_session_token(ALICE_CREDENTIALS, code=codes, duration=900, margin=300)
    first = provider.credentials()
    assert first.access_key_id.startswith("ASIA") and first.expires_at == clock.now + 900
    clock.tick(599)  # 301 s left: still fresh
    assert provider.credentials() is first
    clock.tick(1)  # 300 s left: the margin is reached
    second = provider.credentials()
    assert second is not first and second.expires_at == clock.now + 900
    assert transport.calls == ["/sts/GetSessionToken"] * 2 and codes.asked == 2
    with httpx.Client(transport=transport, base_url=BASE, auth=sts.signer(provider)) as client:
        answer = client.get("/orders/42").json()
    assert answer == {**answer, "caller": ALICE, "mfa": True}  # temporary credentials that carry MFA
    assert transport.calls == ["/sts/GetSessionToken"] * 2


async def test_async_providers_for_all_three_operations(iam: IAM, clock: Clock) -> None:
    transport = AsyncCounting(asgi_transport(iam))
    outside = []

    def token() -> str:
        outside.append(idp_token(clock.now, sub="partner-42"))
        return outside[-1]

    async with httpx.AsyncClient(transport=transport) as sts_client:
        sts = TokenServiceClient(STS, service="orders", region="local", async_client=sts_client, clock=clock)
        providers = {
            "mfa": sts.get_session_token(ALICE_CREDENTIALS, code=Codes(iam, clock)),
            "role": sts.assume_role(ALICE_CREDENTIALS, PARTNER, "svc-a", duration=900),
            "web": sts.assume_role_with_web_identity(token, duration=900),
        }
        callers = {}
        for name, provider in providers.items():
            async with httpx.AsyncClient(transport=transport, base_url=BASE, auth=sts.signer(provider)) as client:
                for _ in range(3):
                    response = await client.get("/orders/42")
                    assert response.status_code == 200, response.text
                callers[name] = response.json()["caller"]
        clock.tick(900 - 300)  # the two 900 s sessions reach their margin; GetSessionToken's hour does not
        for provider in providers.values():
            await provider.acredentials()
    assert callers["mfa"] == ALICE
    assert callers["role"] == "arn:app:sts::111122223333:assumed-role/partner/svc-a"
    assert callers["web"].startswith("arn:app:sts::111122223333:assumed-role/partner/")
    assert sorted(transport.calls) == sorted(["/sts/GetSessionToken", "/sts/AssumeRole", "/sts/AssumeRole",
                                              "/sts/AssumeRoleWithWebIdentity", "/sts/AssumeRoleWithWebIdentity"])
    assert len(outside) == 2  # a fresh outside token for each renewal


def test_role_chaining_from_another_provider_keeps_mfa_and_a_session_policy_narrows(iam: IAM, clock: Clock) -> None:
    sts, transport = sync_service(iam, clock)
    mfa = sts.get_session_token(ALICE_CREDENTIALS, code=Codes(iam, clock))
    role = sts.assume_role(mfa, PARTNER, "chained")
    narrowed = sts.assume_role(ALICE_CREDENTIALS, PARTNER, "narrowed", policy={
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:ListOrders", "Resource": "*"}]})
    with httpx.Client(transport=transport, base_url=BASE, auth=sts.signer(role)) as client:
        chained = client.get("/orders/42")
    with httpx.Client(transport=transport, base_url=BASE, auth=sts.signer(narrowed)) as client:
        denied = client.get("/orders/42")
    assert chained.status_code == 200 and chained.json()["mfa"] is True
    assert denied.status_code == 403
    assert transport.calls == ["/sts/GetSessionToken", "/sts/AssumeRole", "/sts/AssumeRole"]


def test_refusals_are_token_service_errors_with_the_services_code(iam: IAM, clock: Clock) -> None:
    sts, _ = sync_service(iam, clock)
    with pytest.raises(TokenServiceError) as not_trusted:
        sts.assume_role(Credentials(*CAROL_KEY), PARTNER, "svc-c").credentials()
    assert (not_trusted.value.status_code, not_trusted.value.code) == (403, "AccessDenied")
    assert not_trusted.value.request_id
    with pytest.raises(TokenServiceError) as bad_code:
        sts.get_session_token(ALICE_CREDENTIALS, code=lambda: "000000").credentials()
    assert bad_code.value.status_code in (401, 403) and "000000" not in str(bad_code.value)


def test_assume_role_sends_session_tags_and_source_identity_which_the_trust_policy_must_allow(clock: Clock) -> None:
    data = demo_data()
    # The demo's trust policy lets alice assume the role, but not tag the session nor set its source identity.
    iam = make_iam(clock, data)
    sts, _ = sync_service(iam, clock)
    refused = sts.assume_role(ALICE_CREDENTIALS, PARTNER, "svc-a", tags={"team": "blue"})
    with pytest.raises(TokenServiceError) as denied:
        refused.credentials()
    assert (denied.value.status_code, denied.value.code) == (403, "AccessDenied")
    assert "sts:TagSession" in denied.value.message
    trust = json.loads(data["roles"]["partner"]["trust_policy"]["document"])
    trust["Statement"][0]["Action"] = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
    data["roles"]["partner"]["trust_policy"]["document"] = json.dumps(trust)
    iam = make_iam(clock, data)
    sts, transport = sync_service(iam, clock)
    provider = sts.assume_role(ALICE_CREDENTIALS, PARTNER, "svc-a", tags={"team": "blue", "cost": "7"},
                               transitive_tag_keys=["team"], source_identity="alice")
    session = provider.credentials()
    record = iam.credentials.temporary.lookup(session.access_key_id)
    assert record is not None
    assert dict(record.tags) == {"team": "blue", "cost": "7"} and record.transitive_tag_keys == ("team",)
    assert record.context["aws:sourceidentity"] == "alice"
    assert transport.calls == ["/sts/AssumeRole"]


def test_a_failed_renewal_keeps_valid_credentials_in_use_and_retries_later(iam: IAM, clock: Clock,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    sts, transport = sync_service(iam, clock)
    answers = iter(["good", "bad", "bad", "good"])
    codes = Codes(iam, clock)

    def flaky() -> str:
        return codes() if next(answers) == "good" else "000000"

    provider = sts.get_session_token(ALICE_CREDENTIALS, code=flaky, duration=900, margin=300)
    first = provider.credentials()
    clock.tick(700)  # 200 s left: renewal due
    with caplog.at_level(logging.WARNING, logger="iam_middleware.client"):
        assert provider.credentials() is first  # the renewal failed: the current ones stay in use
    assert "renewing the credentials from GetSessionToken failed" in caplog.text
    assert first.secret_access_key not in caplog.text and "000000" not in caplog.text
    assert provider.credentials() is first and len(transport.calls) == 2  # no new attempt for a while
    clock.tick(10)
    assert provider.credentials() is first and len(transport.calls) == 3  # tried again, failed again
    clock.tick(185)  # 5 s left: too late to sign with them
    fresh = provider.credentials()
    assert fresh is not first and len(transport.calls) == 4


def test_a_failed_renewal_without_valid_credentials_raises(iam: IAM, clock: Clock) -> None:
    sts, transport = sync_service(iam, clock)
    provider = sts.assume_role(Credentials(*CAROL_KEY), PARTNER, "svc-c")
    for _ in range(2):  # each caller that has nothing to sign with asks again
        with pytest.raises(TokenServiceError):
            provider.credentials()
    assert len(transport.calls) == 2


def test_an_answer_that_is_not_the_services_json_is_an_invalid_response(clock: Clock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/AssumeRole"):
            return httpx.Response(200, json={"Credentials": {"AccessKeyId": "ASIA"}})
        return httpx.Response(502, text="<html>bad gateway</html>")

    sts = TokenServiceClient(STS, service="orders", region="local",
                             client=httpx.Client(transport=httpx.MockTransport(handler)), clock=clock)
    for provider, status in ((sts.assume_role(ALICE_CREDENTIALS, PARTNER, "x"), 200),
                             (sts.assume_role_with_web_identity(lambda: "token"), 502)):
        with pytest.raises(TokenServiceError) as failed:
            provider.credentials()
        assert (failed.value.status_code, failed.value.code) == (status, "InvalidResponse")


def test_providers_are_made_by_the_client_and_validate_their_margin(clock: Clock) -> None:
    sts = TokenServiceClient(STS, service="orders", region="local", clock=clock)
    assert isinstance(sts.assume_role(ALICE_CREDENTIALS, PARTNER, "x"), TemporaryCredentials)
    with pytest.raises(ValueError, match="margin"):
        sts.assume_role(ALICE_CREDENTIALS, PARTNER, "x", margin=-1)
    with pytest.raises(ValueError, match="url"):
        TokenServiceClient("api.example/sts", service="orders", region="local")
