"""Who can do what: the access report (every principal against every route), by partial evaluation of the
directory's policies with the request's unknowns left open. Sans-IO: it reads a loaded directory and route list.
"""

from __future__ import annotations

from ._html import render_html
from ._knowledge import Knowledge
from ._partial import Candidate, Residual, partial_decide
from ._render import render_csv, render_json, render_table
from ._report import AccessReport, Cell, build_report
from ._routes import RouteSpec
from ._subjects import Subject, subjects_of

__all__ = [
    "AccessReport",
    "Candidate",
    "Cell",
    "Knowledge",
    "Residual",
    "RouteSpec",
    "Subject",
    "build_report",
    "partial_decide",
    "render_csv",
    "render_html",
    "render_json",
    "render_table",
    "subjects_of",
]
