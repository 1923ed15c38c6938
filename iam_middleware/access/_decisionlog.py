"""The decision log read back: the records of ``iam_middleware.decisions`` (one JSON object a line) that decided an
action on a resource, as ``policy generate`` and ``access unused`` need them (docs/access.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from .._json import JSONError, loads

__all__ = ["DENIED", "LogFormatError", "Used", "parse_time", "read_log"]

#: The outcomes of a request the policies refused (``Denied``: a refusal with no decision object).
DENIED = frozenset({"ExplicitlyDenied", "ImplicitlyDenied", "Denied"})


class LogFormatError(ValueError):
    """A line of the decision log that is not a JSON object; the message names the line."""


@dataclass(frozen=True, slots=True)
class Used:
    """One decided request: who, which action on which resource, allowed or not, and when."""

    principal: str
    action: str
    resource: str
    allowed: bool
    #: The route's declared resource, placeholders unfilled (None in records written before it was logged).
    pattern: str | None
    time: datetime | None
    credential: str | None
    access_key_id: str | None = None
    #: The statements that allowed it, as (policy type, policy, statement index): what ``policy generate`` reads
    #: the original policies' conditions from.
    statements: tuple[tuple[str, str, int], ...] = ()


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; one without a zone is UTC (the log's own times are UTC)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def read_log(lines: Iterable[str], *, since: datetime | None = None) -> list[Used]:
    """The allowed and denied decisions of the log, in its order. Records with no action or resource (a refused
    credential, a public route) say nothing about permissions and are skipped; with ``since``, so are records before
    it and records without a time (they cannot be placed in the window)."""
    found: list[Used] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = loads(line)
        except JSONError as exc:
            raise LogFormatError(f"line {number}: not a JSON record ({exc})") from None
        if not isinstance(record, dict):
            raise LogFormatError(f"line {number}: not a JSON object")
        used = _used(record, number)
        if used is None or (since is not None and (used.time is None or used.time < since)):
            continue
        found.append(used)
    return found


def _used(record: dict[str, object], number: int) -> Used | None:
    principal, action, resource, outcome = (record.get(key) for key in ("principal", "action", "resource", "decision"))
    if not (isinstance(principal, str) and isinstance(action, str) and isinstance(resource, str)):
        return None
    if outcome != "Allowed" and outcome not in DENIED:
        return None
    stamp = record.get("time")
    try:
        moment = parse_time(stamp) if isinstance(stamp, str) else None
    except ValueError:
        raise LogFormatError(f"line {number}: time {stamp!r} is not ISO 8601") from None
    pattern = record.get("resource_pattern")
    credential, key = record.get("credential"), record.get("access_key_id")
    matched = record.get("statements")
    statements = tuple((str(item.get("type")), str(item.get("policy")), item["statement"])
                       for item in (matched if isinstance(matched, list) else ())
                       if isinstance(item, dict) and isinstance(item.get("statement"), int))
    return Used(principal, action, resource, outcome == "Allowed", pattern if isinstance(pattern, str) else None,
                moment, credential if isinstance(credential, str) else None, key if isinstance(key, str) else None,
                statements)
