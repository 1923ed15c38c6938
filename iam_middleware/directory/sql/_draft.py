"""The directory being changed: IAM's actions, one method each, applied to the records of one transaction.

``SQLDirectory.change()`` hands out a ``DirectoryDraft``; each method is one IAM action (``CreateUser`` is
``create_user(user_name, ...)``, its parameters IAM's in snake case) and checks IAM's own rules as it goes, with
IAM's error codes: a name taken (``EntityAlreadyExists``), a name unknown (``NoSuchEntity``), a third access key or
a sixth policy version (``LimitExceeded``), deleting what is still in use (``DeleteConflict``), a document that is
not a valid policy (``MalformedPolicyDocument``, with the validator's located messages). Managed policies are named
by their name (the directory's policy names are unique). When the block ends, the directory it leaves is validated
before anything is committed (``SQLDirectory.change()``: by what the block touched, never accepting what the whole
validation of a file would refuse).

A draft's records are the writer's state with each kind an ``Overlay``: an entry is copied the first time the draft
takes it (``records[kind][key]``), so a block costs what it touches, and what it changed is known without comparing
the rest. Change an entry only through ``records[kind][key]``, never one reached by iterating.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..._exceptions import ConfigurationError, PolicyValidationError
from ...authenticators._passwords import hash_password
from ...authenticators._totp import TOTPDevice, new_device, provisioning_uri, qr_svg
from ...policy import PolicyKind, parse_policy
from .._load import MAX_MFA_DEVICES, ROOT_MFA_NAME
from .._qr_png import qr_png
from .._snapshot import Snapshot
from ._errors import (
    DeleteConflictError,
    DirectoryChangeError,
    EntityAlreadyExistsError,
    InvalidInputError,
    LimitExceededError,
    MalformedPolicyDocumentError,
    NoSuchEntityError,
)
from ._records import KINDS, Records

__all__ = ["ROOT", "DirectoryDraft", "InvalidAuthenticationCodeError", "MFADeviceInfo", "NewAccessKey",
           "NewVirtualMFADevice", "Overlay", "changed_keys", "draft_records", "settled"]

# IAM's quotas (the defaults an account starts with) and name patterns.
MAX_ACCESS_KEYS = 2
MAX_POLICY_VERSIONS = 5
MAX_ATTACHED = 10
MAX_TAGS = 50
_NAME = re.compile(r"[\w+=,.@-]+", re.ASCII)
_MFA_NAME = re.compile(r"[\w+=,.@-]{1,226}", re.ASCII)
#: The user name that means an account's root user in the credential actions (access keys, password, MFA), as a
#: call by the root user without ``UserName`` does in IAM; no IAM user can have it (``<`` and ``>`` are not allowed).
ROOT = "<root_account>"
_PATH = re.compile(r"/|/[\x21-\x7e]{1,510}/")
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

PolicyDocument = str | Mapping[str, Any]


class InvalidAuthenticationCodeError(DirectoryChangeError):
    """``EnableMFADevice`` was given codes that are not two consecutive codes of the device."""

    status_code = 403
    code = "InvalidAuthenticationCode"


@dataclass(frozen=True, slots=True, repr=False)
class NewAccessKey:
    """What ``CreateAccessKey`` returns: the only time the secret is shown."""

    user_name: str
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:
        return f"NewAccessKey(user_name={self.user_name!r}, access_key_id={self.access_key_id!r}, secret='********')"


@dataclass(frozen=True, slots=True, repr=False)
class NewVirtualMFADevice:
    """What ``CreateVirtualMFADevice`` returns: the device's serial number and, this once, its seed, as Base32 text
    and as a QR code of its ``otpauth://`` URI (PNG bytes and SVG text; None without the optional ``qrcode``
    package, ``pip install 'iam-middleware[qr]'``). Nothing secret appears in a repr."""

    serial_number: str
    base32_string_seed: str
    qr_code_png: bytes | None
    qr_code_svg: str | None

    def __repr__(self) -> str:
        return f"NewVirtualMFADevice(serial_number={self.serial_number!r}, seed='********')"


@dataclass(frozen=True, slots=True)
class MFADeviceInfo:
    """One MFA device as ``ListMFADevices`` and ``ListVirtualMFADevices`` describe it: its serial number, the user
    it is enabled for (``user_name`` ``<root_account>`` for a root user; None when enabled for nobody) and since when
    (epoch seconds; None when not recorded, as for a device given as ``totp_secret`` in a file)."""

    serial_number: str
    user_name: str | None
    user_arn: str | None
    enable_date: int | None


def _random(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(_BASE32) for _ in range(length))


def _check_name(kind: str, name: str, longest: int) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= longest or not _NAME.fullmatch(name):
        raise InvalidInputError(f"a {kind} name is 1 to {longest} of A-Z, a-z, 0-9 and +=,.@_- (got {name!r})")


def _check_path(path: str) -> None:
    if not isinstance(path, str) or not _PATH.fullmatch(path):
        raise InvalidInputError(f"a path is '/' or starts and ends with '/': printable ASCII, at most 512 characters "
                                f"(got {path!r})")


def _check_tags(tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or key.startswith("aws:"):
            raise InvalidInputError(f"a tag key is 1 to 128 characters, not starting with aws: (got {key!r})")
        if not isinstance(value, str) or len(value) > 256:
            raise InvalidInputError(f"the value of tag {key!r} must be a string of at most 256 characters")


def policy_text(document: PolicyDocument, kind: PolicyKind, label: str) -> str:
    """The document as JSON text, if it is a valid policy of ``kind``; else ``MalformedPolicyDocument`` naming
    each problem's place (``Statement[1].Effect: ...``)."""
    try:
        parse_policy(document, kind=kind, policy_id=label)
    except PolicyValidationError as exc:
        lines = [str(issue) for issue in exc.issues]
        raise MalformedPolicyDocumentError(f"{label}: " + "; ".join(lines), exc.issues) from None
    except (TypeError, ValueError) as exc:
        raise MalformedPolicyDocumentError(f"{label}: not a policy document: {exc}") from None
    return document if isinstance(document, str) else json.dumps(document, indent=2, ensure_ascii=False)


