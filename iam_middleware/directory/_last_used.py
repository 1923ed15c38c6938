"""When each access key and password was last used: what ``GetAccessKeyLastUsed`` and the credential report tell.

Recorded on successful authentication, in the shared state store, so every process (with Redis, every machine)
adds to one record. As IAM does, only the first use in a span is recorded (IAM User Guide, "Getting credential
reports": an access key used more than once in 15 minutes, a password more than once in 5): a warm request pays a
dictionary look-up, and a key makes at most one store write per window in the whole deployment (each process asks
the store once per window whether it is the one to write). The record keeps its date to the second, and the region
and service of a key's signature scope.

Recording never refuses a request: when the store cannot answer, the use goes unrecorded for that window, and a
warning is logged once per outage.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from .. import _json
from ..state import StateStore, StateUnavailableError

__all__ = ["ACCESS_KEY_WINDOW", "PASSWORD_WINDOW", "LastUsed", "LastUsedTracker"]

logger = logging.getLogger("iam_middleware.last_used")

#: Seconds in which only the first use of an access key is recorded (IAM's span: 15 minutes).
ACCESS_KEY_WINDOW = 900.0
#: Seconds in which only the first sign-in with a password is recorded (IAM's span: 5 minutes).
PASSWORD_WINDOW = 300.0
_LIMIT = 100_000  # entries of the per-process "recorded recently" map before it starts over


@dataclass(frozen=True, slots=True)
class LastUsed:
    """A recorded use: when (epoch seconds), and for a key the region and service its signature was scoped to."""

    date: float
    region: str | None = None
    service: str | None = None


class LastUsedTracker:
    """Records and reads last uses in a ``StateStore`` (keys under ``prefix``)."""

    def __init__(self, store: StateStore, *, prefix: str = "iam:last-used:") -> None:
        self._store = store
        self._prefix = prefix
        #: record key -> until when this process records no further use of it
        self._quiet: dict[str, float] = {}
        self._failing = False

    def __repr__(self) -> str:
        return f"LastUsedTracker(prefix={self._prefix!r})"

    # Recording (the hot path) ------------------------------------------------------------------------------------
    def access_key_used(self, access_key_id: str, *, now: float, region: str, service: str) -> None:
        """A request signed with a long-term access key was authenticated (temporary ``ASIA`` keys are not
        tracked, as in IAM)."""
        key = f"key:{access_key_id}"
        until = self._quiet.get(key)
        if (until is not None and now < until) or access_key_id.startswith("ASIA"):
            return
        self._record(key, ACCESS_KEY_WINDOW, now, {"date": int(now), "region": region, "service": service})

    def password_used(self, user_id: str, *, now: float) -> None:
        """A user (or root user, by its account id) signed in with its password."""
        key = f"password:{user_id}"
        until = self._quiet.get(key)
        if until is not None and now < until:
            return
        self._record(key, PASSWORD_WINDOW, now, {"date": int(now)})

    def _record(self, key: str, window: float, now: float, value: dict[str, object]) -> None:
        quiet = self._quiet
        if len(quiet) >= _LIMIT:
            quiet.clear()
        # Set first: whatever the store answers, this process asks it again only after the window.
        quiet[key] = now + window
        try:
            if self._store.claim(f"{self._prefix}window:{key}", window):
                self._store.set(self._prefix + key, json.dumps(value).encode())
        except StateUnavailableError as exc:
            if not self._failing:
                self._failing = True
                logger.warning("last-used information cannot be recorded while the state store is unavailable "
                               "(%s); requests are served, their use goes unrecorded", type(exc).__name__)
            return
        self._failing = False

    # Reading -----------------------------------------------------------------------------------------------------
    def access_key(self, access_key_id: str) -> LastUsed | None:
        """The last recorded use of an access key, or None when it has none. Raises ``StateUnavailableError``."""
        return self._read(f"key:{access_key_id}")

    def password(self, user_id: str) -> LastUsed | None:
        """The last recorded sign-in with a user's password, or None. Raises ``StateUnavailableError``."""
        return self._read(f"password:{user_id}")

    def _read(self, key: str) -> LastUsed | None:
        raw = self._store.get(self._prefix + key)
        if raw is None:
            return None
        try:
            value = _json.loads(raw)
            return LastUsed(float(value["date"]), value.get("region"), value.get("service"))
        except (ValueError, TypeError, KeyError):
            logger.warning("an unreadable last-used record (%s) is ignored", key)
            return None
