"""``iam-middleware access unused --directory iam.toml --log decisions.jsonl [--since TIME]``: what is not used.

Principals of the directory with no decided request in the log (from ``--since`` on), active access keys that signed
no request, and permissions (a declared route's action and resource that a principal's policies allow, or allow on a
condition) that no allowed request of that principal used: candidates to remove, as the least-privilege advice to
review unused credentials says (docs/access.md). Routes are the app's (``--app``) or the directory's ``[[routes]]``.
Exit 0 when the report is printed, 2 when the directory, the app or the log cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..access._unused import UnusedReport, find_unused
from ._access import ReportError, load_iam, load_routes, report_of
from ._generate import add_since, load_log, since_time

__all__ = ["add_parser", "render_table"]


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("unused", help="principals, access keys and permissions the decision log never used",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--directory", required=True, metavar="FILE", help="the directory file (iam.toml)")
    parser.add_argument("--log", required=True, metavar="FILE",
                        help="the decision log, one JSON record a line (iam_middleware.decisions)")
    parser.add_argument("--app", metavar="MODULE:NAME", help="the app whose routes to read; default: [[routes]]")
    add_since(parser)
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.set_defaults(run=run)


def as_dict(unused: UnusedReport) -> dict[str, Any]:
    return {
        "principals": list(unused.principals),
        "access_keys": [{"user": key.user, "access_key_id": key.access_key_id} for key in unused.access_keys],
        "permissions": [{"principal": p.principal, "action": p.action, "resource": p.resource,
                         "routes": list(p.routes), "outcome": p.outcome} for p in unused.permissions],
    }


def render_table(unused: UnusedReport) -> str:
    """One line per unused thing: what, whose, and the detail."""
    rows = [("UNUSED", "PRINCIPAL", "DETAIL")]
    rows += [("principal", name, "no request in the log") for name in unused.principals]
    rows += [("access key", key.user, key.access_key_id) for key in unused.access_keys]
    rows += [("permission", p.principal, f"{p.action} on {p.resource} ({', '.join(p.routes)})"
              + ("" if p.outcome == "Allowed" else " [conditional]")) for p in unused.permissions]
    if len(rows) == 1:
        return "nothing unused: every principal, access key and permission was used\n"
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "".join(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}".rstrip() + "\n" for row in rows)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    since = since_time(parser, args.since)
    try:
        iam = load_iam(args.directory)
        report = report_of(iam, load_routes(iam, args.app), [])
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    records = load_log(args.log, since)
    if records is None:
        return 2
    unused = find_unused(report, iam.snapshot, records)
    if args.format == "json":
        sys.stdout.write(json.dumps(as_dict(unused), indent=2) + "\n")
    else:
        sys.stdout.write(render_table(unused))
    return 0
