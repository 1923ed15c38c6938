"""Every Python and TOML block of the README and docs/ runs (or parses) as written, so they cannot rot.

Python blocks run in a scratch folder holding a copy of ``examples/`` as ``iam.toml`` and ``policies/``, each in a
fresh namespace, or, after ``<!-- test: with NAME -->``, in a copy of the one a block marked
``<!-- test: as NAME -->`` left (``with iam``: an ``IAM`` of that directory). Top-level ``await`` runs on an
event loop. A block marked ``<!-- test: skip WHY -->`` is left out only with its reason, and the reasons are pinned
here so none is added silently.

The README's shell blocks run with bash (``set -euo pipefail``) from the checkout, against the demo API served on a
free port (``127.0.0.1:8000`` in the text becomes that port); a leading ``pip install ... &&`` is not rerun (the
test environment has the packages), and ``iam-middleware init .`` runs in a scratch folder. The shell blocks of a
docs/ page run as one session, in order (a later block uses what an earlier one set, as a reader's shell would).
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(?:<!-- test: (?P<mark>[^>]*?) -->\n)?```(?P<lang>\w+)\n(?P<code>.*?)```", re.S)
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [(f"{path.name}#{n}", m.group("lang"), m.group("code"), m.group("mark") or "")
          for path in DOCUMENTS for n, m in enumerate(BLOCK.finditer(path.read_text()))]
PYTHON = [(where, code, mark) for where, lang, code, mark in BLOCKS if lang == "python"]


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(ROOT / "examples" / "iam.toml", tmp_path / "iam.toml")
    shutil.copytree(ROOT / "examples" / "policies", tmp_path / "policies")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_block(code: str, namespace: dict[str, Any]) -> None:
    compiled = compile(code, "<README>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)  # noqa: S307 - the README's own code, the point of the test
    if asyncio.iscoroutine(result):
        asyncio.run(result)


def test_every_python_block_runs(scratch: Path) -> None:
    from iam_middleware import IAM

    saved: dict[str, dict[str, Any]] = {"iam": {"IAM": IAM, "iam": IAM.from_file("iam.toml")}}
    ran = 0
    for where, code, mark in PYTHON:
        if mark.startswith("skip "):
            continue
        namespace: dict[str, Any] = {"__name__": "readme_block"}
        if mark.startswith("with "):
            namespace.update(saved[mark[5:]])
        try:
            run_block(code, namespace)
        except Exception as exc:
            raise AssertionError(f"{where} fails: {type(exc).__name__}: {exc}\n{code}") from exc
        if mark.startswith("as "):
            saved[mark[3:]] = dict(namespace)
        ran += 1
    assert ran == len(PYTHON) - sum(map(len, SKIPPED.values())) and ran >= 7  # every block but those left out below


SKIPPED = {
    "README.md": ["one line per framework; tests/conformance mounts the token service exactly so in each",
                  "three files of a Django project; tests/conformance runs this shell in both WSGI and ASGI Django"],
    "credentials.md": ["a fragment of an app: api is yours; tests/conformance mounts token_service so",
                       "calls the running demo (iam-middleware demo) at 127.0.0.1:8000",
                       "calls the running demo's token service; tests/sts/test_query_clients.py runs it against one"],
    "gate.md": ["the shape of a shell: asgi.py, the Flask, FastAPI and Django adapters and sts are its instances"],
    "iam-api.md": ["calls the running demo's IAM API; tests/iamapi/test_docs_iam_api.py runs it against one"],
    "operations.md": ["needs a Redis server and your build_my_app; tests/multiprocess runs this setup"],
}


def test_only_these_blocks_are_left_out_and_each_says_why() -> None:
    skipped: dict[str, list[str]] = {}
    for where, _, mark in PYTHON:
        if mark.startswith("skip "):
            skipped.setdefault(where.split("#")[0], []).append(mark[5:])
    assert {name: sorted(reasons) for name, reasons in skipped.items()} == {
        name: sorted(reasons) for name, reasons in SKIPPED.items()}


def test_every_toml_block_parses_and_the_routes_table_loads() -> None:
    from iam_middleware import RuleTable

    tables = [tomllib.loads(code) for _, lang, code, _ in BLOCKS if lang == "toml"]
    assert len(tables) >= 3
    routes = [table["routes"] for table in tables if "routes" in table]
    assert routes and all(RuleTable.from_config(entries) for entries in routes)


def test_the_readme_names_only_commands_that_exist() -> None:
    from iam_middleware.cli import build_parser

    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    named = set(re.findall(r"iam-middleware ([a-z-]+)", (ROOT / "README.md").read_text()))
    assert named <= commands | {"demo"}, named - commands
    assert os.path.exists(ROOT / ".ci" / "run")


SHELL = [(where, code, mark) for where, lang, code, mark in BLOCKS if lang == "sh" and where.startswith("README")]
SHELL_SKIPPED = ["a benchmark run on demand" in mark or "the test command itself" in mark or "starts a server" in mark
                 for _, _, mark in SHELL]


def test_the_readme_shell_blocks_run(tmp_path: Path) -> None:
    from adapters._support import uvicorn_server

    from iam_middleware import IAM
    from iam_middleware.cli._demo import build_demo_app, demo_config_path

    if shutil.which("curl") is None and not os.environ.get("CI"):
        pytest.skip("the README's calls need curl")
    scripts = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}
    iam = IAM.from_file(demo_config_path())
    ran = 0
    with uvicorn_server(build_demo_app(iam)) as port:
        for (where, code, mark), skipped in zip(SHELL, SHELL_SKIPPED, strict=True):
            if skipped:
                assert mark.startswith("skip "), where
                continue
            script = re.sub(r"^pip install [^&]*&& ", "", code, flags=re.M).replace("127.0.0.1:8000",
                                                                                     f"127.0.0.1:{port}")
            cwd = tmp_path / f"block-{ran}" if "init ." in script else ROOT
            cwd.mkdir(exist_ok=True)
            result = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], capture_output=True, text=True,
                                    cwd=cwd, env=env, timeout=120)
            assert result.returncode == 0, f"{where}:\n{script}\n{result.stdout}\n{result.stderr}"
            assert "HTTP 5" not in result.stdout and "Traceback" not in result.stderr, where
            ran += 1
    assert ran >= 4 and sum(SHELL_SKIPPED) == 3


def _demo_env() -> dict[str, str]:
    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}


@pytest.mark.parametrize("page", ["credentials.md"])
def test_a_docs_pages_shell_blocks_run_as_one_session(page: str) -> None:
    from adapters._support import uvicorn_server

    from iam_middleware import IAM
    from iam_middleware.cli._demo import build_demo_app, demo_config_path

    blocks = [code for where, lang, code, mark in BLOCKS
              if lang == "sh" and where.startswith(page + "#") and not mark.startswith("skip ")]
    assert len(blocks) >= 5
    with uvicorn_server(build_demo_app(IAM.from_file(demo_config_path()))) as port:
        script = "set -euo pipefail\n" + "\n".join(blocks).replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT, env=_demo_env(),
                                timeout=120)
    assert result.returncode == 0, f"{page}:\n{result.stdout}\n{result.stderr}"
    assert '"error"' not in result.stdout, result.stdout  # every call answered, none refused
    assert '"created"' in result.stdout and '"logged_out": true' in result.stdout  # the cookie write, then logout


def test_only_the_operations_install_line_is_a_skipped_docs_shell_block() -> None:
    skipped = [(where.split("#")[0], mark) for where, lang, _, mark in BLOCKS
               if lang == "sh" and not where.startswith("README") and mark.startswith("skip ")]
    assert skipped == [("operations.md", "skip installs a package")]
