"""Session tokens: issue/verify, expiry edges, revocation, secret rotation, forged and tampered tokens, cookies,
store outages, and no secret or token in any output."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iam_middleware._exceptions import ConfigurationError, InvalidTokenError, ServiceUnavailableError
from iam_middleware._request import RequestView
from iam_middleware.authenticators._sessions import (
    IssuedSession,
    MalformedSessionTokenError,
    SessionClaims,
    SessionExpiredError,
    SessionRevokedError,
    SessionSignatureError,
    SessionTokens,
)
from iam_middleware.state import MemoryStore, StateStore, StateUnavailableError

T0 = 1_700_000_000.25
ARN = "arn:aws:iam::123456789012:user/alice"
SECRET = b"s" * 32 + b"e" * 16 + b"c" * 16  # 64 bytes, so forging HS512 with it is warning-free
OLD_SECRET = b"o" * 40
OTHER_SECRET = b"x" * 48
TYP = "iam-session+jwt"


class Clock:
    """The injected time, shared with the store so its expiries follow the same clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def store(clock: Clock) -> StateStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def sessions(store: StateStore) -> SessionTokens:
    return SessionTokens(SECRET, store=store, ttl=3600)


def issue(sessions: SessionTokens, now: float = T0, arn: str = ARN, **kwargs: Any) -> IssuedSession:
    return sessions.issue(arn, now=now, mfa_time=now, **kwargs)


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def forge(claims: dict[str, Any], key: bytes = SECRET, **headers: Any) -> str:
    """A token signed with ``key`` (ours by default) carrying exactly these claims and headers."""
    return jwt.encode(claims, key, algorithm=headers.pop("alg", "HS256"), headers={"typ": TYP, **headers})


def sign_raw(claims: dict[str, Any], key: bytes = SECRET) -> str:
    """An HS256 token built by hand, for claims PyJWT itself refuses to encode."""
    signing_input = f"{b64({'alg': 'HS256', 'typ': TYP})}.{b64(claims)}"
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def good_claims(sessions: SessionTokens) -> dict[str, Any]:
    return claims_of(issue(sessions).token)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- the happy path ------------------------------------------------------------------------------------------------


def test_issue_then_verify(sessions: SessionTokens) -> None:
    issued = sessions.issue(ARN, now=T0, mfa_time=T0 - 5)
    claims = sessions.verify(issued.token, now=T0 + 1)
    assert isinstance(claims, SessionClaims)
    assert claims.principal_arn == ARN
    assert claims.session_id == issued.session_id
    assert claims.issuer == "iam-middleware"
    assert claims.issued_at == int(T0)
    assert claims.expires_at == issued.expires_at == int(T0) + 3600
    assert claims.auth_time == int(T0 - 5)
    assert claims.amr == ("pwd", "otp")
    assert claims.mfa_present and claims.mfa_time == int(T0 - 5)
    assert dict(claims.extra) == {}


