"""Session tokens are read by the strict verifier outside tokens go through: a token signed with the right session
secret is still refused when an outside token shaped the same would be (duplicate JSON members, claims of the wrong
type, headers that name their own key, non-canonical base64url, another or no algorithm), and through the middleware
that refusal is a 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest
from test_middleware import bearer, client, login, make_iam, protect

from iam_middleware._exceptions import InvalidTokenError
from iam_middleware.authenticators._jwks import JWTKey
from iam_middleware.authenticators._jwt import JWTValidationError, JWTVerifier, TrustedIssuer
from iam_middleware.authenticators._sessions import MalformedSessionTokenError, SessionTokens
from iam_middleware.state import MemoryStore

T0 = 1_700_000_000.0
SECRET = b"s" * 32
ARN = "arn:aws:iam::123456789012:user/alice"
ALICE = "arn:app:iam::111122223333:user/alice"  # the example directory's alice
HEADER = '{"alg":"HS256","typ":"iam-session+jwt"}'


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(header: str, payload: str, secret: bytes = SECRET) -> str:
    """A token over exactly these JSON texts, with a valid HS256 signature by ``secret``."""
    signing_input = f"{b64url(header.encode())}.{b64url(payload.encode())}"
    return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def payload_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return claims


def with_member(document: str, extra: str) -> str:
    return document[:-1] + "," + extra + "}"


def with_first(document: str, extra: str) -> str:
    return "{" + extra + "," + document[1:]


# Each forgery keeps the genuine claims, so json's last-wins reading (pyjwt's) sees a valid session.
Forgery = Callable[[str, bytes], str]
FORGERIES: dict[str, Forgery] = {
    "sub twice (a first reader sees alice)": lambda p, k: signed(HEADER, with_first(p, f'"sub":"{ALICE}"'), k),
    "sid twice": lambda p, k: signed(HEADER, with_first(p, '"sid":"' + "A" * 43 + '"'), k),
    "alg twice (none first)": lambda p, k: signed('{"alg":"none","typ":"iam-session+jwt","alg":"HS256"}', p, k),
    "typ twice (JWT first)": lambda p, k: signed('{"typ":"JWT","alg":"HS256","typ":"iam-session+jwt"}', p, k),
    "nbf a string": lambda p, k: signed(HEADER, with_member(p, '"nbf":"tomorrow"'), k),
    "nbf in the future": lambda p, k: signed(HEADER, with_member(p, f'"nbf":{int(T0) + 86400}'), k),
    "aud an empty array": lambda p, k: signed(HEADER, with_member(p, '"aud":[]'), k),
    "a number too large": lambda p, k: signed(HEADER, with_member(p, '"x":1e999'), k),
    "jku header": lambda p, k: signed('{"alg":"HS256","typ":"iam-session+jwt","jku":"https://evil.example/k"}', p, k),
}
PARITY: dict[str, Forgery] = {  # refused before too: kept to show both paths agree
    "jti a number": lambda p, k: signed(HEADER, with_member(p, '"jti":5'), k),
    "crit header": lambda p, k: signed('{"alg":"HS256","typ":"iam-session+jwt","crit":["exp"]}', p, k),
    "alg none": lambda p, k: signed('{"alg":"none","typ":"iam-session+jwt"}', p, k).rsplit(".", 1)[0] + ".",
    "alg HS512": lambda p, k: signed('{"alg":"HS512","typ":"iam-session+jwt"}', p, k),
    "non-canonical signature": lambda p, k: _noncanonical(signed(HEADER, p, k)),
}


def _noncanonical(token: str) -> str:
    # A 32-byte MAC is 43 base64url characters: the last one carries 2 unused bits, which must be zero.
    head, sig = token.rsplit(".", 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return f"{head}.{sig[:-1]}{alphabet[alphabet.index(sig[-1]) | 1]}"


@pytest.fixture
def genuine() -> tuple[SessionTokens, str]:
    """Sessions, and the payload JSON of a session they issued (its record exists)."""
    sessions = SessionTokens(SECRET, store=MemoryStore())
    token = sessions.issue(ARN, now=T0, mfa_time=T0).token
    return sessions, json.dumps(payload_of(token), separators=(",", ":"))


def outside_verifier() -> JWTVerifier:
    """The verifier outside tokens go through, trusting the same issuer and key."""
    return JWTVerifier([TrustedIssuer("iam-middleware", (), keys=(JWTKey(None, ("HS256",), SECRET),), leeway=60)])


def test_the_genuine_token_verifies_both_ways(genuine: tuple[SessionTokens, str]) -> None:
    sessions, payload = genuine
    token = signed(HEADER, payload)
    assert sessions.verify(token, now=T0 + 1).principal_arn == ARN
    assert outside_verifier().verify(token, now=T0 + 1).subject == ARN


@pytest.mark.parametrize("forgery", list(FORGERIES) + list(PARITY))
def test_a_token_an_outside_verifier_refuses_is_refused_as_a_session(genuine: tuple[SessionTokens, str],
                                                                      forgery: str) -> None:
    sessions, payload = genuine
    token = {**FORGERIES, **PARITY}[forgery](payload, SECRET)
    with pytest.raises(JWTValidationError):
        outside_verifier().verify(token, now=T0 + 1)
    with pytest.raises(InvalidTokenError) as caught:
        sessions.verify(token, now=T0 + 1)
    assert caught.value.status_code == 401


def test_a_duplicate_member_is_malformed_not_last_wins(genuine: tuple[SessionTokens, str]) -> None:
    sessions, payload = genuine
    with pytest.raises(MalformedSessionTokenError):
        sessions.verify(FORGERIES["sub twice (a first reader sees alice)"](payload, SECRET), now=T0 + 1)


@pytest.mark.anyio
@pytest.mark.parametrize("forgery", ["sub twice (a first reader sees alice)", "typ twice (JWT first)", "nbf a string",
                                     "aud an empty array"])
async def test_through_the_middleware_a_strictly_refused_session_is_401(forgery: str) -> None:
    iam = make_iam()
    token = login(iam, "bob")
    forged = FORGERIES[forgery](json.dumps(payload_of(token), separators=(",", ":")), iam.settings.session_secret)
    async with client(protect(iam=iam)) as http:
        assert (await http.get("/orders/42", headers=bearer(token))).status_code == 200
        response = await http.get("/orders/42", headers=bearer(forged))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
