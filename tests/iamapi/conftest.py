"""Fixtures of the IAM API's tests: the demo directory in a SQLite database (a temporary file), with an
administrator (``IAMAdministrator``: ``iam:*``) and alice holding the shipped self-service policy, served with the
orders API, the token service and the IAM API at ``/iam`` by a real uvicorn on loopback; boto3 IAM clients for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

pytest.importorskip("sqlalchemy")

import boto3  # noqa: E402 - after the skip
from adapters._support import uvicorn_server  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.routing import Mount  # noqa: E402

from iam_middleware.cli._demo import build_demo_app  # noqa: E402
from iam_middleware.directory.sql import SQLDirectory, SQLDirectoryReloader  # noqa: E402
from iam_middleware.iamapi import iam_api  # noqa: E402
from iam_middleware.state import MemoryStore  # noqa: E402

from ._shapes_check import check_answer  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEMO = EXAMPLES / "iam.toml"
SELF_SERVICE = EXAMPLES / "policies" / "self-service.json"
ACCOUNT = "111122223333"
ALICE_KEY = ("AKIADEMOALICE0000001", "demo/alice/wJalrXUtnFEMI/K7MDENG/bPxRfiCY")
BOB_KEY = ("AKIADEMOBOB000000001", "demo/bob/Xq8vL2mNcR4tYp7Kz1Wd/Hs9bFgJeUa")
PASSWORD = "correct horse battery staple"  # every demo user's password
ADMINISTRATOR = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}


def arn(kind: str, name: str) -> str:
    return f"arn:app:iam::{ACCOUNT}:{kind}/{name}"


class Live(NamedTuple):
    directory: SQLDirectory
    reloader: SQLDirectoryReloader
    base: str
    admin_key: tuple[str, str]

    def client(self, key: tuple[str, ...] | None = None) -> Any:
        """A boto3 IAM client signing with ``key`` (the administrator's by default)."""
        key = key or self.admin_key
        client = boto3.client("iam", endpoint_url=f"{self.base}/iam/", region_name="local",
                              aws_access_key_id=key[0], aws_secret_access_key=key[1],
                              aws_session_token=key[2] if len(key) > 2 else None)
        client.meta.events.register("before-parse.iam", check_answer)  # every answer in the model's shape
        return client


def prepare(directory: SQLDirectory) -> tuple[str, str]:
    """The demo, an administrator and alice's self-service policy; returns the administrator's key."""
    directory.import_file(DEMO)
    with directory.change() as draft:
        draft.create_policy("IAMAdministrator", ADMINISTRATOR)
        draft.create_policy("SelfService", SELF_SERVICE.read_text())
        draft.create_user("admin")
        draft.attach_user_policy("admin", "IAMAdministrator")
        draft.attach_user_policy("alice", "SelfService")
        key = draft.create_access_key("admin")
    return key.access_key_id, key.secret_access_key


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'iam.db'}"


def serve(url: str) -> Iterator[Live]:
    directory = SQLDirectory(url)
    admin = prepare(directory)
    reloader = SQLDirectoryReloader.open(directory, store=MemoryStore(), clock=time.time)
    app = Starlette(routes=[Mount("/iam", app=iam_api(reloader)), Mount("/", app=build_demo_app(reloader.iam))])
    try:
        with uvicorn_server(app) as port:
            yield Live(directory, reloader, f"http://127.0.0.1:{port}", admin)
    finally:
        reloader.stop()
        directory.close()


@pytest.fixture
def live(sqlite_url: str) -> Iterator[Live]:
    """The service on a loopback port, serving a SQLite directory, at the real time (botocore signs with it)."""
    yield from serve(sqlite_url)
