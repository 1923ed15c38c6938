"""The directory in a database (SQLite or PostgreSQL, through SQLAlchemy Core): ``pip install 'iam-middleware[sql]'``.

``SQLDirectory`` stores the directory and serves it as the same validated ``Snapshot`` as a file;
``SQLDirectoryReloader`` keeps an ``IAM`` in step with it; ``SQLDirectory.change()`` applies IAM's actions,
validated whole and committed atomically. docs/live-directory.md tells the whole story.
"""

from __future__ import annotations

from ._directory import CHANNEL, ImportResult, Loaded, SQLDirectory
from ._draft import (
    ROOT,
    DirectoryDraft,
    InvalidAuthenticationCodeError,
    MFADeviceInfo,
    NewAccessKey,
    NewVirtualMFADevice,
)
from ._errors import (
    DeleteConflictError,
    DirectoryChangeError,
    EntityAlreadyExistsError,
    InvalidInputError,
    LimitExceededError,
    MalformedPolicyDocumentError,
    NoSuchEntityError,
    ValidationError,
)
from ._lazy import DirectoryUnavailableError
from ._migrations import LATEST as SCHEMA_VERSION
from ._reload import SQLDirectoryReloader

__all__ = [
    "CHANNEL",
    "ROOT",
    "SCHEMA_VERSION",
    "DeleteConflictError",
    "DirectoryChangeError",
    "DirectoryDraft",
    "DirectoryUnavailableError",
    "EntityAlreadyExistsError",
    "ImportResult",
    "InvalidAuthenticationCodeError",
    "InvalidInputError",
    "LimitExceededError",
    "Loaded",
    "MFADeviceInfo",
    "MalformedPolicyDocumentError",
    "NewAccessKey",
    "NewVirtualMFADevice",
    "NoSuchEntityError",
    "SQLDirectory",
    "SQLDirectoryReloader",
    "ValidationError",
]
