"""The directory: accounts, users, groups, roles and policies, loaded from a file or built in code, validated whole."""

from __future__ import annotations

from ._load import directory_from_dict, load_directory
from ._model import AccessKey, Account, Group, Role, User
from ._snapshot import Directory, Snapshot

__all__ = [
    "AccessKey",
    "Account",
    "Directory",
    "Group",
    "Role",
    "Snapshot",
    "User",
    "directory_from_dict",
    "load_directory",
]
