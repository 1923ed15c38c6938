"""Login throttling: a growing delay after each failure, then a lockout that doubles each time it recurs.

All state lives in the shared ``StateStore``, so a lockout holds across processes and machines. Failures are
counted per user name and, optionally, per source address (password spraying from one host across many users).
The "locked until" time is written with ``StateStore.advance``, an atomic maximum: a short delay recorded by a
racing request can never shorten a lockout. With the defaults, an attacker retrying as fast as allowed gets
about a dozen tries on the first day and one a day after that.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable

from .._exceptions import ConfigurationError, LockedOutError, ServiceUnavailableError
from ..state import StateStore, StateUnavailableError

__all__ = ["LoginThrottle"]

_MAX_KEY_CHARS = 256
# 2**40 seconds is beyond any cap; bounding the exponent keeps the arithmetic in floats' exact range.
_MAX_EXPONENT = 40


def _ip_key(source_ip: str) -> str:
    """The address as counted: IPv6 hosts by their /64 (one customer's allocation), IPv4-mapped IPv6 as IPv4."""
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        # Not an address (a test client, a unix socket): count it verbatim.
        return source_ip[:_MAX_KEY_CHARS]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class LoginThrottle:
    """Refuses logins for a user (or a source address) that failed too often recently.

    After failure number ``k`` below ``max_failures`` the user must wait ``base_delay * 2**(k-1)`` seconds
    (capped at ``lockout``). Reaching ``max_failures`` within ``window`` seconds locks the user for
    ``lockout`` seconds. Until a successful login, or until ``history`` seconds pass after a lockout ends,
    each further failure locks again for twice as long, up to ``max_lockout``. A per-address limit applies
    only when ``max_failures_per_ip`` is set; addresses get no per-failure delay, and after a lockout they get
    a fresh budget once their failure window has passed.
    """

    def __init__(
        self,
        store: StateStore,
        *,
        max_failures: int = 5,
        window: float = 900.0,
        lockout: float = 900.0,
        base_delay: float = 1.0,
        max_lockout: float = 86400.0,
        history: float = 86400.0,
        max_failures_per_ip: int | None = None,
        key_prefix: str = "iam:throttle:",
    ) -> None:
        for name, limit in (("max_failures", max_failures), ("max_failures_per_ip", max_failures_per_ip)):
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
                raise ConfigurationError(f"{name} must be a positive int, got {limit!r}")
        if not (window > 0 and lockout > 0 and history > 0 and base_delay >= 0):
            raise ConfigurationError("window, lockout and history must be positive, base_delay not negative")
        if not max_lockout >= lockout:
            raise ConfigurationError("max_lockout must be at least lockout")
        self._store = store
        self._max_failures = max_failures
        self._max_failures_per_ip = max_failures_per_ip
        self._window = float(window)
        self._lockout = float(lockout)
        self._base_delay = float(base_delay)
        self._max_lockout = float(max_lockout)
        self._history = float(history)
        self._prefix = key_prefix
        #: Called for each lockout imposed (metrics: docs/metrics.md) with what was locked: ``"user"``, ``"name"`` (a
        #: user name as typed at login, ``name:...``: known or not) or ``"address"``.
        self.on_lockout: list[Callable[[str], None]] = []

    def _subjects(self, user_id: str, source_ip: str | None) -> list[tuple[str, int]]:
        """The counted subjects of an attempt, as (key suffix, failure limit)."""
        subjects = [(f"user:{user_id[:_MAX_KEY_CHARS]}", self._max_failures)]
        if source_ip is not None and self._max_failures_per_ip is not None:
            subjects.append((f"ip:{_ip_key(source_ip)}", self._max_failures_per_ip))
        return subjects

    def check(self, user_id: str, *, now: float, source_ip: str | None = None) -> None:
        """Raise ``LockedOutError`` (with ``retry_after``) if the user or the address may not try now."""
        try:
            for subject, _ in self._subjects(user_id, source_ip):
                raw = self._store.get(f"{self._prefix}lock:{subject}")
                if raw is None:
                    continue
                try:
                    until = float(int(raw))
                except ValueError:
                    # Unreadable lock state: stay locked rather than guess.
                    until = now + self._lockout
                if until > now:
                    raise LockedOutError(
                        f"too many failed logins; try again in {math.ceil(until - now)} seconds",
                        retry_after=until - now,
                    )
        except StateUnavailableError:
            raise ServiceUnavailableError("logins cannot be checked right now; try again shortly") from None

    def record_failure(self, user_id: str, *, now: float, source_ip: str | None = None) -> None:
        """Count a failed login and impose the delay or lockout it earns."""
        try:
            for subject, limit in self._subjects(user_id, source_ip):
                is_user = subject.startswith("user:")
                failures = self._store.incr(f"{self._prefix}fail:{subject}", self._window)
                level = self._level(subject)
                # A user locked out before (and not yet forgiven) is locked again by any further failure, so a
                # guesser gets one try per lockout, not a fresh budget each time. Addresses are shared (NAT,
                # proxies), so they only lock again on reaching their limit again.
                if failures >= limit or (is_user and level > 0):
                    level += 1
                    delay = min(self._lockout * 2 ** min(level - 1, _MAX_EXPONENT), self._max_lockout)
                    self._store.set(f"{self._prefix}level:{subject}", str(level).encode(), delay + self._history)
                elif is_user and self._base_delay > 0:
                    delay = min(self._base_delay * 2 ** min(failures - 1, _MAX_EXPONENT), self._lockout)
                else:
                    continue
                self._store.advance(f"{self._prefix}lock:{subject}", math.ceil(now + delay), delay + 1)
                if level:  # a lockout (a delay leaves the level at 0): reported once it is in force
                    for hook in self.on_lockout:
                        hook(("name" if user_id.startswith("name:") else "user") if is_user else "address")
        except StateUnavailableError:
            raise ServiceUnavailableError("logins cannot be recorded right now; try again shortly") from None

    def _level(self, subject: str) -> int:
        """How many lockouts the subject has had without a success (or a long enough quiet spell) since."""
        raw = self._store.get(f"{self._prefix}level:{subject}")
        if raw is None:
            return 0
        try:
            return max(0, int(raw))
        except ValueError:
            return _MAX_EXPONENT  # unreadable: assume the worst, the cap applies

    def record_success(self, user_id: str) -> None:
        """Forget the user's failures, delays and lockout history after a successful login.

        Address counts are kept on purpose: an attacker who owns one account must not be able to reset the
        counter of an address they spray other accounts from.
        """
        subject = f"user:{user_id[:_MAX_KEY_CHARS]}"
        try:
            for kind in ("fail", "lock", "level"):
                self._store.delete(f"{self._prefix}{kind}:{subject}")
        except StateUnavailableError:
            raise ServiceUnavailableError("logins cannot be recorded right now; try again shortly") from None
