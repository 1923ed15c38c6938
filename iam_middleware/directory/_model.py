"""The directory's records: accounts (tenants), users, groups, roles, access keys. Immutable; secrets masked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..authenticators._totp import TOTPDevice
from ..policy import Policy

__all__ = ["AccessKey", "Account", "Group", "MFADevice", "Role", "User"]


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Account:
    """A tenant. ``guardrails`` play the role of SCPs for every principal of the account, its root user included.

    ``root`` is the account root user (``arn:<partition>:iam::<id>:root``) when the directory declares one: it has
    every permission on the account's own resources, limited only by the guardrails and by explicit denies in
    resource-based policies (docs/directory.md, "The account root user"). Without it nobody signs in as the root.
    """

    id: str
    name: str = ""
    guardrails: tuple[Policy, ...] = ()
    root: User | None = None


@dataclass(frozen=True, slots=True, repr=False)
class AccessKey:
    """A long-term (AKIA-style) access key of a user. The secret never appears in a repr."""

    id: str
    secret: str
    active: bool = True

    def __repr__(self) -> str:
        return f"AccessKey(id={self.id!r}, secret='********', active={self.active!r})"


@dataclass(frozen=True, slots=True, repr=False)
class MFADevice:
    """A virtual (TOTP) MFA device enabled for a user: its serial number, an ARN as IAM names it
    (``arn:<partition>:iam::<account>:mfa/<path><name>``), and its seed. The seed never appears in a repr."""

    serial: str
    totp: TOTPDevice

    def __repr__(self) -> str:
        return f"MFADevice(serial={self.serial!r})"


@dataclass(frozen=True, slots=True)
class Group:
    account: str
    name: str
    policies: tuple[Policy, ...] = ()


@dataclass(frozen=True, slots=True, repr=False)
class User:
    """An IAM user, or an account's root user (``is_root``). ``policies`` are its own (managed and inline); group
    policies are added at evaluation.

    ``mfa_devices`` are every MFA device enabled for the user (IAM allows up to eight): login takes a code of any
    of them, ``GetSessionToken`` and ``AssumeRole`` that of the one ``SerialNumber`` names; ``totp`` is the first.
    """

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
    mfa_devices: tuple[MFADevice, ...] = ()

    @property
    def is_root(self) -> bool:
        """Whether this is an account's root user (``arn:…:iam::<account>:root``; a user's ARN has ``user/``)."""
        return self.arn.endswith(":root")

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
