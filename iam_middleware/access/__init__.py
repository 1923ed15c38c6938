"""Who can do what: the access report (every principal against every route), by partial evaluation of the
directory's policies with the request's unknowns left open, and list filtering (``resource_filter``: the rows of a
listing a principal may see, as a filter; ``iam_middleware.access.sqlalchemy.where`` makes it a ``WHERE`` clause).
Sans-IO: it reads a loaded directory and route list.
"""

from __future__ import annotations

from ._filter import (
    AllOf,
    AnyOf,
    AttributeCondition,
    Expression,
    Glob,
    IdMatches,
    Not,
    ResourceFilter,
    UnsupportedFilter,
    Wildcard,
    resource_filter,
)
from ._html import render_html
from ._knowledge import Knowledge
from ._partial import Candidate, Residual, partial_decide
from ._render import render_csv, render_json, render_table
from ._report import AccessReport, Cell, build_report
from ._routes import RouteSpec
from ._subjects import Subject, subjects_of

__all__ = [
    "AccessReport",
    "AllOf",
    "AnyOf",
    "AttributeCondition",
    "Candidate",
    "Cell",
    "Expression",
    "Glob",
    "IdMatches",
    "Knowledge",
    "Not",
    "Residual",
    "ResourceFilter",
    "RouteSpec",
    "Subject",
    "UnsupportedFilter",
    "Wildcard",
    "build_report",
    "partial_decide",
    "render_csv",
    "render_html",
    "render_json",
    "render_table",
    "resource_filter",
    "subjects_of",
]
