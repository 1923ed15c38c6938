"""The access report as one self-contained HTML page (``--format html``, docs/access.md): the principal × route
matrix with a legend, filters and a details panel per cell.

The page asks nothing of any network: its style and script are inline, and its Content-Security-Policy allows
exactly those two by their SHA-256 hashes (nothing else may load or connect). Every name, path and policy text is
data, escaped where it is written: HTML-escaped in the markup, and in the embedded JSON with ``<``, ``>`` and ``&``
as ``\\u`` escapes so no value can close the ``<script>`` element that holds it. The script reads that JSON and
builds the details panel with text nodes only.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from html import escape
from importlib import resources
from typing import Any

from ._render import _action, _label, cell_dict
from ._report import AccessReport, Cell

__all__ = ["render_html"]

_ASSETS = resources.files(__package__) / "_html_assets"
#: (CSS class, label, meaning) of each outcome, in the legend's order; the meanings are docs/access.md's.
_LEGEND = (
    ("allowed", "Allowed", "every request of this principal to this route is allowed, whatever it carries"),
    ("conditional", "Conditional", "some are: the note and the cell's details say which"),
    ("denied", "Denied", "none is: no statement allows it"),
    ("explicit", "Denied (explicit)", "none is: a Deny statement refuses every one"),
    ("public", "Public", "the route is public: no credential, no policy"),
)
#: A shape beside each label, so no outcome is told by its colour alone.
_MARKS = {"allowed": "\u2713", "conditional": "\u25d0", "denied": "\u2715", "explicit": "\u2298", "public": "\u25cb"}


def _asset(name: str) -> str:
    return _ASSETS.joinpath(name).read_text(encoding="utf-8")


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _kind(cell: Cell) -> str:
    """The cell's legend class."""
    outcome = cell.outcome
    if outcome == "Denied" and cell.decision is not None and cell.decision.value == "ExplicitlyDenied":
        return "explicit"
    return outcome.lower()


