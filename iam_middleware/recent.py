"""Exact repeats of recently allowed requests, answered without deciding again: the shells' warm path.

A shell (the ASGI middleware, the Flask extension) digests every input a decision can depend on: method, raw path,
query, scheme, client address and the headers a decision can read (``DECISION_HEADERS``: the credentials, the CSRF
check's, the caller's address and the ``aws:UserAgent``/``aws:Referer`` keys, plus every header a declared
permission names; every header while a custom authenticator, which may read any, is in the chain). A repeat of an
allowed request with the same digest gets the same principal and decision while all of these hold: the credential
is still valid (never past its expiry; a session is re-checked against the store after
``settings.session_cache_seconds``, the documented revocation bound), the same directory snapshot is in force (a
reload drops everything), and the reloader's checks pass. Never kept: denials,
SigV4 requests (signed per request, body included), and decisions that can change with the clock alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._authn import BearerAuthenticator, CookieAuthenticator, SigV4Authenticator
from ._iam import IAM
from ._principal import CredentialKind, Principal
from .directory import Snapshot
from .metrics._observe import observers_of
from .policy import Decision
from .routing import Permission

__all__ = ["DECISION_HEADERS", "Recent", "RecentDecisions", "digest", "header_placeholders"]

_REMEMBERED_KINDS = frozenset({CredentialKind.SESSION, CredentialKind.JWT, CredentialKind.WEB_IDENTITY})
_BUILT_IN = (SigV4Authenticator, BearerAuthenticator, CookieAuthenticator)
#: The headers the built-in steps read for a decision (lower case): credentials, the CSRF check (origin, referer,
#: host), the caller's address behind proxies, and the aws:UserAgent and aws:Referer condition keys.
DECISION_HEADERS = frozenset({"authorization", "cookie", "origin", "referer", "host", "user-agent",
                              "x-forwarded-for"})


@dataclass(frozen=True, slots=True)
class Recent:
    """A recently allowed request; ``extra`` is what the shell needs to replay it (scope additions, log fields)."""

    principal: Principal
    decision: Decision
    snapshot: Snapshot
    valid_until: float
    extra: Any
    epoch: int = 0


def header_placeholders(permission: Permission) -> list[str]:
    """The headers a permission names (``{header.x-team}`` -> ``x-team``)."""
    return [name[7:] for name in permission.placeholders() if name.startswith("header.")]


def _environ_key(name: str) -> str:
    key = name.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"


def digest(parts: Iterable[bytes]) -> bytes:
    """SHA-256 over the request's inputs: the raw credential is never itself a cache key (docs/security.md
    section 6)."""
    return hashlib.sha256(b"\0".join(parts)).digest()


class RecentDecisions:
    """A bounded map from request digests to recent allowed decisions, for one IAM."""

    def __init__(self, iam: IAM, *, limit: int = 10_000) -> None:
        self.iam = iam
        self._limit = limit
        self._entries: dict[bytes, Recent] = {}
        self._names = DECISION_HEADERS
        self._checked_chain: list[object] = []
        self._checked = False
        self._asgi = frozenset(name.encode("latin-1") for name in self._names)
        self._wsgi = frozenset(_environ_key(name) for name in self._names)
        self._observers = observers_of(iam)  # each lookup is reported: metrics and traces (docs/metrics.md)

    def name_headers(self, names: Iterable[str]) -> None:
        """Add the headers the app's declared permissions name (``{header.X}``) to those a key covers."""
        self._names = self._names | {name.lower() for name in names}
        self._asgi = frozenset(name.encode("latin-1") for name in self._names)
        self._wsgi = frozenset(_environ_key(name) for name in self._names)

    def _built_in(self) -> bool:
        chain = self.iam.authenticators
        if chain != self._checked_chain:  # compared item by item, by identity first: cheap when unchanged
            self._checked_chain = list(chain)
            self._checked = all(type(a) in _BUILT_IN for a in chain)
        return self._checked

    def asgi_headers(self) -> frozenset[bytes] | None:
        """The (lower-case) ASGI header names a key covers; None for every header, while a custom authenticator
        (which may read any header) is in the chain."""
        return self._asgi if self._built_in() else None

    def wsgi_headers(self) -> frozenset[str] | None:
        """The WSGI environ keys (``HTTP_X_TEAM``) a key covers; None for every header (see ``asgi_headers``)."""
        return self._wsgi if self._built_in() else None

    def lookup(self, key: bytes) -> Recent | None:
        """The recent decision for this exact request if it still stands, else None (decide the full way)."""
        recent = self._entries.get(key)
        if recent is None:
            for observe in self._observers.on_lookup:
                observe(None)
            return None
        iam = self.iam
        now = iam.clock()
        snapshots = iam.snapshots
        try:
            for hook in snapshots.refresh_hooks:  # a reload (or a shared state outage) goes the full way
                hook(now)
        except Exception:  # noqa: BLE001 - the full path meets it again and renders it
            recent = None
        if recent is not None and not (now < recent.valid_until and recent.snapshot is snapshots.current
                                       and recent.epoch == iam.credentials.credential_epoch):
            recent = None
        for observe in self._observers.on_lookup:
            observe(recent)
        return recent

    def remember(self, key: bytes, principal: Principal | None, decision: Decision | None, extra: Any) -> None:
        """Keep an allowed decision for its exact repeats, when that is safe (see the module docstring)."""
        if principal is None or decision is None or not decision.allowed:
            return
        iam = self.iam
        if principal.credential_kind not in _REMEMBERED_KINDS or iam.decisions.reads_time(principal, decision.action):
            return
        now = iam.clock()
        valid_until = principal.expires_at if principal.expires_at is not None else now
        if principal.credential_kind is CredentialKind.SESSION:
            valid_until = min(valid_until, now + iam.settings.session_cache_seconds)
        if valid_until <= now:
            return
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[key] = Recent(principal, decision, iam.snapshots.current, valid_until, extra,
                                    iam.credentials.credential_epoch)
