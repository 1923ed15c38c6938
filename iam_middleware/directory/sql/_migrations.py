"""Versioned migrations of the directory's schema: numbered steps of plain SQL, each applied once, in order.

Why not Alembic: the schema is small and owned by this package alone, and applications embed it in their own
database (every table is prefixed ``iam_``). A step is a list of statements that SQLite and PostgreSQL both read;
the steps not yet applied run in one transaction with a row per step in ``iam_schema_version``, so a migration is
all or nothing, and running it again (or from several processes starting at once) applies nothing twice: the
transaction first takes a lock (PostgreSQL: an advisory lock; SQLite: the write lock). A step, once released, is
never edited: a change of schema is a new step.
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, Engine, func, insert, inspect, select, text

from ..._exceptions import ConfigurationError
from . import _schema as t
from ._engine import WRITE

__all__ = ["LATEST", "STEPS", "current_version", "migrate"]

_TABLES = """
CREATE TABLE iam_revision (id INTEGER PRIMARY KEY CHECK (id = 1), value BIGINT NOT NULL);
INSERT INTO iam_revision (id, value) VALUES (1, 0);
CREATE TABLE iam_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE iam_routes (ordinal INTEGER PRIMARY KEY, rule TEXT NOT NULL);
CREATE TABLE iam_accounts (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE iam_guardrails (
    account_id TEXT NOT NULL REFERENCES iam_accounts (id), ordinal INTEGER NOT NULL, policy_name TEXT NOT NULL,
    PRIMARY KEY (account_id, ordinal));
CREATE TABLE iam_policies (name TEXT PRIMARY KEY, default_version TEXT NOT NULL);
CREATE TABLE iam_policy_versions (
    policy_name TEXT NOT NULL REFERENCES iam_policies (name), version_id TEXT NOT NULL, document TEXT NOT NULL,
    created BIGINT NOT NULL, PRIMARY KEY (policy_name, version_id));
CREATE TABLE iam_groups (name TEXT PRIMARY KEY, account_id TEXT NOT NULL);
CREATE TABLE iam_users (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, active BOOLEAN NOT NULL,
    password_hash TEXT, totp_secret TEXT, boundary_policy TEXT, boundary_document TEXT, created BIGINT NOT NULL,
    UNIQUE (account_id, name));
CREATE TABLE iam_roles (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, trust_policy TEXT NOT NULL,
    max_session_duration INTEGER NOT NULL, boundary_policy TEXT, boundary_document TEXT, created BIGINT NOT NULL,
    UNIQUE (account_id, name));
CREATE TABLE iam_group_members (
    user_id TEXT NOT NULL REFERENCES iam_users (id), ordinal INTEGER NOT NULL, group_name TEXT NOT NULL,
    PRIMARY KEY (user_id, ordinal));
CREATE TABLE iam_access_keys (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES iam_users (id), ordinal INTEGER NOT NULL,
    secret TEXT NOT NULL, active BOOLEAN NOT NULL, created BIGINT NOT NULL);
CREATE INDEX iam_access_keys_user ON iam_access_keys (user_id);
CREATE TABLE iam_attachments (
    owner_kind TEXT NOT NULL, owner TEXT NOT NULL, ordinal INTEGER NOT NULL, policy_name TEXT NOT NULL,
    PRIMARY KEY (owner_kind, owner, ordinal));
CREATE TABLE iam_inline_policies (
    owner_kind TEXT NOT NULL, owner TEXT NOT NULL, name TEXT NOT NULL, document TEXT NOT NULL,
    PRIMARY KEY (owner_kind, owner, name));
CREATE TABLE iam_tags (
    owner_kind TEXT NOT NULL, owner TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (owner_kind, owner, key));
"""

_ROOT_USERS_AND_MFA_DEVICES = """
ALTER TABLE iam_users ADD COLUMN password_changed BIGINT;
CREATE TABLE iam_root_users (
    account_id TEXT PRIMARY KEY REFERENCES iam_accounts (id), password_hash TEXT, password_changed BIGINT,
    totp_secret TEXT, created BIGINT NOT NULL);
CREATE TABLE iam_root_access_keys (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES iam_root_users (account_id), ordinal INTEGER NOT NULL,
    secret TEXT NOT NULL, active BOOLEAN NOT NULL, created BIGINT NOT NULL);
CREATE TABLE iam_mfa_devices (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, seed TEXT NOT NULL,
    holder TEXT, enabled BIGINT, created BIGINT NOT NULL);
CREATE INDEX iam_mfa_devices_holder ON iam_mfa_devices (holder);
"""

# Which entities each revision changed, written in the revision's own transaction (the incremental reload reads it),
# and the index the on-demand loading of users by name needs (the unique index leads with the account).
_CHANGE_LOG = """
CREATE TABLE iam_changes (
    revision BIGINT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (revision, kind, key));
CREATE INDEX iam_users_name ON iam_users (name);
"""


def _statements(script: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in script.split(";") if s.strip())


#: (version, what it does, statements). Append only.
STEPS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "the directory's tables", _statements(_TABLES)),
    (2, "account root users, virtual MFA devices, when passwords were set", _statements(_ROOT_USERS_AND_MFA_DEVICES)),
    (3, "the change log of each revision; users found by name", _statements(_CHANGE_LOG)),
)
LATEST = STEPS[-1][0]
# Any constant: PostgreSQL advisory locks are named by a number, shared by every process migrating this database.
_ADVISORY_LOCK = 0x1A3D1EC7


def current_version(connection: Connection) -> int:
    """The schema version of the database (0: no table of this package yet)."""
    if not inspect(connection).has_table(t.schema_version.name):
        return 0
    return int(connection.scalar(select(func.coalesce(func.max(t.schema_version.c.version), 0))) or 0)


def migrate(engine: Engine) -> list[int]:
    """Bring the schema to ``LATEST`` in one transaction; returns the steps applied (none when up to date).

    Raises ConfigurationError for a database newer than this package knows (a newer release migrated it).
    """
    with engine.connect() as connection:
        connection.execution_options(**{WRITE: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(select(func.pg_advisory_xact_lock(_ADVISORY_LOCK)))
            t.schema_version.create(connection, checkfirst=True)
            version = current_version(connection)
            if version > LATEST:
                raise ConfigurationError(f"the directory database is at schema version {version}, newer than this "
                                         f"iam-middleware knows ({LATEST}): upgrade iam-middleware")
            applied = []
            for number, _what, statements in STEPS:
                if number <= version:
                    continue
                for statement in statements:
                    connection.execute(text(statement))
                connection.execute(insert(t.schema_version).values(version=number, applied_at=int(time.time())))
                applied.append(number)
    return applied
