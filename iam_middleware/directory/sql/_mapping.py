"""Records (the database's rows) to and from the mapping a directory file parses to.

``file_mapping`` is what the file loader validates (``directory_from_dict``) and what ``directory export`` writes:
so a directory in the database is validated exactly like a file, and every problem is named the same way. Only
the default version of each managed policy is part of it; users and roles carry their unique ``id``.
``records_from_file`` goes the other way for ``directory import``: documents named by ``{file = ...}`` are read in
(a database holds no paths), accounts and ids are made explicit, secrets are kept as given.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..._exceptions import ConfigurationError
from .._snapshot import Snapshot
from ._records import Records, empty_records

__all__ = ["document_text", "file_mapping", "records_from_file", "user_keys"]


def _key(entry: Mapping[str, Any], clashing: set[str]) -> str:
    """A file key for a user or role: its name, or ``account/name`` where the name is used in several accounts."""
    name: str = entry["name"]
    return f"{entry['account']}/{name}" if name.lower() in clashing else name


def user_keys(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """unique id -> the key the file mapping gives the user (or role). Two entries of one name in one account (a
    state no change makes) get keys of their own, ``account/name#id``, so that the loader sees both and refuses
    them rather than one silently taking the other's place."""
    seen: dict[str, str] = {}
    clashing = set()
    named: dict[tuple[str, str], int] = {}
    for entry in entries.values():
        folded = entry["name"].lower()
        if seen.setdefault(folded, entry["account"]) != entry["account"]:
            clashing.add(folded)
        named[entry["account"], entry["name"]] = named.get((entry["account"], entry["name"]), 0) + 1
    keys = {unique: _key(entry, clashing) for unique, entry in entries.items()}
    for unique, entry in entries.items():
        if named[entry["account"], entry["name"]] > 1:
            keys[unique] = f"{entry['account']}/{entry['name']}#{unique}"
    return keys


def _attached(entry: Mapping[str, Any], out: dict[str, Any]) -> None:
    for field in ("tags", "policies", "inline"):
        if entry.get(field):
            out[field] = copy.deepcopy(entry[field])
    if entry.get("boundary") is not None:
        out["boundary"] = copy.deepcopy(entry["boundary"])


def _identity(entry: Mapping[str, Any], unique: str, key: str) -> dict[str, Any]:
    """A user's or role's ``name`` (when the key is not it), ``id`` and ``account``."""
    named = {} if key == entry["name"] else {"name": entry["name"]}
    return {**named, "id": unique, "account": entry["account"]}


def _devices(records: Records) -> dict[str | None, list[dict[str, Any]]]:
    """The file's ``mfa_devices`` entries by holder (a user's unique id, an account id for its root user; the
    account id and ``None`` for the devices not enabled for anyone): enabled ones in the order they were enabled."""
    found: dict[str | None, list[dict[str, Any]]] = {}
    order = sorted(records["mfa_devices"].items(), key=lambda item: (item[1]["enabled"] or 0, item[0]))
    for _, device in order:
        entry = {"name": device["name"], **({} if device["path"] == "/" else {"path": device["path"]}),
                 "secret": device["seed"]}
        holder = device["holder"]
        found.setdefault(holder if holder is not None else f"unassigned:{device['account']}", []).append(entry)
    return found


def _keys_of(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"id": k["id"], "secret": k["secret"], **({} if k["active"] else {"active": False})}
            for k in entry["access_keys"]]


