"""Pytest fixtures running a real, throwaway redis-server on a free loopback port.

``redis_server`` (session): the server, with ``.url``, ``.stop()`` and ``.start()`` (same port) for failure
tests. ``redis_url`` (function): its URL, after making sure it runs and is empty. Without a
``redis-server`` binary on PATH the Redis tests are skipped, except under CI, where that is an error
(``redis_binary``; the cluster and Sentinel fixtures use it too).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import redis

__all__ = ["RedisServer", "free_port", "free_ports", "redis_binary", "redis_server", "redis_url"]

_READY_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """``count`` different loopback TCP ports nobody listens on right now (held together, so none repeats)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def redis_binary() -> str:
    """The redis-server on PATH; skips the test without one, except under CI, where that is an error."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not on PATH (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


class RedisServer:
    """One redis-server process without persistence, restartable on the same port.

    ``extra`` arguments follow the defaults (a cluster node's or a replica's settings); ``config`` is a file to read
    first (a Sentinel needs one it can rewrite); ``directory`` is its working directory, where a replica writes the
    copy it receives (never the checkout).
    """

    def __init__(self, binary: str, port: int, *, extra: Sequence[str] = (), config: Path | None = None,
                 directory: Path | None = None) -> None:
        self._binary = binary
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._extra = list(extra)
        self._config = [str(config)] if config is not None else []
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server (no-op if running) and wait until it answers PING."""
        if self.running:
            return
        self._process = subprocess.Popen(
            [self._binary, *self._config, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", *self._extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self._directory,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + _READY_TIMEOUT
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    if self._process.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server; every key is lost (there is no persistence)."""
        if self._process is None:
            return
        self.resume()  # a paused server would not act on the request to stop before the timeout
        self._process.terminate()
        try:
            self._process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def kill(self) -> None:
        """End the server at once, as a crash or a power cut would (no shutdown, no goodbye to its clients)."""
        if self._process is None:
            return
        self._process.kill()
        self._process.wait()
        self._process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): its connections stay open, but it answers nothing until ``resume()``."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def flush(self) -> None:
        """Start the server if needed and delete every key."""
        self.start()
        client = redis.Redis.from_url(self.url)
        try:
            client.flushall()
        finally:
            client.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(redis_binary(), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.flush()
    return redis_server.url
