"""``iam-middleware policy generate --log decisions.jsonl --principal ARN [--since TIME]``: least privilege from the
decision log.

Writes the smallest readable identity policy that allows what the principal was allowed and did in the log (from
``--since``, an ISO 8601 time, on): actions grouped per service, a resource generalized to its route's resource
pattern only where ids varied, and never over a resource the principal was denied (the rule: docs/access.md). With
``--directory``, the conditions the principal's own policies required of every allowed request of an action (MFA,
a source range, secure transport) are kept on it. The policy is validated; linter findings and requests the log
shows both allowed and denied go to standard error. Exit 0 with a policy, 1 when the principal was allowed nothing in
the window, 2 when the log or the directory cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from ..access._decisionlog import LogFormatError, Used, parse_time, read_log
from ..access._generate import generate_policy, identity_statements
from ._access import ReportError, load_iam
from ._output import emit

__all__ = ["add_parser", "load_log", "since_time"]


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("policy", help="policies from what the decision log shows")
    actions = parser.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")
    generate = actions.add_parser("generate", help="least privilege for one principal from the decision log",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    generate.add_argument("--log", required=True, metavar="FILE",
                          help="the decision log, one JSON record a line (iam_middleware.decisions)")
    generate.add_argument("--principal", required=True, metavar="ARN", help="the principal's ARN, as logged")
    generate.add_argument("--directory", metavar="FILE",
                          help="the directory whose policies allowed the logged requests: their conditions are kept")
    add_since(generate)
    generate.add_argument("--output", metavar="FILE", help="write the policy to FILE instead of standard output")
    generate.set_defaults(run=run)


def add_since(parser: argparse.ArgumentParser) -> None:
    """The ``--since`` option the log-reading commands share."""
    parser.add_argument("--since", metavar="TIME",
                        help="only records at or after this ISO 8601 time (UTC when it names no zone)")


def since_time(parser: argparse.ArgumentParser, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        parser.error(f"--since: {text!r} is not an ISO 8601 time")


def load_log(path: str, since: datetime | None) -> list[Used] | None:
    """The log's decided requests, or None once it is said why the log cannot be read."""
    try:
        with Path(path).open(encoding="utf-8") as lines:
            return read_log(lines, since=since)
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
    except LogFormatError as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
    return None


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    records = load_log(args.log, since_time(parser, args.since))
    if records is None:
        return 2
    statements = None
    if args.directory is not None:
        try:
            iam = load_iam(args.directory)
        except ReportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        statements = identity_statements(iam.snapshot, args.principal)
        if statements is None:
            print(f"note: {args.principal} is not in {args.directory}; the policy keeps no conditions",
                  file=sys.stderr)
    generated = generate_policy(records, args.principal, statements=statements)
    if generated is None:
        window = f" since {args.since}" if args.since else ""
        print(f"error: {args.principal} was allowed nothing in {args.log}{window}", file=sys.stderr)
        return 1
    for action, resource in generated.conflicts:
        print(f"note: {action} on {resource} was both allowed and denied (a condition on the request decided); "
              "the policy allows it", file=sys.stderr)
    for action, resource in generated.guarded:
        print(f"note: {action} on {resource} was both allowed and denied; the policy allows it under the conditions "
              "the original policies required", file=sys.stderr)
    for issue in generated.findings:
        print(f"lint: {issue.location or '(document)'}: {issue.severity.value}: {issue.message}", file=sys.stderr)
    text = json.dumps(generated.document, indent=2) + "\n"
    return emit(text, args.output)
