"""``SQLDirectory``: the directory kept in SQLite or PostgreSQL, served as the same validated ``Snapshot`` as a file.

Reading builds the mapping a directory file parses to and validates it with the file loader, so a directory in the
database is checked exactly as a file is, every problem named. A change (``change()``) runs in one transaction:
it takes the change counter's lock, reads the directory, applies IAM's actions, validates the whole result, writes
only what differs, bumps the counter and (PostgreSQL) sends a notification that is delivered at commit. Nothing of
a refused change is written.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.engine import URL

from ..._exceptions import ConfigurationError
from ..._iam import IAM, _rules
from ..._settings import Settings
from ...routing import RuleTable
from ...state import StateStore
from .._credential_report import CredentialTimes
from .._load import _read_mapping, directory_from_dict
from .._snapshot import Snapshot
from .._write import dump_toml
from ._changes import changed_rows, write_changes
from ._diff import carry_over, describe
from ._draft import DirectoryDraft
from ._engine import WRITE, database_url, open_engine, safe_url
from ._errors import ValidationError
from ._mapping import file_mapping, records_from_file
from ._migrations import migrate
from ._records import Records, bump_revision, lock_revision, read_records, read_revision, write_records

__all__ = ["CHANNEL", "ImportResult", "Loaded", "SQLDirectory"]

#: The PostgreSQL notification channel a committed change is announced on (payload: the new revision).
CHANNEL = "iam_directory"


@dataclass(frozen=True, slots=True)
class Loaded:
    """One validated state of the database: the snapshot (``version`` is the revision) and what ``IAM`` needs."""

    snapshot: Snapshot
    settings: Settings
    settings_table: Mapping[str, Any]
    rules: RuleTable

    @property
    def revision(self) -> int:
        return self.snapshot.version


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What ``import_file`` changed (or, in a dry run, would change): one line per entity, and the revision now."""

    changes: tuple[str, ...]
    revision: int
    applied: bool