def test_token_shape(sessions: SessionTokens) -> None:
    issued = issue(sessions)
    assert jwt.get_unverified_header(issued.token) == {"alg": "HS256", "typ": TYP}
    claims = claims_of(issued.token)
    assert set(claims) == {"iss", "sub", "sid", "iat", "exp", "auth_time", "amr"}
    assert claims["amr"] == ["pwd", "otp"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", claims["sid"])


def test_each_login_gets_a_new_session_id(sessions: SessionTokens) -> None:
    assert len({issue(sessions).session_id for _ in range(50)}) == 50


def test_extra_stays_server_side(sessions: SessionTokens) -> None:
    issued = issue(sessions, extra={"tenant": "blue", "roles": ["a", "b"]})
    assert "tenant" not in json.dumps(claims_of(issued.token))
    assert dict(sessions.verify(issued.token, now=T0).extra) == {"tenant": "blue", "roles": ["a", "b"]}


def test_issue_refuses_impossible_times(sessions: SessionTokens) -> None:
    with pytest.raises(ValueError):
        sessions.issue(ARN, now=T0, mfa_time=T0 + 1)
    with pytest.raises(ValueError):
        sessions.issue(ARN, now=float("nan"), mfa_time=T0)
    with pytest.raises(ValueError):
        sessions.issue("", now=T0, mfa_time=T0)


# --- lifetime ------------------------------------------------------------------------------------------------------


def test_expiry_edges(sessions: SessionTokens, clock: Clock) -> None:
    issued = issue(sessions)
    exp = issued.expires_at
    clock.now = exp - 1
    assert sessions.verify(issued.token, now=exp - 1)
    assert sessions.verify(issued.token, now=exp - 0.001)
    for late in (exp, exp + 1):
        with pytest.raises(SessionExpiredError):
            sessions.verify(issued.token, now=late)


def test_expiry_ignores_the_real_clock(store: StateStore) -> None:
    # Issued in 2001: long expired by the wall clock, still valid at the injected time.
    sessions = SessionTokens(SECRET, store=store)
    issued = issue(sessions, now=1_000_000_000.0)
    assert sessions.verify(issued.token, now=1_000_000_001.0)


def test_tokens_from_the_future_are_refused(sessions: SessionTokens) -> None:
    issued = issue(sessions)
    assert sessions.verify(issued.token, now=int(T0) - 60)  # within the allowed clock skew
    with pytest.raises(MalformedSessionTokenError):
        sessions.verify(issued.token, now=int(T0) - 61)


def test_idle_timeout(store: StateStore, clock: Clock) -> None:
    sessions = SessionTokens(SECRET, store=store, ttl=3600, idle_timeout=600)
    issued = issue(sessions)
    for _ in range(5):  # active use keeps it alive past several idle periods
        clock.now += 599
        assert sessions.verify(issued.token, now=clock.now)
    clock.now += 600
    with pytest.raises(SessionExpiredError, match="idle"):
        sessions.verify(issued.token, now=clock.now)


def test_idle_check_does_not_rely_on_the_store_expiring(store: StateStore) -> None:
    idle = SessionTokens(SECRET, store=store, ttl=3600, idle_timeout=600)
    issued = issue(idle)
    # The store's clock has not moved; the injected time alone decides.
    with pytest.raises(SessionExpiredError, match="idle"):
        idle.verify(issued.token, now=T0 + 600)


def test_session_record_expires_with_the_token(sessions: SessionTokens, store: StateStore, clock: Clock) -> None:
    issued = issue(sessions)
    clock.now = issued.expires_at
    assert store.get(f"iam:session:sess:{issued.session_id}") is None


# --- revocation ----------------------------------------------------------------------------------------------------


def test_revoke_ends_one_session(sessions: SessionTokens) -> None:
    first, second = issue(sessions), issue(sessions)
    sessions.revoke(first.session_id)
    with pytest.raises(SessionRevokedError):
        sessions.verify(first.token, now=T0)
    assert sessions.verify(second.token, now=T0)


def test_revoke_holds_across_instances(store: StateStore) -> None:
    a, b = SessionTokens(SECRET, store=store), SessionTokens(SECRET, store=store)
    issued = issue(a)
    b.revoke(issued.session_id)
    with pytest.raises(SessionRevokedError):
        a.verify(issued.token, now=T0)


def test_revoke_all_ends_earlier_sessions_of_that_principal_only(sessions: SessionTokens) -> None:
    before = issue(sessions, now=T0)
    same_instant = issue(sessions, now=T0 + 10)
    other_user = issue(sessions, now=T0, arn="arn:aws:iam::123456789012:user/bob")
    sessions.revoke_all(ARN, now=T0 + 10)
    after = issue(sessions, now=T0 + 10.001)
    for token in (before.token, same_instant.token):
        with pytest.raises(SessionRevokedError):
            sessions.verify(token, now=T0 + 20)
    assert sessions.verify(after.token, now=T0 + 20)
    assert sessions.verify(other_user.token, now=T0 + 20)


def test_revoke_all_cannot_be_moved_back(sessions: SessionTokens) -> None:
    issued = issue(sessions, now=T0)
    sessions.revoke_all(ARN, now=T0 + 10)
    sessions.revoke_all(ARN, now=T0 - 10)  # a process with a slow clock
    with pytest.raises(SessionRevokedError):
        sessions.verify(issued.token, now=T0 + 20)


def test_missing_or_unreadable_record_means_no_session(sessions: SessionTokens, store: StateStore) -> None:
    issued = issue(sessions)
    key = f"iam:session:sess:{issued.session_id}"
    for junk in (
        b"not json",
        b"[]",
        b'{"sub": 1}',
        json.dumps({"sub": "arn:other", "iat": T0, "seen": T0, "extra": {}}).encode(),
    ):
        store.set(key, junk)
        with pytest.raises(SessionRevokedError):
            sessions.verify(issued.token, now=T0)
    store.delete(key)
    with pytest.raises(SessionRevokedError):
        sessions.verify(issued.token, now=T0)


# --- secrets and rotation ------------------------------------------------------------------------------------------


def test_rotation_first_secret_signs_all_verify(store: StateStore) -> None:
    old = SessionTokens(OLD_SECRET, store=store)
    rotated = SessionTokens((SECRET, OLD_SECRET), store=store)
    new = SessionTokens(SECRET, store=store)
    from_old = issue(old)
    from_rotated = issue(rotated)
    assert rotated.verify(from_old.token, now=T0)
    assert rotated.verify(from_rotated.token, now=T0)
    assert new.verify(from_rotated.token, now=T0)  # signed with the new secret
    with pytest.raises(SessionSignatureError):
        new.verify(from_old.token, now=T0)  # the old secret has been retired


@pytest.mark.parametrize(
    "secret",
    [b"short", b"x" * 31, "s" * 40, (), (SECRET, b"short"), [SECRET], None],
)
def test_weak_or_wrong_secrets_are_refused(store: StateStore, secret: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SessionTokens(secret, store=store)  # type: ignore[arg-type]
    assert "short" not in str(caught.value) and "sss" not in str(caught.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ttl": 0},
        {"ttl": 1.5},
        {"ttl": True},
        {"issuer": ""},
        {"idle_timeout": 0},
        {"idle_timeout": 7200},
        {"cookie_name": "bad name"},
        {"cookie_name": "a;b"},
        {"cookie_name": ""},
    ],
)
def test_invalid_configuration_is_refused(store: StateStore, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SessionTokens(SECRET, store=store, **kwargs)


# --- forged, tampered and confused tokens ---------------------------------------------------------------------------


def test_token_signed_with_another_secret_is_refused(sessions: SessionTokens, store: StateStore) -> None:
    foreign = SessionTokens(OTHER_SECRET, store=store)
    with pytest.raises(SessionSignatureError):
        sessions.verify(issue(foreign).token, now=T0)


@pytest.mark.parametrize("part", [0, 1, 2])
def test_tampered_tokens_are_refused(sessions: SessionTokens, part: int) -> None:
    token = issue(sessions).token
    segments = token.split(".")
    if part == 1:
        payload = claims_of(token)
        payload["sub"] = "arn:aws:iam::123456789012:user/admin"
        segments[1] = b64(payload)
    elif part == 0:
        segments[0] = b64({"alg": "HS256", "typ": TYP, "kid": "x"})
    else:
        segments[2] = segments[2][:-2] + ("AA" if not segments[2].endswith("AA") else "BA")
    with pytest.raises(InvalidTokenError):
        sessions.verify(".".join(segments), now=T0)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused(sessions: SessionTokens, alg: str) -> None:
    payload = good_claims(sessions)
    for signature in ("", "c2ln"):
        token = f"{b64({'alg': alg, 'typ': TYP})}.{b64(payload)}.{signature}"
        with pytest.raises(SessionSignatureError):
            sessions.verify(token, now=T0)


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithms_are_refused_even_with_our_secret(sessions: SessionTokens, alg: str) -> None:
    with pytest.raises(SessionSignatureError):
        sessions.verify(forge(good_claims(sessions), alg=alg), now=T0)


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "IAM-SESSION+JWT", None])
def test_other_token_types_are_refused_even_with_our_secret(sessions: SessionTokens, typ: str | None) -> None:
    token = jwt.encode(good_claims(sessions), SECRET, algorithm="HS256", headers={"typ": typ})
    with pytest.raises(SessionSignatureError):
        sessions.verify(token, now=T0)


