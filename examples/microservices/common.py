"""What the three processes of the microservices example share (docs/microservices.md): the one directory, with its
state on Redis, and where each writes its decision log."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from iam_middleware import IAM, Principal

__all__ = ["DIRECTORY", "load_iam", "log_decisions", "source_identity"]

#: The directory every process loads (``IAM_DIRECTORY`` names another); ``IAM_REDIS_URL`` names the Redis server.
DIRECTORY = Path(__file__).resolve().with_name("iam.toml")


def load_iam() -> IAM:
    """The directory, its shared state on the Redis server of ``IAM_REDIS_URL`` (a missing variable fails the
    start, as an unreadable directory does)."""
    return IAM.from_file(os.environ.get("IAM_DIRECTORY", str(DIRECTORY)))


def log_decisions() -> None:
    """Write this process's decision records (one JSON object a line) to the file ``DECISION_LOG`` names, or to
    stderr: uvicorn configures its own loggers only, so without a handler the records would go nowhere."""
    path = os.environ.get("DECISION_LOG")
    handler = logging.FileHandler(path) if path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    decisions = logging.getLogger("iam_middleware.decisions")
    decisions.addHandler(handler)
    decisions.setLevel(logging.INFO)
    decisions.propagate = False


def source_identity(principal: Principal) -> str | None:
    """``aws:SourceIdentity`` of a role session: whom it acts for, as the service that assumed the role stated."""
    found = principal.extra_context.get("aws:sourceidentity")
    return found if isinstance(found, str) else None
