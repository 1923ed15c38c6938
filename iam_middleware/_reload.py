"""Hot reload of the directory file: validate the new snapshot whole, swap it atomically, keep the last good one.

Triggers: an explicit ``reload()``; a change of the directory file, or of a file it names (policy documents, the
secrets file), seen by modification time and size at most ``poll_interval`` seconds late (checked on the request
path and by a background thread); SIGHUP (``install_signal_handler``); an authorized admin endpoint
(``admin_app``); and a reload announced by another process. A successful reload bumps the shared version in the
state store, so every process sharing it follows on its next request once the announcement arrives (Redis pub/sub),
and at most ``poll_interval`` later if the announcement is lost. A file that fails validation (directory or
``[settings]``) is refused with its errors logged, and the snapshot in force stays. Requests in flight finish on the
snapshot they read.

``DirectoryReloader.open`` starts even from a broken file: the service then refuses every authenticated request
(503, saying why) until a valid file is loaded.

Settings (``[settings]``) are read once, when the ``IAM`` is built. A reload that changes them still puts the new
directory in force, and warns that the settings take effect at the next restart.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from ._exceptions import ConfigurationError, ServiceUnavailableError
from ._iam import IAM
from ._settings import Settings
from .directory import Snapshot, directory_from_dict
from .directory._load import _read_mapping
from .metrics._observe import observers_of
from .state import StateStore, StateUnavailableError, VersionWatcher

__all__ = ["DirectoryReloader", "NoDirectoryError", "ReloadResult"]

logger = logging.getLogger("iam_middleware.reload")
VERSION_NAME = "iam:directory"

# A [settings] table that could not be read: never equal to any table read later, so a restart is asked for.
_UNREADABLE: Mapping[str, Any] = {"<unreadable>": object()}
_NO_DIRECTORY = "<no valid directory>"


class NoDirectoryError(ServiceUnavailableError):
    """No valid directory is loaded (the file was invalid at start), so no request can be authorized."""

    code = "NoValidDirectory"


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did: ``ok`` with the version now in force, or the errors that kept the old snapshot."""

    ok: bool
    version: int
    errors: str | None = None


