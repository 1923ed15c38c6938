"""docs/access.md and the README's access section show real output: each shell block followed by a text block is run
(in order, in a scratch copy of ``examples/`` that is a git repository, as a reader's checkout is) and its output
must be the text block's, durations aside."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAIR = re.compile(r"```sh\n(?P<command>.*?)```\n+```text\n(?P<output>.*?)```", re.S)
SHELL = re.compile(r"```sh\n(?P<command>.*?)```", re.S)
DURATION = re.compile(r" in \d+\.\d+s ")


def _scratch(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    for command in (["init", "-q"], ["add", "."], ["commit", "-qm", "examples"]):
        subprocess.run(["git", *command], cwd=tmp_path, check=True, env=env, capture_output=True)
    return tmp_path


def _run(command: str, cwd: Path) -> str:
    scripts = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert not done.stderr, f"{command}\n{done.stderr}"
    return done.stdout


def _same(found: str, shown: str) -> bool:
    return DURATION.sub(" in 0s ", found) == DURATION.sub(" in 0s ", shown)


@pytest.mark.parametrize("page", ["docs/access.md", "README.md"])
def test_every_command_prints_what_the_page_shows(page: str, tmp_path: Path) -> None:
    text = (ROOT / page).read_text()
    if page == "README.md":
        text = text.split("## Who can do what", 1)[1].split("\n## ", 1)[0]
    shown = {m.start(): m for m in PAIR.finditer(text)}
    scratch = _scratch(tmp_path)
    checked = 0
    for block in SHELL.finditer(text):
        found = _run(block.group("command"), scratch)
        pair = shown.get(block.start())
        if pair is not None:
            assert _same(found, pair.group("output")), f"{page}: {block.group('command')}\n{found}"
            checked += 1
    assert checked >= (7 if page == "docs/access.md" else 2)
