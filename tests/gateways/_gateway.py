"""The processes of a gateway test (no tests here): the real nginx with the configuration of docs/gateways.md, the
authorizer started by its own command, and an upstream written for node's ``http`` module.

Each runs on a free loopback port, in the foreground (the authorizer in a thread, or as the command in a process
of its own), with its files in a temporary folder, and is stopped by the fixture that started it. A missing
``nginx`` or ``node`` skips the tests, except under CI, where it is an error.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from _redis_server import free_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from iam_middleware import IAM
from iam_middleware.authz import Authorizer
from iam_middleware.cli._authz import uvicorn_config

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "gateways.md").read_text()
UPSTREAM = Path(__file__).resolve().parent / "echo_upstream.js"
_READY_TIMEOUT = 20.0
_STOP_TIMEOUT = 5.0
# The ports written in docs/gateways.md: the gateway's, the authorizer's and the API's.
_DOC_LISTEN, _DOC_AUTHZ, _DOC_API = "listen 8000;", "127.0.0.1:9000", "127.0.0.1:8080"

#: A user whose permissions hold only from 127.0.0.2 (aws:SourceIp) and only over HTTPS (aws:SecureTransport), for
#: the tests of what the gateway, and never the client, says about the connection.
EXTRA_DIRECTORY = """
[policies.ReportsFromDesk]
document = '''
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "orders:GetReport", "Resource": "*",
   "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.2/32"}}},
  {"Effect": "Allow", "Action": "orders:GetSecureReport", "Resource": "*",
   "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}'''

[users.dave]
policies = ["ReportsFromDesk"]

