"""The two-worker harness (no tests here): worker processes, the directory they serve, and clients for them.

Each worker is a separate ``python -m uvicorn`` process serving ``_app.py``; requests are plain httpx calls, signed
by real botocore where SigV4 is needed. Every wait is a bounded poll.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pyotp
from _redis_server import RedisServer
from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXAMPLES = ROOT / "examples"
ACCOUNT = "111122223333"
PASSWORD = "correct horse battery staple"  # every demo user's password (iam_middleware.cli._demo)
IDP_SECRET = "demo-idp-hmac-secret-0123456789abcdef0123"
ALICE_KEY = ("AKIADEMOALICE0000001", "demo/alice/wJalrXUtnFEMI/K7MDENG/bPxRfiCY")
DIRECTORY = f"arn:app:iam::{ACCOUNT}:directory"
OPS_KEY = ("AKIATESTOPS000000001", "test/ops/3nQ7pX9vL2mR8sT4wY6zB1cD5fG0hJ")
# The reloader's poll interval in the workers: long, so that only another process's announcement (Redis pub/sub)
# can make a worker reload, never its own look at the file.
POLL = 3600.0
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 15.0

_T = TypeVar("_T")


def extra_users(hash_: str, seeds: Mapping[str, str]) -> str:
    users = "".join(
        f'\n[users.{name}]\ngroups = ["readers"]\npassword_hash = "{hash_}"\ntotp_secret = "{seed}"\n'
        for name, seed in seeds.items()
    )
    return f"""
[policies.DirectoryAdmin]
document = {{ Version = "2012-10-17", Statement = [
    {{ Effect = "Allow", Action = ["iam:ReloadDirectory", "iam:GetDirectoryStatus"], Resource = "{DIRECTORY}" }},
] }}

[users.ops]
policies = ["DirectoryAdmin"]
access_keys = [{{ id = "{OPS_KEY[0]}", secret = "{OPS_KEY[1]}" }}]
{users}"""


@dataclass
class Worker:
    """One uvicorn process."""

    name: str
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@dataclass
class Cluster:
    """The two workers, the directory file they serve, and the users' TOTP seeds."""

    directory: Path
    redis: RedisServer
    a: Worker
    b: Worker
    seeds: dict[str, str] = field(default_factory=dict)
    original: str = ""

    @property
    def workers(self) -> tuple[Worker, Worker]:
        return self.a, self.b

    def code(self, user: str) -> str:
        return pyotp.TOTP(self.seeds[user]).now()

    def write_directory(self, text: str) -> None:
        """Replace the directory file atomically (a reader never sees half a file)."""
        partial = self.directory.with_suffix(".partial")
        partial.write_text(text)
        os.replace(partial, self.directory)


def request(method: str, url: str, *, json_body: Any = None, token: str | None = None,
            headers: Mapping[str, str] | None = None) -> httpx.Response:
    """A plain HTTP call (bearer token optional) with a generous timeout."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    content = None
    if json_body is not None:
        content = json.dumps(json_body).encode()
        sent["Content-Type"] = "application/json"
    return httpx.request(method, url, content=content, headers=sent, timeout=HTTP_TIMEOUT)


def signed(method: str, url: str, key: tuple[str, str], *, session_token: str | None = None,
           json_body: Any = None) -> httpx.Response:
    """A call signed with SigV4 by real botocore (the demo's scope: region ``local``, service ``orders``)."""
    body = json.dumps(json_body).encode() if json_body is not None else b""
    headers = {"Content-Type": "application/json"} if json_body is not None else {}
    aws = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(Credentials(key[0], key[1], session_token), "orders", "local").add_auth(aws)
    return httpx.request(method, url, content=body, headers=dict(aws.headers.items()), timeout=HTTP_TIMEOUT)


def login(worker: Worker, user: str, code: str) -> httpx.Response:
    return request("POST", f"{worker.url}/sts/login", json_body={"username": user, "password": PASSWORD,
                                                                  "code": code})


def eventually(probe: Callable[[], _T], done: Callable[[_T], bool], *, timeout: float = 15.0,
               interval: float = 0.1) -> _T:
    """Call ``probe`` until ``done`` holds for its result, or until ``timeout``; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def start(worker: Worker, env: Mapping[str, str]) -> None:
    with worker.log.open("wb") as log:
        worker.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "_app:create_app", "--app-dir", str(HERE),
             "--host", "127.0.0.1", "--port", str(worker.port), "--log-level", "warning", "--no-access-log"],
            env=dict(env), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )


def wait_ready(worker: Worker) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    assert worker.process is not None
    while True:
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker {worker.name} exited with {worker.process.returncode}:\n{worker.log_tail()}")
        try:
            if httpx.get(f"{worker.url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker {worker.name} did not answer within {START_TIMEOUT}s:\n{worker.log_tail()}")
        time.sleep(0.1)


def stop(worker: Worker) -> None:
    process = worker.process
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
