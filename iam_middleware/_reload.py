"""Hot reload of the directory file: validate the new snapshot whole, swap it atomically, keep the last good one.

Triggers: an explicit ``reload()``, a change of the file's modification time or size (checked at most every
``poll_interval`` seconds, on the request path or by a background thread), SIGHUP (``install_signal_handler``), an
authorized admin endpoint (``admin_app``), and a bump of the shared version by another process. A successful reload
bumps the shared version in the state store, so every other worker and machine re-reads the same file within
``poll_interval`` (at once when the store announces bumps, as Redis does). A file that fails validation is refused
with its errors logged, and the snapshot in force stays. Requests in flight finish on the snapshot they read.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from ._exceptions import ConfigurationError, ServiceUnavailableError
from ._iam import IAM
from .directory import load_directory
from .state import StateUnavailableError, VersionWatcher

__all__ = ["DirectoryReloader", "ReloadResult"]

logger = logging.getLogger("iam_middleware.reload")
VERSION_NAME = "iam:directory"


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did: ``ok`` with the version now in force, or the errors that kept the old snapshot."""

    ok: bool
    version: int
    errors: str | None = None


class DirectoryReloader:
    """Keeps ``iam``'s snapshot in step with its directory file and with other processes."""

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
        self._stamp = self._file_stamp()
        self._next_check = 0.0
        self._shared = self._read_shared(now=iam.clock())
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.last_error: str | None = None
        iam.refresh_hooks.append(self.check)

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def _read_shared(self, now: float) -> int:
        try:
            return self._watcher.current(VERSION_NAME, now)
        except StateUnavailableError:
            return -1

    def reload(self, *, announce: bool = True) -> ReloadResult:
        """Re-read the file now. On success the new snapshot is in force (and announced to other processes)."""
        with self._lock:
            current = self.iam.snapshot
            self._stamp = self._file_stamp()
            try:
                snapshot = load_directory(self.path, version=current.version + 1)
            except ConfigurationError as exc:
                self.last_error = str(exc)
                logger.error("directory reload refused; version %d stays in force:\n%s", current.version, exc)
                return ReloadResult(False, current.version, str(exc))
            self.iam.swap(snapshot)
            self.last_error = None
            logger.info("directory reloaded from %s: version %d", self.path, snapshot.version)
            if announce:
                try:
                    self._shared = self.iam.store.bump(VERSION_NAME)
                except StateUnavailableError as exc:
                    logger.warning("reload not announced to other processes (state store unavailable): %s", exc)
            return ReloadResult(True, snapshot.version)

    def check(self, now: float) -> None:
        """Reload when the file changed or another process announced a reload; cheap between polls.

        Raises ServiceUnavailableError when the shared version has been unreadable for longer than
        ``max_staleness``: a policy change elsewhere could be missed, so requests are refused until it is known.
        """
        if now < self._next_check:
            return
        self._next_check = now + self.poll_interval
        try:
            shared = self._watcher.current(VERSION_NAME, now)
        except StateUnavailableError as exc:
            raise ServiceUnavailableError(f"the directory version cannot be confirmed: {exc}") from None
        if shared != self._shared:
            self._shared = shared
            self.reload(announce=False)
            return
        if self._file_stamp() != self._stamp:
            self.reload()

    def start(self) -> None:
        """Check in a background daemon thread every ``poll_interval`` seconds (for quiet services)."""
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(self.poll_interval):
                try:
                    self.check(self.iam.clock())
                except ServiceUnavailableError as exc:
                    logger.warning("%s", exc)

        self._thread = threading.Thread(target=loop, name="iam-directory-reloader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._watcher.close()

    def install_signal_handler(self, signum: int = signal.SIGHUP) -> None:
        """Reload on a signal (SIGHUP by default). Call from the main thread."""

        def handler(_signum: int, _frame: FrameType | None) -> None:
            self.reload()

        signal.signal(signum, handler)