[[routes]]
method = "GET"
path = "/secure-reports"
action = "orders:GetSecureReport"
"""


def doc_block(marker: str) -> str:
    """The code block of docs/gateways.md that follows ``<!-- gateway-config: MARKER -->``."""
    found = re.search(rf"<!-- gateway-config: {re.escape(marker)} -->\n```\w+\n(.*?)```", DOCS, re.S)
    assert found is not None, f"docs/gateways.md has no {marker} configuration"
    return found.group(1)


def doc_routes() -> str:
    """The ``[[routes]]`` block of docs/gateways.md."""
    blocks = [code for code in re.findall(r"```toml\n(.*?)```", DOCS, re.S) if "[[routes]]" in code]
    assert len(blocks) == 1
    return blocks[0]


def binary(name: str, *, package: str) -> str:
    """The path of a program the tests need; skipped when it is missing, except under CI."""
    found = shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name)
                                        if p.is_file()), None)
    if found is None:
        message = f"{name} is not installed (apt-get install {package})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def gateway_directory(folder: Path) -> Path:
    """The demo directory with the docs' rules table, the gateway on loopback as the trusted proxy, and dave (with
    a route of his own after the docs' ones)."""
    shutil.copytree(ROOT / "examples" / "policies", folder / "policies")
    text = (ROOT / "examples" / "iam.toml").read_text()
    text = text.replace("[settings]\n", '[settings]\ntrusted_proxies = ["127.0.0.1/32"]\n', 1)
    path = folder / "iam.toml"
    path.write_text(text + "\n" + doc_routes() + EXTRA_DIRECTORY)
    return path


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                _stop(process)
                raise RuntimeError(f"{what} did not start on port {port}:\n{log.read_text()}") from None
            time.sleep(0.02)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running(command: list[str], port: int, what: str, log: Path, **kwargs: Any) -> Iterator[int]:
    """Run ``command`` until the block ends, once it accepts connections on ``port``; yield the port."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   **kwargs)
    try:
        _wait_for_port(port, process, what, log)
        yield port
    finally:
        _stop(process)


@contextmanager
def authorizer(iam: IAM) -> Iterator[int]:
    """The authorizer over ``iam``, served as ``iam-middleware authz`` serves it, in a thread of this process (so
    sessions issued here are known there); yield its port."""
    config = uvicorn_config(Authorizer(iam), "127.0.0.1", free_port())
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + _READY_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the authorizer did not start")
        time.sleep(0.01)
    try:
        yield config.port
    finally:
        server.should_exit = True
        thread.join(_STOP_TIMEOUT)


@contextmanager
def authorizer_command(directory: Path, log: Path) -> Iterator[int]:
    """``iam-middleware authz --directory ...`` in a process of its own, on a free loopback port."""
    port = free_port()
    command = [sys.executable, "-m", "iam_middleware.cli", "authz", "--directory", str(directory),
               "--host", "127.0.0.1", "--port", str(port)]
    with running(command, port, "the authorizer", log, cwd=ROOT):
        yield port


@contextmanager
def upstream(node: str, log: Path) -> Iterator[int]:
    """The node echo upstream on a free loopback port."""
    port = free_port()
    with running([node, str(UPSTREAM), str(port)], port, "the node upstream", log):
        yield port


def tls_files(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files in ``folder``: (certificate, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "gateway.crt", folder / "gateway.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def doc_block_for(port: int, authz_port: int, api_port: int, tls: tuple[Path, Path] | None = None) -> str:
    """The docs' nginx block with its three ports changed, and nothing else; with ``tls`` (certificate, key) the
    listener takes HTTPS instead."""
    block = doc_block("nginx")
    listen = f"listen 127.0.0.1:{port};"
    if tls is not None:
        listen = f"listen 127.0.0.1:{port} ssl;\n    ssl_certificate {tls[0]};\n    ssl_certificate_key {tls[1]};"
    for placeholder, value in ((_DOC_LISTEN, listen), (_DOC_AUTHZ, f"127.0.0.1:{authz_port}"),
                               (_DOC_API, f"127.0.0.1:{api_port}")):
        assert block.count(placeholder) == 1, placeholder
        block = block.replace(placeholder, value)
    return block


def nginx_config(prefix: Path, port: int, authz_port: int, api_port: int,
                 tls: tuple[Path, Path] | None = None) -> str:
    """An nginx.conf around the docs' block: foreground, its own pid, log and temporary folders under ``prefix``."""
    block = doc_block_for(port, authz_port, api_port, tls)
    temporary = "\n".join(f"    {kind}_temp_path {prefix / kind};"
                          for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # As root, nginx would run its worker as nobody, which cannot enter the test's private temporary folder.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (f"daemon off;\n{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {prefix / 'error.log'} warn;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n    access_log off;\n{temporary}\n{block}}}\n")


@contextmanager
def nginx(binary_path: str, prefix: Path, authz_port: int, api_port: int,
          tls: tuple[Path, Path] | None = None) -> Iterator[int]:
    """The real nginx in front of the authorizer and the upstream, on a free loopback port (HTTPS with ``tls``)."""
    port = free_port()
    prefix.mkdir(exist_ok=True)
    config = prefix / "nginx.conf"
    config.write_text(nginx_config(prefix, port, authz_port, api_port, tls))
    command = [binary_path, "-p", str(prefix), "-c", str(config), "-e", str(prefix / "startup.log")]
    with running(command, port, "nginx", prefix / "output.log"):
        yield port


def seen(api_port: int) -> list[dict[str, Any]]:
    """The requests the upstream received since the last look (asked directly, not through the gateway)."""
    answer = httpx.get(f"http://127.0.0.1:{api_port}/__seen", timeout=5)
    requests: list[dict[str, Any]] = json.loads(answer.content)
    return requests


def headers_of(received: dict[str, Any]) -> dict[str, list[str]]:
    """The headers an upstream request carried, by lower-case name, every value in order."""
    raw = received["headers"]
    found: dict[str, list[str]] = {}
    for name, value in zip(raw[::2], raw[1::2], strict=True):
        found.setdefault(name.lower(), []).append(value)
    return found
