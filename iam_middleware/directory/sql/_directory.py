"""``SQLDirectory``: the directory kept in SQLite or PostgreSQL, served as the same validated ``Snapshot`` as a file.

Reading builds the mapping a directory file parses to and validates it with the file loader, so a directory in the
database is checked exactly as a file is, every problem named. A change (``change()``) runs in one transaction:
it takes the change counter's lock, applies IAM's actions to the directory, validates the result, writes only what
differs, bumps the counter and (PostgreSQL) sends a notification that is delivered at commit. Nothing of a refused
change is written.

The writer keeps the state it committed last (its records and validated snapshot, ``WriterState``): while the
counter still says that revision, the next change starts from it instead of reading the directory, copies only the
entities it touches (``Overlay``) and is validated by what it touches (``_incremental``), falling back to the whole
validation whenever that check cannot vouch for it. When another writer committed meanwhile, the state is brought
up to date through the change log (the changed entities read again, checked the same way); what the log cannot
vouch for (a row edited by hand and the counter bumped, a writer too far behind) makes the change read the
directory and validate it whole, as a process's first change does.
"""

from __future__ import annotations

import os
import threading
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
from . import _schema as t
from ._changes import changed_rows, read_changes, write_changes
from ._diff import carry_over, describe
from ._draft import DirectoryDraft, changed_keys, draft_records, settled
from ._engine import WRITE, database_url, open_engine, safe_url
from ._errors import ValidationError
from ._incremental import MAX_USERS, check_change
from ._lazy import Builder
from ._mapping import file_mapping, records_from_file
from ._migrations import migrate
from ._records import (
    KINDS,
    Records,
    bump_revision,
    lock_revision,
    read_devices,
    read_records,
    read_revision,
    read_users,
    write_records,
)

__all__ = ["CHANNEL", "ImportResult", "Loaded", "SQLDirectory", "WriterState"]

_CHUNK = 500  # ids per IN (...) list: well within every database's limit on bound parameters
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
class WriterState:
    """The state this process committed last: its revision, its records (never changed: a draft lays an
    ``Overlay`` over them) and, when it was validated, its ``Loaded`` (None: the next change validates whole)."""

    revision: int
    records: Records
    loaded: Loaded | None


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
        #: How the last change was validated: "incremental" (by what it touched) or "whole".
        self.last_check: str | None = None
        self._state: WriterState | None = None
        self._state_lock = threading.Lock()
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
        the block the directory is validated (``ValidationError`` listing every problem): by what the block touched
        when it starts from the state this process committed last, else whole (see the module's docstring); the
        state committed is always one the whole validation accepts. Then it is committed at once with a new
        revision. An exception leaves the database as it was. Writers run one at a time: keep the block short.
        """
        committed = after = None
        with self._writing() as connection:
            revision = lock_revision(connection)
            state = self._state_at(connection, revision)
            self._keep(state)  # the database's state at ``revision``, whatever becomes of the block
            draft = DirectoryDraft(draft_records(state.records), now=int(self.clock()),
                                   snapshot=state.loaded.snapshot if state.loaded is not None else None)
            yield draft
            changed = changed_keys(state.records, draft.records)
            if changed:
                after = draft.records
                committed = self._check(state, after, changed, revision + 1)
                self._write(connection, state.records, after, changed)
        if committed is not None and after is not None:
            self._keep(WriterState(committed.revision, settled(after), committed))
            self._committed(committed)

    def _state_at(self, connection: Connection, revision: int) -> WriterState:
        """The state at ``revision``: the one this process committed last if the counter still says it; else that
        one brought up to ``revision`` by what the change log says changed since (``_caught_up``); else the
        directory read now (not validated: the change is then validated whole)."""
        state = self._state
        if state is not None and state.revision == revision:
            return state
        if state is not None and state.loaded is not None and state.revision < revision:
            found = self._caught_up(connection, state, state.loaded, revision)
            if found is not None:
                return found
        return WriterState(revision, read_records(connection), None)

    def _caught_up(self, connection: Connection, state: WriterState, loaded: Loaded,
                   revision: int) -> WriterState | None:
        """``state`` (validated: ``loaded``) with what the revisions after it changed (other writers' commits) read
        again, checked by what they touched as a change of this process is; None when the log cannot say what changed
        (too far behind, a revision written past ``change()``), the settings or routes changed, or too many users
        did. The records are the database's at ``revision``; their ``loaded`` is None (the next change validates
        whole) when the check cannot vouch for them."""
        changes = read_changes(connection, state.revision, revision)
        if changes is None or {"settings", "routes"} & changes.kinds.keys() or len(changes["users"]) > MAX_USERS:
            return None
        ids = sorted(changes["users"])
        users = dict(state.records["users"])
        held: Records = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            _, found, devices = read_users(connection, select(t.users.c.id).where(t.users.c.id.in_(chunk)))
            for unique in chunk:
                users.pop(unique, None)
            users.update(found)
            held.update(devices)
        records = {**state.records, "users": users}
        if not changes.only_users:  # few beside the users: read whole
            rest = read_records(connection, users=False)
            records.update((kind, rest[kind]) for kind in ("accounts", "policies", "groups", "roles"))
        gone, moved = set(ids), changes["mfa_devices"]
        devices = {key: device for key, device in state.records["mfa_devices"].items()
                   if device["holder"] not in gone and key not in moved}
        devices.update(held)
        devices.update(read_devices(connection, moved))
        records["mfa_devices"] = devices
        changed = {kind: set(changes[kind]) for kind in ("users", *KINDS) if changes[kind]}
        checked = check_change(loaded, state.records, records, changed, revision, validate=self._validate,
                               builder=lambda: Builder(records["settings"], self.base_dir, self.source))
        return WriterState(revision, records, checked)

    def _keep(self, state: WriterState) -> None:
        with self._state_lock:
            if self._state is None or state.revision > self._state.revision:
                self._state = state

    def _check(self, state: WriterState, after: Records, changed: Mapping[str, set[str]], revision: int) -> Loaded:
        """The validated state of ``after``: by what changed when ``state`` was validated and the check can vouch
        for it, else by the whole validation (which names every problem: ``ValidationError``)."""
        if state.loaded is not None:
            found = check_change(state.loaded, state.records, after, changed, revision, validate=self._validate,
                                 builder=lambda: Builder(after["settings"], self.base_dir, self.source))
            if found is not None:
                self.last_check = "incremental"
                return found
        self.last_check = "whole"
        try:
            return self._validate(after, revision)
        except ConfigurationError as exc:
            raise ValidationError(str(exc)) from None

    def _write(self, connection: Connection, before: Records, after: Records,
               changed: Mapping[str, set[str]] | None = None) -> int:
        revision = bump_revision(connection)
        write_records(connection, before, after, changed)
        write_changes(connection, revision, changed_rows(before, after, changed))
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
        self._keep(WriterState(revision, after, committed))
        self._committed(committed)
        return ImportResult(changes, revision, True)

    def export_toml(self) -> str:
        """The directory as a directory file (TOML): ``load_directory`` of it gives the directory served now."""
        revision, records = self._read()
        header = (f"The directory of {self.source} at revision {revision}, written by iam-middleware directory "
                  "export.\nIt holds secrets as the database does (values, or env:/secret: references): keep it as "
                  "safe as the database.")
        return dump_toml(file_mapping(records), header=header)
