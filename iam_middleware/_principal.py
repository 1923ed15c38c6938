"""The one principal model every credential kind maps to, and the IAM global condition keys it implies."""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

__all__ = ["CredentialKind", "Principal", "PrincipalType"]


class PrincipalType(enum.StrEnum):
    """Values of ``aws:PrincipalType``."""

    USER = "User"
    ASSUMED_ROLE = "AssumedRole"
    FEDERATED_USER = "FederatedUser"
    ACCOUNT = "Account"
    ANONYMOUS = "Anonymous"


class CredentialKind(enum.StrEnum):
    """How the caller proved who it is."""

    ACCESS_KEY = "access-key"  # long-term AKIA key, SigV4
    TEMPORARY_ACCESS_KEY = "temporary-access-key"  # ASIA key + session token, SigV4
    SESSION = "session"  # password + TOTP login, session token (bearer or cookie)
    JWT = "jwt"  # bearer JWT naming a principal of this directory
    WEB_IDENTITY = "web-identity"  # outside JWT mapped to a role session


@functools.lru_cache(maxsize=4096)
def _iso(ts: float) -> str:
    # Memoised: a principal's aws:TokenIssueTime is asked for on every request it makes, and strftime is slow.
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user, a role session or a federated identity.

    ``arn`` is what resource-based policies name (for a role session, the ``assumed-role`` ARN);
    ``source_arn`` is ``aws:PrincipalArn`` (for a role session, the role's ARN). MFA facts are ``None``
    when the credential kind cannot carry them (long-term access keys), so the keys are absent, as in AWS.
    """

    arn: str
    type: PrincipalType
    account: str
    name: str
    id: str
    credential_kind: CredentialKind
    source_arn: str | None = None
    groups: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    issuer: str | None = None
    auth_time: float | None = None
    mfa_present: bool | None = None
    mfa_time: float | None = None
    token_issue_time: float | None = None
    expires_at: float | None = None
    session_name: str | None = None
    access_key_id: str | None = None
    #: A session policy (JSON text) that limits a role or federated session further, as in AWS STS.
    session_policy: str | None = None
    #: Extra keys a credential adds (web identity claims such as ``accounts.example.com:sub``).
    extra_context: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def is_authenticated(self) -> bool:
        """Starlette's ``BaseUser`` protocol: ``request.user`` is the principal."""
        return True

    @property
    def display_name(self) -> str:
        return self.session_name or self.name

    @property
    def identity(self) -> str:
        return self.arn

    @property
    def principal_arn(self) -> str:
        """``aws:PrincipalArn``: the user's ARN, or the role's ARN for a role session."""
        return self.source_arn or self.arn

    def context_keys(self, now: float) -> dict[str, Any]:
        """The IAM global condition keys this principal implies at time ``now`` (epoch seconds)."""
        keys: dict[str, Any] = {
            "aws:PrincipalArn": self.principal_arn,
            "aws:PrincipalAccount": self.account,
            "aws:PrincipalType": self.type.value,
            "aws:userid": self.id,
        }
        if self.type is PrincipalType.USER:
            # AWS sets aws:username only for IAM users.
            keys["aws:username"] = self.name
        if self.tags:
            keys["aws:PrincipalTagKeys"] = list(self.tags)
            for tag_key, tag_value in self.tags.items():
                keys[f"aws:PrincipalTag/{tag_key}"] = tag_value
        if self.mfa_present is not None:
            keys["aws:MultiFactorAuthPresent"] = "true" if self.mfa_present else "false"
            if self.mfa_present and self.mfa_time is not None:
                keys["aws:MultiFactorAuthAge"] = str(max(0, int(now - self.mfa_time)))
        if self.token_issue_time is not None:
            keys["aws:TokenIssueTime"] = _iso(self.token_issue_time)
        keys.update(self.extra_context)
        return keys
