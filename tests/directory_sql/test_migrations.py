"""Versioned migrations: from an empty database to the latest schema, idempotent, all or nothing, and the schema
they build is the one SQLAlchemy Core queries."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from iam_middleware._exceptions import ConfigurationError
from iam_middleware.directory.sql import SCHEMA_VERSION, SQLDirectory
from iam_middleware.directory.sql import _schema as schema
from iam_middleware.directory.sql._migrations import current_version

from .conftest import DEMO


def test_an_empty_database_is_migrated_to_the_latest_schema(database_url: str) -> None:
    directory = SQLDirectory(database_url, migrate=False)
    try:
        with directory.engine.connect() as connection:
            assert current_version(connection) == 0
        assert directory.migrate() == list(range(1, SCHEMA_VERSION + 1))
        with directory.engine.connect() as connection:
            assert current_version(connection) == SCHEMA_VERSION
            inspector = inspect(connection)
            for table in schema.metadata.sorted_tables:
                columns = {c["name"] for c in inspector.get_columns(table.name)}
                assert columns == {c.name for c in table.columns}, table.name
        assert directory.revision() == 0
    finally:
        directory.close()


def test_migrating_again_applies_nothing_and_keeps_the_data(directory: SQLDirectory) -> None:
    directory.import_file(DEMO)
    before = directory.records()
    assert directory.migrate() == []
    assert SQLDirectory(directory.url).migrate() == []
    assert directory.records() == before and directory.revision() == 1


def test_a_database_newer_than_the_package_is_refused(directory: SQLDirectory) -> None:
    with directory.engine.begin() as connection:
        connection.execute(text("INSERT INTO iam_schema_version (version, applied_at) VALUES (:v, 0)"),
                           {"v": SCHEMA_VERSION + 1})
    with pytest.raises(ConfigurationError, match="newer than this iam-middleware knows"):
        directory.migrate()


def test_a_failed_step_leaves_no_table_behind(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from iam_middleware.directory.sql import _migrations

    broken = ((1, "the first statements, then one that fails", (*_migrations.STEPS[0][2][:3], "CREATE TABLE (")),)
    monkeypatch.setattr(_migrations, "STEPS", broken)
    directory = SQLDirectory(database_url, migrate=False)
    try:
        with pytest.raises(Exception):  # noqa: B017 - the driver's syntax error, whichever its class
            directory.migrate()
        with directory.engine.connect() as connection:
            assert current_version(connection) == 0
            assert not inspect(connection).has_table("iam_revision")
    finally:
        directory.close()
