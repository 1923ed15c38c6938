"""``iam-middleware directory import|export|migrate|credential-report``: move a directory between a file and a
database, and report on its credentials.

``import FILE --database URL`` validates the file whole, prints what would change (one line per entity; secrets
are only said to change), then makes the database hold it in one transaction (``--dry-run``: print only).
``export --database URL`` writes the database's directory as a directory file (TOML) on standard output: an export
of an import loads to the same directory. ``migrate --database URL`` brings the schema up to date.
``credential-report --directory FILE | --database URL`` writes IAM's credential report (CSV) of an account: every
user's password, MFA and access keys, with their last use as the shared state recorded it. The URL may come
from ``IAM_DATABASE_URL`` instead, which keeps a password off the command line. Exit 0 when done, 1 for an invalid
directory, 2 for a usage error or a database that cannot be reached.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .._exceptions import ConfigurationError

if TYPE_CHECKING:
    from ..directory.sql import SQLDirectory

__all__ = ["add_parser"]

_ENV = "IAM_DATABASE_URL"
_T = TypeVar("_T")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("directory", help="import a directory file into a database, export it back",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="directory_command", required=True, metavar="ACTION")
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--database", metavar="URL", default=os.environ.get(_ENV),
                          help=f"sqlite:///iam.db, a SQLite file path, or postgresql://... (default: ${_ENV})")
    importer = actions.add_parser("import", parents=[database], help="make a database hold a directory file")
    importer.add_argument("file", metavar="FILE", help="the directory file (iam.toml or .json)")
    importer.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    importer.set_defaults(run=_import)
    exporter = actions.add_parser("export", parents=[database], help="write a database's directory as TOML")
    exporter.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    exporter.set_defaults(run=_export)
    migrator = actions.add_parser("migrate", parents=[database], help="bring a database's schema up to date")
    migrator.set_defaults(run=_migrate)
    report = actions.add_parser("credential-report", parents=[database],
                                help="IAM's credential report (CSV) of a directory file or database")
    report.add_argument("--directory", metavar="FILE", help="a directory file instead of a database")
    report.add_argument("--account", metavar="ID", help="the account to report on (needed when there are several)")
    report.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    report.set_defaults(run=_credential_report)


def _open(args: argparse.Namespace, *, migrate: bool = True) -> SQLDirectory | None:
    if not args.database:
        print(f"error: name the database with --database URL or ${_ENV}", file=sys.stderr)
        return None
    try:
        from ..directory.sql import SQLDirectory
    except ImportError:
        print("error: the database backend needs SQLAlchemy: pip install 'iam-middleware[sql]' (and [postgres] for "
              "PostgreSQL)", file=sys.stderr)
        return None
    try:
        return SQLDirectory(args.database, migrate=migrate)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy's errors, or no driver (psycopg) for the URL's database
        _unreachable(exc)
    return None


def _unreachable(exc: Exception) -> None:
    # SQLAlchemy appends the statement and a link after the driver's message; its first line says what failed.
    message = str(getattr(exc, "orig", None) or exc).strip()
    print(f"error: the directory database failed: {type(exc).__name__}: {message.splitlines()[0] if message else ''}",
          file=sys.stderr)


def _on_database(args: argparse.Namespace, work: Callable[[SQLDirectory], _T], *,
                 migrate: bool = True) -> tuple[str, _T] | int:
    """Open the ``--database``, run ``work`` on it and close it: the database's name and what ``work`` gave, or the
    exit code once what failed is said (1: the directory is not valid; 2: the database failed or is not named)."""
    from sqlalchemy.exc import SQLAlchemyError

    directory = _open(args, migrate=migrate)
    if directory is None:
        return 2
    try:
        return directory.source, work(directory)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        _unreachable(exc)
        return 2
    finally:
        directory.close()


def _import(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    outcome = _on_database(args, lambda directory: directory.import_file(args.file, dry_run=args.dry_run))
    if isinstance(outcome, int):
        return outcome
    source, result = outcome
    for line in result.changes:
        print(line)
    if not result.changes:
        print(f"{source} already holds {args.file} (revision {result.revision}): nothing to change")
    elif result.applied:
        print(f"imported {args.file} into {source}: revision {result.revision}")
    else:
        print(f"dry run: {len(result.changes)} change(s), none applied to {source}")
    return 0


def _export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    outcome = _on_database(args, lambda directory: directory.export_toml())
    if isinstance(outcome, int):
        return outcome
    _, text = outcome
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _migrate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..directory.sql import SCHEMA_VERSION

    outcome = _on_database(args, lambda directory: directory.migrate(), migrate=False)
    if isinstance(outcome, int):
        return outcome
    source, applied = outcome
    steps = ", ".join(map(str, applied)) if applied else "none (up to date)"
    print(f"{source}: schema version {SCHEMA_VERSION}; steps applied: {steps}")
    return 0


def _credential_report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .._iam import IAM
    from ..directory._credential_report import CredentialTimes, credential_report
    from ..state import StateUnavailableError

    times = CredentialTimes()
    if args.directory:
        try:
            iam = IAM.from_file(args.directory)
        except ConfigurationError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    else:
        outcome = _on_database(args, lambda directory: (directory.iam(), directory.credential_times()))
        if isinstance(outcome, int):
            return outcome
        _, (iam, times) = outcome
    try:
        text = credential_report(iam.snapshot, account=args.account, times=times, last_used=iam.last_used)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StateUnavailableError as exc:
        print(f"error: the shared state (last use) cannot be read: {exc}", file=sys.stderr)
        return 2
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0
