"""Password + TOTP login: one answer for every failure, throttling before anything else, single-use codes under
concurrency, broken user records, and no password or code in errors or logs."""

from __future__ import annotations

import logging
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iam_middleware._exceptions import ConfigurationError, LockedOutError, OTPError, ServiceUnavailableError
from iam_middleware.authenticators._login import LoginFailedError, LoginRecord, LoginService
from iam_middleware.authenticators._passwords import PasswordCost, PasswordHash, hash_password
from iam_middleware.authenticators._sessions import IssuedSession, SessionTokens
from iam_middleware.authenticators._throttle import LoginThrottle
from iam_middleware.authenticators._totp import TOTPDevice, TOTPVerifier
from iam_middleware.state import MemoryStore, StateStore, StateUnavailableError

T0 = 1_700_000_015.0
COST = PasswordCost(n=2**4)
PASSWORD = "correct horse battery staple"
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ALICE_ARN = "arn:aws:iam::123456789012:user/alice"
SESSION_SECRET = b"k" * 32
PASSWORD_HASH = hash_password(PASSWORD, n=COST.n, r=COST.r, p=COST.p)


class Clock:
    """The injected time, shared with the store so its expiries follow the same clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Directory:
    """A tiny user directory, as an application would provide; records each lookup."""

    def __init__(self) -> None:
        self.device = TOTPDevice(SEED)
        self.records = {
            "alice": LoginRecord("u-alice", ALICE_ARN, PASSWORD_HASH, self.device),
            "disabled": LoginRecord("u-dis", "arn:aws:iam::1:user/disabled", PASSWORD_HASH, self.device, active=False),
            "nodevice": LoginRecord("u-nodev", "arn:aws:iam::1:user/nodevice", PASSWORD_HASH, None),
        }
        self.lookups: list[str] = []

    def __call__(self, username: str) -> LoginRecord | None:
        self.lookups.append(username)
        return self.records.get(username.casefold())


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def store(clock: Clock) -> StateStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def directory() -> Directory:
    return Directory()


@pytest.fixture
def sessions(store: StateStore) -> SessionTokens:
    return SessionTokens(SESSION_SECRET, store=store)


def make_service(store: StateStore, directory: Directory, **throttle: object) -> LoginService:
    return LoginService(
        directory,
        sessions=SessionTokens(SESSION_SECRET, store=store),
        totp=TOTPVerifier(store),
        throttle=LoginThrottle(store, **{"base_delay": 0, **throttle}),  # type: ignore[arg-type]
        dummy_cost=COST,
    )


@pytest.fixture
def service(store: StateStore, directory: Directory) -> LoginService:
    return make_service(store, directory)


def code(directory: Directory, now: float = T0) -> str:
    return directory.device.code_at(now)


def wrong_code(directory: Directory, now: float = T0) -> str:
    window = {directory.device.code_at(now + 30 * i) for i in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222") if c not in window)


def test_successful_login_issues_an_mfa_session(
    service: LoginService, directory: Directory, sessions: SessionTokens
) -> None:
    issued = service.login("alice", PASSWORD, code(directory), now=T0)
    assert isinstance(issued, IssuedSession)
    claims = sessions.verify(issued.token, now=T0 + 1)
    assert claims.principal_arn == ALICE_ARN
    assert claims.mfa_present and claims.mfa_time == int(T0)


def failures(service: LoginService, directory: Directory) -> dict[str, tuple[str, str, str]]:
    return {
        "unknown user": ("mallory", PASSWORD, code(directory)),
        "wrong password": ("alice", PASSWORD + "!", code(directory)),
        "empty password": ("alice", "", code(directory)),
        "wrong code": ("alice", PASSWORD, wrong_code(directory)),
        "malformed code": ("alice", PASSWORD, " " + code(directory)),
        "full-width code": ("alice", PASSWORD, "".join(chr(ord(c) + 0xFEE0) for c in code(directory))),
        "disabled user": ("disabled", PASSWORD, code(directory)),
        "user without device": ("nodevice", PASSWORD, code(directory)),
        "overlong user name": ("a" * 10_000, PASSWORD, code(directory)),
    }


@pytest.mark.parametrize(
    "case",
    [
        "unknown user",
        "wrong password",
        "empty password",
        "wrong code",
        "malformed code",
        "full-width code",
        "disabled user",
        "user without device",
        "overlong user name",
    ],
)
def test_every_failure_looks_the_same(store: StateStore, directory: Directory, clock: Clock, case: str) -> None:
    service = make_service(store, directory, max_failures=1)
    username, password, otp = failures(service, directory)[case]
    with pytest.raises(LoginFailedError) as caught:
        service.login(username, password, otp, now=T0)
    error = caught.value
    assert type(error) is LoginFailedError and isinstance(error, OTPError)
    assert (error.status_code, error.code, error.message) == (
        401,
        "InvalidLogin",
        "invalid user name, password or code",
    )
    assert error.headers == {}
    # ...and each one counted: the next try is locked out.
    with pytest.raises(LockedOutError):
        service.login(username, password, otp, now=T0)


def test_reused_code_fails_like_any_other(service: LoginService, directory: Directory) -> None:
    service.login("alice", PASSWORD, code(directory), now=T0)
    with pytest.raises(LoginFailedError):
        service.login("alice", PASSWORD, code(directory), now=T0 + 1)
    assert service.login("alice", PASSWORD, code(directory, T0 + 30), now=T0 + 30)


def test_wrong_password_does_not_burn_the_code(service: LoginService, directory: Directory) -> None:
    with pytest.raises(LoginFailedError):
        service.login("alice", "nope", code(directory), now=T0)
    assert service.login("alice", PASSWORD, code(directory), now=T0)


def test_brute_force_until_lockout_then_the_right_credentials_are_refused(
    service: LoginService, directory: Directory, clock: Clock
) -> None:
    for guess in ("000000", "000001", "000002", "000003", "000004"):
        with pytest.raises(LoginFailedError):
            service.login("alice", PASSWORD, guess if guess != code(directory) else "999999", now=T0)
    with pytest.raises(LockedOutError) as caught:
        service.login("alice", PASSWORD, code(directory), now=T0)
    assert caught.value.retry_after == 900
    assert caught.value.headers["Retry-After"] == "900"
    # The lockout expires; a later, fresh code then works.
    clock.now = T0 + 900
    assert service.login("alice", PASSWORD, code(directory, clock.now), now=clock.now)


def test_lockout_is_checked_before_the_user_is_looked_up(service: LoginService, directory: Directory) -> None:
    for _ in range(5):
        with pytest.raises(LoginFailedError):
            service.login("mallory", "guess", "123456", now=T0)
    directory.lookups.clear()
    with pytest.raises(LockedOutError):
        service.login("mallory", "guess", "123456", now=T0)
    assert directory.lookups == []


def test_unknown_users_lock_out_like_known_ones(service: LoginService) -> None:
    # Otherwise the lockout itself would tell which user names exist.
    for user in ("alice", "nobody"):
        for _ in range(5):
            with pytest.raises(LoginFailedError):
                service.login(user, "guess", "123456", now=T0)
        with pytest.raises(LockedOutError):
            service.login(user, "guess", "123456", now=T0)


def test_case_variants_of_a_name_share_one_budget(service: LoginService) -> None:
    for user in ("alice", "Alice", "ALICE", "aLiCe", "ALICE"):
        with pytest.raises(LoginFailedError):
            service.login(user, "guess", "123456", now=T0)
    with pytest.raises(LockedOutError):
        service.login("alice", PASSWORD, "123456", now=T0)


def test_success_resets_the_failure_count(service: LoginService, directory: Directory, clock: Clock) -> None:
    for _ in range(4):
        with pytest.raises(LoginFailedError):
            service.login("alice", "guess", "123456", now=T0)
    service.login("alice", PASSWORD, code(directory), now=T0)
    for _ in range(4):
        with pytest.raises(LoginFailedError):
            service.login("alice", "guess", "123456", now=T0)
    assert service.login("alice", PASSWORD, code(directory, T0 + 30), now=T0 + 30)


def test_concurrent_logins_with_one_code_issue_one_session(store: StateStore, directory: Directory) -> None:
    service = make_service(store, directory, max_failures=100)
    threads = 8
    barrier = threading.Barrier(threads)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        try:
            service.login("alice", PASSWORD, code(directory), now=T0)
            outcome = "session"
        except LoginFailedError:
            outcome = "refused"
        with lock:
            outcomes.append(outcome)

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(outcomes) == ["refused"] * (threads - 1) + ["session"]


def test_broken_user_record_behaves_as_unknown_user(
    store: StateStore, directory: Directory, caplog: pytest.LogCaptureFixture
) -> None:
    def lookup(username: str) -> LoginRecord | None:
        return LoginRecord("u-bob", "arn:aws:iam::1:user/bob", "scrypt$broken", None)

    service = LoginService(
        lookup,
        sessions=SessionTokens(SESSION_SECRET, store=store),
        totp=TOTPVerifier(store),
        throttle=LoginThrottle(store, base_delay=0),
        dummy_cost=COST,
    )
    with caplog.at_level(logging.ERROR, logger="iam_middleware.login"):
        with pytest.raises(LoginFailedError):
            service.login("bob", PASSWORD, "123456", now=T0)
    assert "could not be loaded" in caplog.text


def test_lookup_errors_other_than_configuration_propagate(store: StateStore) -> None:
    # Fail closed: a directory that cannot answer is an error, never a login.
    def lookup(username: str) -> LoginRecord | None:
        raise RuntimeError("directory down")

    service = LoginService(
        lookup,
        sessions=SessionTokens(SESSION_SECRET, store=store),
        totp=TOTPVerifier(store),
        throttle=LoginThrottle(store),
        dummy_cost=COST,
    )
    with pytest.raises(RuntimeError):
        service.login("alice", PASSWORD, "123456", now=T0)


class DownStore(MemoryStore):
    def get(self, key: str) -> bytes | None:
        raise StateUnavailableError("down")


def test_store_outage_refuses_with_503(directory: Directory) -> None:
    service = make_service(DownStore(), directory)
    with pytest.raises(ServiceUnavailableError):
        service.login("alice", PASSWORD, code(directory), now=T0)


# --- login records -------------------------------------------------------------------------------------------------


def test_record_parses_the_hash_when_built() -> None:
    record = LoginRecord("u", "arn:aws:iam::1:user/u", PASSWORD_HASH, None)
    assert isinstance(record.password_hash, PasswordHash)
    with pytest.raises(ConfigurationError):
        LoginRecord("u", "arn:aws:iam::1:user/u", "md5$abc", None)


@pytest.mark.parametrize(
    "args",
    [
        ("", "arn", PASSWORD_HASH, None, True),
        ("u", "", PASSWORD_HASH, None, True),
        ("u", "arn", PASSWORD_HASH, SEED, True),
        ("u", "arn", PASSWORD_HASH, None, "yes"),
    ],
)
def test_invalid_records_are_refused(args: tuple[object, ...]) -> None:
    with pytest.raises(ConfigurationError):
        LoginRecord(*args)  # type: ignore[arg-type]


def test_record_repr_hides_the_hash_and_seed(directory: Directory) -> None:
    text = repr(directory.records["alice"])
    salt, key = PASSWORD_HASH.split("$")[3:]  # "", "scrypt", "ln=4,r=8,p=1", salt, key
    assert salt not in text and key not in text and SEED not in text
    assert "u-alice" in text


# --- nothing secret in errors or logs ------------------------------------------------------------------------------


def test_no_password_or_code_in_errors_or_logs(
    service: LoginService, directory: Directory, caplog: pytest.LogCaptureFixture
) -> None:
    texts = []
    with caplog.at_level(logging.DEBUG, logger="iam_middleware"):
        for username, password, otp in (
            ("alice", "Sup3r-Secret-Guess", "482913"),
            ("typed-my-password-here", PASSWORD, "482913"),
        ):
            with pytest.raises(LoginFailedError) as caught:
                service.login(username, password, otp, now=T0)
            texts += [str(caught.value), repr(caught.value)]
        issued = service.login("alice", PASSWORD, code(directory), now=T0)
    texts.append(caplog.text)
    for text in texts:
        for secret in ("Sup3r-Secret-Guess", PASSWORD, "482913", code(directory), issued.token, SEED):
            assert secret not in text
        # A name that matches no user may be a password typed in the wrong field: never logged.
        assert "typed-my-password-here" not in text
    assert "wrong password" in caplog.text and "unknown user" in caplog.text


@settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=st.text(max_size=40).filter(lambda p: p != PASSWORD))
def test_no_other_password_logs_in(store: StateStore, directory: Directory, password: str) -> None:
    service = make_service(store, directory, max_failures=10**6)
    with pytest.raises(LoginFailedError):
        service.login("alice", password, code(directory), now=T0)