def test_other_issuer_is_refused_even_with_our_secret(sessions: SessionTokens) -> None:
    for issuer in ("other", "iam-middleware-2", "iam-middlewar", ["iam-middleware"], None):
        with pytest.raises(InvalidTokenError):
            sessions.verify(sign_raw({**good_claims(sessions), "iss": issuer}), now=T0)
    assert sessions.verify(sign_raw(good_claims(sessions)), now=T0)  # the hand-built form itself is fine


@pytest.mark.parametrize(
    "change",
    [
        {"sid": None},
        {"sub": None},
        {"exp": None},
        {"iat": None},
        {"auth_time": None},
        {"amr": None},
        {"exp": "9999999999"},
        {"exp": 9999999999.5},
        {"exp": True},
        {"iat": "1700000000"},
        {"sub": 42},
        {"sid": "short"},
        {"sid": "../" + "a" * 40},
        {"amr": "pwd otp"},
        {"amr": ["pwd", 1]},
        {"auth_time": 1_800_000_000},  # after iat
        {"aud": "someone"},
    ],
)
def test_malformed_claims_signed_with_our_secret_are_refused(sessions: SessionTokens, change: dict[str, Any]) -> None:
    claims = good_claims(sessions)
    for name, value in change.items():
        if value is None:
            del claims[name]
        else:
            claims[name] = value
    with pytest.raises(MalformedSessionTokenError):
        sessions.verify(forge(claims), now=T0)


