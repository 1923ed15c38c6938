"""Where a command's text goes: standard output, or the file ``--output`` names."""

from __future__ import annotations

import sys
from pathlib import Path


def emit(text: str, output: str | None) -> int:
    """Write ``text`` to ``output`` (standard output when None); the exit status: 0, or 2 if the file cannot be
    written (the message names the file and the reason)."""
    if not output:
        sys.stdout.write(text)
        return 0
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
