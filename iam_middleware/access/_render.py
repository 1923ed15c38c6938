"""The access report as a terminal table (routes by principals, conditions as numbered notes), JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..routing import Permission
from ._report import AccessReport, Cell
from ._routes import RouteSpec

__all__ = ["cell_dict", "render_csv", "render_json", "render_table"]

_CSV_FIELDS = ("principal", "kind", "method", "path", "action", "resource", "outcome", "decision", "condition",
               "keys", "ids")


def _action(route: RouteSpec) -> str:
    requirement = route.requirement
    return requirement.action if isinstance(requirement, Permission) else "(public)"


def cell_dict(cell: Cell) -> dict[str, Any]:
    """One cell as plain data: who, which route, the outcome and what a Conditional one depends on."""
    residual = cell.residual
    return {
        "principal": cell.subject.name,
        "kind": cell.subject.kind,
        "method": cell.route.method,
        "path": cell.route.path,
        "action": _action(cell.route),
        "resource": cell.resource if residual is not None else None,
        "outcome": cell.outcome,
        "decision": cell.decision.value if cell.decision is not None else None,
        "when": cell.when,
        "unless": cell.unless,
        "condition": cell.summary if cell.outcome == "Conditional" else None,
        "keys": list(residual.keys) if residual is not None else [],
        "ids": list(residual.ids) if residual is not None else [],
        "statements": [c.as_dict() for c in residual.candidates] if residual is not None else [],
    }


def render_json(report: AccessReport) -> str:
    """One JSON object; each principal, route and cell on a line of its own (a report has thousands of cells, and
    the compact form is both fast to write and easy to grep)."""
    parts: dict[str, list[Any]] = {
        "principals": [{"name": s.name, "kind": s.kind, "arn": s.principal.arn} for s in report.subjects],
        "routes": [{"method": r.method, "path": r.path, "action": _action(r),
                    "resource": r.requirement.resource if isinstance(r.requirement, Permission) else None,
                    "public": r.public} for r in report.routes],
        "undeclared": [route.label for route in report.undeclared],
        "cells": [cell_dict(cell) for cell in report.cells],
    }
    # default=str: a policy written as a TOML table may hold TOML dates, which its statement's JSON shows as text.
    fields = [json.dumps(name) + ": [" + ",".join(f"\n  {json.dumps(item, default=str)}" for item in items)
              + ("\n ]" if items else "]") for name, items in parts.items()]
    return "{\n " + ",\n ".join(fields) + "\n}\n"


def render_csv(report: AccessReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_FIELDS)
    for cell in report.cells:
        row = cell_dict(cell)
        writer.writerow([row["principal"], row["kind"], row["method"], row["path"], row["action"],
                         row["resource"] or "", row["outcome"], row["decision"] or "", row["condition"] or "",
                         " ".join(row["keys"]), " ".join(row["ids"])])
    return out.getvalue()


def _label(cell: Cell, notes: dict[str, int]) -> str:
    outcome = cell.outcome
    if outcome == "Conditional":
        number = notes.setdefault(cell.summary, len(notes) + 1)
        return f"Conditional [{number}]"
    if outcome == "Denied" and cell.decision is not None and cell.decision.value == "ExplicitlyDenied":
        return "Denied (explicit)"
    return outcome


def render_table(report: AccessReport) -> str:
    """Routes down, principals across; a Conditional cell points to a note that says what it depends on."""
    notes: dict[str, int] = {}
    columns = [s.name for s in report.subjects]
    rows: list[list[str]] = [["ROUTE", "ACTION", *columns]]
    width = len(columns)
    for start in range(0, len(report.cells), max(width, 1)):
        cells = report.cells[start:start + width]
        route = cells[0].route
        rows.append([route.label, _action(route), *(_label(cell, notes) for cell in cells)])
    sizes = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(text.ljust(size) for text, size in zip(row, sizes, strict=True)).rstrip() for row in rows]
    if notes:
        lines.append("")
        lines.extend(f"[{number}] {text}" for text, number in notes.items())
    if report.undeclared:
        lines.append("")
        lines.append("Undeclared (denied to everyone): " + ", ".join(route.label for route in report.undeclared))
    return "\n".join(lines) + "\n"