@pytest.mark.parametrize(
    "token",
    ["", "a", "a.b", "a.b.c.d.e", "a..b", "ä.b.c", "x" * 5000, "eyJ.eyJ.", None, b"a.b.c"],
)
def test_malformed_tokens_are_refused(sessions: SessionTokens, token: object) -> None:
    with pytest.raises(MalformedSessionTokenError):
        sessions.verify(token, now=T0)  # type: ignore[arg-type]


def test_oversized_token_is_refused_before_parsing(sessions: SessionTokens) -> None:
    claims = {**good_claims(sessions), "pad": "x" * 5000}
    with pytest.raises(MalformedSessionTokenError):
        sessions.verify(forge(claims), now=T0)


@settings(deadline=None, max_examples=100)
@given(
    token=st.one_of(
        st.text(max_size=300),
        st.from_regex(r"[A-Za-z0-9_\-]{0,60}\.[A-Za-z0-9_\-]{0,60}\.[A-Za-z0-9_\-]{0,60}", fullmatch=True),
    )
)
def test_arbitrary_strings_are_refused_cleanly(token: str) -> None:
    sessions = SessionTokens(SECRET, store=MemoryStore())
    with pytest.raises(InvalidTokenError):
        sessions.verify(token, now=T0)


# --- store outages -------------------------------------------------------------------------------------------------


class DownStore(MemoryStore):
    """Every call fails, as a RedisStore does while Redis is down."""

    def get(self, key: str) -> bytes | None:
        raise StateUnavailableError("down")

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        raise StateUnavailableError("down")

    def delete(self, key: str) -> None:
        raise StateUnavailableError("down")

    def advance(self, key: str, value: int, ttl: float) -> bool:
        raise StateUnavailableError("down")


