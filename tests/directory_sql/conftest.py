"""Fixtures of the database directory's tests: a fresh directory on SQLite (a temporary file) and on a real
PostgreSQL server (a new database of the session's server), and ``backend`` to run a test on both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _postgres_server import postgres_server, postgres_url  # noqa: F401 - fixtures

pytest.importorskip("sqlalchemy")

from iam_middleware.directory.sql import SQLDirectory  # noqa: E402 - after the skip

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEMO = EXAMPLES / "iam.toml"
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'iam.db'}"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database, on each backend in turn."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def directory(database_url: str) -> Iterator[SQLDirectory]:
    """A migrated, empty directory database on each backend."""
    found = SQLDirectory(database_url)
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def demo(directory: SQLDirectory) -> SQLDirectory:
    """The demo directory (examples/iam.toml), imported."""
    directory.import_file(DEMO)
    return directory