class Overlay(dict[str, Any]):
    """One kind of a draft's records laid over the records of the state the change starts from (``base``).

    Every entry is shared with ``base`` until the draft takes it (``self[key]``, ``get``, ``setdefault``): then it
    holds a deep copy of its own. A change so copies only what it touches, ``base`` (the writer's state, shared by
    the next change) is never changed, and ``changed()`` says which entries differ without comparing the rest.
    ``items()``, ``values()`` and iteration give the shared entries: for looking, never for changing (change an
    entry found that way through ``self[key]``).
    """

    def __init__(self, base: Mapping[str, Any]) -> None:
        super().__init__(base)
        self.base = base
        self.touched: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        value = dict.__getitem__(self, key)
        if key not in self.touched:
            value = copy.deepcopy(value)
            dict.__setitem__(self, key, value)
            self.touched.add(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.touched.add(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        self.touched.add(key)
        dict.__delitem__(self, key)

    def pop(self, key: str, *default: Any) -> Any:
        self.touched.add(key)
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:
        key, value = dict.popitem(self)
        self.touched.add(key)
        return key, value

    def clear(self) -> None:
        self.touched.update(self)
        dict.clear(self)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> Overlay:  # type: ignore[override,misc]
        self.update(other)
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return copy.deepcopy(dict(self), memo)

    def changed(self) -> set[str]:
        """The keys whose entries differ from ``base`` (added, removed or changed)."""
        missing = object()
        return {key for key in self.touched
                if dict.get(self, key, missing) != self.base.get(key, missing)}


def draft_records(base: Records) -> Records:
    """Records for a draft over ``base``: the settings and routes copied, every other kind an ``Overlay``."""
    records: Records = {"settings": copy.deepcopy(base["settings"]), "routes": copy.deepcopy(base["routes"])}
    records.update((kind, Overlay(base[kind])) for kind in KINDS)
    return records


def settled(records: Records) -> Records:
    """A draft's records as plain dicts that no longer share anything the draft may still change (the entries it
    took are copied again): the state the next change starts on, whatever is done with the draft afterwards."""
    found: Records = copy.deepcopy({"settings": records["settings"], "routes": records["routes"]})
    for kind in KINDS:
        entries = records[kind]
        plain = dict(entries)
        if isinstance(entries, Overlay):
            plain.update((key, copy.deepcopy(plain[key])) for key in entries.touched if key in plain)
        found[kind] = plain
    return found


def changed_keys(before: Records, after: Records) -> dict[str, set[str]]:
    """What ``after`` changed of ``before``, by kind (``settings`` and ``routes`` with ``{""}`` when they changed):
    ``Overlay.changed()`` where ``after`` is a draft's, else a comparison of every entry."""
    found: dict[str, set[str]] = {}
    for part in ("settings", "routes"):
        if before[part] != after[part]:
            found[part] = {""}
    for kind in KINDS:
        entries = after[kind]
        if isinstance(entries, Overlay) and entries.base is before[kind]:
            keys = entries.changed()
        else:
            keys = {key for key in before[kind].keys() | entries.keys() if before[kind].get(key) != entries.get(key)}
        if keys:
            found[kind] = keys
    return found


class DirectoryDraft:
    """IAM's actions on the directory of one ``SQLDirectory.change()`` block (see the module's docstring).

    ``account`` picks the account of a user or role by its id; without it, the settings' ``default_account`` or the
    directory's only account. Group and policy names are unique across the directory, as in the file.
    """

    def __init__(self, records: Records, *, now: int, snapshot: Snapshot | None = None) -> None:
        self.records = records
        self.now = now
        # The validated snapshot of the state ``records`` start from (its users an ``Overlay`` over that state's):
        # its indexes find users by name and access keys by id without a scan; the entries the draft took (the
        # overlay's ``touched``, which holds every user it added or changed) are looked at as they are now.
        self._snapshot = snapshot
        self._indexed = records["users"] if snapshot is not None and isinstance(records["users"], Overlay) else None

    # Lookups ---------------------------------------------------------------------------------------------------
    def _account(self, account: str | None) -> str:
        if account is not None:
            if account not in self.records["accounts"]:
                raise NoSuchEntityError(f"The account {account} cannot be found.")
            return account
        default = self.records["settings"].get("default_account")
        if isinstance(default, str):
            return default
        if len(self.records["accounts"]) == 1:
            return str(next(iter(self.records["accounts"])))
        raise InvalidInputError("The directory has several accounts: name the account.")

    def _named(self, kind: Literal["users", "roles"], name: str, account: str) -> list[tuple[str, dict[str, Any]]]:
        """(unique id, entry as it is) of every user or role that may be named ``name`` in ``account``, whatever
        its case: all of them, or with the snapshot's index, the users it names and those the draft took."""
        entries = self.records[kind]
        if kind == "users" and self._snapshot is not None and entries is self._indexed:
            assert isinstance(entries, Overlay)
            ids = {user.id for user in self._snapshot.users_named_alike(account, name)} | entries.touched
            return [(unique, dict.__getitem__(entries, unique)) for unique in sorted(ids) if unique in entries]
        return list(entries.items())

    def _find(self, kind: Literal["users", "roles"], name: str, account: str | None) -> tuple[str, dict[str, Any]]:
        where = self._account(account)
        for unique, entry in self._named(kind, name, where):
            if entry["account"] == where and entry["name"] == name:
                return unique, self.records[kind][unique]  # the draft's own copy: the caller may change it
        raise NoSuchEntityError(f"The {kind[:-1]} with name {name} cannot be found.")

    def _taken(self, kind: Literal["users", "roles"], name: str, account: str) -> bool:
        return any(e["account"] == account and e["name"].lower() == name.lower()
                   for _, e in self._named(kind, name, account))

    def _key_taken(self, key_id: str) -> bool:
        """Whether a user or root user has access key ``key_id`` (with the snapshot: one that had it counts)."""
        users = self.records["users"]
        if self._snapshot is not None and users is self._indexed:
            assert isinstance(users, Overlay)
            if self._snapshot.access_key(key_id) is not None:
                return True
            holders = [dict.__getitem__(users, unique) for unique in users.touched if unique in users]
        else:
            holders = list(users.values())
        holders += [a["root"] for a in self.records["accounts"].values() if a.get("root") is not None]
        return any(key["id"] == key_id for holder in holders for key in holder["access_keys"])

    def _user(self, name: str, account: str | None) -> dict[str, Any]:
        return self._find("users", name, account)[1]

    def _role(self, name: str, account: str | None) -> dict[str, Any]:
        return self._find("roles", name, account)[1]

    def _group(self, name: str) -> dict[str, Any]:
        group: dict[str, Any] | None = self.records["groups"].get(name)
        if group is None:
            raise NoSuchEntityError(f"The group with name {name} cannot be found.")
        return group

    def _policy(self, name: str) -> dict[str, Any]:
        policy: dict[str, Any] | None = self.records["policies"].get(name)
        if policy is None:
            raise NoSuchEntityError(f"Policy {name} does not exist or is not attachable.")
        return policy

    def _new_id(self, prefix: str) -> str:
        users, roles = self.records["users"], self.records["roles"]
        while (unique := _random(prefix, 17)) in users or unique in roles:  # 85 bits: a repeat is a curiosity
            pass
        return unique

    # Users -----------------------------------------------------------------------------------------------------
    def create_user(self, user_name: str, *, account: str | None = None, path: str = "/",
                    tags: Mapping[str, str] | None = None) -> str:
        """``CreateUser``; returns the new user's unique id (``AIDA`` and 17 of A-Z2-7, random)."""
        _check_name("user", user_name, 64)
        _check_path(path)
        _check_tags(tags or {})
        where = self._account(account)
        if self._taken("users", user_name, where):
            raise EntityAlreadyExistsError(f"User with name {user_name} already exists.")
        unique = self._new_id("AIDA")
        self.records["users"][unique] = {
            "name": user_name, "account": where, "path": path, "active": True, "password_hash": None,
            "password_changed": None, "totp_secret": None, "boundary": None, "groups": [], "tags": dict(tags or {}),
            "policies": [], "inline": {}, "access_keys": [], "created": self.now,
        }
        return unique

    def update_user(self, user_name: str, *, account: str | None = None, new_user_name: str | None = None,
                    new_path: str | None = None) -> None:
        """``UpdateUser``: a new name or path; the unique id, and so the identity, stays."""
        user = self._user(user_name, account)
        if new_path is not None:
            _check_path(new_path)
            user["path"] = new_path
        if new_user_name is not None and new_user_name != user_name:
            _check_name("user", new_user_name, 64)
            if new_user_name.lower() != user_name.lower() and self._taken("users", new_user_name, user["account"]):
                raise EntityAlreadyExistsError(f"User with name {new_user_name} already exists.")
            user["name"] = new_user_name

    def delete_user(self, user_name: str, *, account: str | None = None) -> None:
        """``DeleteUser``: refused (``DeleteConflict``) while the user has anything IAM makes you remove first."""
        unique, user = self._find("users", user_name, account)
        still = [what for what, present in (
            ("access keys", user["access_keys"]), ("a login profile", user["password_hash"]),
            ("an MFA device", user["totp_secret"] or self._devices_of(unique)), ("attached policies", user["policies"]),
            ("inline policies", user["inline"]), ("group memberships", user["groups"])) if present]
        if still:
            raise DeleteConflictError(f"Cannot delete user {user_name}: it still has {', '.join(still)}.")
        del self.records["users"][unique]

    def tag_user(self, user_name: str, tags: Mapping[str, str], *, account: str | None = None) -> None:
        self._tag(self._user(user_name, account), tags)

    def untag_user(self, user_name: str, tag_keys: Iterable[str], *, account: str | None = None) -> None:
        self._untag(self._user(user_name, account), tag_keys)

    def _tag(self, entry: dict[str, Any], tags: Mapping[str, str]) -> None:
        _check_tags(tags)
        merged = {**entry["tags"], **tags}
        if len(merged) > MAX_TAGS:
            raise LimitExceededError(f"At most {MAX_TAGS} tags per user or role.")
        entry["tags"] = merged

    @staticmethod
    def _untag(entry: dict[str, Any], tag_keys: Iterable[str]) -> None:
        drop = set(tag_keys)
        entry["tags"] = {k: v for k, v in entry["tags"].items() if k not in drop}

    # Groups ----------------------------------------------------------------------------------------------------
    def create_group(self, group_name: str, *, account: str | None = None) -> None:
        _check_name("group", group_name, 128)
        if any(name.lower() == group_name.lower() for name in self.records["groups"]):
            raise EntityAlreadyExistsError(f"Group with name {group_name} already exists.")
        self.records["groups"][group_name] = {"account": self._account(account), "policies": [], "inline": {}}

    def delete_group(self, group_name: str) -> None:
        """``DeleteGroup``: refused while the group has members or policies."""
        group = self._group(group_name)
        members = any(group_name in u["groups"] for u in self.records["users"].values()
                      if u["account"] == group["account"])
        if members or group["policies"] or group["inline"]:
            raise DeleteConflictError(f"Cannot delete group {group_name}: it still has members or policies.")
        del self.records["groups"][group_name]

    def add_user_to_group(self, group_name: str, user_name: str) -> None:
        group = self._group(group_name)
        user = self._user(user_name, group["account"])
        if group_name not in user["groups"]:
            user["groups"].append(group_name)

    def remove_user_from_group(self, group_name: str, user_name: str) -> None:
        group = self._group(group_name)
        user = self._user(user_name, group["account"])
        if group_name not in user["groups"]:
            raise NoSuchEntityError(f"User {user_name} is not in group {group_name}.")
        user["groups"].remove(group_name)

    # Roles -----------------------------------------------------------------------------------------------------
    def create_role(self, role_name: str, assume_role_policy_document: PolicyDocument, *,
                    account: str | None = None, path: str = "/", max_session_duration: int = 3600,
                    tags: Mapping[str, str] | None = None) -> str:
        """``CreateRole``; returns the new role's unique id (``AROA`` and 17 of A-Z2-7, random)."""
        _check_name("role", role_name, 64)
        _check_path(path)
        _check_tags(tags or {})
        _check_duration(max_session_duration)
        where = self._account(account)
        if self._taken("roles", role_name, where):
            raise EntityAlreadyExistsError(f"Role with name {role_name} already exists.")
        trust = policy_text(assume_role_policy_document, PolicyKind.TRUST, f"role/{role_name}/trust")
        unique = self._new_id("AROA")
        self.records["roles"][unique] = {
            "name": role_name, "account": where, "path": path, "trust_policy": trust,
            "max_session_duration": max_session_duration, "boundary": None, "tags": dict(tags or {}),
            "policies": [], "inline": {}, "created": self.now,
        }
        return unique

    def update_role(self, role_name: str, *, account: str | None = None,
                    max_session_duration: int | None = None) -> None:
        role = self._role(role_name, account)
        if max_session_duration is not None:
            _check_duration(max_session_duration)
            role["max_session_duration"] = max_session_duration

    def update_assume_role_policy(self, role_name: str, policy_document: PolicyDocument, *,
                                  account: str | None = None) -> None:
        role = self._role(role_name, account)
        role["trust_policy"] = policy_text(policy_document, PolicyKind.TRUST, f"role/{role_name}/trust")

    def delete_role(self, role_name: str, *, account: str | None = None) -> None:
        """``DeleteRole``: refused while policies are attached or inline."""
        unique, role = self._find("roles", role_name, account)
        if role["policies"] or role["inline"]:
            raise DeleteConflictError(f"Cannot delete role {role_name}: it still has policies.")
        del self.records["roles"][unique]

    def tag_role(self, role_name: str, tags: Mapping[str, str], *, account: str | None = None) -> None:
        self._tag(self._role(role_name, account), tags)

    def untag_role(self, role_name: str, tag_keys: Iterable[str], *, account: str | None = None) -> None:
        self._untag(self._role(role_name, account), tag_keys)

    # Managed policies ------------------------------------------------------------------------------------------
    def create_policy(self, policy_name: str, policy_document: PolicyDocument) -> None:
        _check_name("policy", policy_name, 128)
        if any(name.lower() == policy_name.lower() for name in self.records["policies"]):
            raise EntityAlreadyExistsError(f"A policy called {policy_name} already exists.")
        text = policy_text(policy_document, PolicyKind.IDENTITY, policy_name)
        self.records["policies"][policy_name] = {"default_version": "v1",
                                                 "versions": {"v1": {"document": text, "created": self.now}}}

    def create_policy_version(self, policy_name: str, policy_document: PolicyDocument, *,
                              set_as_default: bool = False) -> str:
        """``CreatePolicyVersion``; returns the version id (``v2``, ...). At most five versions, as in IAM."""
        policy = self._policy(policy_name)
        if len(policy["versions"]) >= MAX_POLICY_VERSIONS:
            raise LimitExceededError(f"A managed policy can have up to {MAX_POLICY_VERSIONS} versions. Before you "
                                     "create a new version, you must delete an existing version.")
        text = policy_text(policy_document, PolicyKind.IDENTITY, policy_name)
        version = f"v{max(int(v[1:]) for v in policy['versions']) + 1}"
        policy["versions"][version] = {"document": text, "created": self.now}
        if set_as_default:
            policy["default_version"] = version
        return version

    def set_default_policy_version(self, policy_name: str, version_id: str) -> None:
        policy = self._policy(policy_name)
        if version_id not in policy["versions"]:
            raise NoSuchEntityError(f"Policy {policy_name} version {version_id} does not exist.")
        policy["default_version"] = version_id

    def delete_policy_version(self, policy_name: str, version_id: str) -> None:
        policy = self._policy(policy_name)
        if version_id not in policy["versions"]:
            raise NoSuchEntityError(f"Policy {policy_name} version {version_id} does not exist.")
        if version_id == policy["default_version"]:
            raise DeleteConflictError("Cannot delete the default version of a policy.")
        del policy["versions"][version_id]

    def delete_policy(self, policy_name: str) -> None:
        """``DeletePolicy``: refused while anything uses it or it has versions besides the default."""
        policy = self._policy(policy_name)
        if len(policy["versions"]) > 1:
            raise DeleteConflictError("This policy has more than one version. Before you delete a policy, you must "
                                      "delete the policy's versions. The default version is deleted with the policy.")
        users = [*self.records["users"].values(), *self.records["roles"].values()]
        in_use = (any(policy_name in e["policies"] or e["boundary"] == policy_name for e in users)
                  or any(policy_name in g["policies"] for g in self.records["groups"].values())
                  or any(policy_name in a["guardrails"] for a in self.records["accounts"].values()))
        if in_use:
            raise DeleteConflictError(f"Cannot delete policy {policy_name}: it is attached, a permissions boundary "
                                      "or a guardrail.")
        del self.records["policies"][policy_name]

    # Attached and inline policies, boundaries ------------------------------------------------------------------
    def _attach(self, entry: dict[str, Any], policy_name: str) -> None:
        self._policy(policy_name)
        if policy_name in entry["policies"]:
            return
        if len(entry["policies"]) >= MAX_ATTACHED:
            raise LimitExceededError(f"Cannot exceed quota for PoliciesPerUserOrGroupOrRole: {MAX_ATTACHED}.")
        entry["policies"].append(policy_name)

    def _detach(self, entry: dict[str, Any], policy_name: str) -> None:
        if policy_name not in entry["policies"]:
            raise NoSuchEntityError(f"Policy {policy_name} was not found.")
        entry["policies"].remove(policy_name)

    def _put_inline(self, entry: dict[str, Any], label: str, policy_name: str, document: PolicyDocument) -> None:
        _check_name("policy", policy_name, 128)
        entry["inline"][policy_name] = policy_text(document, PolicyKind.IDENTITY, f"{label}/{policy_name}")

    @staticmethod
    def _delete_inline(entry: dict[str, Any], policy_name: str) -> None:
        if policy_name not in entry["inline"]:
            raise NoSuchEntityError(f"The inline policy {policy_name} cannot be found.")
        del entry["inline"][policy_name]

    def attach_user_policy(self, user_name: str, policy_name: str, *, account: str | None = None) -> None:
        self._attach(self._user(user_name, account), policy_name)

    def detach_user_policy(self, user_name: str, policy_name: str, *, account: str | None = None) -> None:
        self._detach(self._user(user_name, account), policy_name)

    def attach_group_policy(self, group_name: str, policy_name: str) -> None:
        self._attach(self._group(group_name), policy_name)

    def detach_group_policy(self, group_name: str, policy_name: str) -> None:
        self._detach(self._group(group_name), policy_name)

    def attach_role_policy(self, role_name: str, policy_name: str, *, account: str | None = None) -> None:
        self._attach(self._role(role_name, account), policy_name)

    def detach_role_policy(self, role_name: str, policy_name: str, *, account: str | None = None) -> None:
        self._detach(self._role(role_name, account), policy_name)

    def put_user_policy(self, user_name: str, policy_name: str, policy_document: PolicyDocument, *,
                        account: str | None = None) -> None:
        self._put_inline(self._user(user_name, account), f"user/{user_name}", policy_name, policy_document)

    def delete_user_policy(self, user_name: str, policy_name: str, *, account: str | None = None) -> None:
        self._delete_inline(self._user(user_name, account), policy_name)

    def put_group_policy(self, group_name: str, policy_name: str, policy_document: PolicyDocument) -> None:
        self._put_inline(self._group(group_name), f"group/{group_name}", policy_name, policy_document)

    def delete_group_policy(self, group_name: str, policy_name: str) -> None:
        self._delete_inline(self._group(group_name), policy_name)

    def put_role_policy(self, role_name: str, policy_name: str, policy_document: PolicyDocument, *,
                        account: str | None = None) -> None:
        self._put_inline(self._role(role_name, account), f"role/{role_name}", policy_name, policy_document)

    def delete_role_policy(self, role_name: str, policy_name: str, *, account: str | None = None) -> None:
        self._delete_inline(self._role(role_name, account), policy_name)

    def _boundary(self, entry: dict[str, Any], policy_name: str) -> None:
        policy = self._policy(policy_name)
        policy_text(policy["versions"][policy["default_version"]]["document"], PolicyKind.BOUNDARY, policy_name)
        entry["boundary"] = policy_name

    def put_user_permissions_boundary(self, user_name: str, permissions_boundary: str, *,
                                      account: str | None = None) -> None:
        self._boundary(self._user(user_name, account), permissions_boundary)

    def delete_user_permissions_boundary(self, user_name: str, *, account: str | None = None) -> None:
        self._user(user_name, account)["boundary"] = None

    def put_role_permissions_boundary(self, role_name: str, permissions_boundary: str, *,
                                      account: str | None = None) -> None:
        self._boundary(self._role(role_name, account), permissions_boundary)

    def delete_role_permissions_boundary(self, role_name: str, *, account: str | None = None) -> None:
        self._role(role_name, account)["boundary"] = None

    # Credentials -----------------------------------------------------------------------------------------------
    # Each takes ``ROOT`` as the user name for the account's root user (created, without credentials, on first use).
    def _holder(self, user_name: str, account: str | None, *, create: bool = True) -> tuple[str, dict[str, Any]]:
        """(holder id, record) of a user, or of the root user: its id is the account's."""
        if user_name != ROOT:
            return self._find("users", user_name, account)
        where = self._account(account)
        entry: dict[str, Any] = self.records["accounts"][where]
        root: dict[str, Any] | None = entry.get("root")
        if root is None:
            root = {"password_hash": None, "password_changed": None, "totp_secret": None, "access_keys": [],
                    "created": self.now}
            if create:
                entry["root"] = root
        return where, root

    def create_access_key(self, user_name: str, *, account: str | None = None) -> NewAccessKey:
        """``CreateAccessKey``: a new active key (``AKIA`` and 16 of A-Z2-7) and its secret; at most two per user.

        The secret is stored as given, as the directory file holds it: SigV4 is a shared-key signature, so the
        service needs the secret itself to check one.
        """
        user = self._holder(user_name, account)[1]
        if len(user["access_keys"]) >= MAX_ACCESS_KEYS:
            raise LimitExceededError(f"Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS}.")
        while self._key_taken(key_id := _random("AKIA", 16)):
            pass
        secret = base64.b64encode(secrets.token_bytes(30)).decode("ascii")
        user["access_keys"].append({"id": key_id, "secret": secret, "active": True, "created": self.now})
        return NewAccessKey(user_name, key_id, secret)

    def _key(self, user_name: str, access_key_id: str, account: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        user = self._holder(user_name, account, create=False)[1]
        for key in user["access_keys"]:
            if key["id"] == access_key_id:
                return user, key
        raise NoSuchEntityError(f"The Access Key with id {access_key_id} cannot be found.")

    def update_access_key(self, user_name: str, access_key_id: str, status: Literal["Active", "Inactive"], *,
                          account: str | None = None) -> None:
        if status not in ("Active", "Inactive"):
            raise InvalidInputError(f"The status must be Active or Inactive (got {status!r}).")
        self._key(user_name, access_key_id, account)[1]["active"] = status == "Active"

    def delete_access_key(self, user_name: str, access_key_id: str, *, account: str | None = None) -> None:
        user, key = self._key(user_name, access_key_id, account)
        user["access_keys"].remove(key)

    def create_login_profile(self, user_name: str, password: str, *, account: str | None = None) -> None:
        """``CreateLoginProfile``: a password (stored as its hash) for password + one-time-code login."""
        user = self._holder(user_name, account)[1]
        if user["password_hash"] is not None:
            raise EntityAlreadyExistsError(f"Login Profile for user {user_name} already exists.")
        user["password_hash"] = _hash(password)
        user["password_changed"] = self.now

    def update_login_profile(self, user_name: str, password: str, *, account: str | None = None) -> None:
        user = self._holder(user_name, account, create=False)[1]
        if user["password_hash"] is None:
            raise NoSuchEntityError(f"Login Profile for User {user_name} cannot be found.")
        user["password_hash"] = _hash(password)
        user["password_changed"] = self.now

    def delete_login_profile(self, user_name: str, *, account: str | None = None) -> None:
        user = self._holder(user_name, account, create=False)[1]
        if user["password_hash"] is None:
            raise NoSuchEntityError(f"Login Profile for User {user_name} cannot be found.")
        user["password_hash"] = None
        user["password_changed"] = None

    # MFA devices -----------------------------------------------------------------------------------------------
    def _partition(self) -> str:
        return str(self.records["settings"].get("partition", "app"))

    def _serial(self, key: str) -> str:
        return f"arn:{self._partition()}:iam::{key}"

    def _own_key(self, holder: str, entry: dict[str, Any], user_name: str) -> str:
        """The key (serial number without ``arn:<partition>:iam::``) of a user's or root user's ``totp_secret``."""
        if user_name == ROOT:
            return f"{holder}:mfa/{ROOT_MFA_NAME}"
        return f"{entry['account']}:mfa{entry['path']}{entry['name']}"

    def _devices_of(self, holder: str) -> list[str]:
        return [key for key, device in self.records["mfa_devices"].items() if device["holder"] == holder]

    def _key_of_serial(self, serial_number: str) -> str:
        prefix = f"arn:{self._partition()}:iam::"
        if not isinstance(serial_number, str) or not serial_number.startswith(prefix):
            raise InvalidInputError(f"A serial number is an MFA device's ARN ({prefix}<account>:mfa/<name>).")
        return serial_number[len(prefix):]

    def _taken_serial(self, key: str) -> bool:
        """Whether a device (virtual, or a user's ``totp_secret``) has this serial number, whatever its case."""
        folded = key.lower()
        if any(k.lower() == folded for k in self.records["mfa_devices"]):
            return True
        owners = [(unique, entry, entry["name"]) for unique, entry in self.records["users"].items()]
        owners += [(account, a["root"], ROOT) for account, a in self.records["accounts"].items()
                   if a.get("root") is not None]
        return any(entry["totp_secret"] is not None and self._own_key(holder, entry, name).lower() == folded
                   for holder, entry, name in owners)

    def create_virtual_mfa_device(self, virtual_mfa_device_name: str, path: str = "/", *,
                                  account: str | None = None, issuer: str | None = None) -> NewVirtualMFADevice:
        """``CreateVirtualMFADevice``: a new TOTP device (a 160-bit seed), enabled for nobody yet. Its seed is shown
        this once, as Base32 text and as a QR code of its ``otpauth://`` URI labelled ``<name>@<account>`` (the
        issuer: ``issuer``, else the settings' ``service``); ``enable_mfa_device`` then gives it to a user."""
        if not isinstance(virtual_mfa_device_name, str) or not _MFA_NAME.fullmatch(virtual_mfa_device_name):
            raise InvalidInputError(f"a virtual MFA device name is 1 to 226 of A-Z, a-z, 0-9 and +=,.@_- "
                                    f"(got {virtual_mfa_device_name!r})")
        _check_path(path)
        where = self._account(account)
        key = f"{where}:mfa{path}{virtual_mfa_device_name}"
        if self._taken_serial(key):
            raise EntityAlreadyExistsError("MFADevice entity at the same path and name already exists.")
        device = new_device()
        self.records["mfa_devices"][key] = {"account": where, "name": virtual_mfa_device_name, "path": path,
                                            "seed": device.secret, "holder": None, "enabled": None,
                                            "created": self.now}
        label = issuer or str(self.records["settings"].get("service") or "iam-middleware")
        uri = provisioning_uri(device, f"{virtual_mfa_device_name}@{where}", label.replace(":", " "))
        png: bytes | None = None
        svg: str | None = None
        try:
            png, svg = qr_png(uri), qr_svg(uri)
        except ModuleNotFoundError:  # the optional qrcode package: the seed alone enrolls a device
            pass
        return NewVirtualMFADevice(self._serial(key), device.secret, png, svg)

    def delete_virtual_mfa_device(self, serial_number: str) -> None:
        """``DeleteVirtualMFADevice``: refused (``DeleteConflict``) while the device is enabled for a user."""
        key = self._key_of_serial(serial_number)
        device = self.records["mfa_devices"].get(key)
        if device is None:
            if self._taken_serial(key):  # a user's totp_secret: in use for as long as it exists
                raise DeleteConflictError("MFA device is still in use: deactivate it first.")
            raise NoSuchEntityError(f"VirtualMFADevice with serial number {serial_number} doesn't exist.")
        if device["holder"] is not None:
            raise DeleteConflictError("MFA device is still in use: deactivate it first.")
        del self.records["mfa_devices"][key]

    def _holder_name(self, holder: str) -> tuple[str, str]:
        """(user name, ARN) of a device's holder."""
        user = self.records["users"].get(holder)
        if user is not None:
            return user["name"], f"arn:{self._partition()}:iam::{user['account']}:user{user['path']}{user['name']}"
        return ROOT, f"arn:{self._partition()}:iam::{holder}:root"

    def _own_device(self, holder: str, entry: dict[str, Any], user_name: str) -> list[MFADeviceInfo]:
        if entry["totp_secret"] is None:
            return []
        name, arn = self._holder_name(holder)
        return [MFADeviceInfo(self._serial(self._own_key(holder, entry, user_name)), name, arn, None)]

    def list_mfa_devices(self, user_name: str, *, account: str | None = None) -> list[MFADeviceInfo]:
        """``ListMFADevices``: the user's devices, its ``totp_secret`` first, then in the order they were enabled."""
        holder, entry = self._holder(user_name, account, create=False)
        listed = self._own_device(holder, entry, user_name)
        keys = sorted(self._devices_of(holder), key=lambda k: (self.records["mfa_devices"][k]["enabled"] or 0, k))
        name, arn = self._holder_name(holder)
        return listed + [MFADeviceInfo(self._serial(k), name, arn, self.records["mfa_devices"][k]["enabled"])
                         for k in keys]

    def list_virtual_mfa_devices(self, assignment_status: Literal["Assigned", "Unassigned", "Any"] = "Any", *,
                                 account: str | None = None) -> list[MFADeviceInfo]:
        """``ListVirtualMFADevices``: the account's devices (``totp_secret`` ones included, which are assigned) by
        serial number; ``Assigned`` or ``Unassigned`` keeps only those enabled, or not, for someone."""
        if assignment_status not in ("Assigned", "Unassigned", "Any"):
            raise InvalidInputError("AssignmentStatus must be Assigned, Unassigned or Any.")
        where = self._account(account)
        found: list[MFADeviceInfo] = []
        for key, device in self.records["mfa_devices"].items():
            if device["account"] != where:
                continue
            holder = device["holder"]
            name, arn = self._holder_name(holder) if holder is not None else (None, None)
            found.append(MFADeviceInfo(self._serial(key), name, arn, device["enabled"]))
        for unique, user in self.records["users"].items():
            if user["account"] == where:
                found += self._own_device(unique, user, user["name"])
        root = self.records["accounts"][where].get("root")
        if root is not None:
            found += self._own_device(where, root, ROOT)
        if assignment_status != "Any":
            found = [d for d in found if (d.user_name is not None) == (assignment_status == "Assigned")]
        return sorted(found, key=lambda d: d.serial_number)

    def enable_mfa_device(self, user_name: str, serial_number: str, authentication_code1: str,
                          authentication_code2: str, *, account: str | None = None) -> None:
        """``EnableMFADevice``: give the user (``ROOT``: the root user) the virtual device ``serial_number`` made by
        ``create_virtual_mfa_device``; the codes must be two consecutive ones of the device shown within the last
        few time steps, as IAM requires. At most eight devices per user. For a directory with one device per user,
        a Base32 seed in place of the serial number becomes the user's ``totp_secret``."""
        holder, user = self._holder(user_name, account)
        key = None
        if isinstance(serial_number, str) and serial_number.startswith("arn:"):
            key = self._key_of_serial(serial_number)
            device = self.records["mfa_devices"].get(key)
            if device is None:
                if self._taken_serial(key):
                    raise EntityAlreadyExistsError("MFA Device is already in use.")
                raise NoSuchEntityError(f"VirtualMFADevice with serial number {serial_number} doesn't exist.")
            if device["holder"] is not None:
                raise EntityAlreadyExistsError("MFA Device is already in use.")
            if device["account"] != (holder if user_name == ROOT else user["account"]):
                raise NoSuchEntityError(f"VirtualMFADevice with serial number {serial_number} doesn't exist.")
            seed = device["seed"]
        else:
            if user["totp_secret"] is not None:
                raise EntityAlreadyExistsError(f"User {user_name} already has an MFA device.")
            seed = serial_number
        if (user["totp_secret"] is not None) + len(self._devices_of(holder)) >= MAX_MFA_DEVICES:
            raise LimitExceededError(f"Cannot exceed quota for MFADevicesPerUser: {MAX_MFA_DEVICES}.")
        try:
            totp = TOTPDevice(seed)
        except ConfigurationError as exc:
            raise InvalidInputError(str(exc)) from None
        step = totp.step_at(self.now)
        shown = [totp.code_at(s * totp.period) for s in range(step - 2, step + 2)]
        if (authentication_code1, authentication_code2) not in itertools.pairwise(shown):
            raise InvalidAuthenticationCodeError("Authentication codes for the MFA device are not valid.")
        if key is None:
            if self._taken_serial(self._own_key(holder, user, user_name)):
                raise EntityAlreadyExistsError("MFADevice entity at the same path and name already exists.")
            user["totp_secret"] = totp.secret
        else:
            self.records["mfa_devices"][key].update(holder=holder, enabled=self.now)

    def deactivate_mfa_device(self, user_name: str, serial_number: str | None = None, *,
                              account: str | None = None) -> None:
        """``DeactivateMFADevice``: the device is no longer the user's; a virtual device stays, enabled for nobody,
        until ``delete_virtual_mfa_device``. Without ``serial_number``, the user's only device."""
        holder, user = self._holder(user_name, account, create=False)
        own = self._own_key(holder, user, user_name) if user["totp_secret"] is not None else None
        keys = self._devices_of(holder)
        if serial_number is None:
            found = ([own] if own is not None else []) + keys
            if len(found) > 1:
                raise InvalidInputError(f"User {user_name} has several MFA devices: name its serial number.")
            if not found:
                raise NoSuchEntityError(f"User {user_name} has no MFA device.")
            key = found[0]
        else:
            key = self._key_of_serial(serial_number)
            if key != own and key not in keys:
                raise NoSuchEntityError(f"MFA Device with serial number {serial_number} does not exist for user "
                                        f"{user_name}.")
        if key == own:
            user["totp_secret"] = None
        else:
            self.records["mfa_devices"][key].update(holder=None, enabled=None)

    def set_password_hash(self, user_arn_or_id: str, password_hash: str) -> None:
        """Store a user's re-made password hash (``IAM(on_password_rehash=...)``); not an IAM action."""
        for account, entry in self.records["accounts"].items():
            root = entry.get("root")
            if root is not None and user_arn_or_id in (account, self._serial(f"{account}:root")):
                self.records["accounts"][account]["root"]["password_hash"] = password_hash  # the draft's copy
                return
        for unique, user in self.records["users"].items():
            if unique == user_arn_or_id or user_arn_or_id.endswith(f":iam::{user['account']}:user{user['path']}"
                                                                   f"{user['name']}"):
                self.records["users"][unique]["password_hash"] = password_hash  # the draft's copy
                return
        raise NoSuchEntityError("The user cannot be found.")


def _check_duration(seconds: int) -> None:
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 900 <= seconds <= 43200:
        raise InvalidInputError("MaxSessionDuration must be whole seconds from 900 to 43200.")


def _hash(password: str) -> str:
    try:
        return hash_password(password)
    except ValueError as exc:
        raise InvalidInputError(f"The password is not acceptable: {exc}") from None
