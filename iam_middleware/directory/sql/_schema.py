"""The directory's tables as SQLAlchemy Core sees them (the schema the migrations build, at the latest version).

One row per account, policy version, group, user, role and access key; attachments, inline policies and tags are
shared by users, groups and roles (``owner_kind`` ``user``/``group``/``role``, ``owner`` the user's or role's unique
id, or the group's name). Lists keep their order (``ordinal``), so an export gives back the file that was imported.
References between entities (a user's groups, an attached policy, a guardrail) are names checked by the directory's
validator, which reports every broken one with its place, not by foreign keys, which would only say that a
constraint failed. Secrets are stored as given, as the file holds them: a value, or ``env:NAME`` / ``secret:KEY``.

An account's root user has its own rows (``iam_root_users``, ``iam_root_access_keys``): it is no IAM user, has no
unique id of its own (its id is the account's) and takes no policy. A user's or root user's own TOTP device is its
``totp_secret``; virtual MFA devices made through ``CreateVirtualMFADevice`` are rows of ``iam_mfa_devices``, each
enabled for at most one user or root user (``holder``: the user's unique id, or the account id for the root user).

``iam_changes`` says which entities each revision changed (``_changes``), so a process can apply only those.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Integer, MetaData, Table, Text

__all__ = [
    "accounts", "access_keys", "attachments", "changes", "group_members", "groups", "guardrails", "inline_policies",
    "metadata", "mfa_devices", "policies", "policy_versions", "revision", "roles", "root_access_keys", "root_users",
    "routes", "schema_version", "settings", "tags", "users",
]

metadata = MetaData()

schema_version = Table(
    "iam_schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", BigInteger, nullable=False),
)
#: One row (id 1): bumped in the same transaction as every change, the cheap counter other processes poll.
revision = Table(
    "iam_revision", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
)
settings = Table(
    "iam_settings", metadata,
    Column("name", Text, primary_key=True),
    Column("value", Text, nullable=False),  # JSON
)
routes = Table(
    "iam_routes", metadata,
    Column("ordinal", Integer, primary_key=True, autoincrement=False),
    Column("rule", Text, nullable=False),  # JSON
)
accounts = Table(
    "iam_accounts", metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
)
guardrails = Table(
    "iam_guardrails", metadata,
    Column("account_id", Text, ForeignKey("iam_accounts.id"), primary_key=True),
    Column("ordinal", Integer, primary_key=True, autoincrement=False),
    Column("policy_name", Text, nullable=False),
)
policies = Table(
    "iam_policies", metadata,
    Column("name", Text, primary_key=True),
    Column("default_version", Text, nullable=False),
)
policy_versions = Table(
    "iam_policy_versions", metadata,
    Column("policy_name", Text, ForeignKey("iam_policies.name"), primary_key=True),
    Column("version_id", Text, primary_key=True),
    Column("document", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
)
groups = Table(
    "iam_groups", metadata,
    Column("name", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
)
users = Table(
    "iam_users", metadata,
    Column("id", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("password_hash", Text),
    Column("totp_secret", Text),
    Column("boundary_policy", Text),
    Column("boundary_document", Text),
    Column("created", BigInteger, nullable=False),
    Column("password_changed", BigInteger),
)
roles = Table(
    "iam_roles", metadata,
    Column("id", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("trust_policy", Text, nullable=False),
    Column("max_session_duration", Integer, nullable=False),
    Column("boundary_policy", Text),
    Column("boundary_document", Text),
    Column("created", BigInteger, nullable=False),
)
group_members = Table(
    "iam_group_members", metadata,
    Column("user_id", Text, ForeignKey("iam_users.id"), primary_key=True),
    Column("ordinal", Integer, primary_key=True, autoincrement=False),
    Column("group_name", Text, nullable=False),
)
access_keys = Table(
    "iam_access_keys", metadata,
    Column("id", Text, primary_key=True),
    Column("user_id", Text, ForeignKey("iam_users.id"), nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("secret", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created", BigInteger, nullable=False),
)
attachments = Table(
    "iam_attachments", metadata,
    Column("owner_kind", Text, primary_key=True),
    Column("owner", Text, primary_key=True),
    Column("ordinal", Integer, primary_key=True, autoincrement=False),
    Column("policy_name", Text, nullable=False),
)
inline_policies = Table(
    "iam_inline_policies", metadata,
    Column("owner_kind", Text, primary_key=True),
    Column("owner", Text, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("document", Text, nullable=False),
)
tags = Table(
    "iam_tags", metadata,
    Column("owner_kind", Text, primary_key=True),
    Column("owner", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)
root_users = Table(
    "iam_root_users", metadata,
    Column("account_id", Text, ForeignKey("iam_accounts.id"), primary_key=True),
    Column("password_hash", Text),
    Column("password_changed", BigInteger),
    Column("totp_secret", Text),
    Column("created", BigInteger, nullable=False),
)
root_access_keys = Table(
    "iam_root_access_keys", metadata,
    Column("id", Text, primary_key=True),
    Column("account_id", Text, ForeignKey("iam_root_users.account_id"), nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("secret", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created", BigInteger, nullable=False),
)
mfa_devices = Table(
    "iam_mfa_devices", metadata,
    Column("id", Text, primary_key=True),  # <account>:mfa<path><name>: the serial number without its partition
    Column("account_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("seed", Text, nullable=False),
    Column("holder", Text),
    Column("enabled", BigInteger),
    Column("created", BigInteger, nullable=False),
)
changes = Table(
    "iam_changes", metadata,
    Column("revision", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", Text, primary_key=True),  # a kind of records (users, groups, ...), or user_names / access_keys
    Column("key", Text, primary_key=True),  # the entity's key in its kind ('' for settings and routes)
)
