"""docs/live-directory.md's shell blocks run as written, as one session, in a folder holding the demo's files
(tests/test_readme.py runs its Python blocks)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import EXAMPLES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "live-directory.md"


def test_the_shell_blocks_run(tmp_path: Path) -> None:
    blocks = re.findall(r"```sh\n(.*?)```", PAGE.read_text(), re.S)
    assert len(blocks) == 3
    shutil.copy(EXAMPLES / "iam.toml", tmp_path / "iam.toml")
    shutil.copytree(EXAMPLES / "policies", tmp_path / "policies")
    script = "set -euo pipefail\n" + re.sub(r"^pip install .*$", "", "\n".join(blocks), flags=re.M)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dry run: 18 change(s), none applied" in result.stdout
    assert "imported iam.toml into sqlite" in result.stdout and "revision 1" in result.stdout
    assert (tmp_path / "exported.toml").read_text().startswith("# The directory of sqlite")
    report = (tmp_path / "credential-report.csv").read_text().splitlines()
    assert report[0].startswith("user,arn,user_creation_time,password_enabled,") and report[1].startswith(
        "<root_account>,arn:app:iam::111122223333:root,")