def test_unreachable_store_refuses_with_503(sessions: SessionTokens) -> None:
    token = issue(sessions).token
    down = SessionTokens(SECRET, store=DownStore())
    for call in (
        lambda: down.verify(token, now=T0),
        lambda: issue(down),
        lambda: down.revoke("x"),
        lambda: down.revoke_all(ARN, now=T0),
    ):
        with pytest.raises(ServiceUnavailableError):
            call()


def test_forged_token_is_refused_without_touching_the_store() -> None:
    # Signature first: a bad token gets 401 even when the store is down (no store round trip to exploit).
    with pytest.raises(SessionSignatureError):
        SessionTokens(SECRET, store=DownStore()).verify(forge({"sub": ARN}, key=OTHER_SECRET), now=T0)


# --- cookies -------------------------------------------------------------------------------------------------------


def test_cookie_header_attributes(sessions: SessionTokens) -> None:
    issued = issue(sessions)
    header = sessions.cookie_header(issued)
    name_value, *attributes = [part.strip() for part in header.split(";")]
    assert name_value == f"iam_session={issued.token}"
    assert sorted(attributes) == sorted(["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=3599"])


def test_clear_cookie_header(sessions: SessionTokens) -> None:
    header = sessions.clear_cookie_header()
    assert header.startswith("iam_session=;")
    assert "Max-Age=0" in header and "Secure" in header and "HttpOnly" in header and "Path=/" in header


def test_host_prefixed_cookie_name(store: StateStore) -> None:
    sessions = SessionTokens(SECRET, store=store, cookie_name="__Host-session")
    assert sessions.cookie_header(issue(sessions)).startswith("__Host-session=")


def request_with_cookies(*cookies: str) -> RequestView:
    return RequestView(method="GET", raw_path=b"/", headers=tuple(("cookie", c) for c in cookies))


def test_token_from_cookie(sessions: SessionTokens) -> None:
    token = issue(sessions).token
    assert sessions.token_from_cookie(request_with_cookies(f"theme=dark; iam_session={token}; x=1")) == token
    assert sessions.token_from_cookie(request_with_cookies("theme=dark", f"iam_session={token}")) == token
    assert sessions.token_from_cookie(request_with_cookies("theme=dark")) is None
    assert sessions.token_from_cookie(request_with_cookies("iam_session=")) is None
    assert sessions.token_from_cookie(RequestView(method="GET", raw_path=b"/")) is None


def test_duplicate_session_cookies_are_refused(sessions: SessionTokens) -> None:
    token = issue(sessions).token
    for request in (
        request_with_cookies(f"iam_session={token}; iam_session=planted"),
        request_with_cookies(f"iam_session={token}", "iam_session=planted"),
    ):
        with pytest.raises(MalformedSessionTokenError):
            sessions.token_from_cookie(request)


# --- nothing secret leaks ------------------------------------------------------------------------------------------


def test_no_secret_or_token_in_reprs_or_errors(store: StateStore) -> None:
    sessions = SessionTokens((SECRET, OLD_SECRET), store=store)
    issued = issue(sessions)
    texts = [repr(sessions), str(sessions), repr(issued), str(issued)]
    bad_tokens = [issued.token + "x", issued.token[:-3], forge({"sub": ARN}), issued.token.replace(".", "..")]
    for bad in bad_tokens:
        with pytest.raises(InvalidTokenError) as caught:
            sessions.verify(bad, now=T0)
        texts += [str(caught.value), repr(caught.value)]
    sessions.revoke(issued.session_id)
    with pytest.raises(SessionRevokedError) as revoked:
        sessions.verify(issued.token, now=T0)
    texts += [str(revoked.value), repr(revoked.value)]
    signature = issued.token.rsplit(".", 1)[1]
    for text in texts:
        for secret in (SECRET, OLD_SECRET):
            assert secret.decode() not in text
        assert issued.token not in text and signature not in text
    assert "********" in repr(issued)
