"""The package's shape: a pinned public API, a framework-free core, typed packages."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import iam_middleware
import iam_middleware.authenticators
import iam_middleware.client
import iam_middleware.passwords
import iam_middleware.policy
import iam_middleware.state

ROOT = Path(__file__).resolve().parent.parent


def test_public_names_are_exactly_the_sorted_all() -> None:
    for module in (iam_middleware, iam_middleware.policy, iam_middleware.authenticators, iam_middleware.state,
                   iam_middleware.passwords, iam_middleware.client):
        exported = list(module.__all__)
        assert exported == sorted(exported), f"{module.__name__}.__all__ is not sorted"
        for name in exported:  # every exported name resolves (lazy ones included)
            assert getattr(module, name) is not None
        # Everything of ours that the module shows publicly is exported: nothing leaks out by accident.
        ours = {
            name for name, value in vars(module).items()
            if not name.startswith("_") and getattr(value, "__module__", "").startswith("iam_middleware")
        }
        assert ours <= set(exported), f"{module.__name__} shows {sorted(ours - set(exported))} outside __all__"


def test_the_pure_core_never_reads_the_clock() -> None:
    # The policy engine and the credential checks take time as an argument; only the shells read the clock.
    for folder in ("policy", "authenticators"):
        for path in (ROOT / "iam_middleware" / folder).glob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    owner = node.func.value
                    name = f"{getattr(owner, 'id', '')}.{node.func.attr}"
                    assert name not in {"time.time", "time.monotonic", "datetime.now", "datetime.utcnow",
                                        "date.today"}, f"{path.name}:{node.lineno} reads the clock ({name})"


def test_the_core_imports_no_web_framework_and_no_redis() -> None:
    # A fresh interpreter: what importing the sans-IO core pulls in.
    code = (
        "import sys; import iam_middleware.policy, iam_middleware.authenticators, iam_middleware.directory, "
        "iam_middleware.state; "
        "print(','.join(sorted(m for m in ('starlette', 'fastapi', 'flask', 'werkzeug', 'redis') if m in sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == ""


def test_every_shipped_package_is_typed() -> None:
    for package in ("iam_middleware", "adapters/iam_middleware_fastapi", "adapters/iam_middleware_flask",
                    "adapters/iam_middleware_django"):
        assert (ROOT / package / "py.typed").is_file(), package


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def test_the_adapters_use_only_public_modules_of_the_core() -> None:
    for path in (ROOT / "adapters").rglob("*.py"):
        private = [name for name in _imports(path)
                   if name.startswith("iam_middleware.") and any(part.startswith("_") for part in name.split(".")[1:])]
        assert not private, f"{path.relative_to(ROOT)} imports private modules {private}"


def test_the_gate_and_the_core_import_no_shell() -> None:
    # Layers point down: the pure core and the gate never import a shell, a framework adapter or the CLI.
    shells = ("iam_middleware.asgi", "iam_middleware.asgi_routing", "iam_middleware.sts._app", "iam_middleware.cli",
              "iam_middleware_", "starlette", "fastapi", "flask", "django")
    core = [ROOT / "iam_middleware" / "gate.py", ROOT / "iam_middleware" / "routing.py",
            ROOT / "iam_middleware" / "recent.py", ROOT / "iam_middleware" / "_iam.py",
            *(ROOT / "iam_middleware").glob("policy/*.py"), *(ROOT / "iam_middleware").glob("directory/*.py"),
            *(ROOT / "iam_middleware").glob("authenticators/*.py"), *(ROOT / "iam_middleware").glob("state/*.py")]
    for path in core:
        bad = [name for name in _imports(path) if name.startswith(shells)]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_wsgi_adapters_load_no_asgi_framework() -> None:
    code = ("import sys; import iam_middleware_flask; "
            "print(','.join(sorted(m for m in ('starlette', 'anyio', 'fastapi', 'httpx') if m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == ""
