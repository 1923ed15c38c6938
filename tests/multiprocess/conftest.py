"""Fixtures of the two-worker tests: ``cluster`` (module scope) runs two uvicorn processes on one real Redis.

It copies ``examples/`` to a temporary directory, adds an operator (``ops``, allowed to reload) and three more TOTP
users, and starts the two workers on free loopback ports against the ``redis_server`` fixture. The processes are
terminated (then killed) at the end; a worker that fails to start fails the tests with its log.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from collections.abc import Iterator

import pyotp
import pytest
from _redis_server import RedisServer, free_port

from iam_middleware._iam import IAM

from ._cluster import EXAMPLES, POLL, ROOT, Cluster, Worker, extra_users, start, stop, wait_ready


@pytest.fixture(scope="module")
def cluster(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    redis_server.flush()
    root = tmp_path_factory.mktemp("two-workers")
    shutil.copytree(EXAMPLES, root / "examples", ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    directory = root / "examples" / "iam.toml"
    text = directory.read_text()
    demo_users = tomllib.loads(text)["users"]
    extra = {"dave": pyotp.random_base32(), "erin": pyotp.random_base32(), "frank": pyotp.random_base32()}
    text += extra_users(demo_users["alice"]["password_hash"], extra)
    directory.write_text(text)
    IAM.from_file(directory)  # a broken test directory fails here, not as puzzling refusals in the workers
    seeds = {name: user["totp_secret"] for name, user in demo_users.items() if "totp_secret" in user}
    env = {**os.environ, "IAM_MP_CONFIG": str(directory), "IAM_MP_REDIS": redis_server.url, "IAM_MP_POLL": str(POLL),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    workers = Cluster(directory, redis_server, Worker("A", free_port(), root / "a.log"),
                      Worker("B", free_port(), root / "b.log"), seeds={**seeds, **extra}, original=text)
    try:
        for worker in workers.workers:
            start(worker, env)
        for worker in workers.workers:
            try:
                wait_ready(worker)
            except RuntimeError as exc:
                pytest.fail(str(exc))
        yield workers
    finally:
        for worker in workers.workers:
            stop(worker)
        redis_server.start()


@pytest.fixture(autouse=True)
def _redis_running(redis_server: RedisServer) -> None:
    """Every test starts with Redis up (a failed outage test must not take the next tests down with it)."""
    redis_server.start()
