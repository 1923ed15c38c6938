"""``REV:path`` arguments: a directory file as it was at a git revision, written out with its folder.

A directory file names policy files beside it (``file = "policies/x.json"``), so the file's whole folder is taken
at that revision (``git ls-tree`` and ``git show``). Files git ignores there (a ``secrets_file`` kept out of version
control) are copied from the working tree, as the directory would find them today.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["RevisionError", "materialize"]


class RevisionError(Exception):
    """A ``REV:path`` that git cannot give; the message says why."""


def _git(root: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RevisionError(f"git {' '.join(args)}: {exc}") from None
    if done.returncode != 0:
        raise RevisionError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def materialize(spec: str, scratch: Path) -> Path:
    """The path of the directory file ``spec`` names: a file as it is, or ``REV:path`` (``path`` relative to the
    current folder, as ``git show REV:./path`` reads it) written out under ``scratch``."""
    if Path(spec).is_file() or ":" not in spec:
        return Path(spec)
    revision, _, path = spec.partition(":")
    here = Path.cwd()
    root = Path(_git(here, "rev-parse", "--show-toplevel").decode().strip())
    target = (here / path).resolve()
    try:
        relative = target.relative_to(root.resolve())
    except ValueError:
        raise RevisionError(f"{path} is not inside the git repository at {root}") from None
    folder = relative.parent.as_posix()
    listed = _git(root, "ls-tree", "-r", "--name-only", "-z", revision, "--", folder if folder != "." else ".")
    names = [name for name in listed.decode().split("\0") if name]
    if relative.as_posix() not in names:
        raise RevisionError(f"{relative.as_posix()} is not in revision {revision}")
    out = scratch / revision.replace("/", "_")
    for name in names:
        destination = out / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(_git(root, "show", f"{revision}:{name}"))
    ignored = _git(root, "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--",
                   folder if folder != "." else ".")
    for name in (n for n in ignored.decode().split("\0") if n):
        destination = out / name
        if not destination.exists() and (root / name).is_file():
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / name, destination)
    return out / relative
