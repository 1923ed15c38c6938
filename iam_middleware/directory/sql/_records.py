"""The directory's rows as one plain mapping (its *records*), read whole and written back entity by entity.

Records are JSON-like dicts::

    settings  {name: value}                   routes  [rule, ...]
    accounts  {id: {name, guardrails}}
    policies  {name: {default_version, versions: {"v1": {document, created}}}}
    groups    {name: {account, policies, inline}}
    users     {unique id: {name, account, path, active, password_hash, totp_secret, boundary, groups, tags,
                           policies, inline, access_keys: [{id, secret, active, created}], created}}
    roles     {unique id: {name, account, path, trust_policy, max_session_duration, boundary, tags, policies,
                           inline, created}}

A boundary is None, a policy name, or ``{"document": text}``; documents are JSON text as given. A change writes only
the entities whose records differ (deleted, then inserted again), so its cost follows what changed, not the size of
the directory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update

from ..._json import loads
from . import _schema as t

__all__ = ["KINDS", "Records", "bump_revision", "empty_records", "lock_revision", "read_records", "read_revision",
           "write_records"]

Records = dict[str, Any]
KINDS = ("accounts", "policies", "groups", "users", "roles")


def empty_records() -> Records:
    return {"settings": {}, "routes": [], **{kind: {} for kind in KINDS}}


def read_revision(connection: Connection) -> int:
    """The change counter: one indexed row, what pollers read."""
    return int(connection.scalar(select(t.revision.c.value).where(t.revision.c.id == 1)) or 0)


def lock_revision(connection: Connection) -> int:
    """The change counter, locked until the transaction ends (PostgreSQL: the row; SQLite holds the write lock
    already): changes are applied one after another, each on top of the last."""
    return int(connection.scalar(select(t.revision.c.value).where(t.revision.c.id == 1).with_for_update()) or 0)


def bump_revision(connection: Connection) -> int:
    value = lock_revision(connection) + 1
    connection.execute(update(t.revision).where(t.revision.c.id == 1).values(value=value))
    return value


# Reading ---------------------------------------------------------------------------------------------------------


def _owned(connection: Connection, table: Table, value: Callable[[Any], Any]) -> dict[tuple[str, str], Any]:
    """Rows of a table shared by users, groups and roles, grouped by owner, in order."""
    found: dict[tuple[str, str], Any] = {}
    order = [table.c.owner_kind, table.c.owner, *(c for c in table.primary_key.columns if c.name in ("ordinal",
                                                                                                     "name", "key"))]
    for row in connection.execute(select(table).order_by(*order)):
        found.setdefault((row.owner_kind, row.owner), []).append(value(row))
    return found


def _boundary(policy: str | None, document: str | None) -> str | dict[str, str] | None:
    if document is not None:
        return {"document": document}
    return policy


def read_records(connection: Connection) -> Records:
    """Every row of the directory, as records (call inside one transaction for a consistent view)."""
    records = empty_records()
    records["settings"] = {r.name: loads(r.value) for r in connection.execute(select(t.settings))}
    records["routes"] = [loads(r.rule) for r in connection.execute(select(t.routes).order_by(t.routes.c.ordinal))]
    attached = _owned(connection, t.attachments, lambda r: r.policy_name)
    inline = {k: dict(v) for k, v in _owned(connection, t.inline_policies, lambda r: (r.name, r.document)).items()}
    tagged = {k: dict(v) for k, v in _owned(connection, t.tags, lambda r: (r.key, r.value)).items()}
    guardrails: dict[str, list[str]] = {}
    for row in connection.execute(select(t.guardrails).order_by(t.guardrails.c.account_id, t.guardrails.c.ordinal)):
        guardrails.setdefault(row.account_id, []).append(row.policy_name)
    for row in connection.execute(select(t.accounts).order_by(t.accounts.c.id)):
        records["accounts"][row.id] = {"name": row.name, "guardrails": guardrails.get(row.id, [])}
    versions: dict[str, dict[str, Any]] = {}
    for row in connection.execute(select(t.policy_versions).order_by(t.policy_versions.c.policy_name,
                                                                     t.policy_versions.c.created,
                                                                     t.policy_versions.c.version_id)):
        versions.setdefault(row.policy_name, {})[row.version_id] = {"document": row.document, "created": row.created}
    for row in connection.execute(select(t.policies).order_by(t.policies.c.name)):
        records["policies"][row.name] = {"default_version": row.default_version, "versions": versions.get(row.name, {})}
    for row in connection.execute(select(t.groups).order_by(t.groups.c.name)):
        key = ("group", row.name)
        records["groups"][row.name] = {"account": row.account_id, "policies": attached.get(key, []),
                                       "inline": inline.get(key, {})}
    members: dict[str, list[str]] = {}
    for row in connection.execute(select(t.group_members).order_by(t.group_members.c.user_id,
                                                                   t.group_members.c.ordinal)):
        members.setdefault(row.user_id, []).append(row.group_name)
    keys: dict[str, list[dict[str, Any]]] = {}
    for row in connection.execute(select(t.access_keys).order_by(t.access_keys.c.user_id, t.access_keys.c.ordinal)):
        keys.setdefault(row.user_id, []).append({"id": row.id, "secret": row.secret, "active": bool(row.active),
                                                 "created": row.created})
    for row in connection.execute(select(t.users).order_by(t.users.c.account_id, t.users.c.name)):
        key = ("user", row.id)
        records["users"][row.id] = {
            "name": row.name, "account": row.account_id, "path": row.path, "active": bool(row.active),
            "password_hash": row.password_hash, "totp_secret": row.totp_secret,
            "boundary": _boundary(row.boundary_policy, row.boundary_document), "groups": members.get(row.id, []),
            "tags": tagged.get(key, {}), "policies": attached.get(key, []), "inline": inline.get(key, {}),
            "access_keys": keys.get(row.id, []), "created": row.created,
        }
    for row in connection.execute(select(t.roles).order_by(t.roles.c.account_id, t.roles.c.name)):
        key = ("role", row.id)
        records["roles"][row.id] = {
            "name": row.name, "account": row.account_id, "path": row.path, "trust_policy": row.trust_policy,
            "max_session_duration": row.max_session_duration,
            "boundary": _boundary(row.boundary_policy, row.boundary_document), "tags": tagged.get(key, {}),
            "policies": attached.get(key, []), "inline": inline.get(key, {}), "created": row.created,
        }
    return records


# Writing ---------------------------------------------------------------------------------------------------------


def _boundary_columns(boundary: Any) -> dict[str, str | None]:
    if isinstance(boundary, Mapping):
        return {"boundary_policy": None, "boundary_document": boundary["document"]}
    return {"boundary_policy": boundary, "boundary_document": None}


def _delete_owned(connection: Connection, kind: str, owner: str) -> None:
    for table in (t.attachments, t.inline_policies, t.tags):
        connection.execute(delete(table).where(table.c.owner_kind == kind, table.c.owner == owner))


def _insert_owned(connection: Connection, kind: str, owner: str, entry: Mapping[str, Any]) -> None:
    rows = [{"owner_kind": kind, "owner": owner, "ordinal": i, "policy_name": name}
            for i, name in enumerate(entry["policies"])]
    if rows:
        connection.execute(insert(t.attachments), rows)
    rows = [{"owner_kind": kind, "owner": owner, "name": name, "document": document}
            for name, document in entry["inline"].items()]
    if rows:
        connection.execute(insert(t.inline_policies), rows)
    rows = [{"owner_kind": kind, "owner": owner, "key": k, "value": v} for k, v in entry.get("tags", {}).items()]
    if rows:
        connection.execute(insert(t.tags), rows)


def _delete(connection: Connection, kind: str, key: str) -> None:
    if kind == "accounts":
        connection.execute(delete(t.guardrails).where(t.guardrails.c.account_id == key))
        connection.execute(delete(t.accounts).where(t.accounts.c.id == key))
    elif kind == "policies":
        connection.execute(delete(t.policy_versions).where(t.policy_versions.c.policy_name == key))
        connection.execute(delete(t.policies).where(t.policies.c.name == key))
    elif kind == "groups":
        _delete_owned(connection, "group", key)
        connection.execute(delete(t.groups).where(t.groups.c.name == key))
    elif kind == "users":
        _delete_owned(connection, "user", key)
        connection.execute(delete(t.group_members).where(t.group_members.c.user_id == key))
        connection.execute(delete(t.access_keys).where(t.access_keys.c.user_id == key))
        connection.execute(delete(t.users).where(t.users.c.id == key))
    else:
        _delete_owned(connection, "role", key)
        connection.execute(delete(t.roles).where(t.roles.c.id == key))


def _insert(connection: Connection, kind: str, key: str, entry: Mapping[str, Any]) -> None:
    if kind == "accounts":
        connection.execute(insert(t.accounts).values(id=key, name=entry["name"]))
        rows = [{"account_id": key, "ordinal": i, "policy_name": name} for i, name in enumerate(entry["guardrails"])]
        if rows:
            connection.execute(insert(t.guardrails), rows)
    elif kind == "policies":
        connection.execute(insert(t.policies).values(name=key, default_version=entry["default_version"]))
        connection.execute(insert(t.policy_versions), [
            {"policy_name": key, "version_id": vid, "document": v["document"], "created": v["created"]}
            for vid, v in entry["versions"].items()])
    elif kind == "groups":
        connection.execute(insert(t.groups).values(name=key, account_id=entry["account"]))
        _insert_owned(connection, "group", key, entry)
    elif kind == "users":
        connection.execute(insert(t.users).values(
            id=key, account_id=entry["account"], name=entry["name"], path=entry["path"], active=entry["active"],
            password_hash=entry["password_hash"], totp_secret=entry["totp_secret"], created=entry["created"],
            **_boundary_columns(entry["boundary"])))
        _insert_owned(connection, "user", key, entry)
        rows = [{"user_id": key, "ordinal": i, "group_name": g} for i, g in enumerate(entry["groups"])]
        if rows:
            connection.execute(insert(t.group_members), rows)
        rows = [{"id": k["id"], "user_id": key, "ordinal": i, "secret": k["secret"], "active": k["active"],
                 "created": k["created"]} for i, k in enumerate(entry["access_keys"])]
        if rows:
            connection.execute(insert(t.access_keys), rows)
    else:
        connection.execute(insert(t.roles).values(
            id=key, account_id=entry["account"], name=entry["name"], path=entry["path"],
            trust_policy=entry["trust_policy"], max_session_duration=entry["max_session_duration"],
            created=entry["created"], **_boundary_columns(entry["boundary"])))
        _insert_owned(connection, "role", key, entry)


def write_records(connection: Connection, before: Records, after: Records) -> bool:
    """Make the rows say ``after`` where they said ``before``; returns whether anything changed.

    Deletions go first, so that a name or an access key id moving from one entity to another is free again when
    the entity that takes it is inserted.
    """
    changed = False
    for name in before["settings"].keys() - after["settings"].keys():
        connection.execute(delete(t.settings).where(t.settings.c.name == name))
        changed = True
    for name, value in after["settings"].items():
        if name not in before["settings"]:
            connection.execute(insert(t.settings).values(name=name, value=json.dumps(value)))
            changed = True
        elif before["settings"][name] != value:
            connection.execute(update(t.settings).where(t.settings.c.name == name).values(value=json.dumps(value)))
            changed = True
    if before["routes"] != after["routes"]:
        connection.execute(delete(t.routes))
        if after["routes"]:
            connection.execute(insert(t.routes), [{"ordinal": i, "rule": json.dumps(rule)}
                                                  for i, rule in enumerate(after["routes"])])
        changed = True
    stale = [(kind, key) for kind in reversed(KINDS) for key, entry in before[kind].items()
             if after[kind].get(key) != entry]
    for kind, key in stale:
        _delete(connection, kind, key)
    for kind in KINDS:
        for key, entry in after[kind].items():
            if before[kind].get(key) != entry:
                _insert(connection, kind, key, entry)
                changed = True
    return changed or bool(stale)
