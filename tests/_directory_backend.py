"""Run the directory-dependent tests on a database instead of the file: ``IAM_TEST_DIRECTORY=sqlite`` or
``IAM_TEST_DIRECTORY=postgresql``.

Under either, every ``IAM.from_file(path, ...)`` of the session validates the file as usual (a file that fails keeps
failing the same way), imports it into a database (``SQLDirectory.import_file``, what ``iam-middleware directory
import`` does) and returns the ``IAM`` that database serves (``SQLDirectory.iam``). So the same tests, with the same
expectations, show that a directory served from SQLite or PostgreSQL decides every request as the file does
(docs/live-directory.md). ``.ci/run`` runs the directory-dependent part of the suite this way on both engines.

Each ``from_file`` call gets a database of its own: a new SQLite file, or a new schema of one PostgreSQL server
started for the session. ``IAM.from_dict(data, ...)`` goes the same way: the mapping is written as a directory file
(``file`` paths made absolute against ``base_dir``) and imported.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from iam_middleware import IAM
from iam_middleware.directory._write import dump_toml

BACKEND = os.environ.get("IAM_TEST_DIRECTORY", "file")
_BACKENDS = ("file", "sqlite", "postgresql")
#: The database URL of each ``IAM`` built through the patched constructors (by ``id``): what tests/test_directory_
#: backend.py checks, so a run that says it serves from a database cannot quietly serve from the file.
SERVED_FROM: dict[int, str] = {}


@pytest.fixture(scope="session", autouse=True)
def directory_backend() -> Iterator[str]:
    """The engine serving every ``IAM.from_file`` of this session: ``file`` unless ``IAM_TEST_DIRECTORY`` says."""
    if BACKEND not in _BACKENDS:
        raise pytest.UsageError(f"IAM_TEST_DIRECTORY must be one of {', '.join(_BACKENDS)}, not {BACKEND!r}")
    if BACKEND == "file":
        yield BACKEND
        return
    from iam_middleware.directory.sql import SQLDirectory

    server: Any = None
    if BACKEND == "postgresql":
        from _postgres_server import PostgresServer, postgres_bin
        from _redis_server import free_port

        bin_dir = postgres_bin()
        if bin_dir is None:
            raise pytest.UsageError("IAM_TEST_DIRECTORY=postgresql needs PostgreSQL (apt-get install postgresql)")
        server = PostgresServer(bin_dir, free_port())
        server.start()
    scratch = Path(tempfile.mkdtemp(prefix="iam-test-directory-"))
    counter = iter(range(1, 1 << 30))
    original_file: Callable[..., IAM] = IAM.from_file.__func__  # type: ignore[attr-defined]
    original_dict: Callable[..., IAM] = IAM.from_dict.__func__  # type: ignore[attr-defined]

    def served(path: Path, base_dir: Path, store: Any, clock: Callable[[], float],
               on_password_rehash: Callable[[str, str], None] | None) -> IAM:
        url = (server.create_database() if server is not None
               else f"sqlite:///{scratch / f'iam-{next(counter)}.db'}")
        database = SQLDirectory(url, base_dir=base_dir)
        try:
            database.import_file(path)
            iam = database.iam(store=store, clock=clock, on_password_rehash=on_password_rehash)
            SERVED_FROM[id(iam)] = url
            return iam
        finally:
            database.close()  # the pool's connections; a later write-back (a password re-hash) connects anew

    def from_file(cls: type[IAM], path: str | os.PathLike[str], *, store: Any = None,
                  clock: Callable[[], float] = time.time,
                  on_password_rehash: Callable[[str, str], None] | None = None) -> IAM:
        original_file(cls, path, store=store, clock=clock)  # the file's own errors, exactly as without a database
        return served(Path(path), Path(path).parent, store, clock, on_password_rehash)

    def from_dict(cls: type[IAM], data: Mapping[str, Any], *, store: Any = None,
                  clock: Callable[[], float] = time.time, base_dir: str | os.PathLike[str] = ".",
                  on_password_rehash: Callable[[str, str], None] | None = None) -> IAM:
        original_dict(cls, data, store=store, clock=clock, base_dir=base_dir)  # the mapping's own errors
        base = Path(base_dir).resolve()
        path = scratch / f"iam-{next(counter)}.toml"
        path.write_text(dump_toml(_absolute(data, base)))
        return served(path, base, store, clock, on_password_rehash)

    patch = pytest.MonkeyPatch()
    patch.setattr(IAM, "from_file", classmethod(from_file))
    patch.setattr(IAM, "from_dict", classmethod(from_dict))
    try:
        yield BACKEND
    finally:
        patch.undo()
        if server is not None:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def _absolute(value: Any, base: Path) -> Any:
    """``value`` with every relative path under a key ending in ``file`` made absolute against ``base``."""
    if isinstance(value, Mapping):
        return {key: (str(base / item) if key.endswith("file") and isinstance(item, str)
                      and not os.path.isabs(item) else _absolute(item, base))
                for key, item in value.items()}
    if isinstance(value, list):
        return [_absolute(item, base) for item in value]
    return value
