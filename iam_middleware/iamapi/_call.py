"""One call of the IAM API as its action sees it: the caller, the decoded parameters, and the directory's records it
reads (or the draft it changes); the directory's own ARNs, and the lookups every action shares.

ARNs are those of the directory (``docs/directory.md``): ``arn:<partition>:iam::<account>:user<path><name>``, the
same for ``role``; ``group/<name>`` and ``policy/<name>`` (the directory keeps no path for either); a user's MFA
device is ``mfa<path><device name>``. An action works in the caller's own account, as IAM's do. Managed policies
are shared by the directory's accounts: a policy is named in each account's ARNs.

A request signed with the account root user's access key is the root principal (``arn:<partition>:iam::<account>:
root``): where ``UserName`` is left out of a credential action, it acts on the root user itself (the draft's
``ROOT`` marker), as IAM does; its ARN is the resource such a call is authorized on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._awsquery import ParameterError
from .._iam import IAM
from .._principal import Principal, PrincipalType
from .._request import RequestView
from ..directory._snapshot import stable_id
from ..directory.sql import ROOT, DirectoryDraft, InvalidInputError, NoSuchEntityError

__all__ = ["Call", "iso"]


def iso(timestamp: float) -> str:
    """A time as IAM's answers write it (ISO 8601, UTC, whole seconds)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Call:
    """One IAM API call: ``records`` are the directory's records (``iam_middleware.directory.sql._records``) it
    reads; for an action that writes, ``draft`` is the open change and ``records`` its records."""

    iam: IAM
    principal: Principal
    action: str
    params: dict[str, Any]
    records: Mapping[str, Any]
    request: RequestView
    now: float
    source_ip: str | None = None
    request_id: str = "-"
    draft: DirectoryDraft | None = None

    # The caller ------------------------------------------------------------------------------------------------
    @property
    def account(self) -> str:
        return self.principal.account

    @property
    def partition(self) -> str:
        return self.iam.settings.partition

    def changes(self) -> DirectoryDraft:
        if self.draft is None:  # pragma: no cover - the table marks every action that writes
            raise RuntimeError(f"{self.action} writes, but runs without a change")
        return self.draft

    @property
    def is_root(self) -> bool:
        """Whether the caller is its account's root user."""
        return self.principal.type is PrincipalType.ACCOUNT

    def user_name(self) -> str:
        """``UserName``, or the caller's own name when it is left out (as IAM does for a user's own keys,
        password and devices): ``ROOT`` for the account's root user."""
        given = self.params.get("UserName")
        if given is not None:
            return str(given)
        if self.is_root:
            return ROOT
        if self.principal.type is not PrincipalType.USER:
            raise ParameterError("Must specify userName when calling with non-User credentials")
        return self.principal.name

    # Lookups ---------------------------------------------------------------------------------------------------
    def find(self, kind: str, name: str) -> tuple[str, dict[str, Any]] | None:
        """(unique id, record) of the caller's account's user or role ``name``, or None."""
        for unique, entry in self.records[kind].items():
            if entry["account"] == self.account and entry["name"] == name:
                return unique, entry
        return None

    def user(self, name: str) -> tuple[str, dict[str, Any]]:
        """(unique id, record) of a user of the caller's account, or of its root user (``ROOT``: the account id,
        and the root record, without credentials when the directory keeps none)."""
        if name == ROOT:
            root: dict[str, Any] | None = self.records["accounts"][self.account].get("root")
            return self.account, root if root is not None else {
                "password_hash": None, "password_changed": None, "totp_secret": None, "access_keys": [],
                "created": None}
        found = self.find("users", name)
        if found is None:
            raise NoSuchEntityError(f"The user with name {name} cannot be found.")
        return found

    def role(self, name: str) -> tuple[str, dict[str, Any]]:
        found = self.find("roles", name)
        if found is None:
            raise NoSuchEntityError(f"The role with name {name} cannot be found.")
        return found

    def group(self, name: str) -> dict[str, Any]:
        entry: dict[str, Any] | None = self.records["groups"].get(name)
        if entry is None or entry["account"] != self.account:
            raise NoSuchEntityError(f"The group with name {name} cannot be found.")
        return entry

    def policy_name(self, arn: str, *, member: str = "PolicyArn") -> str:
        """The name of the directory's managed policy an ARN names (in the caller's account), else
        ``NoSuchEntity`` (an ARN of another account or partition, an AWS managed policy, a path)."""
        prefix = f"arn:{self.partition}:iam::{self.account}:policy/"
        if not isinstance(arn, str) or not arn.startswith("arn:"):
            raise InvalidInputError(f"{member} must be a policy ARN ({prefix}<name>).")
        name = arn[len(prefix):] if arn.startswith(prefix) else ""
        if not name or "/" in name or name not in self.records["policies"]:
            raise NoSuchEntityError(f"Policy {arn} does not exist or is not attachable.")
        return name

    # ARNs ------------------------------------------------------------------------------------------------------
    def arn(self, kind: str, name: str, path: str = "/") -> str:
        return f"arn:{self.partition}:iam::{self.account}:{kind}{path}{name}"

    def user_arn(self, name: str) -> str:
        """The ARN of a user of the caller's account (with its path; ``/`` for one that does not exist)."""
        if name == ROOT:
            return self.root_arn()
        found = self.find("users", name)
        return self.arn("user", name, found[1]["path"] if found else "/")

    def root_arn(self, account: str | None = None) -> str:
        """The root user of the caller's account (or of ``account``)."""
        return f"arn:{self.partition}:iam::{account or self.account}:root"

    def role_arn(self, name: str) -> str:
        found = self.find("roles", name)
        return self.arn("role", name, found[1]["path"] if found else "/")

    def entity_arn(self, entry: Mapping[str, Any], kind: str) -> str:
        return f"arn:{self.partition}:iam::{entry['account']}:{kind}{entry['path']}{entry['name']}"

    def group_arn(self, name: str) -> str:
        return self.arn("group", name)

    def policy_arn(self, name: str) -> str:
        return self.arn("policy", name)

    def mfa_arn(self, name: str, path: str = "/") -> str:
        """A virtual MFA device of the caller's account: ``arn:<partition>:iam::<account>:mfa<path><name>``, its
        serial number (``SerialNumber`` of EnableMFADevice, GetSessionToken and AssumeRole)."""
        return self.arn("mfa", name, path)

    def group_id(self, name: str) -> str:
        """A group's id: derived from its ARN (the directory keeps none), stable while the group exists."""
        return stable_id("AGPA", self.group_arn(name))

    def policy_id(self, name: str) -> str:
        return stable_id("ANPA", f"arn:{self.partition}:iam:::policy/{name}")

    def boundary_arn(self, boundary: Any) -> str | None:
        """The ARN of a user's or role's permissions boundary when it is a managed policy (a boundary written as a
        document in a directory file has none)."""
        return self.policy_arn(boundary) if isinstance(boundary, str) else None
