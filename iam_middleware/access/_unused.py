"""What the decision log shows unused: principals with no decided request, active access keys no request was signed
with, and permissions (a route's action and resource that a principal's policies allow, or allow on a condition)
that no allowed request of that principal used (docs/access.md, "What is not used").

A record belongs to a report's principal by its ARN: a user's own ARN; for a role, any session of it
(``assumed-role/NAME/*``), a web identity's when the record's credential is ``web-identity``, the role's otherwise.
A permission is used by an allowed record of its principal with its action and, when the record names its route's
resource pattern, that pattern.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..directory import Snapshot
from ..routing import Permission
from ._decisionlog import Used
from ._report import AccessReport
from ._subjects import Subject

__all__ = ["UnusedKey", "UnusedPermission", "UnusedReport", "find_unused"]

_GRANTING = ("Allowed", "Conditional")


@dataclass(frozen=True, slots=True)
class UnusedKey:
    """An active access key of ``user`` that signed no request in the window."""

    user: str
    access_key_id: str


@dataclass(frozen=True, slots=True)
class UnusedPermission:
    """A principal's action on a resource (ids as ``{name}``) through ``routes``; ``outcome`` Allowed or
    Conditional."""

    principal: str
    action: str
    resource: str
    routes: tuple[str, ...]
    outcome: str


@dataclass(frozen=True, slots=True)
class UnusedReport:
    """Everything unused, each in the directory's (or the report's) order."""

    principals: tuple[str, ...]
    access_keys: tuple[UnusedKey, ...]
    permissions: tuple[UnusedPermission, ...]


def find_unused(report: AccessReport, snapshot: Snapshot, records: Iterable[Used]) -> UnusedReport:
    """The principals of ``report``, the active keys of ``snapshot`` and the permissions of ``report`` that
    ``records`` do not show used."""
    records = list(records)
    by_subject: dict[str, list[Used]] = {subject.name: [] for subject in report.subjects}
    for used in records:
        for subject in report.subjects:
            if _belongs(used, subject):
                by_subject[subject.name].append(used)
    principals = tuple(subject.name for subject in report.subjects if not by_subject[subject.name])
    signed = {used.access_key_id for used in records if used.access_key_id is not None}
    keys = tuple(UnusedKey(user.name, key.id) for user in snapshot.users.values() if user.active
                 for key in user.access_keys if key.active and key.id not in signed)
    return UnusedReport(principals, keys, _permissions(report, by_subject))


def _belongs(used: Used, subject: Subject) -> bool:
    arn = subject.principal.arn
    if subject.kind == "user":
        return used.principal == arn
    session_of_role = used.principal.startswith(arn.rsplit("/", 1)[0] + "/")
    return session_of_role and (used.credential == "web-identity") == (subject.kind == "web-identity")


def _permissions(report: AccessReport, by_subject: dict[str, list[Used]]) -> tuple[UnusedPermission, ...]:
    found: dict[tuple[str, str, str], list[str]] = {}
    outcomes: dict[tuple[str, str, str], str] = {}
    patterns: dict[tuple[str, str, str], set[str]] = {}
    for cell in report.cells:
        requirement = cell.route.requirement
        if cell.outcome not in _GRANTING or not isinstance(requirement, Permission):
            continue
        key = (cell.subject.name, requirement.action, cell.resource)
        found.setdefault(key, []).append(cell.route.label)
        patterns.setdefault(key, set()).add(requirement.resource)
        # Routes that share a permission may differ (one Conditional): Allowed on any of them is shown.
        outcomes[key] = "Allowed" if outcomes.get(key) == "Allowed" else cell.outcome
    rank = {name: index for index, name in enumerate(by_subject)}
    ordered = sorted(found.items(), key=lambda item: rank[item[0][0]])  # principal by principal, routes in order
    return tuple(UnusedPermission(name, action, resource, tuple(routes), outcomes[(name, action, resource)])
                 for (name, action, resource), routes in ordered
                 if not _used(by_subject[name], action, patterns[(name, action, resource)]))


def _used(records: Sequence[Used], action: str, patterns: set[str]) -> bool:
    return any(used.allowed and used.action == action and (used.pattern is None or used.pattern in patterns)
               for used in records)
