"""Connections to the directory's database: SQLite (a file) or PostgreSQL, opened with the settings they need.

SQLite runs in WAL mode (readers never wait for the writer), with foreign keys enforced and transactions begun
explicitly, so a migration's DDL and a change's statements are atomic, and a change takes the write lock before it
reads (``BEGIN IMMEDIATE``). PostgreSQL goes through psycopg 3. Statement parameters are never put into error
messages (they carry access key secrets and TOTP seeds), and a URL is shown only without its password.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ..._exceptions import ConfigurationError

__all__ = ["WRITE", "database_url", "open_engine", "safe_url"]

#: Execution option of a connection that will change the directory: SQLite begins it with BEGIN IMMEDIATE.
WRITE = "iam_directory_write"
_SQLITE_BUSY_SECONDS = 30.0


def database_url(database: str | os.PathLike[str] | URL) -> URL:
    """The SQLAlchemy URL of ``database``: a URL (``sqlite:///iam.db``, ``postgresql://...``) or a SQLite file path.

    ``postgresql://`` means psycopg 3 (SQLAlchemy's own default is psycopg2). An in-memory SQLite database is refused:
    every connection would see a database of its own.
    """
    if isinstance(database, URL):
        url = database
    else:
        text = os.fspath(database)
        if "://" not in text:
            return URL.create("sqlite+pysqlite", database=str(Path(text).resolve()))
        try:
            url = make_url(text)
        except ArgumentError:
            raise ConfigurationError("the directory database is not a valid URL") from None
    backend = url.get_backend_name()
    if backend == "postgresql":
        return url.set(drivername="postgresql+psycopg") if url.drivername == "postgresql" else url
    if backend == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise ConfigurationError("a SQLite directory needs a file (sqlite:///path/iam.db), not an in-memory "
                                     "database")
        return url
    raise ConfigurationError(f"the directory database must be SQLite or PostgreSQL, not {backend!r}")


def safe_url(url: URL) -> str:
    """``url`` to show in logs, errors and reprs: driver, user, host, port and database; no password, no query."""
    shown = URL.create(url.drivername, username=url.username, host=url.host, port=url.port, database=url.database)
    return shown.render_as_string(hide_password=True)


def open_engine(url: URL) -> Engine:
    """An engine for ``url`` (see ``database_url``) with the settings the directory relies on."""
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, hide_parameters=True, connect_args={"timeout": _SQLITE_BUSY_SECONDS})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, hide_parameters=True, pool_pre_ping=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 module's own transaction handling begins nothing before DDL or SELECT: take it over, so that
    # every transaction is begun explicitly (below) and DDL and reads are part of it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # A writer takes the write lock first: a deferred transaction that read, then wrote, could find its snapshot
    # stale and fail at once instead of waiting its turn.
    connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(WRITE) else "BEGIN")
