"""``iam-middleware validate FILE…``: errors and linter findings for policy documents.

With ``--directory`` (and ``--app``), also a warning for each action and resource no route of the app can match,
with the nearest real name (docs/access.md); those warnings never fail validation, even with ``--strict``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._exceptions import PolicyValidationError
from ..access._catalog import UNKNOWN_NAME, Catalog, catalog_of, declares_any, unknown_names
from ..policy import PolicyIssue, PolicyKind, Severity, parse_policy
from ..policy._lint import lint_policy
from ._access import ReportError, load_iam, load_routes

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("validate", help="validate policy documents", description=__doc__)
    parser.add_argument("files", nargs="+", metavar="FILE", help="policy documents (JSON); - reads standard input")
    parser.add_argument("--kind", choices=[k.value for k in PolicyKind], default="identity",
                        help="what the documents are for (default: identity)")
    parser.add_argument("--strict", action="store_true", help="warnings fail validation too (suggestions never do)")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--directory", metavar="FILE",
                        help="warn about names no route can match: the routes of --app, else this file's [[routes]]")
    parser.add_argument("--app", metavar="MODULE:NAME", help="with --directory: the app whose routes to read")
    parser.set_defaults(run=run)


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as handle:
        return handle.read()


def check(text: bytes, kind: str, source: str,
          catalog: Catalog | None = None) -> tuple[list[PolicyIssue], list[PolicyIssue]]:
    """(errors, findings) for one document; with a catalog, its unknown names among the findings."""
    try:
        policy = parse_policy(text, kind=kind, policy_id=source)
    except PolicyValidationError as exc:
        return exc.issues, []
    return [], lint_policy(policy) + (unknown_names(policy, catalog) if catalog is not None else [])


def _catalog(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Catalog | None:
    if args.directory is None:
        if args.app is not None:
            parser.error("--app needs --directory (the directory the app's routes are read with)")
        return None
    try:
        iam = load_iam(args.directory)
        routes = load_routes(iam, args.app)
    except ReportError as exc:
        parser.error(str(exc))
    return catalog_of(routes) if declares_any(routes) else None


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    results: list[dict[str, Any]] = []
    failed = False
    catalog = _catalog(args, parser)
    for path in args.files:
        try:
            text = _read(path)
        except OSError as exc:
            parser.error(f"cannot read {path}: {exc.strerror or exc}")
        errors, findings = check(text, args.kind, path, catalog)
        # --strict fails on warnings (security or not); suggestions and unknown names never fail a document.
        warned = any(issue.severity is not Severity.SUGGESTION and issue.code != UNKNOWN_NAME for issue in findings)
        valid = not errors and not (args.strict and warned)
        failed |= not valid
        results.append({
            "file": path,
            "valid": valid,
            "errors": [issue.as_dict() for issue in errors],
            "findings": [issue.as_dict() for issue in findings],
        })
        if args.format == "text":
            for issue in errors + findings:
                label = "error" if issue.severity is Severity.ERROR else issue.severity.value.replace("_", " ")
                where = issue.location or "(document)"
                print(f"{path}: {where}: {label}: {issue.message}")
            if not errors and not findings:
                print(f"{path}: valid")
    if args.format == "json":
        json.dump({"valid": not failed, "files": results}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 1 if failed else 0
