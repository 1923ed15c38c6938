"""Policy test files (TOML): what each case asks and expects, read and checked before anything runs.

```toml
directory = "../iam.toml"              # the directory file, relative to this file
app = "examples.starlette_app:app"     # optional: the app whose routes method + path cases go through

[[case]]
name = "alice reads an order"
principal = "alice"                    # as the access report names them: alice, role/partner, role/partner@idp
action = "orders:GetOrder"             # action + resource, or method + path
resource = "arn:app:orders::111122223333:order/42"
context = { "aws:SourceIp" = "10.1.2.3" }
expect = "Allowed"                     # Allowed, Denied, ImplicitlyDenied or ExplicitlyDenied
sid = "ReadOrders"                     # optional: a statement with this Sid decided
```

A mistake in a file (an unknown field, a missing one, a value of the wrong type, two cases of one name) is a
``CaseFileError`` naming the file, the case and the field, so a typo never turns into a test that passes.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["EXPECTATIONS", "Case", "CaseFile", "CaseFileError", "read_case_file"]

EXPECTATIONS = frozenset({"Allowed", "Denied", "ImplicitlyDenied", "ExplicitlyDenied"})
_TOP = frozenset({"directory", "app", "case"})
_CASE = frozenset({"name", "principal", "action", "resource", "method", "path", "context", "expect", "sid"})


class CaseFileError(ValueError):
    """A policy test file that cannot be read, or a case in it that is malformed."""


@dataclass(frozen=True, slots=True)
class Case:
    """One case: ``principal`` does ``action`` on ``resource`` (or sends ``method`` ``path``) with ``context``."""

    file: Path
    name: str
    principal: str
    expect: str
    action: str | None = None
    resource: str | None = None
    method: str | None = None
    path: str | None = None
    context: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    sid: str | None = None
    #: The directory and app the case's file names.
    directory: Path | None = None
    app: str | None = None

    @property
    def id(self) -> str:
        """``file::name``, as pytest names a test."""
        return f"{self.file.name}::{self.name}"


@dataclass(frozen=True, slots=True)
class CaseFile:
    """A test file: its cases, and the directory (and app) they run against."""

    path: Path
    directory: Path | None
    app: str | None
    cases: tuple[Case, ...]


def _text(entry: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = entry.get(key)
    if value is None:
        if required:
            raise CaseFileError(f"{where}: missing {key!r}")
        return None
    if not isinstance(value, str) or not value:
        raise CaseFileError(f"{where}: {key!r} must be a non-empty string")
    return value


def _context(entry: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    raw = entry.get("context", {})
    if not isinstance(raw, Mapping):
        raise CaseFileError(f"{where}: 'context' must be a table of condition keys")
    for key, value in raw.items():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (str, int, float, bool)) for v in values):
            raise CaseFileError(f"{where}: context key {key!r} must be a string, number, boolean or a list of them")
    return MappingProxyType(dict(raw))


def _case(path: Path, index: int, entry: Any, directory: Path | None, app: str | None) -> Case:
    where = f"{path}: case[{index}]"
    if not isinstance(entry, Mapping):
        raise CaseFileError(f"{where}: a case must be a table ([[case]])")
    name = _text(entry, "name", where, required=True)
    where = f"{path}: case {name!r}"
    unknown = sorted(set(entry) - _CASE)
    if unknown:
        raise CaseFileError(f"{where}: unknown field {unknown[0]!r} (a case takes {', '.join(sorted(_CASE))})")
    expect = _text(entry, "expect", where, required=True)
    if expect not in EXPECTATIONS:
        raise CaseFileError(f"{where}: 'expect' must be one of {', '.join(sorted(EXPECTATIONS))}, not {expect!r}")
    by_action = "action" in entry or "resource" in entry
    by_route = "method" in entry or "path" in entry
    if by_action == by_route:
        raise CaseFileError(f"{where}: give 'action' and 'resource', or 'method' and 'path'")
    sid = _text(entry, "sid", where)
    if sid is not None and expect in ("Denied", "ImplicitlyDenied"):
        raise CaseFileError(f"{where}: 'sid' names the deciding statement of an Allowed or ExplicitlyDenied case; "
                            "nothing decides an implicit deny")
    assert name is not None and expect is not None
    return Case(
        file=path, name=name, principal=str(_text(entry, "principal", where, required=True)), expect=expect,
        action=_text(entry, "action", where, required=by_action), resource=_text(entry, "resource", where,
                                                                              required=by_action),
        method=_text(entry, "method", where, required=by_route), path=_text(entry, "path", where, required=by_route),
        context=_context(entry, where), sid=sid, directory=directory, app=app,
    )


def read_case_file(path: Path) -> CaseFile:
    """Read and check one test file; raises CaseFileError."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CaseFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CaseFileError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise CaseFileError(f"{path}: unknown field {unknown[0]!r} (a test file takes directory, app and [[case]])")
    named = _text(data, "directory", str(path))
    directory = path.parent / named if named is not None else None
    app = _text(data, "app", str(path))
    entries = data.get("case")
    if not isinstance(entries, list) or not entries:
        raise CaseFileError(f"{path}: no cases (add [[case]] tables)")
    cases = tuple(_case(path, i, entry, directory, app) for i, entry in enumerate(entries))
    names = [case.name for case in cases]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise CaseFileError(f"{path}: two cases are named {twice[0]!r}")
    return CaseFile(path, directory, app, cases)
