"""Keep an ``IAM`` serving the directory of a database: poll its change counter, listen (PostgreSQL), swap snapshots.

A change committed by this process is in force here at once (the validated snapshot is handed over at commit). A
change committed by another process is seen:

- PostgreSQL, after ``start()``: at once, through ``LISTEN``/``NOTIFY`` (the listener thread reloads), and within
  ``poll_interval`` if a notification is lost (the listener reconnecting);
- SQLite, or PostgreSQL without ``start()``: within ``poll_interval``, by reading the counter (one indexed row);
  after ``start()`` a background thread polls, so no request ever waits for the database; without it, the first
  request after each ``poll_interval`` reads the counter, and reloads if it moved.

- any database, with ``redis_url`` in the settings, after ``start()``: at once, through the shared state's version
  announcements (Redis pub/sub): a change committed by a process serving the directory bumps the directory's
  version there, and every other process's poller wakes and reads the counter.

A reload applies only what changed when it can: the change log (``_changes``) says which entities each revision
changed, and the new snapshot is the one in force with those entities read and built again (``Snapshot.derive``),
everything else shared. Revisions are trusted here because ``SQLDirectory.change()`` commits only states the whole
validation accepts (it checks what each change touched, ``_incremental``, and validates whole when that check cannot
vouch for it); a change of the settings or routes, a log that does not reach back (``KEEP`` revisions), or
a revision written without it (a row edited by hand) is read and validated whole. Either way the new snapshot is
built off the request path (in the poller's thread after ``start()``) and swapped in at once; requests in flight
finish on the one they began with.

With ``users="lazy"``, snapshots hold no users: each user is loaded on its first request by one indexed query and
remembered in a bounded cache (``_lazy``), and a reload evicts exactly the users its revisions changed.

A state that fails validation (a hand-edited row, say) is refused with its errors logged and kept in ``last_error``;
the last good snapshot stays in force, and that state is not read again until the counter moves. While the database
cannot be reached, the snapshot in force keeps serving (a warning is logged once).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from sqlalchemy import Connection, select
from sqlalchemy.exc import SQLAlchemyError

from ..._exceptions import ConfigurationError
from ..._iam import IAM
from ..._reload import NoDirectoryError, ReloadResult
from ..._settings import Settings
from ...state import StateStore, StateUnavailableError, Subscription, VersionFeed
from .._snapshot import Snapshot
from . import _schema as t
from ._changes import Changes, read_changes
from ._directory import CHANNEL, Loaded, SQLDirectory
from ._lazy import Builder, LazyUsers, UserCache, refers_to
from ._records import Records, read_records, read_revision, read_settings, read_users

__all__ = ["SQLDirectoryReloader"]

logger = logging.getLogger("iam_middleware.reload")
_UNREADABLE: Mapping[str, Any] = {"<unreadable>": object()}
#: More changed users than this in one reload: the whole directory is read instead (as fast by then).
MAX_INCREMENTAL_USERS = 5000
_CHUNK = 500  # ids per IN (...) list: well within every database's limit on bound parameters
Users = Literal["eager", "lazy"]


def _check_options(poll_interval: float, users: str, cache_size: int) -> None:
    if not poll_interval > 0:
        raise ConfigurationError("poll_interval must be more than 0 seconds")
    if users not in ("eager", "lazy"):
        raise ConfigurationError('users must be "eager" (every user in memory) or "lazy" (loaded on demand)')
    if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
        raise ConfigurationError("cache_size must be a whole number of look-ups, at least 1")


def _lazy_snapshot(directory: SQLDirectory, snapshot: Snapshot, settings: Mapping[str, Any], cache: UserCache,
                   retry_after: float) -> Snapshot:
    """``snapshot`` (which holds no users) with a loader of its users, for ``users="lazy"``."""
    builder = Builder(settings, directory.base_dir, directory.source)
    return snapshot.derive(version=snapshot.version, loader=LazyUsers(directory.engine, builder, cache,
                                                                      retry_after=retry_after))


def _lazy_load(directory: SQLDirectory, poll_interval: float, cache_size: int) -> Loaded:
    """Everything but the users, validated; the users are loaded on demand."""
    with directory._reading() as connection:
        revision, records = read_revision(connection), read_records(connection, users=False)
    loaded = directory._validate(records, revision)
    snapshot = _lazy_snapshot(directory, loaded.snapshot, records["settings"], UserCache(cache_size), poll_interval)
    return Loaded(snapshot, loaded.settings, loaded.settings_table, loaded.rules)


def announcement_name(directory: SQLDirectory) -> str:
    """The shared-state version a commit to ``directory`` bumps (one per database, named without its URL)."""
    return "iam:directory-sql:" + hashlib.sha256(directory.source.encode()).hexdigest()[:16]


class SQLDirectoryReloader:
    """Keeps ``iam``'s snapshot in step with ``directory`` (see the module's docstring)."""

    def __init__(self, iam: IAM, directory: SQLDirectory, *, poll_interval: float = 1.0, listen: bool = True,
                 settings_table: Mapping[str, Any] | None = None, users: Users = "eager",
                 cache_size: int = 10_000) -> None:
        _check_options(poll_interval, users, cache_size)
        #: "eager": every snapshot holds every user; "lazy": users are loaded on demand (``cache_size`` look-ups).
        self.users: Users = users
        self.cache_size = cache_size
        #: How the last reload read the database: "incremental" (the changed entities) or "full".
        self.last_refresh: str | None = None
        self._announcement = announcement_name(directory)
        self._wake = threading.Event()
        self._subscription: Subscription | None = None
        self.iam = iam
        self.directory = directory
        self.poll_interval = poll_interval
        self._listen = listen and directory.dialect == "postgresql"
        self._lock = threading.Lock()
        self._revision = iam.snapshot.version
        self._failed: int | None = None
        self._settings = settings_table if settings_table is not None else self._settings_now()
        self._next_check = iam.clock() + poll_interval
        self._unreachable = False
        self._thread: threading.Thread | None = None
        self._listener: Any = None
        self._stop = threading.Event()
        #: The errors of the last refused state, or None after a good one.
        self.last_error: str | None = None
        #: True once a state with changed settings was put in force: they apply at the next restart.
        self.restart_needed = False
        self._unloaded: str | None = None
        iam.snapshots.refresh_hooks.append(self.check)
        directory.on_commit.append(self._committed)

    def _settings_now(self) -> Mapping[str, Any]:
        try:
            return self.directory.records()["settings"]  # type: ignore[no-any-return]
        except SQLAlchemyError:
            return _UNREADABLE

    @classmethod
    def open(cls, directory: SQLDirectory, *, store: StateStore | None = None, clock: Callable[[], float] = time.time,
             poll_interval: float = 1.0, listen: bool = True, users: Users = "eager",
             cache_size: int = 10_000) -> SQLDirectoryReloader:
        """A new ``IAM`` (``reloader.iam``) serving ``directory``; never raises for an invalid directory.

        ``users="lazy"`` keeps no user in memory until asked for: a user's first request costs one indexed query,
        and the last ``cache_size`` look-ups (by name or by access key) are remembered. If the directory is invalid
        (or empty), the errors are logged and every authenticated request is refused with ``NoDirectoryError`` (503)
        until a valid state is committed.
        """
        options: dict[str, Any] = {"poll_interval": poll_interval, "listen": listen, "users": users,
                                   "cache_size": cache_size}
        _check_options(poll_interval, users, cache_size)
        try:
            loaded = directory.load() if users == "eager" else _lazy_load(directory, poll_interval, cache_size)
        except ConfigurationError as exc:
            logger.error("no valid directory in %s; every request is refused until it is fixed:\n%s",
                         directory.source, exc)
            table = directory.records()["settings"]
            try:
                settings: Settings | None = Settings.from_mapping(table, base_dir=directory.base_dir)
            except (ValueError, TypeError):
                settings, table = None, _UNREADABLE
            partition = settings.partition if settings is not None else "app"
            empty = Snapshot(partition=partition, accounts=(), users=(), groups=(), roles=(), version=0,
                             source="<no valid directory>")
            iam = IAM(empty, settings=settings, store=store, clock=clock)
            reloader = cls(iam, directory, settings_table=table, **options)
            reloader.last_error = str(exc)
            reloader._unloaded = "the directory database was invalid at start"
            return reloader
        iam = IAM(loaded.snapshot, settings=loaded.settings, store=store, clock=clock, rules=loaded.rules,
                  on_password_rehash=directory._store_rehash)
        return cls(iam, directory, settings_table=loaded.settings_table, **options)

    @property
    def serving(self) -> bool:
        """False while no valid directory is loaded (every authenticated request is refused)."""
        return self._unloaded is None

    @property
    def revision(self) -> int:
        """The revision of the snapshot in force."""
        return self._revision

    def reload(self) -> ReloadResult:
        """Read and validate the database now; on success its state is in force."""
        with self._lock:
            return self._reload()

    def _reload(self) -> ReloadResult:
        revision = self._revision
        try:
            with self.directory._reading() as connection:
                revision = read_revision(connection)
                snapshot, settings = self._read_state(connection, revision)
        except ConfigurationError as exc:
            self._failed = revision
            self.last_error = str(exc)
            logger.error("directory revision %d of %s refused; revision %d stays in force:\n%s", revision,
                         self.directory.source, self._revision, exc)
            return ReloadResult(False, self._revision, str(exc))
        except SQLAlchemyError as exc:
            self._unreachable_now(exc)
            return ReloadResult(False, self._revision, f"the database cannot be read ({type(exc).__name__})")
        return self._apply(snapshot, settings)

    def _read_state(self, connection: Connection, revision: int) -> tuple[Snapshot, Mapping[str, Any]]:
        """The snapshot of ``revision`` and its settings table: only the changes since the snapshot in force when
        the log says what they were, else the whole directory."""
        base = self.iam.snapshots.in_force
        if self._unloaded is None and base.version == self._revision < revision:
            changes = read_changes(connection, self._revision, revision)
            if changes is not None and not {"settings", "routes"} & changes.kinds.keys():
                found = self._incremental(connection, base, revision, changes)
                if found is not None:
                    self.last_refresh = "incremental"
                    return found, self._settings
        self.last_refresh = "full"
        records = read_records(connection, users=self.users == "eager")
        loaded = self.directory._validate(records, revision)
        snapshot = loaded.snapshot
        if self.users == "lazy":
            snapshot = _lazy_snapshot(self.directory, snapshot, records["settings"], UserCache(self.cache_size),
                                      self.poll_interval)
        return snapshot, loaded.settings_table

    def _incremental(self, connection: Connection, base: Snapshot, revision: int,
                     changes: Changes) -> Snapshot | None:
        """``base`` with what ``changes`` changed read again; None when the whole directory is better read (many
        users changed, or a changed user could not be built: the whole read says why)."""
        rest = None  # everything but the users, read and validated again, when any of it changed
        if changes.only_users:
            settings: Mapping[str, Any] = read_settings(connection)
        else:
            records = read_records(connection, users=False)
            rest = self.directory._validate(records, revision).snapshot
            settings = records["settings"]
        policies = changes["policies"]
        builder = Builder(settings, self.directory.base_dir, self.directory.source)
        if self.users == "lazy":
            assert isinstance(base.loader, LazyUsers)
            cache = base.loader.cache.without(changes["users"], changes["user_names"], changes["access_keys"],
                                              policies)
            loader = LazyUsers(self.directory.engine, builder, cache, retry_after=self.poll_interval)
            return (rest or base).derive(version=revision, loader=loader)
        ids = set(changes["users"])
        if policies:  # the users holding a changed managed policy hold its old document: build them again
            ids |= {user.id for user in base.users.values() if refers_to(user, policies)}
        if len(ids) > MAX_INCREMENTAL_USERS:
            return None
        users: Records = {}
        devices: Records = {}
        ordered = sorted(ids)
        for start in range(0, len(ordered), _CHUNK):
            chosen = select(t.users.c.id).where(t.users.c.id.in_(ordered[start:start + _CHUNK]))
            _, found, held = read_users(connection, chosen)
            users.update(found)
            devices.update(held)
        try:
            built = builder.users(rest or base, users, devices)
        except ConfigurationError:
            return None
        if rest is None:
            return base.derive(version=revision, removed=ids, added=built)
        return base.derive(version=revision, removed=ids, added=built, accounts=rest.accounts.values(),
                           groups=rest.groups.values(), roles=rest.roles.values(), policies=rest.policies)

    def _apply(self, snapshot: Snapshot, settings: Mapping[str, Any]) -> ReloadResult:
        if settings != self._settings:
            self.restart_needed = True
            if self._unloaded is not None:
                self._unloaded = "the directory is valid now, but its settings need a restart to apply"
                self.last_error = None
                logger.error("%s is valid now, but its settings could not be read at start or changed since: "
                             "restart the service to load it", self.directory.source)
                return ReloadResult(False, self._revision, self._unloaded)
            logger.warning("the settings of %s changed: the directory is reloaded, the settings apply at the next "
                           "restart", self.directory.source)
        self.iam.snapshots.swap(snapshot)
        self._revision = snapshot.version
        self._failed = None
        self.last_error = None
        if self._unloaded is not None:
            self._unloaded = None
            logger.warning("a valid directory is loaded from %s: requests are served again", self.directory.source)
        logger.info("directory reloaded from %s: revision %d", self.directory.source, snapshot.version)
        return ReloadResult(True, snapshot.version)

    def _committed(self, loaded: Loaded) -> None:
        """A change this process committed: in force here at once, and announced to the others."""
        with self._lock:
            if loaded.revision > self._revision or self._unloaded is not None:
                if self.users == "eager":
                    self.last_refresh = "committed"
                    self._apply(loaded.snapshot, loaded.settings_table)
                else:  # the committed snapshot holds every user: read only what changed instead
                    self._reload()
        self._announce()

    def _announce(self) -> None:
        """Bump the directory's version in the shared state (Redis): the other processes' pollers wake."""
        store = self.iam.store
        if not isinstance(store, VersionFeed):
            return  # a store of this process alone: nobody else to tell
        try:
            store.bump(self._announcement)
        except StateUnavailableError as exc:
            logger.warning("a directory change was not announced to other processes (they see it within "
                           "poll_interval): %s", exc)

    def _announced(self, name: str, _version: int) -> None:
        if name == self._announcement:
            self._wake.set()

    def _unreachable_now(self, exc: Exception) -> None:
        if not self._unreachable:
            self._unreachable = True
            logger.warning("the directory database %s cannot be read (%s); the snapshot in force keeps serving",
                           self.directory.source, type(exc).__name__)

    def poll(self) -> None:
        """Read the change counter and reload if it moved (what the background thread and the listener do)."""
        if not self._lock.acquire(blocking=False):
            return  # a reload is under way: it reads the latest state anyway
        try:
            self._next_check = self.iam.clock() + self.poll_interval
            try:
                revision = self.directory.revision()
            except SQLAlchemyError as exc:
                self._unreachable_now(exc)
                return
            if self._unreachable:
                self._unreachable = False
                logger.warning("the directory database %s answers again", self.directory.source)
            if revision != self._revision and revision != self._failed:
                self._reload()
        finally:
            self._lock.release()

    def check(self, now: float) -> None:
        """The request path's hook: without the background thread, poll once ``poll_interval`` has passed. Raises
        ``NoDirectoryError`` while no valid directory is loaded."""
        if self._thread is None and now >= self._next_check:
            self.poll()
        if self._unloaded is not None:
            raise NoDirectoryError(
                "No valid directory is loaded, so no request can be authorized; the operator must fix the directory "
                "database (the errors are in the server log).", retry_after=self.poll_interval,
            )

    def start(self) -> None:
        """Poll in a background daemon thread every ``poll_interval`` seconds and, on PostgreSQL, listen for
        notifications; with a shared state that announces versions (Redis), listen for other processes' commits
        too (changes then arrive at once). Every reload then runs in that thread, never on a request."""
        if self._thread is not None:
            return
        self._stop.clear()
        if self._listen:
            from ._listen import Listener

            self._listener = Listener(self.directory.engine, CHANNEL, self._wake.set)
        store = self.iam.store
        if isinstance(store, VersionFeed):
            self._subscription = store.subscribe_versions(self._announced)

        def loop() -> None:
            while not self._stop.is_set():
                self._wake.wait(self.poll_interval)
                self._wake.clear()
                if self._stop.is_set():
                    return
                try:
                    self.poll()
                except Exception:  # noqa: BLE001 - the poller must outlive any one failed check
                    logger.exception("directory check failed; retrying in %gs", self.poll_interval)

        self._thread = threading.Thread(target=loop, name="iam-directory-poll", daemon=True)
        self._thread.start()

    def wait_listening(self, timeout: float = 5.0) -> bool:
        """True once notifications are heard (PostgreSQL after ``start()``); False where there are none."""
        return self._listener is not None and bool(self._listener.wait_listening(timeout))

    def stop(self) -> None:
        """Stop the background thread, the listener and the subscription; the on-commit hook too."""
        self._stop.set()
        self._wake.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._committed in self.directory.on_commit:
            self.directory.on_commit.remove(self._committed)
