"""The demo's printed commands, run as printed by a shell against the demo server, get the answers it says."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from adapters._support import uvicorn_server

from iam_middleware import IAM
from iam_middleware.cli import main
from iam_middleware.cli._demo import KeyIssuer, build_demo_app, demo_config_path, demo_plan, with_key_issuer

needs_tools = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("bash")) and not os.environ.get("CI"),
    reason="the demo's commands need curl and bash",
)


def _shell_path() -> str:
    """PATH with this interpreter's scripts first, so the printed `iam-middleware totp code` runs this checkout."""
    scripts = str(Path(sys.executable).parent)
    return scripts + os.pathsep + os.environ.get("PATH", "")


@needs_tools
def test_every_printed_command_gets_the_status_the_demo_says(tmp_path: Path) -> None:
    if shutil.which("iam-middleware", path=_shell_path()) is None:
        pytest.skip("the iam-middleware console script is not installed (pip install -e .)")
    issuer = KeyIssuer()
    iam = with_key_issuer(IAM.from_file(demo_config_path()), issuer)
    with uvicorn_server(build_demo_app(iam, issuer)) as port:
        plan = demo_plan(iam, f"http://127.0.0.1:{port}", now=time.time(), key_issuer=issuer)
        assert any("EdDSA" in call["who"] for call in plan["calls"])
        published = subprocess.run(["curl", "-s", plan["jwks_url"]], capture_output=True, text=True, timeout=30)
        assert json.loads(published.stdout) == issuer.jwks  # the key the printed EdDSA token is checked against
        # One shell runs them all in order, as a person pasting them would (the login sets $TOKEN for the next).
        script = "\n".join(f"echo '### {i}'\n{call['command']}" for i, call in enumerate(plan["calls"]))
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                                env={**os.environ, "PATH": _shell_path()})
    outputs = re.split(r"^### \d+\n", result.stdout, flags=re.M)[1:]
    assert len(outputs) == len(plan["calls"]), result.stderr
    for call, output in zip(plan["calls"], outputs, strict=True):
        if call["command"].startswith("TOKEN="):
            continue  # the login prints nothing; the next command proves its token works
        status = re.search(r"-> HTTP (\d{3})", output)
        assert status is not None, (call, output, result.stderr)
        assert int(status.group(1)) == call["expect"], (call["who"], output)


def test_credentials_out_writes_the_plan_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo.json"
    assert main(["demo", "--no-serve", "--port", "8123", "--credentials-out", str(out)]) == 0
    plan = json.loads(out.read_text())
    assert plan["base_url"] == "http://127.0.0.1:8123"
    assert plan["users"]["alice"]["access_key_id"].startswith("AKIA")
    assert {call["expect"] for call in plan["calls"]} == {200, 201, 401, 403}
    printed = capsys.readouterr().out
    assert all(call["command"] in printed for call in plan["calls"])


@needs_tools
def test_rerunning_the_login_command_in_the_same_step_says_why_in_one_line(tmp_path: Path) -> None:
    if shutil.which("iam-middleware", path=_shell_path()) is None:
        pytest.skip("the iam-middleware console script is not installed (pip install -e .)")
    iam = IAM.from_file(demo_config_path())
    with uvicorn_server(build_demo_app(iam)) as port:
        plan = demo_plan(iam, f"http://127.0.0.1:{port}", now=time.time())
        login = next(call["command"] for call in plan["calls"] if call["command"].startswith("TOKEN="))
        # The command reads the code when it runs; two runs that straddle a 30-second step would each get a fresh
        # code. The code is read once, by the same CLI command, so the second run is the same step's code again.
        read_code = f"$(iam-middleware totp code {plan['users']['bob']['totp_secret']})"
        assert read_code in login
        login = login.replace(read_code, "$CODE")
        script = f"CODE={read_code}\n{login} && echo first-ok\n{login} && echo second-ok; echo status=$?"
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "PATH": _shell_path()})
    assert "first-ok" in result.stdout and "second-ok" not in result.stdout
    assert "login refused" in result.stderr and "Traceback" not in result.stderr


def test_a_busy_port_is_a_clear_error_before_anything_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", "--port", str(port)]) == 2
    captured = capsys.readouterr()
    assert f"127.0.0.1:{port}" in captured.err and "--port" in captured.err
    assert "curl" not in captured.out  # no command printed for a server that never started


def test_the_demo_runs_from_a_wheel_without_a_checkout(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(root)], check=True, capture_output=True, timeout=300)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    wheel = next((tmp_path / "dist").glob("iam_middleware-*.whl"))
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([str(python), "-m", "iam_middleware.cli", "demo", "--no-serve"], capture_output=True,
                            text=True, cwd=elsewhere, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "_demo_data" in subprocess.run(
        [str(python), "-c", "from iam_middleware.cli._demo import demo_config_path; print(demo_config_path())"],
        capture_output=True, text=True, cwd=elsewhere, check=True).stdout
    assert "expect 401" in result.stdout
