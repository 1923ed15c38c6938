"""The IAM facade: each credential kind -> its Principal and context keys; bad credentials are 401 and never fall
through to another kind; header grammar; CSRF for cookie sessions; check/authorize decisions. Real botocore signs,
real pyjwt tokens, the demo directory of examples/iam.toml at a frozen clock."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.auth
import jwt
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from iam_middleware._exceptions import (
    AccessDeniedError,
    AuthenticationError,
    InvalidTokenError,
    ServiceUnavailableError,
    SignatureError,
)
from iam_middleware._iam import IAM
from iam_middleware._principal import CredentialKind, Principal, PrincipalType
from iam_middleware._request import RequestView
from iam_middleware.authenticators._csrf import CSRFError
from iam_middleware.authenticators._login import LoginFailedError
from iam_middleware.authenticators._sessions import SessionExpiredError
from iam_middleware.state import MemoryStore, StateUnavailableError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO = EXAMPLES / "iam.toml"
PASSWORD = "correct horse battery staple"
T = datetime.datetime(2026, 1, 15, 12, 0, 0, tzinfo=datetime.UTC).timestamp()
ACCOUNT = "111122223333"
ALICE = f"arn:app:iam::{ACCOUNT}:user/alice"
BOB = f"arn:app:iam::{ACCOUNT}:user/bob"
PARTNER = f"arn:app:iam::{ACCOUNT}:role/partner"
ALICE_KEY = ("AKIADEMOALICE0000001", "demo/alice/wJalrXUtnFEMI/K7MDENG/bPxRfiCY")
ORDER = f"arn:app:orders::{ACCOUNT}:order/42"
URL = "https://api.example/orders/42"
MFA_KEYS = ("aws:multifactorauthpresent", "aws:multifactorauthage")


class Clock:
    def __init__(self) -> None:
        self.now = T

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    # botocore reads the time through botocore.auth.get_current_datetime: sign at the test clock.
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: datetime.datetime.fromtimestamp(
        clock.now, datetime.UTC).replace(tzinfo=None))
    return clock


@pytest.fixture
def iam(clock: Clock) -> IAM:
    return IAM.from_file(DEMO, clock=clock, store=MemoryStore())


def demo_iam(clock: Clock, change: Any) -> IAM:
    data = copy.deepcopy(tomllib.loads(DEMO.read_text()))
    change(data)
    return IAM.from_dict(data, clock=clock, base_dir=EXAMPLES, store=MemoryStore())


def signed(method: str = "GET", url: str = URL, *, key: tuple[str, ...] = ALICE_KEY, body: bytes = b"",
           presign: bool = False) -> RequestView:
    """The RequestView of a request signed by real botocore (service "orders", region "local")."""
    request = AWSRequest(method=method, url=url, data=body)
    credentials = Credentials(*key)
    if presign:
        botocore.auth.SigV4QueryAuth(credentials, "orders", "local", expires=300).add_auth(request)
    else:
        botocore.auth.SigV4Auth(credentials, "orders", "local").add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    headers = (("host", parts.netloc), *((k.lower(), v) for k, v in prepared.headers.items()))
    return RequestView(method, parts.path.encode(), parts.query.encode(), headers, client_host="198.51.100.9",
                       scheme=parts.scheme, body=body)


def view(method: str = "GET", *headers: tuple[str, str]) -> RequestView:
    return RequestView(method, b"/orders/42", headers=(("host", "api.example"), *headers),
                       client_host="198.51.100.9", scheme="https")


def with_headers(request: RequestView, *headers: tuple[str, str]) -> RequestView:
    return dataclasses.replace(request, headers=(*request.headers, *headers))


def login(iam: IAM, user: str = "bob", now: float = T) -> str:
    found = iam.snapshot.user(user)
    assert found is not None and found.totp is not None
    return iam.login(user, PASSWORD, found.totp.code_at(now), now=now).token


def idp_token(now: float = T, **claims: Any) -> str:
    payload = {"iss": "https://idp.example", "aud": "orders-api", "sub": "partner-42", "team": "green",
               "iat": int(now), "exp": int(now) + 3600, **claims}
    return jwt.encode(payload, "demo-idp-hmac-secret-0123456789abcdef0123", algorithm="HS256")


def context(iam: IAM, principal: Principal, request: RequestView) -> dict[str, Any]:
    return iam.decisions.context_for(principal, request, now=iam.clock())


# Each credential kind -> the principal and its context keys -------------------------------------------------------
def test_a_long_term_access_key_is_the_user_without_mfa_keys(iam: IAM) -> None:
    request = signed()
    principal = iam.authenticate(request)
    assert principal is not None
    assert (principal.arn, principal.type, principal.credential_kind) == (ALICE, PrincipalType.USER,
                                                                          CredentialKind.ACCESS_KEY)
    assert principal.access_key_id == ALICE_KEY[0]
    keys = context(iam, principal, request)
    assert keys["aws:username"] == "alice"
    assert keys["aws:principalarn"] == ALICE and keys["aws:principaltype"] == "User"
    assert keys["aws:principalaccount"] == ACCOUNT and keys["aws:userid"].startswith("AIDA")
    assert keys["aws:principaltag/team"] == "blue" and keys["aws:principaltagkeys"] == ["team"]
    assert keys["aws:sourceip"] == "198.51.100.9" and keys["aws:securetransport"] == "true"
    assert keys["aws:currenttime"] == "2026-01-15T12:00:00Z" and keys["aws:epochtime"] == str(int(T))
    # As in AWS: a long-term key carries no MFA facts at all (absent, not "false").
    for key in (*MFA_KEYS, "aws:tokenissuetime"):
        assert key not in keys


def test_a_presigned_url_is_the_same_user(iam: IAM) -> None:
    principal = iam.authenticate(signed(presign=True))
    assert principal is not None and principal.arn == ALICE and principal.credential_kind is CredentialKind.ACCESS_KEY


def test_a_login_session_is_the_user_with_mfa(iam: IAM, clock: Clock) -> None:
    token = login(iam, "bob")
    clock.now += 90
    request = view("GET", ("authorization", f"Bearer {token}"))
    principal = iam.authenticate(request)
    assert principal is not None
    assert (principal.arn, principal.credential_kind) == (BOB, CredentialKind.SESSION)
    keys = context(iam, principal, request)
    assert keys["aws:username"] == "bob"
    assert keys["aws:multifactorauthpresent"] == "true" and keys["aws:multifactorauthage"] == "90"
    assert keys["aws:tokenissuetime"] == "2026-01-15T12:00:00Z"
    assert keys["aws:principaltag/team"] == "red"


def test_temporary_user_credentials_carry_the_mfa_of_their_issue(iam: IAM, clock: Clock) -> None:
    temporary = iam.credentials.temporary.issue(kind="user", arn=ALICE, session_name="alice", now=T, duration=3600,
                                                mfa_time=T)
    clock.now += 30
    request = signed(key=(temporary.access_key_id, temporary.secret_access_key, temporary.session_token))
    principal = iam.authenticate(request)
    assert principal is not None
    assert principal.arn == ALICE and principal.credential_kind is CredentialKind.TEMPORARY_ACCESS_KEY
    keys = context(iam, principal, request)
    assert keys["aws:username"] == "alice"
    assert keys["aws:multifactorauthpresent"] == "true" and keys["aws:multifactorauthage"] == "30"
    without = iam.credentials.temporary.issue(kind="user", arn=ALICE, session_name="alice", now=T, duration=3600)
    principal = iam.authenticate(signed(key=(without.access_key_id, without.secret_access_key,
                                             without.session_token)))
    assert principal is not None and principal.context_keys(clock.now)["aws:MultiFactorAuthPresent"] == "false"


def test_temporary_role_credentials_are_a_role_session(iam: IAM) -> None:
    temporary = iam.credentials.temporary.issue(kind="role", arn=PARTNER, session_name="nightly", now=T, duration=900,
                                    tags={"job": "export"})
    request = signed(key=(temporary.access_key_id, temporary.secret_access_key, temporary.session_token))
    principal = iam.authenticate(request)
    assert principal is not None
    assert principal.arn == f"arn:app:sts::{ACCOUNT}:assumed-role/partner/nightly"
    assert principal.type is PrincipalType.ASSUMED_ROLE and principal.source_arn == PARTNER
    keys = context(iam, principal, request)
    assert "aws:username" not in keys  # AWS sets it for IAM users only
    assert keys["aws:principalarn"] == PARTNER and keys["aws:principaltype"] == "AssumedRole"
    assert keys["aws:userid"].endswith(":nightly") and keys["aws:principaltag/job"] == "export"
    assert keys["aws:multifactorauthpresent"] == "false"


def test_an_outside_jwt_is_a_role_session_through_the_trust_policy(iam: IAM) -> None:
    request = view("GET", ("authorization", f"Bearer {idp_token()}"))
    principal = iam.authenticate(request)
    assert principal is not None
    assert principal.credential_kind is CredentialKind.WEB_IDENTITY
    assert principal.arn == f"arn:app:sts::{ACCOUNT}:assumed-role/partner/partner-42"
    keys = context(iam, principal, request)
    assert "aws:username" not in keys
    assert keys["aws:principaltag/team"] == "green"  # a tag claim of the provider
    assert keys["idp.example:sub"] == "partner-42" and keys["idp.example:aud"] == "orders-api"
    assert keys["aws:multifactorauthpresent"] == "false"
    assert iam.authorize(principal, "orders:GetOrder", ORDER).allowed
    assert not iam.authorize(principal, "orders:DeleteOrder", ORDER).allowed


def test_an_outside_jwt_the_trust_policy_refuses_is_401(clock: Clock) -> None:
    def two_audiences(data: dict[str, Any]) -> None:
        data["settings"]["web_identity"][0]["audiences"] = ["orders-api", "reports-api"]

    iam = demo_iam(clock, two_audiences)
    with pytest.raises(InvalidTokenError) as caught:
        iam.authenticate(view("GET", ("authorization", f"Bearer {idp_token(aud='reports-api')}")))
    assert caught.value.code == "AccessDenied" and caught.value.status_code == 401


# Bad credentials: 401, never another kind ------------------------------------------------------------------------
@pytest.fixture
def good_cookie(iam: IAM) -> Iterator[tuple[str, str]]:
    yield ("cookie", f"iam_session={login(iam, 'bob')}")


def test_a_bad_bearer_token_never_falls_back_to_the_cookie(iam: IAM, good_cookie: tuple[str, str]) -> None:
    tampered = login(iam, "alice", T + 30)[:-4] + "AAAA"
    for bad in (tampered, "garbage", idp_token(iat=int(T) - 7200, exp=int(T) - 3600)):
        with pytest.raises(AuthenticationError) as caught:
            iam.authenticate(view("GET", ("authorization", f"Bearer {bad}"), good_cookie))
        assert caught.value.status_code == 401


def test_a_bad_signature_never_falls_back_to_the_cookie_or_a_bearer(iam: IAM, good_cookie: tuple[str, str]) -> None:
    with pytest.raises(SignatureError):
        iam.authenticate(with_headers(signed(key=(ALICE_KEY[0], "wrong secret")), good_cookie))
    presigned = signed(key=(ALICE_KEY[0], "wrong secret"), presign=True)
    token = login(iam, "alice", T + 30)
    with pytest.raises(SignatureError):
        iam.authenticate(with_headers(presigned, ("authorization", f"Bearer {token}")))


def test_an_unknown_key_and_a_disabled_users_key_look_like_a_wrong_signature(clock: Clock) -> None:
    iam = demo_iam(clock, lambda data: data["users"]["alice"].update(active=False))
    answers = []
    for key in (ALICE_KEY, ("AKIAUNKNOWN000000000", ALICE_KEY[1]), (ALICE_KEY[0], "wrong")):
        with pytest.raises(SignatureError) as caught:
            iam.authenticate(signed(key=key))
        answers.append((caught.value.code, caught.value.message))
    assert len(set(answers)) == 1


def test_two_authorization_headers_are_refused(iam: IAM) -> None:
    token = login(iam)
    with pytest.raises(AuthenticationError) as caught:
        iam.authenticate(view("GET", ("authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}")))
    assert caught.value.code == "InvalidHeader"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(iam: IAM, scheme: str) -> None:
    principal = iam.authenticate(view("GET", ("authorization", f"{scheme} {login(iam)}")))
    assert principal is not None and principal.arn == BOB


@pytest.mark.parametrize("value", ["Basic Ym9iOnB3", "Bearer", "Bearer a b", "Token abc", "Bearer\tsecret-token-1",
                                   "sk_live_secret-token-2"])
def test_other_schemes_and_malformed_bearer_values_are_401_without_echoing_them(iam: IAM, value: str) -> None:
    with pytest.raises(AuthenticationError) as caught:
        iam.authenticate(view("GET", ("authorization", value)))
    assert caught.value.status_code == 401
    for fragment in ("Ym9iOnB3", "secret-token"):
        assert fragment not in caught.value.message


def test_an_oversized_authorization_header_is_refused(iam: IAM) -> None:
    with pytest.raises(AuthenticationError, match="too long"):
        iam.authenticate(view("GET", ("authorization", "Bearer " + "a" * 20000)))


# Cookie sessions and CSRF -----------------------------------------------------------------------------------------
def test_cookie_sessions_need_a_trusted_origin_on_unsafe_methods(iam: IAM, good_cookie: tuple[str, str]) -> None:
    assert iam.authenticate(view("GET", good_cookie)) is not None  # safe: no origin needed
    for method in ("POST", "PUT", "DELETE", "PATCH", "get"):
        with pytest.raises(CSRFError):
            iam.authenticate(view(method, good_cookie))
        with pytest.raises(CSRFError):
            iam.authenticate(view(method, good_cookie, ("origin", "https://evil.example")))
    allowed = iam.authenticate(view("POST", good_cookie, ("origin", "http://127.0.0.1:8000")))
    own = iam.authenticate(view("POST", good_cookie, ("origin", "https://api.example")))
    assert allowed is not None and own is not None and own.arn == BOB
    # A bearer token is never sent by a browser on its own: no origin needed.
    assert iam.authenticate(view("POST", ("authorization", f"Bearer {login(iam, 'alice', T + 30)}"))) is not None


def test_a_session_ends_at_its_expiry_and_when_its_user_is_disabled(iam: IAM, clock: Clock) -> None:
    token = login(iam)
    clock.now += iam.settings.session_ttl
    with pytest.raises(SessionExpiredError):
        iam.authenticate(view("GET", ("authorization", f"Bearer {token}")))
    clock.now = T + 60
    token = login(iam, "alice", clock.now)
    disabled = demo_iam(clock, lambda data: data["users"]["alice"].update(active=False))
    iam.snapshots.swap(disabled.snapshot)
    with pytest.raises(InvalidTokenError) as caught:
        iam.authenticate(view("GET", ("authorization", f"Bearer {token}")))
    assert caught.value.code == "SessionRevoked"


def test_a_disabled_user_cannot_log_in(clock: Clock) -> None:
    iam = demo_iam(clock, lambda data: data["users"]["bob"].update(active=False))
    with pytest.raises(LoginFailedError):
        login(iam)


# require and authorize -------------------------------------------------------------------------------------------
def test_no_credential_is_none(iam: IAM) -> None:
    assert iam.authenticate(view("GET")) is None


def test_require_allows_or_raises_a_403_that_explains(iam: IAM) -> None:
    request = signed()
    principal = iam.authenticate(request)
    assert principal is not None and principal.arn == ALICE
    assert iam.decisions.require(principal, "orders:GetOrder", ORDER, request=request).allowed
    with pytest.raises(AccessDeniedError) as caught:
        iam.decisions.require(principal, "orders:DeleteOrder", ORDER, request=request)
    assert caught.value.status_code == 403 and caught.value.code == "AccessDenied"
    assert caught.value.message == (f"User: {ALICE} is not authorized to perform: orders:DeleteOrder on resource: "
                                    f"{ORDER} because no identity-based policy allows the orders:DeleteOrder action")


def test_a_write_without_mfa_says_mfa_would_allow_it(iam: IAM) -> None:
    plain = iam.credentials.temporary.issue(kind="user", arn=BOB, session_name="bob", now=T, duration=900)
    request = signed("POST", "https://api.example/orders", key=(plain.access_key_id, plain.secret_access_key,
                                                                 plain.session_token))
    principal = iam.authenticate(request)
    assert principal is not None
    with pytest.raises(AccessDeniedError) as caught:
        iam.decisions.require(principal, "orders:CreateOrder", f"arn:app:orders::{ACCOUNT}:order/new",
                              request=request)
    assert caught.value.code == "MultiFactorAuthRequired"
    session = view("POST", ("authorization", f"Bearer {login(iam)}"))
    stepped = iam.authenticate(session)
    assert stepped is not None
    assert iam.decisions.require(stepped, "orders:CreateOrder", f"arn:app:orders::{ACCOUNT}:order/new",
                                 request=session).allowed


def test_authorize_never_raises_and_fails_closed(iam: IAM) -> None:
    principal = iam.authenticate(signed())
    assert principal is not None
    broken = dataclasses.replace(principal, session_policy="{not a policy")
    decision = iam.authorize(broken, "orders:GetOrder", ORDER)
    assert not decision.allowed and decision.denied_by == "error"
    # Context keys given by the caller add to (and are matched case-insensitively with) the global keys.
    assert iam.authorize(principal, "orders:GetOrder", ORDER, {"AWS:SourceIp": "203.0.113.1"}).allowed


def test_a_session_policy_on_a_principal_limits_it(iam: IAM) -> None:
    temporary = iam.credentials.temporary.issue(
        kind="role", arn=PARTNER, session_name="narrow", now=T, duration=900,
        session_policy='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:ListOrders", '
                       '"Resource": "*"}]}')
    principal = iam.credentials.principal_for_temporary(temporary)
    assert iam.authorize(principal, "orders:ListOrders", ORDER).allowed
    assert iam.authorize(principal, "orders:GetOrder", ORDER).denied_by == "session"


def test_the_facade_never_shows_secrets(iam: IAM) -> None:
    issued = iam.login("bob", PASSWORD, iam.snapshot.users[BOB].totp.code_at(T), now=T)  # type: ignore[union-attr]
    temporary = iam.credentials.temporary.issue(kind="role", arn=PARTNER, session_name="s1", now=T, duration=900)
    texts = [repr(iam), repr(issued), repr(temporary), repr(signed()), repr(iam.settings)]
    for text in texts:
        for secret in (issued.token, temporary.secret_access_key, temporary.session_token, ALICE_KEY[1],
                       "demo-session-secret", "demo-idp-hmac-secret"):
            assert secret not in text


def _replay_protected(clock: Clock) -> IAM:
    return demo_iam(clock, lambda data: data["settings"].update(sigv4_replay_protection=True))


def test_replay_protection_accepts_a_signed_write_once(clock: Clock) -> None:
    iam = _replay_protected(clock)
    request = signed("POST", body=b'{"item": "mug"}')
    assert iam.authenticate(request) is not None
    with pytest.raises(SignatureError) as refused:
        iam.authenticate(request)
    assert refused.value.code == "RequestReplayed" and refused.value.status_code == 401
    assert iam.authenticate(signed("POST", body=b'{"item": "cup"}')) is not None  # a new request is fine


def test_replay_protection_leaves_reads_replayable_and_is_off_by_default(clock: Clock) -> None:
    protected = _replay_protected(clock)
    read = signed("GET")
    assert protected.authenticate(read) is not None and protected.authenticate(read) is not None
    default = demo_iam(clock, lambda data: None)
    write = signed("POST", body=b"{}")
    assert default.authenticate(write) is not None and default.authenticate(write) is not None


def test_replay_protection_fails_closed_without_shared_state(clock: Clock) -> None:
    class DownStore(MemoryStore):
        def claim(self, key: str, ttl: float) -> bool:
            raise StateUnavailableError("store down")

    base = _replay_protected(clock)
    iam = IAM(base.snapshot, settings=base.settings, store=DownStore(), clock=clock)
    with pytest.raises(ServiceUnavailableError):
        iam.authenticate(signed("POST", body=b"{}"))


# The parts of IAM ------------------------------------------------------------------------------------------------
def test_a_pinned_request_finishes_on_its_snapshot_through_a_swap(iam: IAM, clock: Clock) -> None:
    before = iam.snapshot
    disabled = demo_iam(clock, lambda data: data["users"]["alice"].update(active=False))
    other = demo_iam(clock, lambda data: None)
    with iam.pin() as pinned:
        iam.snapshots.swap(disabled.snapshot)  # a reload while the request is in flight
        assert pinned is before and iam.snapshot is before
        assert iam.authenticate(signed()) is not None  # alice is still active in the snapshot the request began on
        other.snapshots.swap(disabled.snapshot)  # a pin of one IAM does not hold another's snapshot
        assert other.snapshot is disabled.snapshot
    assert iam.snapshot is disabled.snapshot
    with pytest.raises(AuthenticationError):
        iam.authenticate(signed())


def test_the_short_forms_reach_the_parts(iam: IAM) -> None:
    seen: list[str] = []

    class Tagged:
        def authenticate(self, request: RequestView, *, now: float) -> Principal | None:
            seen.append(request.header("x-tag") or "")
            return None

    iam.authenticators.insert(0, Tagged())
    principal = iam.authenticate(with_headers(signed(), ("x-tag", "short")))
    assert principal is not None and seen == ["short"]
    assert iam.authorize(principal, "orders:GetOrder", ORDER) == iam.decisions.decide(principal, "orders:GetOrder",
                                                                                      ORDER)
    # ``authenticators=`` replaces the chain for one request (the token service's Query API takes SigV4 only).
    assert iam.authenticate(view("GET", ("x-tag", "one")), authenticators=[Tagged()]) is None
    assert seen == ["short", "one"]


def test_an_access_keys_principal_is_remembered_for_its_snapshot_only(iam: IAM, clock: Clock) -> None:
    first = iam.authenticate(signed())
    assert first is not None and iam.authenticate(signed()) is first  # built once per snapshot
    data = copy.deepcopy(tomllib.loads(DEMO.read_text()))
    data["users"]["alice"]["tags"] = {"team": "green"}
    iam.snapshots.swap(IAM.from_dict(data, base_dir=EXAMPLES).snapshot)  # a reload: alice's tags changed
    after = iam.authenticate(signed())
    assert after is not None and after is not first and dict(after.tags) == {"team": "green"}


def test_the_remembered_key_principals_stay_within_their_bound(iam: IAM, monkeypatch: pytest.MonkeyPatch) -> None:
    from iam_middleware import _credentials

    monkeypatch.setattr(_credentials, "_KEY_PRINCIPALS", 1)
    bob_key = ("AKIADEMOBOB000000001", "demo/bob/Xq8vL2mNcR4tYp7Kz1Wd/Hs9bFgJeUa")
    for key in (ALICE_KEY, bob_key, ALICE_KEY):
        principal = iam.authenticate(signed(key=key))
        assert principal is not None and principal.access_key_id == key[0]
        assert len(iam.credentials._key_principals[1]) <= 1
