"""The client package's shape: a pinned, sorted public API; it loads no web framework (a client process needs
httpx only); and no server-side layer imports it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import iam_middleware.client as client

ROOT = Path(__file__).resolve().parents[2]


def test_public_names_are_exactly_the_sorted_all() -> None:
    assert client.__all__ == sorted(client.__all__)
    assert all(getattr(client, name) is not None for name in client.__all__)
    ours = {name for name, value in vars(client).items()
            if not name.startswith("_") and getattr(value, "__module__", "").startswith("iam_middleware")}
    assert ours == set(client.__all__)


def test_a_client_process_loads_no_web_framework() -> None:
    code = ("import sys; import iam_middleware.client; "
            "print(','.join(m for m in ('starlette', 'fastapi', 'flask', 'django', 'redis') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == ""


def test_only_the_client_imports_the_client() -> None:
    for path in (ROOT / "iam_middleware").rglob("*.py"):
        if "client" in path.relative_to(ROOT / "iam_middleware").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or "", *(alias.name for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            assert not any("client" in name.split(".") for name in names), path
