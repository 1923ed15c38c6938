"""Password + TOTP logins against the directory's users: the one-time codes, the throttle and the session issued.

The rules of a login (throttle first, password, single-use code, session) are ``LoginService``'s; this module
connects it to the directory: it finds users in the snapshot the login is decided on, with every MFA device
enabled for them, and makes a login for an unknown user cost as much as one for a known user.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from itertools import islice

from ._exceptions import ConfigurationError
from ._settings import Settings
from ._snapshots import SnapshotHandle
from .authenticators._login import LoginRecord, LoginService
from .authenticators._passwords import PasswordCost, PasswordHash
from .authenticators._sessions import IssuedSession, SessionTokens
from .authenticators._throttle import LoginThrottle
from .authenticators._totp import TOTPDevice, TOTPVerifier
from .directory import Snapshot, User
from .directory._last_used import LastUsedTracker
from .state import StateStore

#: How many password hashes tell the directory's usual cost (``Logins._usual_password_cost``).
_COST_SAMPLE = 256

__all__ = ["Logins", "mfa_devices_of", "own_mfa_serial"]


def own_mfa_serial(user: User) -> str | None:
    """The serial number a user's one device had before users could have several: the user's ARN with ``mfa/`` for
    ``user/`` (``arn:<partition>:iam::<account>:mfa<path><user name>``, the ``totp_secret`` device's). None for a
    root user, which never had one by that name."""
    return None if user.is_root else user.arn.replace(":user/", ":mfa/", 1)


def mfa_devices_of(user: User) -> tuple[tuple[str | None, TOTPDevice], ...]:
    """The user's enabled MFA devices as ``TOTPVerifier.verify_any`` takes them: each named by its serial number,
    which also names the record of its spent codes. The device named ``own_mfa_serial`` keeps the user's one
    record of before (serial None), so an upgrade does not forget which of its codes were just spent."""
    own = own_mfa_serial(user)
    devices = tuple((None if d.serial == own else d.serial, d.totp) for d in user.mfa_devices)
    if not devices and user.totp is not None:  # a directory of the application's own, with the one device
        return ((None, user.totp),)
    return devices


class Logins:
    """Password + TOTP logins of the directory's users, issuing this service's sessions.

    ``on_password_rehash(user_arn, new_hash)``, if given, receives a new hash of a user's password after a login
    whose stored hash is in the earlier form or below the current cost, to store where the directory comes from.
    """

    def __init__(self, snapshots: SnapshotHandle, settings: Settings, store: StateStore, sessions: SessionTokens, *,
                 clock: Callable[[], float], on_password_rehash: Callable[[str, str], None] | None = None) -> None:
        self._snapshots = snapshots
        self._clock = clock
        #: Single-use one-time codes (a code accepted once is refused again within its window).
        self.totp = TOTPVerifier(store)
        #: Failed-attempt counters and lockouts, per name and per user.
        self.throttle = LoginThrottle(store, max_failures=settings.login_max_failures, lockout=settings.login_lockout)
        self._dummy_cost: tuple[Snapshot | None, PasswordCost] = (None, PasswordCost())
        self.service = LoginService(self._login_record, sessions=sessions, totp=self.totp, throttle=self.throttle,
                                    dummy_cost=self._usual_password_cost, on_password_rehash=on_password_rehash)
        #: When passwords (and, through the SigV4 authenticator, access keys) were last used: the credential report's.
        self.last_used = LastUsedTracker(store)

    def __repr__(self) -> str:
        return "Logins()"

    def login(self, username: str, password: str, code: str, *, now: float | None = None,
              source_ip: str | None = None) -> IssuedSession:
        """Password + TOTP login; returns a session usable as a bearer token or cookie. Raises OTPError/LockedOut."""
        now = self._clock() if now is None else now
        self._snapshots.refresh(now)  # log in against the directory in force everywhere, as authentication does
        issued = self.service.login(username, password, code, now=now, source_ip=source_ip)
        user = self._snapshots.current.user(username)
        if user is not None:
            self.last_used.password_used(user.id, now=now)
        return issued

    def _login_record(self, username: str) -> LoginRecord | None:
        user = self._snapshots.current.user(username)
        if user is None or user.password_hash is None:
            return None
        return LoginRecord(user.id, user.arn, user.password_hash, user.totp, active=user.active,
                           devices=mfa_devices_of(user))

    def _usual_password_cost(self) -> PasswordCost:
        """The cost most of the directory's password hashes have: a login for an unknown user spends that much, so
        it takes as long as one for a known user even while older hashes are still cheaper than new ones.

        Read from at most ``_COST_SAMPLE`` hashes per snapshot: a large directory is reloaded often (each change is a
        new snapshot), and the first login after each must not parse every user's hash."""
        snapshot = self._snapshots.current
        if self._dummy_cost[0] is not snapshot:
            costs: Counter[PasswordCost] = Counter()
            users = getattr(snapshot, "users", {}).values()  # an application's own Directory may list none
            hashes = (user.password_hash for user in users if user.password_hash is not None)
            for password_hash in islice(hashes, _COST_SAMPLE):
                with suppress(ConfigurationError):  # a broken hash fails its own logins (LoginService._find)
                    costs[PasswordHash.parse(password_hash).cost] += 1
            self._dummy_cost = (snapshot, costs.most_common(1)[0][0] if costs else PasswordCost())
        return self._dummy_cost[1]
