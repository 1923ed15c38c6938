"""The directory's rows as one plain mapping (its *records*), read whole and written back entity by entity.

Records are JSON-like dicts::

    settings  {name: value}                   routes  [rule, ...]
    accounts  {id: {name, guardrails, root: None or {password_hash, password_changed, totp_secret,
                                                      access_keys: [{id, secret, active, created}], created}}}
    policies  {name: {default_version, versions: {"v1": {document, created}}}}
    groups    {name: {account, policies, inline}}
    users     {unique id: {name, account, path, active, password_hash, password_changed, totp_secret, boundary,
                           groups, tags, policies, inline, access_keys: [{id, secret, active, created}], created}}
    roles     {unique id: {name, account, path, trust_policy, max_session_duration, boundary, tags, policies,
                           inline, created}}
    mfa_devices {"<account>:mfa<path><name>": {account, name, path, seed, holder, enabled, created}}

A boundary is None, a policy name, or ``{"document": text}``; documents are JSON text as given. A change writes only
the entities whose records differ (deleted, then inserted again), so its cost follows what changed, not the size of
the directory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    Select,
    Table,
    Text,
    cast,
    delete,
    insert,
    literal_column,
    null,
    select,
    union_all,
    update,
)

from ..._json import loads
from . import _schema as t

__all__ = ["KINDS", "Records", "bump_revision", "empty_records", "lock_revision", "read_records", "read_revision",
           "read_devices", "read_settings", "read_users",
           "write_records"]

Records = dict[str, Any]
KINDS = ("accounts", "policies", "groups", "users", "roles", "mfa_devices")


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


def _owned(connection: Connection, table: Table, value: Callable[[Any], Any], *,
           users: bool = True) -> dict[tuple[str, str], Any]:
    """Rows of a table shared by users, groups and roles, grouped by owner, in order (without users' rows if not
    ``users``)."""
    found: dict[tuple[str, str], Any] = {}
    order = [table.c.owner_kind, table.c.owner, *(c for c in table.primary_key.columns if c.name in ("ordinal",
                                                                                                     "name", "key"))]
    query = select(table) if users else select(table).where(table.c.owner_kind != "user")
    for row in connection.execute(query.order_by(*order)):
        found.setdefault((row.owner_kind, row.owner), []).append(value(row))
    return found


def _boundary(policy: str | None, document: str | None) -> str | dict[str, str] | None:
    if document is not None:
        return {"document": document}
    return policy


def read_settings(connection: Connection) -> dict[str, Any]:
    """The ``[settings]`` table."""
    return {r.name: loads(r.value) for r in connection.execute(select(t.settings))}


def read_records(connection: Connection, *, users: bool = True) -> Records:
    """Every row of the directory, as records (call inside one transaction for a consistent view). Without
    ``users``, everything but the users (and the MFA devices they hold): what a process that loads users on demand,
    or only the changed ones (``read_users``), keeps whole."""
    records = empty_records()
    records["settings"] = read_settings(connection)
    records["routes"] = [loads(r.rule) for r in connection.execute(select(t.routes).order_by(t.routes.c.ordinal))]
    attached = _owned(connection, t.attachments, lambda r: r.policy_name, users=users)
    inline = {k: dict(v) for k, v in _owned(connection, t.inline_policies, lambda r: (r.name, r.document),
                                            users=users).items()}
    tagged = {k: dict(v) for k, v in _owned(connection, t.tags, lambda r: (r.key, r.value), users=users).items()}
    guardrails: dict[str, list[str]] = {}
    for row in connection.execute(select(t.guardrails).order_by(t.guardrails.c.account_id, t.guardrails.c.ordinal)):
        guardrails.setdefault(row.account_id, []).append(row.policy_name)
    root_keys: dict[str, list[dict[str, Any]]] = {}
    for row in connection.execute(select(t.root_access_keys).order_by(t.root_access_keys.c.account_id,
                                                                      t.root_access_keys.c.ordinal)):
        root_keys.setdefault(row.account_id, []).append({"id": row.id, "secret": row.secret,
                                                         "active": bool(row.active), "created": row.created})
    roots = {row.account_id: {"password_hash": row.password_hash, "password_changed": row.password_changed,
                              "totp_secret": row.totp_secret, "access_keys": root_keys.get(row.account_id, []),
                              "created": row.created}
             for row in connection.execute(select(t.root_users))}
    for row in connection.execute(select(t.accounts).order_by(t.accounts.c.id)):
        records["accounts"][row.id] = {"name": row.name, "guardrails": guardrails.get(row.id, []),
                                       "root": roots.get(row.id)}
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
    _read_roles(connection, records, tagged, attached, inline)
    devices = select(t.mfa_devices)
    if not users:
        devices = devices.where(t.mfa_devices.c.holder.is_(None)
                                | t.mfa_devices.c.holder.in_(select(t.accounts.c.id)))
    for row in connection.execute(devices.order_by(t.mfa_devices.c.id)):
        records["mfa_devices"][row.id] = _device(row)
    if not users:
        return records
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
            "password_hash": row.password_hash, "password_changed": row.password_changed,
            "totp_secret": row.totp_secret,
            "boundary": _boundary(row.boundary_policy, row.boundary_document), "groups": members.get(row.id, []),
            "tags": tagged.get(key, {}), "policies": attached.get(key, []), "inline": inline.get(key, {}),
            "access_keys": keys.get(row.id, []), "created": row.created,
        }
    return records


def read_devices(connection: Connection, keys: Collection[str]) -> Records:
    """The MFA devices of ``keys`` (those that exist), as records."""
    found: Records = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):
        query = select(t.mfa_devices).where(t.mfa_devices.c.id.in_(ordered[start:start + 500]))
        found.update((row.id, _device(row)) for row in connection.execute(query))
    return found


def _device(row: Any) -> dict[str, Any]:
    return {"account": row.account_id, "name": row.name, "path": row.path, "seed": row.seed, "holder": row.holder,
            "enabled": row.enabled, "created": row.created}


def _read_roles(connection: Connection, records: Records, tagged: Mapping[tuple[str, str], Any],
                attached: Mapping[tuple[str, str], Any], inline: Mapping[tuple[str, str], Any]) -> None:
    for row in connection.execute(select(t.roles).order_by(t.roles.c.account_id, t.roles.c.name)):
        key = ("role", row.id)
        records["roles"][row.id] = {
            "name": row.name, "account": row.account_id, "path": row.path, "trust_policy": row.trust_policy,
            "max_session_duration": row.max_session_duration,
            "boundary": _boundary(row.boundary_policy, row.boundary_document), "tags": tagged.get(key, {}),
            "policies": attached.get(key, []), "inline": inline.get(key, {}), "created": row.created,
        }


_TEXTS = 7
_NUMBERS = 3
_OWNED = frozenset("kgait")


def _part(name: str, owner: Any, texts: list[Any], numbers: list[Any], table: Any, where: Any) -> Select[Any]:
    """One part of ``read_users``'s statement: columns ``part, owner, s0..s6, n0..n2``, the unused ones NULL."""
    columns: list[Any] = [literal_column(f"'{name}'", Text).label("part"), cast(owner, Text).label("owner")]
    columns += [cast(value, Text).label(f"s{i}") for i, value in enumerate(texts + [null()] * (_TEXTS - len(texts)))]
    columns += [cast(value, BigInteger).label(f"n{i}")
                for i, value in enumerate(numbers + [null()] * (_NUMBERS - len(numbers)))]
    return select(*columns).select_from(table).where(where)


