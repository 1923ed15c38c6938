"""Why a change of the directory was refused, with IAM's own error codes and HTTP statuses.

Each is an ``IAMError``, so the IAM Query API can answer it as IAM does. Messages name entities and places, never a
secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..._exceptions import IAMError

if TYPE_CHECKING:
    from ...policy._issues import PolicyIssue

__all__ = [
    "DeleteConflictError", "DirectoryChangeError", "EntityAlreadyExistsError", "InvalidInputError",
    "LimitExceededError", "MalformedPolicyDocumentError", "NoSuchEntityError", "ValidationError",
]


class DirectoryChangeError(IAMError):
    """A change was refused: nothing of it was committed."""

    status_code = 400
    code = "ValidationError"


class ValidationError(DirectoryChangeError):
    """The directory the change would leave fails validation; the message lists every problem with its place."""


class InvalidInputError(DirectoryChangeError):
    """A parameter is not acceptable (a bad name, path, status or duration)."""

    code = "InvalidInput"


class NoSuchEntityError(DirectoryChangeError):
    status_code = 404
    code = "NoSuchEntity"


class EntityAlreadyExistsError(DirectoryChangeError):
    status_code = 409
    code = "EntityAlreadyExists"


class LimitExceededError(DirectoryChangeError):
    status_code = 409
    code = "LimitExceeded"


class DeleteConflictError(DirectoryChangeError):
    status_code = 409
    code = "DeleteConflict"


class MalformedPolicyDocumentError(DirectoryChangeError):
    """A policy document failed validation; ``issues`` are the validator's, each with its location."""

    code = "MalformedPolicyDocument"

    def __init__(self, message: str, issues: Sequence[PolicyIssue] = ()) -> None:
        super().__init__(message)
        self.issues = tuple(issues)
