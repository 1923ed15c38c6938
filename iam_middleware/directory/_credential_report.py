"""IAM's credential report: every user of an account and the state of its credentials, as IAM's own CSV.

The columns, their order and their values are IAM's (IAM User Guide, "Getting credential reports for your AWS
account"), so tools that read IAM's report read this one: the root user's row first (``<root_account>``),
``true``/``false``, ISO 8601 times (``2024-05-01T12:00:00+00:00``), ``N/A`` where a credential does not exist,
``no_information`` for a password never used, ``not_supported`` for what the root user has no value of. Users follow
in name order. This service has no X.509 signing certificates (``cert_*`` are ``false``/``N/A``) and no password
policy that expires passwords (``password_next_rotation`` is ``N/A``).

Times the directory does not hold are ``no_information``: a directory file records no creation times, the database
records when users, keys and passwords were made (``CredentialTimes``). Last use comes from the shared state
(``LastUsedTracker``). A disabled user's password and keys are reported as not enabled, since none of them works.

``GenerateCredentialReport`` and ``GetCredentialReport`` keep the report in the state store, as IAM keeps one per
account for four hours (``generate_credential_report``, ``get_credential_report``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

from .. import _json
from ._last_used import LastUsed, LastUsedTracker
from ._model import User

__all__ = [
    "COLUMNS",
    "REPORT_LIFETIME",
    "CredentialReport",
    "CredentialTimes",
    "access_key_last_used",
    "credential_report",
    "find_credential_report",
    "generate_credential_report",
    "get_credential_report",
]

#: IAM's columns, in IAM's order.
COLUMNS = (
    "user", "arn", "user_creation_time", "password_enabled", "password_last_used", "password_last_changed",
    "password_next_rotation", "mfa_active",
    "access_key_1_active", "access_key_1_last_rotated", "access_key_1_last_used_date",
    "access_key_1_last_used_region", "access_key_1_last_used_service",
    "access_key_2_active", "access_key_2_last_rotated", "access_key_2_last_used_date",
    "access_key_2_last_used_region", "access_key_2_last_used_service",
    "cert_1_active", "cert_1_last_rotated", "cert_2_active", "cert_2_last_rotated",
)
#: Seconds a generated report is served before ``GetCredentialReport`` calls it expired (IAM: four hours).
REPORT_LIFETIME = 4 * 3600.0
#: Seconds an expired report is still remembered, so that asking for it is told ``ReportExpired`` (then, once it is
#: forgotten, ``ReportNotPresent``).
_EXPIRED_REMEMBERED = 24 * 3600.0
_NA = "N/A"
_NO_INFORMATION = "no_information"
_NOT_SUPPORTED = "not_supported"
_ROOT_NAME = "<root_account>"


def _empty() -> Mapping[str, float]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CredentialTimes:
    """When things were made, which a directory file does not say: ``users_created`` by user id (the account id for
    the root user), ``password_changed`` by user id, ``keys_created`` by access key id; epoch seconds."""

    users_created: Mapping[str, float] = field(default_factory=_empty)
    password_changed: Mapping[str, float] = field(default_factory=_empty)
    keys_created: Mapping[str, float] = field(default_factory=_empty)


def _time(value: float | None, missing: str = _NO_INFORMATION) -> str:
    return missing if value is None else datetime.fromtimestamp(int(value), UTC).isoformat()


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _row(user: User, times: CredentialTimes, last_used: LastUsedTracker | None) -> list[str]:
    root = user.is_root
    has_password = user.password_hash is not None and user.active
    if has_password:
        used = last_used.password(user.id) if last_used is not None else None
        password_last_used = _time(used.date if used is not None else None)
    else:
        password_last_used = _NA
    row = [
        _ROOT_NAME if root else user.name,
        user.arn,
        _time(times.users_created.get(user.id)),
        _NOT_SUPPORTED if root else _flag(has_password),
        password_last_used,
        _NOT_SUPPORTED if root else (_time(times.password_changed.get(user.id)) if has_password else _NA),
        _NOT_SUPPORTED if root else _NA,
        _flag(bool(user.mfa_devices)),
    ]
    for index in range(2):
        if index >= len(user.access_keys):
            row += ["false", _NA, _NA, _NA, _NA]
            continue
        key = user.access_keys[index]
        use: LastUsed | None = last_used.access_key(key.id) if last_used is not None else None
        row += [
            _flag(key.active and user.active),
            _time(times.keys_created.get(key.id)),
            _time(use.date if use is not None else None, _NA),
            (use.region or _NA) if use is not None else _NA,
            (use.service or _NA) if use is not None else _NA,
        ]
    return [*row, "false", _NA, "false", _NA]


def _root_of(directory: Any, account: str) -> User:
    """The account's root user, or (none declared) a root user without credentials: IAM's report always has one."""
    found: User | None = getattr(directory, "roots", {}).get(account)
    if found is not None:
        return found
    return User(account=account, name="root", arn=f"arn:{directory.partition}:iam::{account}:root", id=account)


def _account_of(directory: Any, account: str | None) -> str:
    accounts = list(directory.accounts)
    if account is None:
        if len(accounts) != 1:
            raise ValueError(f"the directory has {len(accounts)} accounts: name the account of the report")
        return str(accounts[0])
    if account not in directory.accounts:
        raise ValueError(f"the directory has no account {account}")
    return account


def credential_report(directory: Any, *, account: str | None = None, times: CredentialTimes | None = None,
                      last_used: LastUsedTracker | None = None) -> str:
    """The CSV text of one account's credential report (``account`` may be left out when there is one account).

    ``directory`` is a ``Snapshot``. Raises ValueError for an account the directory does not have, and
    ``StateUnavailableError`` when last-use records cannot be read.
    """
    account = _account_of(directory, account)
    times = times or CredentialTimes()
    users = sorted((u for u in directory.users.values() if u.account == account), key=lambda u: (u.name, u.arn))
    lines = [",".join(COLUMNS)]
    for user in (_root_of(directory, account), *users):
        lines.append(",".join(_row(user, times, last_used)))
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class CredentialReport:
    """What ``GetCredentialReport`` answers: the CSV (``Content``), when it was made, and its format."""

    content: str
    generated_time: float
    report_format: str = "text/csv"


def _report_key(account: str) -> str:
    return f"iam:credential-report:{account}"


def generate_credential_report(store: Any, directory: Any, *, now: float, account: str | None = None,
                               times: CredentialTimes | None = None,
                               last_used: LastUsedTracker | None = None) -> Literal["STARTED", "COMPLETE"]:
    """``GenerateCredentialReport``: ``COMPLETE`` while a report made in the last four hours is kept, else make one
    now and answer ``STARTED`` (as IAM answers a new report; a client that asks again gets ``COMPLETE``).
    ``store`` is the ``StateStore``; its errors (``StateUnavailableError``) pass through."""
    account = _account_of(directory, account)
    kept = get_credential_report(store, account, now=now)
    if kept is not None:
        return "COMPLETE"
    content = credential_report(directory, account=account, times=times, last_used=last_used)
    record = json.dumps({"generated": now, "content": content}).encode()
    store.set(_report_key(account), record, REPORT_LIFETIME + _EXPIRED_REMEMBERED)
    return "STARTED"


def get_credential_report(store: Any, account: str, *, now: float) -> CredentialReport | None:
    """``GetCredentialReport``: the account's kept report, or None when there is none or it is older than four
    hours (IAM's ``ReportNotPresent`` and ``ReportExpired``: generate one)."""
    return find_credential_report(store, account, now=now)[0]


def find_credential_report(store: Any, account: str, *, now: float) -> tuple[CredentialReport | None, bool]:
    """(the account's report while it is served, else None; whether the one kept has expired), so that
    ``GetCredentialReport`` tells IAM's ``ReportExpired`` from ``ReportNotPresent``. An unreadable record is none."""
    raw = store.get(_report_key(account))
    if raw is None:
        return None, False
    try:
        record = _json.loads(raw)
        report = CredentialReport(str(record["content"]), float(record["generated"]))
    except (ValueError, TypeError, KeyError):
        return None, False
    if now - report.generated_time < REPORT_LIFETIME:
        return report, False
    return None, True


def access_key_last_used(directory: Any, last_used: LastUsedTracker, access_key_id: str) -> dict[str, Any] | None:
    """``GetAccessKeyLastUsed``'s answer, in IAM's shape: ``{"UserName": ..., "AccessKeyLastUsed": {"LastUsedDate":
    datetime (absent when never used), "ServiceName": ..., "Region": ...}}`` with ``N/A`` for what is not known; None
    for a key the directory does not have. The root user's keys answer without ``UserName``, as IAM's do."""
    found = directory.access_key(access_key_id)
    if found is None:
        return None
    _, user = found
    use = last_used.access_key(access_key_id)
    used: dict[str, Any] = {"ServiceName": _NA, "Region": _NA}
    if use is not None:
        used = {"LastUsedDate": datetime.fromtimestamp(int(use.date), UTC), "ServiceName": use.service or _NA,
                "Region": use.region or _NA}
    return {"AccessKeyLastUsed": used} if user.is_root else {"UserName": user.name, "AccessKeyLastUsed": used}
