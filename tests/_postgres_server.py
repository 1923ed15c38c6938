"""Pytest fixtures running a real, throwaway PostgreSQL server on a free loopback port.

``postgres_server`` (session): ``initdb`` in a temporary directory, then ``postgres`` on 127.0.0.1, trust
authentication for one superuser, no fsync (nothing here must survive a crash). ``postgres_url`` (function): the
URL of a new, empty schema on it (as good as a new database here, and much quicker to make). The binaries come from
PATH or Debian's ``/usr/lib/postgresql/<version>/bin``; PostgreSQL refuses to run as root, so as root the server
runs as the ``postgres`` user (Debian's package makes it) or ``nobody``. Without the binaries the PostgreSQL tests
are skipped, except under CI, where that is an error.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _redis_server import free_port

__all__ = ["PostgresServer", "postgres_bin", "postgres_server", "postgres_url"]

_READY_TIMEOUT = 20.0
_USER = "iam"


def postgres_bin() -> Path | None:
    """The directory holding ``initdb`` and ``postgres`` (the newest Debian version first), or None."""
    found = shutil.which("initdb")
    if found is not None:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(versions[-1]).parent if versions else None


def _run_as() -> pwd.struct_passwd | None:
    """The account the server runs as: None for the current one, unless that is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a postgres nor a nobody user exists to run PostgreSQL as")


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, serving on ``port`` until ``stop()``."""

    def __init__(self, bin_dir: Path, port: int) -> None:
        self.port = port
        self._bin = bin_dir
        self._account = _run_as()
        self._dir = Path(tempfile.mkdtemp(prefix="iam-pg-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._databases = itertools.count(1)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{database}"

    def _popen(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        account = self._account
        with log.open("ab") as out:
            if account is None:
                return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
            return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, user=account.pw_uid,
                                    group=account.pw_gid, extra_groups=[])

    def _log_tail(self) -> str:
        try:
            return (self._dir / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def start(self) -> None:
        data = self._dir / "data"
        if self._account is not None:
            os.chown(self._dir, self._account.pw_uid, self._account.pw_gid)
        log = self._dir / "server.log"
        initdb = self._popen([str(self._bin / "initdb"), "-D", str(data), "-U", _USER, "--auth=trust", "-E", "UTF8",
                              "--no-sync", "--locale=C"], log)
        if initdb.wait(timeout=60) != 0:
            raise RuntimeError(f"initdb failed: {self._log_tail()}")
        self._process = self._popen([
            str(self._bin / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port),
            "-k", str(self._dir), "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200"], log)
        import psycopg

        deadline = time.monotonic() + _READY_TIMEOUT
        while True:
            try:
                psycopg.connect(self.url(), connect_timeout=1).close()
                return
            except psycopg.OperationalError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"postgres did not start on port {self.port}: {self._log_tail()}") from None
                time.sleep(0.05)

    def create_database(self) -> str:
        """The URL of a new, empty place for tables: a schema of its own (the URL sets ``search_path``), which
        takes milliseconds where a database takes half a second. Schemas share one database, and so its
        notification channels."""
        import psycopg

        name = f"iam_test_{next(self._databases)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE SCHEMA {name}")
        return f"{self.url()}?options=-csearch_path%3D{name}"

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGINT)  # "fast" shutdown: clients still connected are let go
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        message = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    if not os.environ.get("CI"):
        pytest.importorskip("psycopg")
    server = PostgresServer(bin_dir, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database()
