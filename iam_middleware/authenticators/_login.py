"""Password + TOTP login: throttle, password, one-time code, then a session, with one answer for every failure.

Every refusal (unknown user, wrong password, disabled user, no TOTP device, wrong or reused code) raises the same
``LoginFailedError`` with the same message, is counted by the throttle, and costs the same password-hashing work,
so neither the answer nor its timing tells which factor failed or whether the user exists. The specific reason is
logged (logger ``iam_middleware.login``) without the password, the code, or names that match no user.

Sessions always claim MFA (``amr`` = ``["pwd", "otp"]``), so a user without an active TOTP device cannot log in
here at all: enroll the device first through a channel the application already trusts. A user with several devices
logs in with a code of any of them; the code is spent on that device only (``TOTPVerifier.verify_any``), and the
failures count against the user once per attempt, however many devices it has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import NoReturn

from .._exceptions import ConfigurationError, OTPError
from ._passwords import PasswordCost, PasswordHash, hash_password, needs_rehash, verify_dummy, verify_password
from ._sessions import IssuedSession, SessionTokens
from ._throttle import LoginThrottle
from ._totp import TOTPDevice, TOTPVerifier

__all__ = ["LoginFailedError", "LoginRecord", "LoginService", "throttle_key_for"]

logger = logging.getLogger("iam_middleware.login")

_MAX_USERNAME_CHARS = 256
_FAILED = "invalid user name, password or code"


class LoginFailedError(OTPError):
    """A login was refused. Deliberately the same for every cause; the log says which."""

    code = "InvalidLogin"

    def __init__(self) -> None:
        super().__init__(_FAILED)


#: The session record's field holding the user's id at login: a session is honoured only while the user has it.
USER_ID = "user_id"


def throttle_key_for(user_id: str) -> str:
    """The failure counter of one user (its stable id), shared by login and GetSessionToken."""
    return "user:" + user_id


class LoginRecord:
    """What the login needs to know about a user; built by the application's ``lookup_user``.

    ``password_hash`` may be the encoded string: it is parsed here, so a malformed hash raises
    ``ConfigurationError`` when the record is built, not halfway through a login. ``devices`` are the user's
    enabled TOTP devices as ``(serial, device)`` pairs (``TOTPVerifier.verify`` says what the serial is for); a
    code of any of them logs in. Without it, ``device`` is the user's one device.
    """

    __slots__ = ("active", "device", "devices", "password_hash", "principal_arn", "user_id")

    def __init__(
        self,
        user_id: str,
        principal_arn: str,
        password_hash: str | PasswordHash,
        device: TOTPDevice | None,
        active: bool = True,
        *,
        devices: Sequence[tuple[str | None, TOTPDevice]] | None = None,
    ) -> None:
        if not isinstance(user_id, str) or not user_id or not isinstance(principal_arn, str) or not principal_arn:
            raise ConfigurationError("a login record needs a non-empty user_id and principal_arn")
        if device is not None and not isinstance(device, TOTPDevice):
            raise ConfigurationError("a login record's device must be a TOTPDevice or None")
        if not isinstance(active, bool):
            raise ConfigurationError("a login record's active flag must be a bool")
        listed = ((None, device),) if devices is None and device is not None else tuple(devices or ())
        if not all(isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], TOTPDevice)
                   and (pair[0] is None or isinstance(pair[0], str)) for pair in listed):
            raise ConfigurationError("a login record's devices must be (serial or None, TOTPDevice) pairs")
        self.user_id = user_id
        self.principal_arn = principal_arn
        self.password_hash = (
            password_hash if isinstance(password_hash, PasswordHash) else PasswordHash.parse(password_hash)
        )
        #: The first device (the one a record with a single device names).
        self.device = listed[0][1] if listed else None
        #: Every enabled device, ``(serial, device)``: a code of any of them logs in.
        self.devices: tuple[tuple[str | None, TOTPDevice], ...] = listed
        self.active = active

    def __repr__(self) -> str:
        return (
            f"LoginRecord(user_id={self.user_id!r}, principal_arn={self.principal_arn!r}, "
            f"password_hash='********', devices={[s for s, _ in self.devices]!r}, active={self.active!r})"
        )


class LoginService:
    """Runs logins: throttle check, password, TOTP (single use), session issue.

    ``dummy_cost`` (or a callable giving the one in force) must equal the scrypt cost of the stored hashes, so unknown
    users take as long as known ones. After a login whose stored hash ``needs_rehash`` against ``password_cost``, a
    new hash of the password goes to ``on_password_rehash(principal_arn, new_hash)`` to be stored; without that hook
    a warning says the hash should be made again. Either happens once per user and stored hash in this process, and
    neither ever shows the password or a hash.
    """

    def __init__(
        self,
        lookup_user: Callable[[str], LoginRecord | None],
        *,
        sessions: SessionTokens,
        totp: TOTPVerifier,
        throttle: LoginThrottle,
        dummy_cost: PasswordCost | Callable[[], PasswordCost] | None = None,
        password_cost: PasswordCost | None = None,
        on_password_rehash: Callable[[str, str], None] | None = None,
    ) -> None:
        self._lookup_user = lookup_user
        self._sessions = sessions
        self._totp = totp
        self._throttle = throttle
        self._dummy_cost = dummy_cost or PasswordCost()
        self._password_cost = password_cost or PasswordCost()
        self._on_password_rehash = on_password_rehash
        self._outdated: set[tuple[str, bytes]] = set()  # (user id, stored key) already handed over or warned about

    def login(
        self, username: str, password: str, code: str, *, now: float, source_ip: str | None = None
    ) -> IssuedSession:
        """Log in and return a new session, or raise ``LoginFailedError`` (or ``LockedOutError`` while throttled).

        A lockout is checked first, so a correct password and code are refused while it lasts. Store outages
        surface as ``ServiceUnavailableError``: they say nothing about the credentials.
        """
        # Two counters. The name as typed, case-folded, is checked before the lookup (a locked-out spelling costs no
        # lookup). The resolved identity is checked after it: every spelling of one user (``bob``,
        # ``111122223333/bob``) shares that budget, and a same-named user of another account has its own.
        typed = "name:" + (username.casefold() if isinstance(username, str) else "")
        self._throttle.check(typed, now=now, source_ip=source_ip)
        record = self._find(username)
        keys: tuple[str, ...] = (typed,)
        if record is not None:
            identity = throttle_key_for(record.user_id)
            self._throttle.check(identity, now=now, source_ip=source_ip)
            keys = (typed, identity)
        if record is None:
            verify_dummy(password, self._dummy_cost() if callable(self._dummy_cost) else self._dummy_cost)
            self._fail(keys, now, source_ip, None, "unknown user")
        if not verify_password(password, record.password_hash):
            self._fail(keys, now, source_ip, record, "wrong password")
        if not record.active:
            self._fail(keys, now, source_ip, record, "user is disabled")
        if not record.devices:
            self._fail(keys, now, source_ip, record, "user has no TOTP device")
        try:
            self._totp.verify_any(record.user_id, record.devices, code, now=now)
        except OTPError as exc:
            self._fail(keys, now, source_ip, record, f"one-time code refused ({exc.code})")
        for key in keys:
            self._throttle.record_success(key)
        issued = self._sessions.issue(record.principal_arn, now=now, mfa_time=now, extra={USER_ID: record.user_id})
        logger.info("login succeeded for user %r, session %s", record.user_id, issued.session_id)
        self._upgrade(record, password)
        return issued

    def _upgrade(self, record: LoginRecord, password: str) -> None:
        """After a successful login, the only moment the password is known: replace a hash that needs it."""
        stored = record.password_hash
        mark = (record.user_id, stored.key)
        if mark in self._outdated or not needs_rehash(stored, cost=self._password_cost):
            return
        why = "in the earlier scrypt$ form" if stored.legacy else "made at a lower cost than new hashes"
        if self._on_password_rehash is None:
            logger.warning("the password hash of user %r is %s: hash the password again (iam-middleware "
                           "hash-password) and store the new hash", record.user_id, why)
        else:
            cost = self._password_cost
            try:
                new_hash = hash_password(password, n=cost.n, r=cost.r, p=cost.p)
                self._on_password_rehash(record.principal_arn, new_hash)
            except Exception as exc:  # noqa: BLE001 - the login stands; the next one tries again
                # Only the type: a storage error's text could quote the hash it was given.
                logger.error("the password hash of user %r (%s) could not be upgraded: %s; the next login tries "
                             "again", record.user_id, why, type(exc).__name__)
                return
            logger.info("the password hash of user %r (%s) was upgraded and handed to on_password_rehash",
                        record.user_id, why)
        if len(self._outdated) >= 10_000:
            self._outdated.clear()
        self._outdated.add(mark)

    def _find(self, username: str) -> LoginRecord | None:
        if not isinstance(username, str) or not 0 < len(username) <= _MAX_USERNAME_CHARS:
            return None
        try:
            return self._lookup_user(username)
        except ConfigurationError as exc:
            # A broken directory entry must not crash logins or reveal itself: it behaves as an unknown user.
            logger.error("a user record could not be loaded and was treated as unknown: %s", exc)
            return None

    def _fail(
        self, throttle_keys: tuple[str, ...], now: float, source_ip: str | None, record: LoginRecord | None,
        reason: str,
    ) -> NoReturn:
        for key in throttle_keys:
            self._throttle.record_failure(key, now=now, source_ip=source_ip)
        logger.info("login refused for %s: %s", f"user {record.user_id!r}" if record else "an unknown user", reason)
        raise LoginFailedError()
