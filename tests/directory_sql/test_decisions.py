"""The same decisions whichever backend serves the demo directory: rows of the conformance table
(tests/conformance/test_matrix.py) through the Starlette shell, with the directory from the file, from SQLite and
from PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from adapters._support import NOW, demo_iam
from conformance.test_matrix import ANY, ROWS, Row, _app, _call

from iam_middleware import IAM
from iam_middleware.directory.sql import SQLDirectory

from .conftest import DEMO

NAMES = ["anonymous", "session bearer allowed", "session bearer denied", "session with MFA allowed",
         "web identity token", "sigv4 allowed", "sigv4 tampered", "sigv4 signed body", "cookie, same site",
         "undeclared", "token service login", "token service wrong code", "token service AssumeRole",
         "token service AssumeRole denied"]
CHOSEN = [row for row in ROWS if row.name in NAMES]


@pytest.fixture(params=["file", "sqlite", "postgresql"], scope="module")
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IAM]:
    """The demo's IAM at the instant NOW, its directory from each backend in turn."""
    if request.param == "file":
        yield demo_iam()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('decisions') / 'iam.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    directory = SQLDirectory(url)
    directory.import_file(DEMO)
    try:
        yield directory.iam(clock=lambda: NOW)
    finally:
        directory.close()


def test_the_chosen_rows_exist() -> None:
    assert [row.name for row in CHOSEN] == NAMES


@pytest.mark.parametrize("row", CHOSEN, ids=[row.name for row in CHOSEN])
def test_every_backend_decides_alike(served: IAM, row: Row) -> None:
    expected = row.expected("starlette")
    assert expected is not None
    answer = _call("starlette", _app("starlette", served), row.request(served))
    assert (answer.status, answer.code) == (expected.status, expected.code), answer.body
    if expected.by is not ANY:
        assert answer.by == expected.by, answer.body
