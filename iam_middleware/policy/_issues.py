"""A finding about a policy document: where it is, what is wrong, how bad."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["PolicyIssue", "Severity"]


class Severity(enum.StrEnum):
    """How bad a finding is, in IAM Access Analyzer's terms."""

    ERROR = "error"
    SECURITY_WARNING = "security_warning"
    WARNING = "warning"
    SUGGESTION = "suggestion"


@dataclass(frozen=True, slots=True)
class PolicyIssue:
    """One finding. ``location`` is a path into the document, e.g. ``Statement[2].Condition.StringEquals."aws:x"``."""

    location: str
    message: str
    severity: Severity = Severity.ERROR
    code: str = "syntax"

    def __str__(self) -> str:
        where = self.location or "(document)"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"location": self.location, "severity": self.severity.value, "code": self.code, "message": self.message}
