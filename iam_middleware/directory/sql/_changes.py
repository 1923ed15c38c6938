"""The change log (``iam_changes``): which entities each revision changed, written in the revision's transaction.

A reloader whose snapshot is at revision ``v`` reads the log of the revisions after ``v`` and applies only those
entities (``_incremental``). Rows are ``(revision, kind, key)``: a kind of records with the entity's key
(``users`` by unique id, ``groups`` by name, ``settings`` and ``routes`` with ``''``), and, for every changed user,
its names and access key ids before and after (``user_names``, ``access_keys``), so that a process loading users
on demand knows which of its remembered look-ups (a name or a key that found nobody, say) the change may answer
differently. A user holding a virtual MFA device that changed is a changed user (its ``User`` holds the device).

Only the last ``KEEP`` revisions are kept; a process further behind, or one that finds a revision without rows (a
row edited by hand, the counter bumped without the log), loads the whole directory instead.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from . import _schema as t
from ._records import KINDS, Records

__all__ = ["KEEP", "Changes", "changed_rows", "read_changes", "write_changes"]

#: How many revisions the log keeps (older rows are deleted by each commit).
KEEP = 1000


@dataclass(frozen=True, slots=True)
class Changes:
    """What the revisions after a snapshot's changed, by kind (``users``, ``user_names``, ``access_keys``,
    ``groups``, ...): sets of keys."""

    kinds: Mapping[str, frozenset[str]]

    def __getitem__(self, kind: str) -> frozenset[str]:
        return self.kinds.get(kind, frozenset())

    @property
    def only_users(self) -> bool:
        """Whether nothing but users changed (the snapshot's policies, groups, roles and accounts stay)."""
        return set(self.kinds) <= {"users", "user_names", "access_keys", "mfa_devices"}


def _user_facts(entry: Mapping[str, Any] | None) -> set[tuple[str, str]]:
    if entry is None:
        return set()
    return {("user_names", entry["name"]), *(("access_keys", key["id"]) for key in entry["access_keys"])}


def changed_rows(before: Records, after: Records,
                 changed: Mapping[str, Collection[str]] | None = None) -> set[tuple[str, str]]:
    """The log rows of a change from ``before`` to ``after``: ``(kind, key)`` pairs. ``changed`` (the keys that
    differ, by kind) spares comparing every other entry."""
    rows: set[tuple[str, str]] = set()
    for part in ("settings", "routes"):
        if before[part] != after[part]:
            rows.add((part, ""))
    for kind in KINDS:
        keys = before[kind].keys() | after[kind].keys() if changed is None else changed.get(kind, ())
        for key in keys:
            old, new = before[kind].get(key), after[kind].get(key)
            if old == new:
                continue
            rows.add((kind, key))
            if kind == "users":
                rows |= _user_facts(old) | _user_facts(new)
            elif kind == "mfa_devices":
                for holder in {entry["holder"] for entry in (old, new) if entry is not None} - {None}:
                    if holder in before["users"] or holder in after["users"]:
                        rows.add(("users", holder))
                        rows |= _user_facts(before["users"].get(holder)) | _user_facts(after["users"].get(holder))
                    else:  # an account id: its root user's device
                        rows.add(("accounts", holder))
    return rows


def write_changes(connection: Connection, revision: int, rows: set[tuple[str, str]]) -> None:
    """Record ``rows`` as what ``revision`` changed, and forget revisions older than ``KEEP``."""
    if rows:
        connection.execute(insert(t.changes), [{"revision": revision, "kind": kind, "key": key}
                                               for kind, key in sorted(rows)])
    connection.execute(delete(t.changes).where(t.changes.c.revision <= revision - KEEP))


def read_changes(connection: Connection, since: int, until: int) -> Changes | None:
    """What the revisions ``since + 1`` to ``until`` changed, or None when the log does not say for each of them
    (older than ``KEEP``, or a revision made without the log)."""
    if until <= since or until - since > KEEP:
        return None
    found: dict[str, set[str]] = {}
    revisions: set[int] = set()
    query = select(t.changes).where(t.changes.c.revision > since, t.changes.c.revision <= until)
    for row in connection.execute(query):
        revisions.add(row.revision)
        found.setdefault(row.kind, set()).add(row.key)
    if len(revisions) != until - since:
        return None
    return Changes({kind: frozenset(keys) for kind, keys in found.items()})