def _root(root: Mapping[str, Any], devices: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {field: root[field] for field in ("password_hash", "totp_secret") if root[field] is not None}
    if root["access_keys"]:
        out["access_keys"] = _keys_of(root)
    if devices:
        out["mfa_devices"] = devices
    return out


def file_mapping(records: Records) -> dict[str, Any]:
    """The directory file's mapping of ``records``: defaults left out, every user and role with its ``id``."""
    data: dict[str, Any] = {}
    if records["settings"]:
        data["settings"] = copy.deepcopy(records["settings"])
    devices = _devices(records)
    data["accounts"] = {}
    for account_id, entry in records["accounts"].items():
        account: dict[str, Any] = {k: v for k, v in (("name", entry["name"]),
                                                     ("guardrails", list(entry["guardrails"]))) if v}
        if entry.get("root") is not None:
            account["root"] = _root(entry["root"], devices.get(account_id, []))
        if devices.get(f"unassigned:{account_id}"):
            account["mfa_devices"] = devices[f"unassigned:{account_id}"]
        data["accounts"][account_id] = account
    data["policies"] = {name: {"document": entry["versions"][entry["default_version"]]["document"]}
                        for name, entry in records["policies"].items()}
    data["groups"] = {}
    for name, entry in records["groups"].items():
        group: dict[str, Any] = {"account": entry["account"]}
        _attached(entry, group)
        data["groups"][name] = group
    data["users"] = {}
    keys = user_keys(records["users"])
    for unique, entry in records["users"].items():
        user: dict[str, Any] = _identity(entry, unique, keys[unique])
        if entry["path"] != "/":
            user["path"] = entry["path"]
        if entry["groups"]:
            user["groups"] = list(entry["groups"])
        _attached(entry, user)
        for field in ("password_hash", "totp_secret"):
            if entry[field] is not None:
                user[field] = entry[field]
        if entry["access_keys"]:
            user["access_keys"] = _keys_of(entry)
        if devices.get(unique):
            user["mfa_devices"] = devices[unique]
        if not entry["active"]:
            user["active"] = False
        data["users"][keys[unique]] = user
    data["roles"] = {}
    keys = user_keys(records["roles"])
    for unique, entry in records["roles"].items():
        role: dict[str, Any] = _identity(entry, unique, keys[unique])
        if entry["path"] != "/":
            role["path"] = entry["path"]
        _attached(entry, role)
        role["trust_policy"] = {"document": entry["trust_policy"]}
        if entry["max_session_duration"] != 3600:
            role["max_session_duration"] = entry["max_session_duration"]
        data["roles"][keys[unique]] = role
    if records["routes"]:
        data["routes"] = copy.deepcopy(records["routes"])
    return data


def document_text(value: Any, base_dir: Path) -> str:
    """A policy document of the file (a table, JSON text, ``{document = ...}`` or ``{file = ...}``) as JSON text."""
    if isinstance(value, Mapping) and value and set(value) <= {"file", "document"}:
        if "file" in value:
            path = base_dir / str(value["file"])
            try:
                return path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(f"cannot read policy file {path}: {exc}") from None
        return document_text(value["document"], base_dir)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def _boundary(value: Any, base_dir: Path) -> str | dict[str, str] | None:
    if value is None or isinstance(value, str):
        return value
    return {"document": document_text(value, base_dir)}


def records_from_file(data: Mapping[str, Any], snapshot: Snapshot, *, base_dir: str | os.PathLike[str],
                      now: int) -> Records:
    """The records of a directory file that ``snapshot`` is the validated form of (``load_directory``)."""
    base = Path(base_dir)
    records = empty_records()
    records["settings"] = copy.deepcopy(dict(data.get("settings") or {}))
    records["routes"] = copy.deepcopy(list(data.get("routes") or []))
    def devices(listed: Any, account: str, holder: str | None) -> None:
        for device in listed or []:
            path = device.get("path", "/")
            records["mfa_devices"][f"{account}:mfa{path}{device['name']}"] = {
                "account": account, "name": device["name"], "path": path, "seed": device["secret"],
                "holder": holder, "enabled": None if holder is None else now, "created": now}

    def keys(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [{"id": k["id"], "secret": k["secret"], "active": k.get("active", True), "created": now}
                for k in entry.get("access_keys", [])]

    for account_id, entry in (data.get("accounts") or {}).items():
        account = str(account_id)
        root = entry.get("root")
        records["accounts"][account] = {
            "name": str(entry.get("name", "")), "guardrails": list(entry.get("guardrails", [])),
            "root": None if root is None else {
                "password_hash": root.get("password_hash"),
                "password_changed": now if root.get("password_hash") is not None else None,
                "totp_secret": root.get("totp_secret"), "access_keys": keys(root), "created": now}}
        devices(entry.get("mfa_devices"), account, None)
        if root is not None:
            devices(root.get("mfa_devices"), account, account)
    for name, value in (data.get("policies") or {}).items():
        records["policies"][name] = {"default_version": "v1",
                                     "versions": {"v1": {"document": document_text(value, base), "created": now}}}

    def owned(entry: Mapping[str, Any]) -> dict[str, Any]:
        return {"policies": list(entry.get("policies", [])),
                "inline": {n: document_text(d, base) for n, d in (entry.get("inline") or {}).items()}}

    group_accounts = {name: account for account, name in snapshot.groups}
    for name, entry in (data.get("groups") or {}).items():
        records["groups"][name] = {"account": group_accounts[name], **owned(entry)}
    # The loader builds users and roles in the file's order, one for each entry of a valid file.
    for (_, entry), user in zip((data.get("users") or {}).items(), snapshot.users.values(), strict=True):
        records["users"][user.id] = {
            "name": user.name, "account": user.account, "path": user.path, "active": user.active,
            "password_hash": entry.get("password_hash"),
            "password_changed": now if entry.get("password_hash") is not None else None,
            "totp_secret": entry.get("totp_secret"),
            "boundary": _boundary(entry.get("boundary"), base), "groups": list(user.groups), "tags": dict(user.tags),
            **owned(entry), "created": now, "access_keys": keys(entry),
        }
        devices(entry.get("mfa_devices"), user.account, user.id)
    for (_, entry), role in zip((data.get("roles") or {}).items(), snapshot.roles.values(), strict=True):
        records["roles"][role.id] = {
            "name": role.name, "account": role.account, "path": role.path,
            "trust_policy": document_text(entry["trust_policy"], base),
            "max_session_duration": role.max_session_duration, "boundary": _boundary(entry.get("boundary"), base),
            "tags": dict(role.tags), **owned(entry), "created": now,
        }
    return records