def read_users(connection: Connection, chosen: Select[Any], *,
               revision: bool = False) -> tuple[int | None, Records, Records]:
    """The users whose unique ids ``chosen`` selects (with their keys, groups, tags, attached and inline policies
    and the MFA devices they hold) in **one** statement: ``(revision or None, users, mfa devices)`` as records.

    One statement, each part reached through an index (``chosen`` on ``iam_users`` by id or name, or on
    ``iam_access_keys`` by key id; the owned rows by their owner): what a process that loads users on demand spends
    on a user it has not seen yet. ``revision`` adds the change counter, read in the same statement.
    """
    u, k, g, a, i, tg, m = (t.users, t.access_keys, t.group_members, t.attachments, t.inline_policies, t.tags,
                            t.mfa_devices)

    def owned(table: Table) -> Any:
        return (table.c.owner_kind == "user") & table.c.owner.in_(chosen)

    parts = [
        _part("u", u.c.id, [u.c.account_id, u.c.name, u.c.path, u.c.password_hash, u.c.totp_secret,
                            u.c.boundary_policy, u.c.boundary_document],
              [cast(u.c.active, Integer), u.c.created, u.c.password_changed], u, u.c.id.in_(chosen)),
        _part("k", k.c.user_id, [k.c.id, k.c.secret], [cast(k.c.active, Integer), k.c.created, k.c.ordinal], k,
              k.c.user_id.in_(chosen)),
        _part("g", g.c.user_id, [g.c.group_name], [null(), null(), g.c.ordinal], g, g.c.user_id.in_(chosen)),
        _part("a", a.c.owner, [a.c.policy_name], [null(), null(), a.c.ordinal], a, owned(a)),
        _part("i", i.c.owner, [i.c.name, i.c.document], [], i, owned(i)),
        _part("t", tg.c.owner, [tg.c.key, tg.c.value], [], tg, owned(tg)),
        _part("m", m.c.holder, [m.c.id, m.c.account_id, m.c.name, m.c.path, m.c.seed], [m.c.enabled, m.c.created],
              m, m.c.holder.in_(chosen)),
    ]
    if revision:
        parts.append(_part("r", null(), [], [t.revision.c.value], t.revision, t.revision.c.id == 1))
    rows = connection.execute(union_all(*parts)).all()
    users: Records = {}
    devices: Records = {}
    found_revision = None
    for row in rows:
        if row.part == "u":
            users[row.owner] = {
                "name": row.s1, "account": row.s0, "path": row.s2, "active": bool(row.n0),
                "password_hash": row.s3, "password_changed": row.n2, "totp_secret": row.s4,
                "boundary": _boundary(row.s5, row.s6), "groups": [], "tags": {}, "policies": [], "inline": {},
                "access_keys": [], "created": row.n1,
            }
        elif row.part == "m":
            devices[row.s0] = {"account": row.s1, "name": row.s2, "path": row.s3, "seed": row.s4,
                               "holder": row.owner, "enabled": row.n0, "created": row.n1}
        elif row.part == "r":
            found_revision = int(row.n0)
    # The owned rows in the order a whole read gives them (lists by ordinal, tables by name or key).
    for row in sorted((r for r in rows if r.part in _OWNED), key=lambda r: (r.n2 or 0, r.s0)):
        entry = users.get(row.owner)
        if entry is None:
            continue  # a row of a user that changed between the parts cannot be: one statement, one view
        if row.part == "k":
            entry["access_keys"].append({"id": row.s0, "secret": row.s1, "active": bool(row.n0), "created": row.n1})
        elif row.part == "g":
            entry["groups"].append(row.s0)
        elif row.part == "a":
            entry["policies"].append(row.s0)
        elif row.part == "i":
            entry["inline"][row.s0] = row.s1
        else:
            entry["tags"][row.s0] = row.s1
    return found_revision, users, devices


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
        connection.execute(delete(t.root_access_keys).where(t.root_access_keys.c.account_id == key))
        connection.execute(delete(t.root_users).where(t.root_users.c.account_id == key))
        connection.execute(delete(t.accounts).where(t.accounts.c.id == key))
    elif kind == "mfa_devices":
        connection.execute(delete(t.mfa_devices).where(t.mfa_devices.c.id == key))
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
        root = entry.get("root")
        if root is not None:
            connection.execute(insert(t.root_users).values(
                account_id=key, password_hash=root["password_hash"], password_changed=root["password_changed"],
                totp_secret=root["totp_secret"], created=root["created"]))
            rows = [{"id": k["id"], "account_id": key, "ordinal": i, "secret": k["secret"], "active": k["active"],
                     "created": k["created"]} for i, k in enumerate(root["access_keys"])]
            if rows:
                connection.execute(insert(t.root_access_keys), rows)
    elif kind == "mfa_devices":
        connection.execute(insert(t.mfa_devices).values(
            id=key, account_id=entry["account"], name=entry["name"], path=entry["path"], seed=entry["seed"],
            holder=entry["holder"], enabled=entry["enabled"], created=entry["created"]))
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
            password_hash=entry["password_hash"], password_changed=entry.get("password_changed"),
            totp_secret=entry["totp_secret"], created=entry["created"],
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


def write_records(connection: Connection, before: Records, after: Records,
                  keys: Mapping[str, Collection[str]] | None = None) -> bool:
    """Make the rows say ``after`` where they said ``before``; returns whether anything changed. ``keys`` (the
    keys that differ, by kind, as ``changed_keys`` finds them) spares comparing every other entry.

    Deletions go first, so that a name or an access key id moving from one entity to another is free again when
    the entity that takes it is inserted.
    """
    if keys is not None:  # dict.get: an entry as it is (a draft's Overlay would copy it)
        before = {**before, **{kind: {k: dict.get(before[kind], k) for k in keys.get(kind, ()) if k in before[kind]}
                               for kind in KINDS}}
        after = {**after, **{kind: {k: dict.get(after[kind], k) for k in keys.get(kind, ()) if k in after[kind]}
                             for kind in KINDS}}
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
