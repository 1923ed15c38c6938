"""No secret in a repr, an error or a log line: access key secrets, session tokens, passwords, one-time codes and
outside tokens stay out of everything the client shows, through a whole run against the token service."""

from __future__ import annotations

import logging

import httpx
import pytest
from sts._support import ALICE_KEY, PARTNER, PASSWORD, Clock, code, idp_token

from iam_middleware import IAM
from iam_middleware.client import (
    BearerAuth,
    Credentials,
    SigV4Auth,
    StaticCredentials,
    SuppliedToken,
    TokenServiceClient,
    TokenServiceError,
)

from ._support import BASE, STS, Counting, wsgi_transport

SECRET, TOKEN = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "IQoJb3JpZ2luX2VjEXAMPLE-session-token"


def test_credentials_and_the_objects_holding_them_mask_the_secrets() -> None:
    credentials = Credentials("ASIAEXAMPLE", SECRET, TOKEN, 1_768_478_400.0)
    shown = [repr(credentials), str(credentials), repr(StaticCredentials(credentials)),
             repr(SigV4Auth(credentials, service="orders", region="local")),
             repr(BearerAuth(lambda: TOKEN)), repr(SuppliedToken(lambda: TOKEN))]
    for text in shown:
        assert SECRET not in text and TOKEN not in text, text
    assert repr(credentials) == ("Credentials(access_key_id='ASIAEXAMPLE', secret_access_key='********', "
                                 "session_token='********', expires_at='2026-01-15T12:00:00+00:00')")
    with pytest.raises(ValueError, match="secret"):
        Credentials("AKIA", "")


def test_a_whole_run_shows_no_secret_in_reprs_errors_or_logs(iam: IAM, clock: Clock,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    transport = Counting(wsgi_transport(iam))
    sts = TokenServiceClient(STS, service="orders", region="local", client=httpx.Client(transport=transport),
                             clock=clock)
    codes: list[str] = []

    def bob_code() -> str:
        codes.append(code(iam, "bob", clock.now))
        return codes[-1]

    outside = idp_token(clock.now)
    session = sts.login("bob", password=lambda: PASSWORD, code=bob_code)
    role = sts.assume_role(Credentials(*ALICE_KEY), PARTNER, "svc-a")
    web = sts.assume_role_with_web_identity(lambda: outside)
    with caplog.at_level(logging.DEBUG):
        with httpx.Client(transport=transport, base_url=BASE, auth=BearerAuth(session)) as client:
            assert client.get("/orders/42").status_code == 200
        for provider in (role, web):
            with httpx.Client(transport=transport, base_url=BASE, auth=sts.signer(provider)) as client:
                assert client.get("/orders/42").status_code == 200
        wrong = sts.login("bob", password=lambda: "not the password", code=bob_code)
        with pytest.raises(TokenServiceError) as refused:
            wrong.token()
    issued = [role.credentials(), web.credentials()]
    secrets = [PASSWORD, "not the password", *codes, session.token(), outside, ALICE_KEY[1],
               *(c.secret_access_key for c in issued), *(c.session_token or "" for c in issued)]
    shown = [caplog.text, str(refused.value), repr(refused.value), repr(sts), repr(session), repr(role), repr(web),
             *map(repr, issued)]
    for secret in secrets:
        for text in shown:
            assert secret not in text
    assert refused.value.code == "InvalidLogin"
