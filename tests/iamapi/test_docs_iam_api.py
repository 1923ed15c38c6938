"""docs/iam-api.md runs as written against the demo with the IAM API (``iam-middleware demo --iam-api``'s app and
database, on a free port): its shell blocks as one session with the real AWS CLI and curl, its boto3 example
printing what the page says. (tests/test_readme.py runs the page's mounting example.)"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import pytest
from adapters._support import uvicorn_server

from iam_middleware.cli._demo import build_demo_app, iam_api_directory
from iam_middleware.directory.sql import SQLDirectoryReloader
from iam_middleware.iamapi import IAMAPI
from iam_middleware.state import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "iam-api.md"
BLOCK = re.compile(r"(?:<!-- test: (?P<mark>[^>]*?) -->\n)?```(?P<lang>\w+)\n(?P<code>.*?)```", re.S)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[int]:
    """The demo's app with the IAM API over a new SQLite database, as ``demo --iam-api`` serves it."""
    directory = iam_api_directory(f"sqlite:///{tmp_path / 'iam.db'}")
    iam = directory.iam(store=MemoryStore())
    reloader = SQLDirectoryReloader(iam, directory)
    try:
        with uvicorn_server(build_demo_app(iam, iam_api=IAMAPI(iam, directory))) as port:
            yield port
    finally:
        reloader.stop()
        directory.close()


def blocks(lang: str) -> list[tuple[str, str]]:
    return [(m.group("mark") or "", m.group("code")) for m in BLOCK.finditer(PAGE.read_text())
            if m.group("lang") == lang]


@pytest.mark.skipif(find_spec("awscli") is None, reason="the AWS CLI (awscli, in the test extra)")
def test_the_shell_blocks_run_as_one_session(demo: int, tmp_path: Path) -> None:
    if shutil.which("curl") is None and not os.environ.get("CI"):
        pytest.skip("the page's calls need curl")
    shell = [code for _, code in blocks("sh")]
    assert shell[0].strip() == "iam-middleware demo --iam-api"  # started here by the fixture instead
    script = "set -euo pipefail\n" + "\n".join(shell[1:]).replace("127.0.0.1:8000", f"127.0.0.1:{demo}")
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(HOME=str(tmp_path), PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""))
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.split()
    assert out[out.index("200"):out.index("200") + 2] == ["200", "403"]  # dave reads, may not delete
    assert "arn:app:iam::111122223333:policy/OrdersWriter" in out
    assert out[out.index("arn:app:iam::111122223333:policy/OrdersWriter") + 1] == "200"  # now he may delete
    assert re.search(r"orders:DeleteOrder\s+allowed\s+orders:PurgeOrders\s+explicitDeny", result.stdout)
    assert "arn:app:iam::111122223333:mfa/dave" in out  # made, enabled with two codes, listed as dave's
    assert re.search(r"^orders\s+local$", result.stdout, re.M)  # dave's key last signed for orders, in local
    assert "STARTED" in out and "dave,false,true,true" in out  # the credential report's row for dave
    assert "AKIADEMOALICE0000001" in out  # alice lists her own key
    errors = re.findall(r"An error occurred \((\w+)\)", result.stderr)
    assert errors == ["DeleteConflict", "NoSuchEntity", "AccessDenied", "AccessDenied"], result.stderr


def test_the_boto3_example_prints_what_the_page_says(demo: int) -> None:
    (mark, code), = blocks("python")[1:]
    assert mark.startswith("skip calls the running demo's IAM API")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code.replace("127.0.0.1:8000", f"127.0.0.1:{demo}"), {"__name__": "docs_example"})  # noqa: S102
    said = PAGE.read_text().split("prints ", 1)[1].split(".\n", 1)[0]
    expected = re.findall(r"`([^`]+)`", said)
    assert printed.getvalue().splitlines() == expected


def test_demo_iam_api_prints_the_endpoint_and_keeps_a_database(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """``iam-middleware demo --iam-api --database URL``: an empty database is given the demo, one that holds a
    directory is served as it is (a change made through the API survives a restart of the demo)."""
    from iam_middleware.cli import main
    from iam_middleware.directory.sql import SQLDirectory

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["demo", "--iam-api", "--no-serve", "--database", url]) == 0
    printed = capsys.readouterr().out
    assert "IAM's own API at http://127.0.0.1:8000/iam/" in printed and "AKIADEMOADMIN0000001" in printed
    directory = SQLDirectory(url)
    with directory.change() as draft:
        draft.create_user("kept")
    assert main(["demo", "--iam-api", "--no-serve", "--database", url]) == 0
    assert {u["name"] for u in directory.records()["users"].values()} >= {"admin", "alice", "kept"}
    directory.close()
