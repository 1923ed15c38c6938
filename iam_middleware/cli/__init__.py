"""The ``iam-middleware`` command: validate and simulate policies, run the demo, helpers for keys and TOTP."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from . import _access, _authz, _check, _demo, _directory, _generate, _init, _policytest, _simulate, _tools, _validate

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iam-middleware", description=__doc__)
    parser.add_argument("--version", action="version", version=f"iam-middleware {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _validate.add_parser(commands)
    _check.add_parser(commands)
    _init.add_parser(commands)
    _simulate.add_parser(commands)
    _access.add_parser(commands)
    _policytest.add_parser(commands)
    _generate.add_parser(commands)
    _demo.add_parser(commands)
    _authz.add_parser(commands)
    _directory.add_parser(commands)
    _tools.add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 invalid or denied input, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args, parser)
    except BrokenPipeError:  # e.g. piped into `head`
        return 0
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
