"""Keep an ``IAM`` serving the directory of a database: poll its change counter, listen (PostgreSQL), swap snapshots.

A change committed by this process is in force here at once (the validated snapshot is handed over at commit). A
change committed by another process is seen:

- PostgreSQL, after ``start()``: at once, through ``LISTEN``/``NOTIFY`` (the listener thread reloads), and within
  ``poll_interval`` if a notification is lost (the listener reconnecting);
- SQLite, or PostgreSQL without ``start()``: within ``poll_interval``, by reading the counter (one indexed row);
  after ``start()`` a background thread polls, so no request ever waits for the database; without it, the first
  request after each ``poll_interval`` reads the counter, and reloads if it moved.

A state that fails validation (a hand-edited row, say) is refused with its errors logged and kept in ``last_error``;
the last good snapshot stays in force, and that state is not read again until the counter moves. While the database
cannot be reached, the snapshot in force keeps serving (a warning is logged once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ..._exceptions import ConfigurationError
from ..._iam import IAM
from ..._reload import NoDirectoryError, ReloadResult
from ..._settings import Settings
from ...state import StateStore
from .._snapshot import Snapshot
from ._directory import CHANNEL, Loaded, SQLDirectory

__all__ = ["SQLDirectoryReloader"]

logger = logging.getLogger("iam_middleware.reload")
_UNREADABLE: Mapping[str, Any] = {"<unreadable>": object()}


class SQLDirectoryReloader:
    """Keeps ``iam``'s snapshot in step with ``directory`` (see the module's docstring)."""

    def __init__(self, iam: IAM, directory: SQLDirectory, *, poll_interval: float = 1.0, listen: bool = True,
                 settings_table: Mapping[str, Any] | None = None) -> None:
        if not poll_interval > 0:
            raise ConfigurationError("poll_interval must be more than 0 seconds")
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
        iam.refresh_hooks.append(self.check)
        directory.on_commit.append(self._committed)

    def _settings_now(self) -> Mapping[str, Any]:
        try:
            return self.directory.records()["settings"]  # type: ignore[no-any-return]
        except SQLAlchemyError:
            return _UNREADABLE

    @classmethod
    def open(cls, directory: SQLDirectory, *, store: StateStore | None = None, clock: Callable[[], float] = time.time,
             poll_interval: float = 1.0, listen: bool = True) -> SQLDirectoryReloader:
        """A new ``IAM`` (``reloader.iam``) serving ``directory``; never raises for an invalid directory.

        If the directory is invalid (or empty), the errors are logged and every authenticated request is refused
        with ``NoDirectoryError`` (503) until a valid state is committed.
        """
        try:
            loaded = directory.load()
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
            reloader = cls(iam, directory, poll_interval=poll_interval, listen=listen, settings_table=table)
            reloader.last_error = str(exc)
            reloader._unloaded = "the directory database was invalid at start"
            return reloader
        iam = IAM(loaded.snapshot, settings=loaded.settings, store=store, clock=clock, rules=loaded.rules,
                  on_password_rehash=directory._store_rehash)
        return cls(iam, directory, poll_interval=poll_interval, listen=listen, settings_table=loaded.settings_table)

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
        try:
            revision = self.directory.revision()
            loaded = self.directory.load()
        except ConfigurationError as exc:
            self._failed = revision
            self.last_error = str(exc)
            logger.error("directory revision %d of %s refused; revision %d stays in force:\n%s", revision,
                         self.directory.source, self._revision, exc)
            return ReloadResult(False, self._revision, str(exc))
        except SQLAlchemyError as exc:
            self._unreachable_now(exc)
            return ReloadResult(False, self._revision, f"the database cannot be read ({type(exc).__name__})")
        return self._apply(loaded)

    def _apply(self, loaded: Loaded) -> ReloadResult:
        if loaded.settings_table != self._settings:
            self.restart_needed = True
            if self._unloaded is not None:
                self._unloaded = "the directory is valid now, but its settings need a restart to apply"
                self.last_error = None
                logger.error("%s is valid now, but its settings could not be read at start or changed since: "
                             "restart the service to load it", self.directory.source)
                return ReloadResult(False, self._revision, self._unloaded)
            logger.warning("the settings of %s changed: the directory is reloaded, the settings apply at the next "
                           "restart", self.directory.source)
        self.iam.swap(loaded.snapshot)
        self._revision = loaded.revision
        self._failed = None
        self.last_error = None
        if self._unloaded is not None:
            self._unloaded = None
            logger.warning("a valid directory is loaded from %s: requests are served again", self.directory.source)
        logger.info("directory reloaded from %s: revision %d", self.directory.source, loaded.revision)
        return ReloadResult(True, loaded.revision)

    def _committed(self, loaded: Loaded) -> None:
        with self._lock:
            if loaded.revision > self._revision or self._unloaded is not None:
                self._apply(loaded)

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
        notifications (changes then arrive at once)."""
        if self._thread is not None:
            return
        self._stop.clear()
        if self._listen:
            from ._listen import Listener

            self._listener = Listener(self.directory.engine, CHANNEL, self.poll)

        def loop() -> None:
            while not self._stop.wait(self.poll_interval):
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
        """Stop the background thread and the listener; the on-commit hook too."""
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._committed in self.directory.on_commit:
            self.directory.on_commit.remove(self._committed)
