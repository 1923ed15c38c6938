"""PostgreSQL ``LISTEN``: a daemon thread that hears each committed change of the directory as it commits.

It holds a connection of its own (autocommit, outside the pool). When the connection fails, it says so once, waits
``retry`` seconds and listens again, then calls back once in case a change was missed meanwhile; polling covers the
gap.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

__all__ = ["Listener"]

logger = logging.getLogger("iam_middleware.reload")


class Listener:
    """Calls ``callback()`` for each notification on ``channel`` until ``close()``."""

    def __init__(self, engine: Engine, channel: str, callback: Callable[[], None], *, retry: float = 1.0,
                 wait: float = 0.5) -> None:
        self._engine = engine
        self._channel = channel
        self._callback = callback
        self._retry = retry
        self._wait = wait  # how long one wait for notifications lasts: the bound on how late close() is noticed
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="iam-directory-listen", daemon=True)
        self._thread.start()

    def wait_listening(self, timeout: float) -> bool:
        """True once the first ``LISTEN`` is in force (a change committed after this is heard)."""
        return self._listening.wait(timeout)

    def _connect(self) -> Any:
        raw = self._engine.raw_connection()
        connection: Any = raw.driver_connection
        raw.detach()  # a connection of its own for the thread's life, never handed back to the pool
        connection.rollback()
        connection.autocommit = True
        connection.execute(f'LISTEN "{self._channel}"')
        return connection

    def _run(self) -> None:
        failed = False
        while not self._stop.is_set():
            connection = None
            try:
                connection = self._connect()
                self._listening.set()
                if failed:
                    failed = False
                    logger.warning("listening for directory changes again")
                    self._notify()
                while not self._stop.is_set():
                    for _ in connection.notifies(timeout=self._wait):
                        self._notify()
            except Exception as exc:  # noqa: BLE001 - any failure of the connection: polling covers, retry
                if not failed:
                    failed = True
                    logger.warning("cannot listen for directory changes (%s); polling only until it can",
                                   type(exc).__name__)
                self._stop.wait(self._retry)
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):  # closing a broken connection may fail too
                        connection.close()

    def _notify(self) -> None:
        try:
            self._callback()
        except Exception:  # noqa: BLE001 - the listener must outlive a failed callback
            logger.exception("directory change callback failed")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
