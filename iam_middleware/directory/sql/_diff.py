"""What an import would change, said entity by entity, and what of the database's history an import keeps.

The description names fields and shows values that are not secret; a secret (a key's secret, a password hash, a
TOTP seed, any setting) is only said to have changed.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from ._draft import MAX_POLICY_VERSIONS
from ._records import KINDS, Records

__all__ = ["carry_over", "describe"]

_SECRET_FIELDS = frozenset({"password_hash", "totp_secret", "seed"})
#: What the database records about an entity, not what it is: never a change of its own.
_HISTORY_FIELDS = frozenset({"created", "password_changed", "enabled"})


def carry_over(before: Records, incoming: Records) -> Records:
    """``incoming`` (a file's records) with what the database knows and a file does not: when users, roles and keys
    were created, and each managed policy's versions. A changed policy document becomes a new default version (the
    oldest other versions go beyond IAM's five)."""
    after = copy.deepcopy(incoming)
    for name, policy in after["policies"].items():
        old = before["policies"].get(name)
        if old is None:
            continue
        document = policy["versions"]["v1"]["document"]
        if old["versions"][old["default_version"]]["document"] == document:
            after["policies"][name] = copy.deepcopy(old)
            continue
        versions = copy.deepcopy(old["versions"])
        version = f"v{max(int(v[1:]) for v in versions) + 1}"
        versions[version] = {"document": document, "created": policy["versions"]["v1"]["created"]}
        while len(versions) > MAX_POLICY_VERSIONS:
            del versions[min((v for v in versions if v != version), key=lambda v: int(v[1:]))]
        after["policies"][name] = {"default_version": version, "versions": versions}
    for kind in ("users", "roles"):
        for unique, entry in after[kind].items():
            old = before[kind].get(unique)
            if old is not None:
                entry["created"] = old["created"]
    holders = [(user, before["users"].get(unique)) for unique, user in after["users"].items()]
    holders += [(account["root"], (before["accounts"].get(account_id) or {}).get("root"))
                for account_id, account in after["accounts"].items() if account.get("root") is not None]
    for holder, old in holders:
        if old is None:
            continue
        holder["created"] = old["created"]
        if holder["password_hash"] is not None and holder["password_hash"] == old["password_hash"]:
            holder["password_changed"] = old.get("password_changed")
        created = {k["id"]: k["created"] for k in old["access_keys"]}
        for key in holder["access_keys"]:
            key["created"] = created.get(key["id"], key["created"])
    for key, device in after["mfa_devices"].items():
        old = before["mfa_devices"].get(key)
        if old is not None and old["seed"] == device["seed"]:
            device["created"] = old["created"]
            if old["holder"] == device["holder"]:
                device["enabled"] = old["enabled"]
    return after


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _keys(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    before = {k["id"]: k for k in old}
    after = {k["id"]: k for k in new}
    said = [f"+key {i}" for i in after if i not in before] + [f"-key {i}" for i in before if i not in after]
    for i in after.keys() & before.keys():
        if after[i]["active"] != before[i]["active"]:
            said.append(f"key {i} {'active' if after[i]['active'] else 'inactive'}")
        if after[i]["secret"] != before[i]["secret"]:
            said.append(f"key {i} secret changed")
    return said


def _fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    said = []
    for field in new:
        if field in _HISTORY_FIELDS or old.get(field) == new[field]:
            continue
        if field == "root":
            if old.get(field) is None or new[field] is None:
                said.append("+root user" if old.get(field) is None else "-root user")
            else:
                said.extend(f"root {line}" for line in _fields(old[field], new[field]))
        elif field in _SECRET_FIELDS:
            said.append(f"{field} changed")
        elif field == "access_keys":
            said.extend(_keys(old[field], new[field]))
        elif field == "inline":
            names = sorted(k for k in old[field].keys() | new[field].keys() if old[field].get(k) != new[field].get(k))
            said.append(f"inline {', '.join(names)} changed")
        elif field == "trust_policy" or (field == "boundary" and isinstance(new[field], dict)):
            said.append(f"{field} document changed")
        else:
            said.append(f"{field} {_show(old.get(field))} -> {_show(new[field])}")
    return said


def _label(kind: str, key: str, entry: dict[str, Any]) -> str:
    if kind in ("users", "roles"):
        return f"{kind[:-1]} {entry['name']} (account {entry['account']}, id {key})"
    if kind == "mfa_devices":
        return f"MFA device {key}"
    return f"{'policy' if kind == 'policies' else kind[:-1]} {key}"


def describe(before: Records, after: Records) -> list[str]:
    """One line per entity that differs: ``+`` added, ``-`` removed, ``~`` changed (with what changed)."""
    lines = []
    for name in sorted(before["settings"].keys() | after["settings"].keys()):
        if name not in after["settings"]:
            lines.append(f"- settings.{name}")
        elif name not in before["settings"]:
            lines.append(f"+ settings.{name}")
        elif before["settings"][name] != after["settings"][name]:
            lines.append(f"~ settings.{name} changed")
    for kind in KINDS:
        for key, entry in after[kind].items():
            old = before[kind].get(key)
            if old is None:
                lines.append(f"+ {_label(kind, key, entry)}")
            elif kind == "policies" and old != entry:
                lines.append(f"~ {_label(kind, key, entry)}: default version {old['default_version']} -> "
                             f"{entry['default_version']} (document changed)")
            elif old != entry and (said := _fields(old, entry)):
                lines.append(f"~ {_label(kind, key, entry)}: {'; '.join(said)}")
        lines.extend(f"- {_label(kind, key, entry)}" for key, entry in before[kind].items() if key not in after[kind])
    if before["routes"] != after["routes"]:
        lines.append(f"~ routes: {len(before['routes'])} rule(s) -> {len(after['routes'])} rule(s)")
    return lines
