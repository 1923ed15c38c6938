"""Login and logout through the token service: demo users, codes computed with pyotp at a frozen clock."""

from __future__ import annotations

import pyotp
import pytest

from iam_middleware._iam import IAM
from iam_middleware._principal import CredentialKind
from iam_middleware._request import RequestView
from iam_middleware.authenticators._sessions import SessionRevokedError

from ._support import (
    ALICE_KEY,
    BOB,
    ORIGIN,
    PASSWORD,
    START,
    Client,
    Clock,
    code,
    demo_data,
    make_iam,
)


def bearer_view(token: str, method: str = "GET") -> RequestView:
    return RequestView(method, b"/orders", headers=(("host", "api.example"), ("authorization", f"Bearer {token}")),
                       scheme="https")


def cookie_view(token: str, *, method: str = "GET", origin: str | None = None) -> RequestView:
    headers = [("host", "api.example"), ("cookie", f"iam_session={token}")]
    if origin is not None:
        headers.append(("origin", origin))
    return RequestView(method, b"/orders", headers=tuple(headers), scheme="https")


def test_login_returns_a_session_usable_as_bearer_token_and_cookie(client: Client, iam: IAM) -> None:
    bob = iam.snapshot.user("bob")
    assert bob is not None and bob.totp is not None
    # The code an authenticator app shows, computed by pyotp itself from the seed in examples/iam.toml.
    response = client.post("/login", {"username": "bob", "password": PASSWORD,
                                      "code": pyotp.TOTP("S7OGSI66TRZN23GL34ETDX36DJYB2AJM").at(START)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_at"] == int(START) + iam.settings.session_ttl
    assert body["token_type"] == "Bearer"
    assert response.headers["cache-control"] == "no-store"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"iam_session={body['token']};")
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/", f"Max-Age={iam.settings.session_ttl}"):
        assert attribute in cookie
    for view in (bearer_view(body["token"]), cookie_view(body["token"])):
        principal = iam.authenticate(view)
        assert principal is not None
        assert principal.arn == BOB
        assert principal.credential_kind is CredentialKind.SESSION
        assert principal.mfa_present is True and principal.mfa_time == START


def test_wrong_password_and_wrong_code_get_one_uniform_answer(client: Client, iam: IAM, clock: Clock) -> None:
    answers = []
    for username, password, otp in (("bob", "wrong password", code(iam, "bob", START)),
                                    ("bob", PASSWORD, "000000"),
                                    ("nobody", PASSWORD, "123456")):
        clock.tick(600)  # past the per-failure delay, so each attempt is judged on its own
        response = client.post("/login", {"username": username, "password": password, "code": otp})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Session")
        answers.append((response.json()["error"], response.json()["message"]))
    assert len(set(answers)) == 1
    assert answers[0][0] == "InvalidLogin"


def test_a_code_works_once(client: Client, iam: IAM) -> None:
    otp = code(iam, "bob", START)
    first = client.post("/login", {"username": "bob", "password": PASSWORD, "code": otp})
    assert first.status_code == 200
    replay = client.post("/login", {"username": "bob", "password": PASSWORD, "code": otp})
    assert replay.status_code == 401
    assert replay.json()["error"] == "InvalidLogin"
    assert "set-cookie" not in replay.headers


def test_repeated_failures_lock_the_user_out_even_with_the_right_code(client: Client, iam: IAM, clock: Clock) -> None:
    for _ in range(iam.settings.login_max_failures):
        clock.tick(60)
        assert client.post("/login", {"username": "bob", "password": "guess", "code": "123456"}).status_code == 401
    clock.tick(31)
    locked = client.login("bob")
    assert locked.status_code == 401
    assert locked.json()["error"] == "LockedOut"
    assert int(locked.headers["retry-after"]) > 0
    clock.tick(iam.settings.login_lockout)
    assert client.login("bob").status_code == 200


def after_cache_bound(iam: IAM, clock: Clock) -> None:
    """Let the facade's bound on re-checking a verified session against the store pass."""
    clock.tick(iam.settings.session_cache_seconds + 1)


def test_logout_ends_the_session_and_clears_the_cookie(client: Client, iam: IAM, clock: Clock) -> None:
    token = client.token("bob")
    response = client.post("/logout", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"logged_out": True, "everywhere": False}
    assert response.headers["set-cookie"].startswith("iam_session=; Max-Age=0")
    after_cache_bound(iam, clock)
    with pytest.raises(SessionRevokedError):
        iam.authenticate(bearer_view(token))
    assert client.post("/logout", headers={"authorization": f"Bearer {token}"}).status_code == 401


def test_logout_with_the_cookie_needs_a_trusted_origin(client: Client, iam: IAM, clock: Clock) -> None:
    token = client.token("bob")
    forged = client.post("/logout", headers={"cookie": f"iam_session={token}", "origin": "https://evil.example"})
    assert forged.status_code == 403
    assert forged.json()["error"] == "CSRFCheckFailed"
    assert iam.authenticate(bearer_view(token)) is not None  # still logged in
    ok = client.post("/logout", headers={"cookie": f"iam_session={token}", "origin": ORIGIN})
    assert ok.status_code == 200
    after_cache_bound(iam, clock)
    assert client.post("/logout", headers={"cookie": f"iam_session={token}", "origin": ORIGIN}).status_code == 401


def test_logout_everywhere_ends_every_session_of_the_user(client: Client, iam: IAM, clock: Clock) -> None:
    first = client.token("bob")
    clock.tick(30)
    second = client.token("bob")
    clock.tick(1)
    response = client.post("/logout", {"everywhere": True}, headers={"authorization": f"Bearer {second}"})
    assert response.status_code == 200
    after_cache_bound(iam, clock)
    for token in (first, second):
        with pytest.raises(SessionRevokedError):
            iam.authenticate(bearer_view(token))


def test_logout_needs_a_session_credential(client: Client, iam: IAM, clock: Clock) -> None:
    assert client.post("/logout").status_code == 401
    response = client.signed("/logout", {}, key=ALICE_KEY)
    assert response.status_code == 400
    assert response.json()["error"] == "NotASession"


def test_an_explicit_deny_of_sts_login_refuses_the_login_and_leaves_no_session(clock: Clock) -> None:
    data = demo_data()
    data["users"]["bob"]["inline"] = {"NoLogin": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "sts:Login", "Resource": "*"}]}}
    iam = make_iam(clock, data)
    client = Client(iam)
    response = client.login("bob")
    assert response.status_code == 403
    assert response.json()["error"] == "AccessDenied"
    assert "sts:Login" in response.json()["message"]
    assert "set-cookie" not in response.headers
    # Alice, without the deny, needs no Allow: logging in is self-service.
    assert client.login("alice").status_code == 200


def test_the_session_carries_no_secret_in_errors(client: Client) -> None:
    response = client.post("/login", {"username": "bob", "password": PASSWORD, "code": "12345x"})
    assert PASSWORD not in response.text and "12345x" not in response.text


def test_login_fields_are_checked_before_anything_is_counted(client: Client, iam: IAM) -> None:
    bad = [
        {"username": "bob", "password": PASSWORD},
        {"username": "bob", "password": PASSWORD, "code": 123456},
        {"username": ["bob"], "password": PASSWORD, "code": "123456"},
        {"username": "bob", "password": PASSWORD, "code": "123456", "remember": True},
    ]
    for body in bad:
        response = client.post("/login", body)
        assert response.status_code == 400, body
        assert response.json()["error"] in ("MissingParameter", "ValidationError")
    # None of those was a guess, so the right credentials work at once.
    assert client.login("bob").status_code == 200
