"""The directory's records: accounts (tenants), users, groups, roles, access keys. Immutable; secrets masked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..authenticators._totp import TOTPDevice
from ..policy import Policy

__all__ = ["AccessKey", "Account", "Group", "Role", "User"]


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Account:
    """A tenant. ``guardrails`` play the role of SCPs for every principal of the account."""

    id: str
    name: str = ""
    guardrails: tuple[Policy, ...] = ()


@dataclass(frozen=True, slots=True, repr=False)
class AccessKey:
    """A long-term (AKIA-style) access key of a user. The secret never appears in a repr."""

    id: str
    secret: str
    active: bool = True

    def __repr__(self) -> str:
        return f"AccessKey(id={self.id!r}, secret='********', active={self.active!r})"


@dataclass(frozen=True, slots=True)
class Group:
    account: str
    name: str
    policies: tuple[Policy, ...] = ()


@dataclass(frozen=True, slots=True, repr=False)
class User:
    """An IAM user. ``policies`` are its own (managed and inline); group policies are added at evaluation."""

    account: str
    name: str
    arn: str
    id: str
    path: str = "/"
    groups: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=_empty)
    policies: tuple[Policy, ...] = ()
    boundary: Policy | None = None
    password_hash: str | None = None
    totp: TOTPDevice | None = None
    access_keys: tuple[AccessKey, ...] = ()
    active: bool = True

    def __repr__(self) -> str:
        return f"User(arn={self.arn!r}, groups={self.groups!r}, access_keys={[k.id for k in self.access_keys]!r})"


@dataclass(frozen=True, slots=True)
class Role:
    """An IAM role: who may assume it (trust policy), what it may do, and for how long a session lasts."""

    account: str
    name: str
    arn: str
    id: str
    trust_policy: Policy
    path: str = "/"
    tags: Mapping[str, str] = field(default_factory=_empty)
    policies: tuple[Policy, ...] = ()
    boundary: Policy | None = None
    max_session_duration: int = 3600