class SQLDirectory:
    """A directory in a database: ``SQLDirectory("iam.db")`` (SQLite) or ``SQLDirectory("postgresql://...")``.

    The schema is brought up to date when it is opened (``migrate=False`` to leave it to ``iam-middleware directory
    migrate``). ``base_dir`` is where relative files named in the settings are looked up (``secrets_file``, a web
    identity provider's key files). The URL's password never appears in a repr, a log or an error.
    """

    def __init__(self, database: str | os.PathLike[str] | URL, *, base_dir: str | os.PathLike[str] = ".",
                 migrate: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.url = database_url(database)
        self.source = safe_url(self.url)
        self.base_dir = Path(base_dir)
        self.clock = clock
        self.engine = open_engine(self.url)
        #: Called with each state this process commits, after the commit (local reloaders swap it in at once).
        self.on_commit: list[Callable[[Loaded], None]] = []
        if migrate:
            self.migrate()

    def __repr__(self) -> str:
        return f"SQLDirectory({self.source!r})"

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def migrate(self) -> list[int]:
        """Apply the migrations not yet applied (see ``_migrations``); returns their numbers."""
        return migrate(self.engine)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    # Reading ---------------------------------------------------------------------------------------------------
    def revision(self) -> int:
        """The change counter: a single-row read, what pollers ask."""
        with self.engine.connect() as connection:
            return read_revision(connection)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A read-only transaction in which every statement sees the same state of the database."""
        with self.engine.connect() as connection:
            if self.dialect == "postgresql":
                # One snapshot for every table read (PostgreSQL's default gives each statement its own).
                connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                yield connection

    def _read(self) -> tuple[int, Records]:
        with self._reading() as connection:
            return read_revision(connection), read_records(connection)

    def records(self) -> Records:
        """The directory's rows as records (``_records``), read in one consistent view."""
        return self._read()[1]

    def mapping(self) -> dict[str, Any]:
        """The directory as the mapping a directory file parses to (what ``export`` writes)."""
        return file_mapping(self.records())

    def credential_times(self) -> CredentialTimes:
        """When each user, root user, password and access key was made, for the credential report."""
        records = self.records()
        users: dict[str, float] = {}
        passwords: dict[str, float] = {}
        keys: dict[str, float] = {}
        holders = list(records["users"].items())
        holders += [(account, entry["root"]) for account, entry in records["accounts"].items()
                    if entry.get("root") is not None]
        for holder, entry in holders:
            users[holder] = entry["created"]
            if entry.get("password_changed") is not None:
                passwords[holder] = entry["password_changed"]
            keys.update((key["id"], key["created"]) for key in entry["access_keys"])
        return CredentialTimes(users, passwords, keys)

    def load(self) -> Loaded:
        """Read and validate the whole directory; ConfigurationError lists every problem with its place."""
        revision, records = self._read()
        return self._validate(records, revision)

    def _validate(self, records: Records, revision: int) -> Loaded:
        data = file_mapping(records)
        problems: list[str] = []
        snapshot = settings = rules = None
        try:
            snapshot = directory_from_dict(data, base_dir=self.base_dir, version=revision, source=self.source)
        except ConfigurationError as exc:
            problems.append(str(exc))
        table = data.get("settings") or {}
        try:
            settings = Settings.from_mapping(table, base_dir=self.base_dir)
        except (ValueError, TypeError) as exc:  # ConfigurationError, or a value of the wrong type
            problems.append(f"{self.source}: settings: {exc}")
        try:
            rules = _rules(data, self.source)
        except ConfigurationError as exc:
            problems.append(str(exc))
        if snapshot is None or settings is None or rules is None:
            raise ConfigurationError("\n".join(problems))
        return Loaded(snapshot, settings, table, rules)

    def iam(self, *, store: StateStore | None = None, clock: Callable[[], float] = time.time,
            on_password_rehash: Callable[[str, str], None] | None = None) -> IAM:
        """An ``IAM`` serving the directory as it is now. A password re-hashed at login is written back here unless
        ``on_password_rehash`` says otherwise. Keep it current with ``SQLDirectoryReloader``."""
        loaded = self.load()
        return IAM(loaded.snapshot, settings=loaded.settings, store=store, clock=clock, rules=loaded.rules,
                   on_password_rehash=on_password_rehash or self._store_rehash)

    def _store_rehash(self, user_arn: str, password_hash: str) -> None:
        with self.change() as draft:
            draft.set_password_hash(user_arn, password_hash)

    # Changing --------------------------------------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            connection.execution_options(**{WRITE: True})
            with connection.begin():
                yield connection

    @contextmanager
    def change(self) -> Iterator[DirectoryDraft]:
        """A transaction of IAM actions: ``with directory.change() as d: d.create_user("dave")``.

        Each action checks IAM's rules as it runs (``DirectoryChangeError`` subclasses, IAM's codes); at the end of
        the block the whole directory is validated (``ValidationError`` listing every problem), then committed at
        once with a new revision. An exception leaves the database as it was. Writers run one at a time: keep the
        block short.
        """
        committed = None
        with self._writing() as connection:
            revision = lock_revision(connection)
            before = read_records(connection)
            draft = DirectoryDraft(copy.deepcopy(before), now=int(self.clock()))
            yield draft
            if draft.records != before:
                try:
                    committed = self._validate(draft.records, revision + 1)
                except ConfigurationError as exc:
                    raise ValidationError(str(exc)) from None
                self._write(connection, before, draft.records)
        if committed is not None:
            self._committed(committed)

    def _write(self, connection: Connection, before: Records, after: Records) -> int:
        revision = bump_revision(connection)
        write_records(connection, before, after)
        write_changes(connection, revision, changed_rows(before, after))
        if self.dialect == "postgresql":
            connection.execute(select(func.pg_notify(CHANNEL, str(revision))))
        return revision

    def _committed(self, loaded: Loaded) -> None:
        for hook in list(self.on_commit):
            hook(loaded)

    # File <-> database -----------------------------------------------------------------------------------------
    def import_file(self, path: str | os.PathLike[str], *, dry_run: bool = False) -> ImportResult:
        """Make the database hold the directory of a file (validated whole first); ``dry_run`` only says what would
        change. Policy documents named by ``{file = ...}`` are read in; a changed managed policy gets a new default
        version (earlier ones are kept, up to IAM's five); users, roles and keys keep their creation times."""
        file = Path(path)
        try:
            data = _read_mapping(file)
        except OSError as exc:
            raise ConfigurationError(f"{file}: cannot read the directory file ({exc.strerror or exc})") from None
        except (ValueError, UnicodeDecodeError) as exc:  # TOML and JSON decode errors are ValueErrors
            raise ConfigurationError(f"{file}: not valid TOML/JSON: {exc}") from None
        snapshot = directory_from_dict(data, base_dir=file.parent, source=str(file))
        try:
            Settings.from_mapping(data.get("settings") or {}, base_dir=file.parent)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"{file}: settings: {exc}") from None
        _rules(data, str(file))
        incoming = records_from_file(data, snapshot, base_dir=file.parent, now=int(self.clock()))
        committed = None
        with self._writing() as connection:
            revision = lock_revision(connection)
            before = read_records(connection)
            after = carry_over(before, incoming)
            changes = tuple(describe(before, after))
            if dry_run or after == before:
                return ImportResult(changes, revision, False)
            committed = self._validate(after, revision + 1)
            revision = self._write(connection, before, after)
        self._committed(committed)
        return ImportResult(changes, revision, True)

    def export_toml(self) -> str:
        """The directory as a directory file (TOML): ``load_directory`` of it gives the directory served now."""
        revision, records = self._read()
        header = (f"The directory of {self.source} at revision {revision}, written by iam-middleware directory "
                  "export.\nIt holds secrets as the database does (values, or env:/secret: references): keep it as "
                  "safe as the database.")
        return dump_toml(file_mapping(records), header=header)