def _script_json(data: Any) -> str:
    """JSON safe inside ``<script>``: no ``<``, ``>`` or ``&`` is left to end the element or open a comment."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


#: What the details panel shows of a cell, as ``--format json`` gives it.
_CELL_FIELDS = ("resource", "outcome", "decision", "when", "unless", "condition", "keys", "ids")


class _Statements:
    """Each statement that takes part in some cell, numbered once (it takes part in many; its JSON is long)."""

    def __init__(self) -> None:
        self.listed: list[dict[str, Any]] = []
        self._numbers: dict[tuple[str, str, int, str], int] = {}
        self._texts: dict[int, str] = {}

    def refs(self, cell: Cell) -> list[tuple[int, bool]]:
        """(number, outright) of each statement that takes part in ``cell``."""
        found = []
        for candidate in cell.residual.candidates if cell.residual is not None else ():
            text = self._texts.get(id(candidate.raw))
            if text is None:
                # default=str: a policy written as a TOML table may hold TOML dates.
                text = self._texts[id(candidate.raw)] = json.dumps(dict(candidate.raw), indent=2, default=str)
            key = (candidate.layer, candidate.policy, candidate.index, text)
            number = self._numbers.get(key)
            if number is None:
                number = self._numbers[key] = len(self.listed)
                self.listed.append({"type": candidate.layer, "policy": candidate.policy, "statement": candidate.index,
                                    "sid": candidate.sid, "effect": candidate.effect, "text": text})
            found.append((number, candidate.outright))
        return found


def _data(report: AccessReport, labels: list[str]) -> dict[str, Any]:
    """The JSON the details panel reads: principals, routes, statements, and each cell by their indexes."""
    statements = _Statements()
    width = max(len(report.subjects), 1)
    cells = []
    for number, (cell, label) in enumerate(zip(report.cells, labels, strict=True)):  # route by route
        entry = cell_dict(cell)
        cells.append({**{name: entry[name] for name in _CELL_FIELDS}, "label": label, "p": number % width,
                      "r": number // width, "statements": statements.refs(cell)})
    return {
        "principals": [{"name": s.name, "kind": s.kind, "arn": s.principal.arn} for s in report.subjects],
        "routes": [{"label": r.label, "action": _action(r)} for r in report.routes],
        "statements": statements.listed,
        "cells": cells,
    }


def _legend(counts: Counter[str]) -> str:
    items = "".join(
        f'<li><span class="swatch o-{css}" aria-hidden="true">{_MARKS[css]}</span> <strong>{escape(label)}</strong>'
        f' <span class="count">({counts[css]})</span>: {escape(meaning)}</li>'
        for css, label, meaning in _LEGEND)
    return f'<section aria-labelledby="legend-title"><h2 id="legend-title">Legend</h2><ul class="legend">{items}</ul>' \
           "</section>"


def _options(values: list[str]) -> str:
    return "".join(f'<option value="{escape(v)}">{escape(v)}</option>' for v in values)


def _filters(report: AccessReport) -> str:
    actions = sorted({_action(route) for route in report.routes})
    names = "".join(f'<option value="{escape(s.name)}"></option>' for s in report.subjects)
    outcomes = _options(["Allowed", "Conditional", "Denied", "Public"])
    return (
        '<form id="filters" role="search" aria-label="Filter the report">'
        '<label>Principal <input type="search" id="f-principal" list="principal-names" autocomplete="off"></label>'
        f'<datalist id="principal-names">{names}</datalist>'
        '<label>Route <input type="search" id="f-route" autocomplete="off"></label>'
        f'<label>Action <select id="f-action"><option value="">any</option>{_options(actions)}</select></label>'
        f'<label>Outcome <select id="f-outcome"><option value="">any</option>{outcomes}</select></label>'
        '<button type="button" id="f-clear">Show all</button>'
        '<p id="shown" role="status" aria-live="polite"></p>'
        "</form>"
    )


def _matrix(report: AccessReport, labels: list[str]) -> str:
    heads = "".join(f'<th scope="col" data-p="{n}">{escape(s.name)}<span class="kind">{escape(s.kind)}</span></th>'
                    for n, s in enumerate(report.subjects))
    rows = []
    width = len(report.subjects)
    for r, route in enumerate(report.routes):
        tds = []
        for p in range(width):
            number = r * width + p
            cell, label = report.cells[number], labels[number]
            css = _kind(cell)
            name = f"{label}: {cell.subject.name} on {route.label}"
            tds.append(f'<td data-p="{p}" data-outcome="{cell.outcome}" class="o-{css}">'
                       f'<button type="button" data-cell="{number}" aria-haspopup="dialog" aria-label="{escape(name)}">'
                       f'<span aria-hidden="true">{_MARKS[css]}</span> {escape(label)}</button></td>')
        rows.append(f'<tr data-r="{r}"><th scope="row">{escape(route.label)}</th><td class="action">'
                    f'{escape(_action(route))}</td>{"".join(tds)}</tr>')
    return (
        '<div class="matrix" role="region" aria-labelledby="matrix-title" tabindex="0">'
        '<table id="matrix"><caption id="matrix-title">Every principal (columns) against every route (rows). '
        "Select a cell for the statements that decide it and its conditions.</caption>"
        f'<thead><tr><th scope="col">Route</th><th scope="col">Action</th>{heads}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table></div>'
    )


def _notes(notes: dict[str, int], report: AccessReport) -> str:
    parts = []
    if notes:
        items = "".join(f'<li value="{number}">{escape(text)}</li>' for text, number in notes.items())
        parts.append(f'<section aria-labelledby="notes-title"><h2 id="notes-title">Conditions</h2>'
                     f'<ol class="notes">{items}</ol></section>')
    if report.undeclared:
        items = "".join(f"<li>{escape(route.label)}</li>" for route in report.undeclared)
        parts.append('<section aria-labelledby="undeclared-title"><h2 id="undeclared-title">Undeclared routes</h2>'
                     f"<p>They declare nothing, so they are denied to everyone:</p><ul>{items}</ul></section>")
    return "".join(parts)


_DIALOG = (
    '<dialog id="details" aria-labelledby="details-title">'
    '<div class="dialog-head"><h2 id="details-title"></h2>'
    '<button type="button" id="details-close">Close</button></div>'
    '<div id="details-body"></div></dialog>'
)


def render_html(report: AccessReport) -> str:
    """The whole page, one string."""
    notes: dict[str, int] = {}
    labels = [_label(cell, notes) for cell in report.cells]
    style, script = _asset("report.css"), _asset("report.js")
    policy = (f"default-src 'none'; script-src {_hash(script)}; style-src {_hash(style)}; base-uri 'none'; "
              "form-action 'none'")
    title = f"Access report: {len(report.subjects)} principals, {len(report.routes)} routes"
    counts = Counter(_kind(cell) for cell in report.cells)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{escape(policy)}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{style}</style></head>\n<body>"
        f"<header><h1>Who can do what</h1><p>{escape(title)}, by partial evaluation of the directory's policies "
        "(<code>iam-middleware access --format html</code>).</p></header>\n<main>"
        f"{_legend(counts)}{_filters(report)}\n{_matrix(report, labels)}\n{_notes(notes, report)}</main>"
        f"{_DIALOG}\n"
        f'<script type="application/json" id="report-data">{_script_json(_data(report, labels))}</script>\n'
        f"<script>{script}</script>\n</body></html>\n"
    )
