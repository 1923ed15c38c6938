"""``iam-middleware access --directory iam.toml [--app module:app]``: who can call which route.

Every principal of the directory (each user; a session of each role; a session of each web-identity provider's
role) against every declared route of the app (or, without ``--app``, the directory's ``[[routes]]``): Allowed,
Denied, Conditional (with the condition keys and ids the answer depends on, and what they must be) or Public, by
partial evaluation of the directory's own policies (docs/access.md). ``--format html`` makes it one self-contained
page for a browser, ``--output FILE`` writes it to a file. ``iam-middleware access diff OLD NEW`` compares two
directories; ``iam-middleware access unused`` lists what the decision log shows unused.

``--check-not-granted ACTION[,...]`` prints, instead of the report, each principal that may perform one of the
actions (on ``--resource``, or any resource), and exits 1 if there is one. Exit 0 when the report is printed (or
nothing listed is granted), 2 when the directory or the app cannot be read (or the --output file written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._exceptions import ConfigurationError
from .._iam import IAM
from ..access import (
    AccessReport,
    RouteSpec,
    build_report,
    render_csv,
    render_html,
    render_json,
    render_table,
    subjects_of,
)
from ..access._grants import granted
from ..access._routes import routes_of_table
from ._check import _load_app, app_routes
from ._output import emit

__all__ = ["ReportError", "add_parser", "load_report", "not_granted"]

_RENDER = {"table": render_table, "json": render_json, "csv": render_csv, "html": render_html}


class ReportError(Exception):
    """A directory, an app or a principal that cannot be read or found; the message says which."""


def add_parser(commands: Any) -> None:
    from . import _access_diff, _unused  # here, not at the top: they build on this module's helpers

    parser = commands.add_parser("access", help="who can call which route: every principal against every route",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--directory", metavar="FILE", help="the directory file (iam.toml)")
    add_common(parser)
    parser.add_argument("--principal", action="append", default=[], metavar="NAME",
                        help="only this principal (alice, role/partner, role/partner@idp.example); repeatable")
    parser.add_argument("--format", choices=sorted(_RENDER), default="table",
                        help="html: one self-contained page to open in a browser (docs/access.md)")
    parser.add_argument("--output", metavar="FILE", help="write the report to FILE instead of standard output")
    parser.set_defaults(run=run)
    subcommands = parser.add_subparsers(dest="access_command", metavar="COMMAND")
    _access_diff.add_parser(subcommands)
    _unused.add_parser(subcommands)


def add_common(parser: argparse.ArgumentParser) -> None:
    """The options ``access`` and ``access diff`` share."""
    parser.add_argument("--app", metavar="MODULE:NAME",
                        help="the app whose routes to report (Starlette, FastAPI, IAMMiddleware or Flask); "
                             "default: the directory's [[routes]]")
    parser.add_argument("--check-not-granted", metavar="ACTION[,ACTION...]",
                        help="fail (exit 1) if any principal may perform one of these actions")
    parser.add_argument("--resource", metavar="ARN",
                        help="with --check-not-granted: on this resource ({account} and {id} placeholders allowed; "
                             "default: any resource)")


def load_iam(directory: str | Path) -> IAM:
    try:
        return IAM.from_file(directory)
    except ConfigurationError as exc:
        raise ReportError(f"cannot load the directory {str(directory)!r}:\n{exc}") from None


def load_routes(iam: IAM, app: str | None) -> list[RouteSpec]:
    """The app's routes as its shell reads them, or the directory's ``[[routes]]`` (no app, or no router)."""
    if app is not None:
        try:
            found = app_routes(_load_app(app), iam)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ReportError(f"cannot load the app {app!r}: {exc}") from None
        except ConfigurationError as exc:
            raise ReportError(f"the app's routes: {exc}") from None
        if found is not None:
            return [RouteSpec(method, path, requirement) for method, path, requirement in found]
    return routes_of_table(iam.rules)


def report_of(iam: IAM, routes: list[RouteSpec], principals: list[str]) -> AccessReport:
    subjects = subjects_of(iam.snapshot, iam.settings.web_identity)
    if principals:
        names = {subject.name for subject in subjects}
        unknown = [name for name in principals if name not in names]
        if unknown:
            raise ReportError(f"no principal named {unknown[0]!r} (the directory has: {', '.join(sorted(names))})")
        subjects = [subject for subject in subjects if subject.name in principals]
    return build_report(subjects, routes, iam.settings)


def load_report(directory: str | Path, app: str | None, principals: list[str]) -> AccessReport:
    """The access report of a directory file against an app's routes (or its own ``[[routes]]``)."""
    iam = load_iam(directory)
    return report_of(iam, load_routes(iam, app), principals)


def not_granted(iam: IAM, actions: str, resource: str | None) -> list[str]:
    """One line per principal that may perform one of ``actions`` (comma-separated); empty when none may."""
    wanted = [action.strip() for action in actions.split(",") if action.strip()]
    try:
        cells = granted(subjects_of(iam.snapshot, iam.settings.web_identity), wanted, resource, iam.settings)
    except ConfigurationError as exc:
        raise ReportError(f"--check-not-granted: {exc}") from None
    return [f"granted: {action} on {cell.resource if resource else 'any resource'} to {cell.subject.name} "
            f"({cell.summary})" for action, cell in cells]


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.directory:
        parser.error("give --directory FILE (the directory file to report on), or: access diff OLD NEW")
    try:
        iam = load_iam(args.directory)
        if args.check_not_granted:
            granted_lines = not_granted(iam, args.check_not_granted, args.resource)
            print("\n".join(granted_lines) if granted_lines else f"not granted to anyone: {args.check_not_granted}")
            return 1 if granted_lines else 0
        report = report_of(iam, load_routes(iam, args.app), args.principal)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = _RENDER[args.format](report)
    return emit(text, args.output)
