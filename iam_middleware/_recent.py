"""Exact repeats of recently allowed requests, answered without deciding again: the shells' warm path.

A shell (the ASGI middleware, the Flask extension) digests every input a decision can depend on: method, raw path,
query, scheme, client address and every header. A repeat of an allowed request with the same digest gets the same
principal and decision while all of these hold: the credential is still valid (never past its expiry; a session is
re-checked against the store after ``settings.session_cache_seconds``, the documented revocation bound), the same
directory snapshot is in force (a reload drops everything), and the reloader's checks pass. Never kept: denials,
SigV4 requests (signed per request, body included), and decisions that can change with the clock alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._iam import IAM
from ._principal import CredentialKind, Principal
from .directory import Snapshot
from .policy import Decision

__all__ = ["Recent", "RecentDecisions", "digest"]

_REMEMBERED_KINDS = frozenset({CredentialKind.SESSION, CredentialKind.JWT, CredentialKind.WEB_IDENTITY})


@dataclass(frozen=True, slots=True)
class Recent:
    """A recently allowed request; ``extra`` is what the shell needs to replay it (scope additions, log fields)."""

    principal: Principal
    decision: Decision
    snapshot: Snapshot
    valid_until: float
    extra: Any


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

    def lookup(self, key: bytes) -> Recent | None:
        """The recent decision for this exact request if it still stands, else None (decide the full way)."""
        recent = self._entries.get(key)
        if recent is None:
            return None
        iam = self.iam
        now = iam.clock()
        try:
            for hook in iam.refresh_hooks:  # a reload (or a shared state outage) goes the full way
                hook(now)
        except Exception:  # noqa: BLE001 - the full path meets it again and renders it
            return None
        if now < recent.valid_until and recent.snapshot is iam.snapshot:
            return recent
        return None

    def remember(self, key: bytes, principal: Principal | None, decision: Decision | None, extra: Any) -> None:
        """Keep an allowed decision for its exact repeats, when that is safe (see the module docstring)."""
        if principal is None or decision is None or not decision.allowed:
            return
        iam = self.iam
        if principal.credential_kind not in _REMEMBERED_KINDS or iam.reads_time(principal, decision.action):
            return
        now = iam.clock()
        valid_until = principal.expires_at if principal.expires_at is not None else now
        if principal.credential_kind is CredentialKind.SESSION:
            valid_until = min(valid_until, now + iam.settings.session_cache_seconds)
        if valid_until <= now:
            return
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[key] = Recent(principal, decision, iam.snapshot, valid_until, extra)
