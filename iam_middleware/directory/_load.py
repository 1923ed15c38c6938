"""Load a directory from a TOML or JSON file (or a dict), validated whole before use.

Every policy goes through the engine; every reference (a group, role, policy or account named somewhere) must
resolve. All problems are reported together in one ``ConfigurationError``, each with where it was found
(``users.alice.groups[1]: group 'ops' does not exist in account 111122223333``).

Secrets never need to live in the directory file: a secret field takes ``env:NAME`` (an environment variable) or
``secret:KEY`` (a key of the ``secrets_file`` the settings name, TOML or JSON), or, for demos and tests, the value.
Passwords are stored only as hashes (``iam-middleware hash-password``).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._exceptions import ConfigurationError, PolicyValidationError
from .._json import JSONError, loads
from ..authenticators._passwords import PasswordHash
from ..authenticators._totp import TOTPDevice
from ..policy import Policy, PolicyKind, parse_policy
from ._model import AccessKey, Account, Group, MFADevice, Role, User
from ._snapshot import Snapshot, stable_id

__all__ = ["MAX_MFA_DEVICES", "ROOT_MFA_NAME", "directory_from_dict", "load_directory", "mfa_serial"]


def mfa_serial(partition: str, account: str, path: str, name: str) -> str:
    """The serial number (ARN) IAM gives a virtual MFA device: ``arn:<partition>:iam::<account>:mfa<path><name>``."""
    return f"arn:{partition}:iam::{account}:mfa{path}{name}"

_TOP = {"settings", "accounts", "policies", "groups", "users", "roles", "routes"}  # routes: read by IAM
_KEY_ID = re.compile(r"\w{1,128}", re.ASCII)
_ACCOUNT_KEYS = frozenset({"name", "guardrails", "root", "mfa_devices"})
_ROOT_KEYS = frozenset({"password_hash", "totp_secret", "mfa_devices", "access_keys"})
_MFA_KEYS = frozenset({"name", "path", "secret"})
#: IAM's quota of MFA devices per user (and per root user), and its pattern of virtual MFA device names.
MAX_MFA_DEVICES = 8
_MFA_NAME = re.compile(r"[\w+=,.@-]{1,226}", re.ASCII)
#: The name AWS gives a root user's virtual MFA device: ``arn:…:iam::<account>:mfa/root-account-mfa-device``.
ROOT_MFA_NAME = "root-account-mfa-device"
_GROUP_KEYS = frozenset({"account", "policies", "inline"})
_USER_KEYS = frozenset({"name", "id", "account", "path", "groups", "tags", "policies", "inline", "boundary",
                        "password_hash", "totp_secret", "mfa_devices", "access_keys", "active"})
_ROLE_KEYS = frozenset({"name", "id", "account", "path", "tags", "policies", "inline", "boundary", "trust_policy",
                        "max_session_duration"})
# AWS's unique ids: a four-letter kind (AIDA user, AROA role) and 17 more characters of base32's alphabet.
_UNIQUE_ID = {"AIDA": re.compile(r"AIDA[A-Z2-7]{17}"), "AROA": re.compile(r"AROA[A-Z2-7]{17}")}
_KEY_KEYS = frozenset({"id", "secret", "active"})


def _read_mapping(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    if path.suffix.lower() == ".json":
        data = loads(raw)
    else:
        data = tomllib.loads(raw.decode("utf-8"))
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: the directory must be a table/object at the top level")
    return data


def load_directory(path: str | os.PathLike[str], *, version: int = 1) -> Snapshot:
    """Read and validate a directory file (``.toml`` or ``.json``). Raises ConfigurationError listing every problem."""
    file = Path(path)
    try:
        data = _read_mapping(file)
    except OSError as exc:
        raise ConfigurationError(f"{file}: cannot read the directory file ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, JSONError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{file}: not valid TOML/JSON: {exc}") from None
    return directory_from_dict(data, base_dir=file.parent, version=version, source=str(file))


class _Builder:
    def __init__(self, data: Mapping[str, Any], base_dir: Path, source: str) -> None:
        self.data = data
        self.base_dir = base_dir
        self.source = source
        self.problems: list[str] = []
        settings = data.get("settings") or {}
        self.settings = settings if isinstance(settings, Mapping) else {}
        self.partition = str(self.settings.get("partition", "app"))
        self.secrets = self._load_secrets()
        self.policies: dict[str, Policy] = {}
        self.broken: set[str] = set()  # named policies that failed validation
        self._ids: dict[str, str] = {}  # unique id -> where it was given, users and roles alike
        self._serials: dict[str, str] = {}  # MFA device serial (lower case) -> where it was given

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def _load_secrets(self) -> Mapping[str, Any]:
        name = self.settings.get("secrets_file")
        if not name:
            return {}
        path = self.base_dir / str(name)
        try:
            return _read_mapping(path)
        except (OSError, ValueError) as exc:
            self.problem("settings.secrets_file", f"cannot read {path}: {exc}")
            return {}

    def secret(self, value: Any, where: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.problem(where, "a secret must be a non-empty string (env:NAME, secret:KEY or the value)")
            return None
        if value.startswith("env:"):
            found = os.environ.get(value[4:])
            if not found:
                self.problem(where, f"environment variable {value[4:]} is not set")
            return found
        if value.startswith("secret:"):
            found = self.secrets.get(value[7:])
            if not isinstance(found, str) or not found:
                self.problem(where, f"secret {value[7:]!r} is not in the secrets file")
                return None
            return found
        return value

    def table(self, name: str) -> Mapping[str, Any]:
        value = self.data.get(name) or {}
        if not isinstance(value, Mapping):
            self.problem(name, "must be a table of named entries")
            return {}
        return value

    def document(self, value: Any, where: str, kind: PolicyKind, label: str) -> Policy | None:
        """A policy given inline (table or JSON string) or as ``{file = "path.json"}``."""
        if isinstance(value, Mapping) and set(value) <= {"file", "document"} and value:
            if "file" in value:
                path = self.base_dir / str(value["file"])
                try:
                    value = path.read_bytes()
                except OSError as exc:
                    self.problem(where, f"cannot read policy file {path}: {exc.strerror or exc}")
                    return None
            else:
                value = value["document"]
        try:
            return parse_policy(value, kind=kind, policy_id=label)
        except PolicyValidationError as exc:
            for issue in exc.issues:
                self.problem(f"{where}.{issue.location}" if issue.location else where, issue.message)
        except (TypeError, ValueError) as exc:
            self.problem(where, f"not a policy document: {exc}")
        return None

    def attached(self, entry: Mapping[str, Any], where: str, label: str) -> tuple[Policy, ...]:
        """Managed policies named in ``policies`` plus ``inline`` documents."""
        found: list[Policy] = []
        names = entry.get("policies", [])
        if not isinstance(names, list):
            self.problem(f"{where}.policies", "must be a list of policy names")
            names = []
        for i, name in enumerate(names):
            policy = self.policies.get(name) if isinstance(name, str) else None
            if policy is None and not (isinstance(name, str) and name in self.broken):
                self.problem(f"{where}.policies[{i}]", f"policy {name!r} does not exist")
            elif policy is not None:
                found.append(policy)
        inline = entry.get("inline", {})
        if not isinstance(inline, Mapping):
            self.problem(f"{where}.inline", "must be a table of name = policy document")
            inline = {}
        for name, doc in inline.items():
            policy = self.document(doc, f"{where}.inline.{name}", PolicyKind.IDENTITY, f"{label}/{name}")
            if policy is not None:
                found.append(policy)
        return tuple(found)

    def boundary(self, entry: Mapping[str, Any], where: str) -> Policy | None:
        name = entry.get("boundary")
        if name is None:
            return None
        if isinstance(name, str):
            policy = self.policies.get(name)
            if policy is None:
                if name not in self.broken:
                    self.problem(f"{where}.boundary", f"policy {name!r} does not exist")
                return None
            return parse_policy(policy.document, kind=PolicyKind.BOUNDARY, policy_id=policy.id)
        return self.document(name, f"{where}.boundary", PolicyKind.BOUNDARY, f"{where}/boundary")

    def account_of(self, entry: Mapping[str, Any], where: str, accounts: Mapping[str, Account]) -> str:
        account = entry.get("account", self.settings.get("default_account"))
        if account is None and len(accounts) == 1:
            return next(iter(accounts))
        if not isinstance(account, str) or account not in accounts:
            self.problem(f"{where}.account", f"account {account!r} does not exist")
            return str(account)
        return account

    def known(self, entry: Mapping[str, Any], where: str, allowed: frozenset[str]) -> None:
        """Refuse unknown fields: a misspelt ``boundary`` would otherwise silently widen a user's permissions."""
        for name in entry:
            if name not in allowed:
                self.problem(f"{where}.{name}", f"unknown field (expected one of {', '.join(sorted(allowed))})")

    def flag(self, entry: Mapping[str, Any], name: str, where: str) -> bool:
        """A true/false setting (default true). Only a real boolean counts: ``"false"`` must not enable anything."""
        value = entry.get(name, True)
        if not isinstance(value, bool):
            self.problem(f"{where}.{name}", "must be true or false")
            return False
        return value

    def names(self, entry: Mapping[str, Any], name: str, where: str) -> list[str]:
        """A list of names (``groups``); anything else is a problem, not a string split into letters."""
        value = entry.get(name, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.problem(f"{where}.{name}", "must be a list of names")
            return []
        return value

    def tags(self, entry: Mapping[str, Any], where: str) -> dict[str, str]:
        tags = entry.get("tags", {})
        if not isinstance(tags, Mapping) or not all(isinstance(v, str) for v in tags.values()):
            self.problem(f"{where}.tags", "must be a table of string values")
            return {}
        return {str(k): v for k, v in tags.items()}

    def build(self, version: int) -> Snapshot:
        for key in self.data:
            if key not in _TOP:
                self.problem(str(key), f"unknown section (expected one of {', '.join(sorted(_TOP))})")
        for name, doc in self.table("policies").items():
            policy = self.document(doc, f"policies.{name}", PolicyKind.IDENTITY, name)
            if policy is not None:
                self.policies[name] = policy
            else:
                self.broken.add(str(name))  # its own problems are reported; references to it are not more problems
        self._unique("policy", [(f"policies.{name}", "", str(name)) for name in self.table("policies")])
        accounts = self._accounts()
        groups = self._groups(accounts)
        users = self._users(accounts, {(g.account, g.name) for g in groups})
        roles = self._roles(accounts)
        self._unique("group", [(f"groups.{g.name}", g.account, g.name) for g in groups])
        self._unique("user", [(f"users.{key}", u.account, u.name) for key, u in zip(self._user_keys, users,
                                                                                    strict=True)])
        self._unique("role", [(f"roles.{key}", r.account, r.name) for key, r in zip(self._role_keys, roles,
                                                                                    strict=True)])
        if self.problems:
            raise ConfigurationError(
                f"{self.source}: invalid directory ({len(self.problems)} problem(s)):\n  " + "\n  ".join(self.problems)
            )
        return Snapshot(partition=self.partition, accounts=accounts.values(), users=users, groups=groups,
                        roles=roles, version=version, source=self.source, policies=self.policies)

    def _unique(self, kind: str, named: list[tuple[str, str, str]]) -> None:
        """IAM names are unique per account, compared case-insensitively ("Names are not distinguished by case",
        IAM identifiers): two roles named alike would share one session ARN, and one session's rights."""
        first: dict[tuple[str, str], str] = {}
        for where, account, name in named:
            seen = first.setdefault((account, name.lower()), where)
            if seen != where:
                scope = f" in account {account}" if account else ""
                self.problem(where, f"a {kind} named {name!r} already exists{scope} ({seen}); IAM names are unique "
                                    "per account, whatever their case or path")

    def _accounts(self) -> dict[str, Account]:
        accounts: dict[str, Account] = {}
        for account_id, entry in self.table("accounts").items():
            where = f"accounts.{account_id}"
            if not isinstance(entry, Mapping):
                self.problem(where, "must be a table")
                continue
            self.known(entry, where, _ACCOUNT_KEYS)
            guardrails: list[Policy] = []
            for i, name in enumerate(self.names(entry, "guardrails", where)):
                policy = self.policies.get(name)
                if policy is None:
                    if name not in self.broken:
                        self.problem(f"{where}.guardrails[{i}]", f"policy {name!r} does not exist")
                else:
                    guardrails.append(parse_policy(policy.document, kind=PolicyKind.GUARDRAIL, policy_id=policy.id))
            root = self._root(entry.get("root"), f"{where}.root", str(account_id))
            self.mfa_devices(entry, where, str(account_id), None)  # not enabled for anyone: validated, not served
            accounts[str(account_id)] = Account(str(account_id), str(entry.get("name", "")), tuple(guardrails), root)
        if not accounts:
            self.problem("accounts", "at least one account is needed")
        return accounts

    def _root(self, entry: Any, where: str, account: str) -> User | None:
        """The account root user, ``[accounts.<id>.root]``: sign-in credentials only, since no policy, boundary,
        group or tag applies to it (IAM cannot attach any to the root user)."""
        if entry is None:
            return None
        if not isinstance(entry, Mapping):
            self.problem(where, "must be a table (password_hash, totp_secret, mfa_devices, access_keys)")
            return None
        self.known(entry, where, _ROOT_KEYS)
        arn = f"arn:{self.partition}:iam::{account}:root"
        devices = self.mfa_devices(entry, where, account, mfa_serial(self.partition, account, "/", ROOT_MFA_NAME))
        return User(account=account, name="root", arn=arn, id=account, password_hash=self.password_hash(entry, where),
                    totp=devices[0].totp if devices else None, mfa_devices=devices,
                    access_keys=self.access_keys(entry, where))

    def password_hash(self, entry: Mapping[str, Any], where: str) -> str | None:
        value = entry.get("password_hash")
        if value is None:
            return None
        try:
            PasswordHash.parse(str(value))
        except ValueError as exc:
            self.problem(f"{where}.password_hash", str(exc))
        return str(value)

    def access_keys(self, entry: Mapping[str, Any], where: str) -> tuple[AccessKey, ...]:
        keys = []
        raw_keys = entry.get("access_keys", [])
        if not isinstance(raw_keys, list):
            self.problem(f"{where}.access_keys", "must be a list of access keys")
            return ()
        for i, raw in enumerate(raw_keys):
            at = f"{where}.access_keys[{i}]"
            if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str) or raw.get("secret") is None:
                self.problem(at, "an access key is a table with id and secret")
                continue
            self.known(raw, at, _KEY_KEYS)
            if not _KEY_ID.fullmatch(raw["id"]) or raw["id"].startswith("ASIA"):
                # ASIA ids are the token service's temporary keys; a long-term key must not be mistaken for one.
                self.problem(f"{at}.id", "a key id is 1 to 128 letters, digits or '_', not starting with ASIA")
                continue
            secret = self.secret(raw.get("secret"), f"{at}.secret")
            if secret is not None:
                keys.append(AccessKey(raw["id"], secret, self.flag(raw, "active", at)))
        return tuple(keys)

    def mfa_devices(self, entry: Mapping[str, Any], where: str, account: str, own: str | None) -> tuple[MFADevice, ...]:
        """The MFA devices of a user or root user: ``totp_secret`` (the device named ``own``, what a directory with
        one device per user says) first, then ``mfa_devices``. Serial numbers are unique in the directory."""
        devices: list[MFADevice] = []
        if own is not None:
            seed = self.secret(entry.get("totp_secret"), f"{where}.totp_secret")
            if seed is not None:
                try:
                    devices.append(MFADevice(self.serial(own, f"{where}.totp_secret"), TOTPDevice(seed)))
                except ValueError as exc:
                    self.problem(f"{where}.totp_secret", str(exc))
        listed = entry.get("mfa_devices", [])
        if not isinstance(listed, list):
            self.problem(f"{where}.mfa_devices", "must be a list of { name, path, secret } tables")
            listed = []
        for i, raw in enumerate(listed):
            at = f"{where}.mfa_devices[{i}]"
            if not isinstance(raw, Mapping):
                self.problem(at, "an MFA device is a table with name, secret and an optional path")
                continue
            self.known(raw, at, _MFA_KEYS)
            name, path = raw.get("name"), raw.get("path", "/")
            if not isinstance(name, str) or not _MFA_NAME.fullmatch(name):
                self.problem(f"{at}.name", "a device name is 1 to 226 of A-Z, a-z, 0-9 and +=,.@_-")
                continue
            if not isinstance(path, str) or not (path.startswith("/") and path.endswith("/")):
                self.problem(f"{at}.path", "a path starts and ends with '/'")
                continue
            seed = self.secret(raw.get("secret"), f"{at}.secret")
            if seed is None:
                if "secret" not in raw:
                    self.problem(f"{at}.secret", "an MFA device needs its seed (secret)")
                continue
            try:
                totp = TOTPDevice(seed)
            except ValueError as exc:
                self.problem(f"{at}.secret", str(exc))
                continue
            devices.append(MFADevice(self.serial(mfa_serial(self.partition, account, path, name), at), totp))
        if own is not None and len(devices) > MAX_MFA_DEVICES:
            self.problem(f"{where}.mfa_devices", f"at most {MAX_MFA_DEVICES} MFA devices per user, as in IAM")
        return tuple(devices)

    def serial(self, serial: str, where: str) -> str:
        """Note a device's serial number; the same serial twice is a problem (a device belongs to one user)."""
        other = self._serials.setdefault(serial.lower(), where)
        if other != where:
            self.problem(where, f"MFA device {serial} is also {other}")
        return serial

    def _groups(self, accounts: Mapping[str, Account]) -> list[Group]:
        groups = []
        for name, entry in self.table("groups").items():
            where = f"groups.{name}"
            if not isinstance(entry, Mapping):
                self.problem(where, "must be a table")
                continue
            self.known(entry, where, _GROUP_KEYS)
            account = self.account_of(entry, where, accounts)
            groups.append(Group(account, name, self.attached(entry, where, f"group/{name}")))
        return groups

    def _users(self, accounts: Mapping[str, Account], groups: set[tuple[str, str]]) -> list[User]:
        users = []
        self._user_keys: list[str] = []
        for key, entry in self.table("users").items():
            where = f"users.{key}"
            if not isinstance(entry, Mapping):
                self.problem(where, "must be a table")
                continue
            self.known(entry, where, _USER_KEYS)
            name = str(entry.get("name", key))
            account = self.account_of(entry, where, accounts)
            path = str(entry.get("path", "/"))
            if not (path.startswith("/") and path.endswith("/")):
                self.problem(f"{where}.path", "a path starts and ends with '/'")
            arn = f"arn:{self.partition}:iam::{account}:user{path}{name}"
            member_of = tuple(self.names(entry, "groups", where))
            for i, group in enumerate(member_of):
                if (account, group) not in groups:
                    self.problem(f"{where}.groups[{i}]", f"group {group!r} does not exist in account {account}")
            password_hash = self.password_hash(entry, where)
            devices = self.mfa_devices(entry, where, account, mfa_serial(self.partition, account, path, name))
            self._user_keys.append(str(key))
            users.append(User(
                account=account, name=name, arn=arn, id=self.unique_id(entry, where, "AIDA", arn), path=path,
                groups=member_of,
                tags=self.tags(entry, where), policies=self.attached(entry, where, f"user/{name}"),
                boundary=self.boundary(entry, where), password_hash=password_hash,
                totp=devices[0].totp if devices else None, mfa_devices=devices,
                access_keys=self.access_keys(entry, where), active=self.flag(entry, "active", where),
            ))
        seen: dict[str, str] = {}
        holders = [(f"users.{u.name}", u.name, u) for u in users]
        holders += [(f"accounts.{a.id}.root", f"the root user of {a.id}", a.root) for a in accounts.values()
                    if a.root is not None]
        for where, label, holder in holders:
            for access_key in holder.access_keys:
                if access_key.id in seen:
                    self.problem(f"{where}.access_keys", f"key {access_key.id} also belongs to {seen[access_key.id]}")
                seen[access_key.id] = label
        return users

    def unique_id(self, entry: Mapping[str, Any], where: str, kind: str, arn: str) -> str:
        """The entry's declared ``id``, or one derived from its ARN. Sessions and temporary credentials are bound to
        it: a user or role given a new id (re-created) is a new identity that no earlier credential reaches."""
        declared = entry.get("id")
        if declared is None:
            unique = stable_id(kind, arn)
        elif not isinstance(declared, str) or not _UNIQUE_ID[kind].fullmatch(declared):
            self.problem(f"{where}.id", f"an id is {kind} and 17 more of A-Z and 2-7 (as AWS writes them)")
            return stable_id(kind, arn)
        else:
            unique = declared
        other = self._ids.setdefault(unique, where)
        if other != where:
            self.problem(f"{where}.id", f"{unique} is also the id of {other}")
        return unique

    def _roles(self, accounts: Mapping[str, Account]) -> list[Role]:
        roles = []
        self._role_keys: list[str] = []
        for key, entry in self.table("roles").items():
            where = f"roles.{key}"
            if not isinstance(entry, Mapping):
                self.problem(where, "must be a table")
                continue
            self.known(entry, where, _ROLE_KEYS)
            name = str(entry.get("name", key))
            account = self.account_of(entry, where, accounts)
            path = str(entry.get("path", "/"))
            if not (path.startswith("/") and path.endswith("/")):
                self.problem(f"{where}.path", "a path starts and ends with '/'")
            arn = f"arn:{self.partition}:iam::{account}:role{path}{name}"
            trust_raw = entry.get("trust_policy")
            if trust_raw is None:
                self.problem(f"{where}.trust_policy", "a role needs a trust policy")
                continue
            trust = self.document(trust_raw, f"{where}.trust_policy", PolicyKind.TRUST, f"role/{name}/trust")
            duration = entry.get("max_session_duration", 3600)
            if not isinstance(duration, int) or not 900 <= duration <= 43200:
                self.problem(f"{where}.max_session_duration", "must be whole seconds from 900 to 43200")
                duration = 3600
            if trust is None:
                continue
            self._role_keys.append(str(key))
            roles.append(Role(
                account=account, name=name, arn=arn, id=self.unique_id(entry, where, "AROA", arn), trust_policy=trust,
                path=path,
                tags=self.tags(entry, where), policies=self.attached(entry, where, f"role/{name}"),
                boundary=self.boundary(entry, where), max_session_duration=duration,
            ))
        return roles


def directory_from_dict(
    data: Mapping[str, Any], *, base_dir: str | os.PathLike[str] = ".", version: int = 1, source: str = "<dict>"
) -> Snapshot:
    """Validate a directory given as a mapping (the parsed form of the file). Raises ConfigurationError."""
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{source}: the directory must be a mapping")
    return _Builder(data, Path(base_dir), source).build(version)
