"""``iam-middleware access diff OLD NEW``: the access a change to the directory adds and removes, for CI.

OLD and NEW are directory files, or ``REV:path`` for a file as it was at a git revision (``HEAD~1:iam.toml``,
``origin/main:config/iam.toml``). Both are reported against the same routes (``--app``, else each file's own
``[[routes]]``), cell by cell. Each finding is a principal's access to a route, before and after, with a request
that shows it (the principal, method, path, the context it needs, and a ``curl`` line against a server like the
demo's). Access that is new fails the check (exit 1) unless ``--allow-new``, or unless the finding's line
(``principal METHOD /path``) is in the ``--allow-list`` file of reviewed findings. Exit 0 when nothing new is
granted, 1 when something is (or ``--check-not-granted`` finds an action granted in NEW), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from .._iam import IAM
from ..access._diff import Finding, diff_reports
from ..access._replay import Replay, replay
from ._access import ReportError, add_common, load_iam, load_routes, not_granted, report_of
from ._revisions import RevisionError, materialize

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("diff", help="the access a change adds and removes (exit 1 on new access)",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", metavar="OLD", help="the directory before: a file, or REV:path")
    parser.add_argument("new", metavar="NEW", help="the directory after: a file, or REV:path")
    add_common(parser)
    parser.add_argument("--allow-new", action="store_true", help="report new access without failing")
    parser.add_argument("--allow-list", metavar="FILE",
                        help="reviewed findings, one 'principal METHOD /path' a line (# comments): these pass")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="the server the curl lines call")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.set_defaults(run=run)


def _allow_list(path: str | None) -> set[str]:
    if path is None:
        return set()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot read the allow-list {path}: {exc.strerror or exc}") from None
    return {line.split("#", 1)[0].strip() for line in text.splitlines()} - {""}


def _replay(finding: Finding, iam: IAM, args: argparse.Namespace, directory: str) -> Replay | None:
    if finding.witness is None:
        return None
    return replay(finding.cell, finding.witness, iam.settings, base_url=args.base_url, directory=directory)


_MARK = {"added": "+", "removed": "-", "changed": "~"}


def _text(finding: Finding, shown: Replay | None, reviewed: bool) -> list[str]:
    route = finding.cell.route
    action = getattr(route.requirement, "action", "(public)")
    lines = [f"{_MARK[finding.kind]} {finding.cell.subject.name}  {route.label}  {action}"
             + ("  (reviewed: in the allow-list)" if reviewed else ""),
             f"    before: {finding.before}", f"    after:  {finding.after}"]
    if shown is None:
        lines.append("    no request found that tells the two apart: review the conditions")
        return lines
    context = ", ".join(f"{key}={json.dumps(value)}" for key, value in shown.context.items()) or "no other keys"
    lines.append(f"    request: {shown.method} {shown.path} as {shown.principal} ({context})")
    lines.extend(f"      {command}" for command in shown.commands)
    if shown.botocore is not None:
        lines += ["      # or signed by botocore (boto3's signer):", f"      {shown.botocore}"]
    return lines


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        with tempfile.TemporaryDirectory(prefix="iam-access-diff-") as scratch:
            old_file = materialize(args.old, Path(scratch) / "old")
            new_file = materialize(args.new, Path(scratch) / "new")
            old_iam, new_iam = load_iam(old_file), load_iam(new_file)
            reviewed = _allow_list(args.allow_list)
            old = report_of(old_iam, load_routes(old_iam, args.app), [])
            new = report_of(new_iam, load_routes(new_iam, args.app), [])
            refused = not_granted(new_iam, args.check_not_granted, args.resource) if args.check_not_granted else []
    except (ReportError, RevisionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    findings = diff_reports(old, new)
    # The file a reader has at hand (for REV:path, the path): web identities' tokens are minted from it.
    directory = args.new if Path(args.new).is_file() else args.new.partition(":")[2]
    replays = [_replay(finding, new_iam if finding.kind != "removed" else old_iam, args, directory)
               for finding in findings]
    failing = [f for f in findings if f.grants and f.key not in reviewed]
    if args.format == "json":
        print(json.dumps({
            "old": args.old, "new": args.new,
            "findings": [{"kind": f.kind, "key": f.key, "principal": f.cell.subject.name, "method": f.cell.route.method,
                          "path": f.cell.route.path, "action": getattr(f.cell.route.requirement, "action", None),
                          "before": f.before, "after": f.after, "reviewed": f.key in reviewed,
                          "replay": shown.as_dict() if shown is not None else None}
                         for f, shown in zip(findings, replays, strict=True)],
            "not_granted": refused,
        }, indent=2))
    else:
        for finding, shown in zip(findings, replays, strict=True):
            print("\n".join(_text(finding, shown, finding.key in reviewed)))
        for line in refused:
            print(line)
        added = sum(1 for f in findings if f.grants)
        print(f"new access: {added} finding(s), {len(failing)} not reviewed; access removed: "
              f"{len(findings) - added} finding(s)")
    if refused:
        return 1
    return 1 if failing and not args.allow_new else 0