def _read(file: Path) -> dict[str, Any]:
    """The parsed directory file; raises ConfigurationError with the reason (never a secret: values are not shown)."""
    try:
        return _read_mapping(file)
    except OSError as exc:
        raise ConfigurationError(f"{file}: cannot read the directory file ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError) as exc:  # TOMLDecodeError and JSONError are ValueErrors
        raise ConfigurationError(f"{file}: not valid TOML/JSON: {exc}") from None


def _settings_table(data: Mapping[str, Any]) -> Mapping[str, Any]:
    table = data.get("settings") or {}
    return table if isinstance(table, Mapping) else _UNREADABLE


def _referenced_files(data: Mapping[str, Any], base_dir: Path) -> list[Path]:
    """The files a directory names (``{file = "..."}`` policy documents, ``settings.secrets_file``), sorted."""
    found: set[Path] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            named = value.get("file")
            if isinstance(named, str):
                found.add(base_dir / named)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk({k: v for k, v in data.items() if k != "settings"})
    secrets_file = _settings_table(data).get("secrets_file")
    if isinstance(secrets_file, str):
        found.add(base_dir / secrets_file)
    return sorted(found)


class DirectoryReloader:
    """Keeps ``iam``'s snapshot in step with its directory file and with other processes sharing its store.

    ``poll_interval`` bounds how late a file change (or a lost announcement of another process's reload) is
    noticed. When the store cannot be read, reloads announced by other processes are not seen (a warning is
    logged), while file changes still are; credentials that need no shared state keep working. ``max_staleness``
    is how long the last shared version read stays in use while the store cannot be read again.
    """

    def __init__(
        self,
        iam: IAM,
        path: str | os.PathLike[str] | None = None,
        *,
        poll_interval: float = 2.0,
        max_staleness: float = 30.0,
    ) -> None:
        file = Path(path) if path is not None else iam.source
        if file is None:
            raise ConfigurationError("DirectoryReloader needs the directory file's path")
        self.iam = iam
        self.path = file
        self.poll_interval = poll_interval
        self._watcher = VersionWatcher(iam.store, poll_interval=poll_interval, max_staleness=max_staleness)
        self._lock = threading.Lock()
        self._settings: Mapping[str, Any] = _UNREADABLE
        self._files: list[Path] = []
        try:
            data = _read(file)
        except ConfigurationError:
            pass  # watched alone until it parses; the reload that follows says what is wrong
        else:
            self._settings = _settings_table(data)
            self._files = _referenced_files(data, file.parent)
        self._stamp = self._file_stamp()
        self._next_check = iam.clock() + poll_interval
        self._shared = self._read_shared(iam.clock())
        self._shared_unavailable = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        #: The errors of the last refused reload, or None after a successful one.
        self.last_error: str | None = None
        #: True once a reload brought a changed ``[settings]`` table: it applies only at the next restart.
        self.restart_needed = False
        # Why nothing may be authorized (no valid directory loaded yet), or None once one is in force.
        self._unloaded: str | None = None
        iam.snapshots.refresh_hooks.append(self.check)
        self._observers = observers_of(iam)  # each reload is reported: metrics (docs/metrics.md)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        store: StateStore | None = None,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 2.0,
        max_staleness: float = 30.0,
    ) -> DirectoryReloader:
        """Load ``path`` into a new ``IAM`` (``reloader.iam``) kept in step with the file; never raises for a bad file.

        If the file is invalid, the errors are logged and the ``IAM`` holds an empty directory: every authenticated
        request is refused with ``NoDirectoryError`` (503) until the file is fixed. A fixed file is picked up like any
        other change when its ``[settings]`` table could be read at start and is unchanged; otherwise the service
        must be restarted to take the settings, and says so.
        """
        file = Path(path)
        try:
            iam = IAM.from_file(file, store=store, clock=clock)
        except (ValueError, TypeError) as exc:  # ConfigurationError, or a [settings] value of the wrong type
            logger.error("no valid directory in %s; every request is refused until it is fixed:\n%s", file, exc)
            settings = _settings_or_none(file)
            partition = settings.partition if settings is not None else "app"
            empty = Snapshot(partition=partition, accounts=(), users=(), groups=(), roles=(), version=0,
                             source=_NO_DIRECTORY)
            iam = IAM(empty, settings=settings, store=store, clock=clock, source=file)
            reloader = cls(iam, file, poll_interval=poll_interval, max_staleness=max_staleness)
            if settings is None:
                reloader._settings = _UNREADABLE
            reloader.last_error = str(exc)
            reloader._unloaded = "the directory file was invalid at start"
            return reloader
        return cls(iam, file, poll_interval=poll_interval, max_staleness=max_staleness)

    @property
    def serving(self) -> bool:
        """False while no valid directory is loaded (every authenticated request is refused)."""
        return self._unloaded is None

    def _file_stamp(self) -> tuple[tuple[int, int] | None, ...]:
        stamps: list[tuple[int, int] | None] = []
        for file in (self.path, *self._files):
            try:
                stat = file.stat()
            except OSError:
                stamps.append(None)
            else:
                stamps.append((stat.st_mtime_ns, stat.st_size))
        return tuple(stamps)

    def _read_shared(self, now: float) -> int | None:
        try:
            return self._watcher.current(VERSION_NAME, now)
        except StateUnavailableError:
            return None

    def reload(self, *, announce: bool = True) -> ReloadResult:
        """Re-read the file now. On success the new snapshot is in force (and announced to other processes)."""
        with self._lock:
            return self._reload(announce)

    def _reload(self, announce: bool) -> ReloadResult:
        current = self.iam.snapshot
        # Stamp first: a change made while this reload reads the files is seen by the next check.
        self._stamp = self._file_stamp()
        try:
            data = _read(self.path)
            snapshot = directory_from_dict(data, base_dir=self.path.parent, version=current.version + 1,
                                           source=str(self.path))
            Settings.from_mapping(_settings_table(data), base_dir=self.path.parent)  # validated whole, not applied
        except (ConfigurationError, ValueError, TypeError) as exc:
            self.last_error = str(exc)
            logger.error("directory reload of %s refused; version %d stays in force:\n%s", self.path,
                         current.version, exc)
            return self._reported(ReloadResult(False, current.version, str(exc)))
        files = _referenced_files(data, self.path.parent)
        if files != self._files:
            self._files = files
            self._stamp = self._file_stamp()
        settings = _settings_table(data)
        if settings != self._settings:
            self.restart_needed = True
            if self._unloaded is not None:
                self._unloaded = "the directory file is valid now, but its settings need a restart to apply"
                self.last_error = None
                logger.error("%s is valid now, but its [settings] could not be read at start or changed since: "
                             "restart the service to load it", self.path)
                return self._reported(ReloadResult(False, current.version, self._unloaded))
            logger.warning("the [settings] table of %s changed: the directory is reloaded, the settings apply at "
                           "the next restart", self.path)
        self.iam.snapshots.swap(snapshot)
        self.last_error = None
        if self._unloaded is not None:
            self._unloaded = None
            logger.warning("a valid directory is loaded from %s: requests are served again", self.path)
        logger.info("directory reloaded from %s: version %d", self.path, snapshot.version)
        if announce:
            try:
                self._shared = self.iam.store.bump(VERSION_NAME)
                self._watcher.seen(VERSION_NAME, self._shared)
            except StateUnavailableError as exc:
                logger.warning("reload not announced to other processes (state store unavailable): %s", exc)
        return self._reported(ReloadResult(True, snapshot.version))

    def _reported(self, result: ReloadResult) -> ReloadResult:
        """``result``, once reported to the IAM's observers."""
        self._observers.reloaded(result.ok, result.version)
        return result

    def check(self, now: float) -> None:
        """Reload if another process announced a reload or (every ``poll_interval``) a watched file changed.

        Cheap on the request path: the shared version is a local copy (refreshed by announcements, re-read from the
        store at most every ``poll_interval``), files are looked at every ``poll_interval``. Raises
        ``NoDirectoryError`` while no valid directory is loaded.
        """
        shared = self._shared_version(now)
        announced = shared is not None and shared != self._shared
        due = now >= self._next_check
        if announced or due:
            with self._lock:
                if shared is not None and shared != self._shared:
                    self._shared = shared
                    self._reload(announce=False)
                elif now >= self._next_check:
                    self._next_check = now + self.poll_interval
                    if self._file_stamp() != self._stamp:
                        self._reload(announce=True)
        if self._unloaded is not None:
            raise NoDirectoryError(
                "No valid directory is loaded, so no request can be authorized; the operator must fix the directory "
                "file (the errors are in the server log).", retry_after=self.poll_interval,
            )

    def _shared_version(self, now: float) -> int | None:
        try:
            shared = self._watcher.current(VERSION_NAME, now)
        except StateUnavailableError as exc:
            if not self._shared_unavailable:
                self._shared_unavailable = True
                logger.warning("reloads of other processes cannot be seen while the state store is unavailable "
                               "(file changes still are): %s", exc)
            return None
        if self._shared_unavailable:
            self._shared_unavailable = False
            logger.warning("the state store answers again: reloads of other processes are seen again")
        return shared

    def start(self) -> None:
        """Check in a background daemon thread every ``poll_interval`` seconds (for quiet services)."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.poll_interval):
                try:
                    self.check(self.iam.clock())
                except NoDirectoryError:
                    pass  # logged when the file was refused
                except Exception:  # noqa: BLE001 - the watcher must outlive any one failed check
                    logger.exception("directory check failed; retrying in %gs", self.poll_interval)

        self._thread = threading.Thread(target=loop, name="iam-directory-reloader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread (if started) and the subscription to other processes' announcements."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._watcher.close()

    def install_signal_handler(self, signum: int = signal.SIGHUP) -> None:
        """Reload on a signal (SIGHUP by default). Call from the main thread."""

        def handler(_signum: int, _frame: FrameType | None) -> None:
            # A handler runs between two bytecodes of the main thread, maybe while it holds the reload lock: reload
            # in a thread of its own, or the handler would wait forever for a lock its own thread holds.
            threading.Thread(target=self.reload, name="iam-directory-reload-signal", daemon=True).start()

        signal.signal(signum, handler)


def _settings_or_none(file: Path) -> Settings | None:
    """The settings of a directory file whose directory part may be broken, or None if they cannot be read."""
    try:
        return Settings.from_mapping(_settings_table(_read(file)), base_dir=file.parent)
    except (ConfigurationError, ValueError, TypeError):
        return None
