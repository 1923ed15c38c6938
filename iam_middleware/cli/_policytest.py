"""``iam-middleware test PATH...``: run policy test files (TOML cases: principal, action and resource or method and
path, context, expected decision, optionally the deciding Sid; docs/access.md).

PATH is a file or a folder (searched for ``*.toml``). The report reads like pytest's (a dot per passing case, the
failures with the decision's explanation, a summary); ``--format junit`` writes JUnit XML for CI. Exit 0 when every
case passes, 1 when one fails, 2 when a file cannot be read or run (a malformed case, an unknown principal, a
directory that does not load): all files are read and checked before any case runs.
"""

from __future__ import annotations

import argparse
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

from ..policytest import CaseFile, CaseFileError, Result, Runner, case_files
from ..policytest._cases import read_case_file

__all__ = ["add_parser"]

_WIDTH = 80


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("test", help="run policy test files (TOML cases and their expected decisions)",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="test files, or folders of them")
    parser.add_argument("--directory", metavar="FILE", help="the directory file for test files that name none")
    parser.add_argument("--format", choices=["text", "junit"], default="text")
    parser.add_argument("-v", "--verbose", action="store_true", help="a line per case")
    parser.set_defaults(run=run)


def _rule(title: str, fill: str = "=") -> str:
    text = f" {title} "
    left = max(3, (_WIDTH - len(text)) // 2)
    return f"{fill * left}{text}{fill * max(3, _WIDTH - left - len(text))}"


def _summary(results: list[Result], seconds: float) -> str:
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    parts = ([f"{failed} failed"] if failed else []) + [f"{passed} passed"]
    return _rule(", ".join(parts) + f" in {seconds:.2f}s")


def _text(runs: list[tuple[CaseFile, list[Result]]], seconds: float, verbose: bool) -> str:
    lines: list[str] = []
    for case_file, results in runs:
        if verbose:
            lines.extend(f"{case_file.path}::{r.case.name} {'PASSED' if r.passed else 'FAILED'}" for r in results)
        else:
            lines.append(f"{case_file.path} " + "".join("." if r.passed else "F" for r in results))
    failures = [r for _, results in runs for r in results if not r.passed]
    if failures:
        lines += ["", _rule("FAILURES")]
        for result in failures:
            lines += [_rule(result.case.id, "_"), f"{result.case.principal}: {_request(result)}", result.detail, ""]
    lines.append(_summary([r for _, results in runs for r in results], seconds))
    return "\n".join(lines) + "\n"


def _request(result: Result) -> str:
    case = result.case
    if case.action is not None:
        return f"{case.action} on {case.resource}"
    return f"{case.method} {case.path}"


def _junit(runs: list[tuple[CaseFile, list[Result]]], seconds: float) -> str:
    every = [r for _, results in runs for r in results]
    root = ElementTree.Element("testsuites", name="iam-middleware test", tests=str(len(every)),
                               failures=str(sum(not r.passed for r in every)), errors="0", time=f"{seconds:.3f}")
    for case_file, results in runs:
        suite = ElementTree.SubElement(
            root, "testsuite", name=str(case_file.path), tests=str(len(results)),
            failures=str(sum(not r.passed for r in results)), errors="0",
            time=f"{sum(r.seconds for r in results):.3f}")
        for result in results:
            case = ElementTree.SubElement(suite, "testcase", classname=case_file.path.name, name=result.case.name,
                                          time=f"{result.seconds:.3f}")
            if not result.passed:
                failure = ElementTree.SubElement(case, "failure", message=result.detail.splitlines()[0])
                failure.text = result.detail
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    start = time.perf_counter()
    runner = Runner(Path(args.directory) if args.directory else None)
    try:
        files = [read_case_file(path) for path in case_files(args.paths)]
        if not files:
            raise CaseFileError(f"no test files (*.toml) under {', '.join(args.paths)}")
        runs = [(case_file, runner.run(case_file)) for case_file in files]
    except CaseFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    sys.stdout.write(_junit(runs, seconds) if args.format == "junit" else _text(runs, seconds, args.verbose))
    return 0 if all(r.passed for _, results in runs for r in results) else 1
