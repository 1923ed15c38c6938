"""Old password hashes upgrade at the next login: the new hash goes to the on_password_rehash hook (or a warning says
to make one), once per user and stored hash, only after a login that succeeded, never with the password or a hash
in a log line; and an unknown user's login spends the cost it is told is in force."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable

import pyotp
import pytest

from iam_middleware.authenticators._login import LoginFailedError, LoginRecord, LoginService
from iam_middleware.authenticators._passwords import PasswordCost, hash_password, needs_rehash, verify_password
from iam_middleware.authenticators._sessions import SessionTokens
from iam_middleware.authenticators._throttle import LoginThrottle
from iam_middleware.authenticators._totp import TOTPDevice, TOTPVerifier
from iam_middleware.state import MemoryStore

T0 = 1_700_000_015.0
PASSWORD = "correct horse battery staple"
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ARN = "arn:aws:iam::123456789012:user/alice"
OLD_COST = PasswordCost(n=2**4)
TARGET = PasswordCost(n=2**5)  # cheap, but above OLD_COST: what "the cost of new hashes" is in these tests


def legacy_hash(password: str) -> str:
    """``password`` hashed at OLD_COST in the earlier ``scrypt$...`` form."""
    salt = bytes(range(16))
    key = hashlib.scrypt(password.encode(), salt=salt, n=OLD_COST.n, r=8, p=1, dklen=32)
    return f"scrypt$4$8$1${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


STORED = {
    "legacy form": legacy_hash(PASSWORD),
    "lower cost": hash_password(PASSWORD, n=OLD_COST.n),
}


class Rehashes:
    """An on_password_rehash hook that records what it is handed."""

    def __init__(self, fail: int = 0) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = fail

    def __call__(self, user_arn: str, new_hash: str) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError(f"database refused the row ({new_hash})")  # a driver quoting what it was given
        self.calls.append((user_arn, new_hash))


def service(stored: str, hook: Callable[[str, str], None] | None = None,
            dummy_cost: PasswordCost | Callable[[], PasswordCost] | None = None) -> LoginService:
    store = MemoryStore()
    record = LoginRecord("u-alice", ARN, stored, TOTPDevice(SEED))
    return LoginService(lambda name: record if name == "alice" else None,
                        sessions=SessionTokens(b"k" * 32, store=store), totp=TOTPVerifier(store),
                        throttle=LoginThrottle(store), dummy_cost=dummy_cost or OLD_COST, password_cost=TARGET,
                        on_password_rehash=hook)


def log_in(login: LoginService, step: int, password: str = PASSWORD) -> None:
    at = T0 + 30 * step  # one login per code step: codes are single use
    login.login("alice", password, pyotp.TOTP(SEED).at(at), now=at)


@pytest.mark.parametrize("stored", list(STORED))
def test_a_login_hands_the_upgraded_hash_to_the_hook_once(stored: str, caplog: pytest.LogCaptureFixture) -> None:
    hook = Rehashes()
    login = service(STORED[stored], hook)
    with caplog.at_level(logging.DEBUG, logger="iam_middleware"):
        log_in(login, 0)
        log_in(login, 1)  # the directory still holds the old hash: not made again
    assert len(hook.calls) == 1
    user_arn, new_hash = hook.calls[0]
    assert user_arn == ARN
    assert new_hash.startswith("$scrypt$ln=5,r=8,p=1$") and new_hash != STORED[stored]
    assert verify_password(PASSWORD, new_hash) and not needs_rehash(new_hash, cost=TARGET)
    upgraded = [r for r in caplog.records if "upgraded" in r.getMessage()]
    assert len(upgraded) == 1 and upgraded[0].levelno == logging.INFO
    assert PASSWORD not in caplog.text and new_hash.split("$")[-1] not in caplog.text
    assert STORED[stored].split("$")[-1] not in caplog.text


def test_without_a_hook_a_warning_says_so_once_per_user(caplog: pytest.LogCaptureFixture) -> None:
    login = service(STORED["legacy form"])
    with caplog.at_level(logging.DEBUG, logger="iam_middleware"):
        log_in(login, 0)
        log_in(login, 1)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "'u-alice'" in warnings[0].getMessage() and "hash-password" in warnings[0].getMessage()
    assert "earlier" in warnings[0].getMessage()


def test_a_current_hash_is_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    hook = Rehashes()
    with caplog.at_level(logging.DEBUG, logger="iam_middleware"):
        log_in(service(hash_password(PASSWORD, n=TARGET.n), hook), 0)
    assert hook.calls == [] and "hash" not in caplog.text.replace("hash-", "")


def test_failed_logins_never_rehash() -> None:
    hook = Rehashes()
    login = service(STORED["legacy form"], hook)
    with pytest.raises(LoginFailedError):
        log_in(login, 0, password="wrong password")
    with pytest.raises(LoginFailedError):
        login.login("alice", PASSWORD, "000000", now=T0 + 30)  # right password, wrong code
    assert hook.calls == []


def test_a_hook_that_fails_leaves_the_login_standing_and_the_next_login_tries_again(
        caplog: pytest.LogCaptureFixture) -> None:
    hook = Rehashes(fail=1)
    login = service(STORED["legacy form"], hook)
    with caplog.at_level(logging.DEBUG, logger="iam_middleware"):
        log_in(login, 0)  # succeeds though the hook raised
    assert hook.calls == []
    assert "could not be upgraded: RuntimeError" in caplog.text
    assert "$scrypt$" not in caplog.text and "database refused" not in caplog.text
    log_in(login, 1)
    assert len(hook.calls) == 1


def test_an_unknown_user_spends_the_cost_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    spent: list[PasswordCost | None] = []
    monkeypatch.setattr("iam_middleware.authenticators._login.verify_dummy",
                        lambda password, cost=None: spent.append(cost) or False)
    in_force = [OLD_COST]
    login = service(STORED["lower cost"], dummy_cost=lambda: in_force[0])
    with pytest.raises(LoginFailedError):
        login.login("mallory", PASSWORD, "123456", now=T0)
    in_force[0] = TARGET  # a reload brought hashes of another cost
    with pytest.raises(LoginFailedError):
        login.login("trudy", PASSWORD, "123456", now=T0)
    assert spent == [OLD_COST, TARGET]
