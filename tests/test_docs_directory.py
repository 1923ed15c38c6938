"""docs/directory.md documents exactly the fields the loader takes: a field added in code and not in the reference
(or the reverse) fails here, so the reference cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from iam_middleware.directory import _load

DOC = (Path(__file__).resolve().parent.parent / "docs" / "directory.md").read_text()


def documented(heading: str) -> set[str]:
    """The backquoted names in the first column of the table under ``heading``."""
    section = DOC.split(heading, 1)[1].split("\n#", 1)[0]
    names: set[str] = set()
    for row in re.findall(r"^\| (.+?) \|", section, re.M):
        names.update(re.findall(r"`([a-z0-9_]+)`", row))
    return names


@pytest.mark.parametrize(("heading", "fields"), [
    ("## `[accounts.<id>]`", _load._ACCOUNT_KEYS),
    ("## `[groups.<name>]`", _load._GROUP_KEYS),
    ("## `[users.<name>]`", _load._USER_KEYS),
    ("### `access_keys = [{ ... }]`", _load._KEY_KEYS),
    ("### The account root user", _load._ROOT_KEYS),
    ("### `mfa_devices = [{ ... }]`", _load._MFA_KEYS),
    ("## `[roles.<name>]`", _load._ROLE_KEYS),
])
def test_each_section_documents_exactly_the_fields_the_loader_takes(heading: str, fields: frozenset[str]) -> None:
    assert documented(heading) == set(fields)


def test_every_top_level_section_has_a_heading() -> None:
    for section in _load._TOP:
        assert f"`[{section}" in DOC or f"`[[{section}" in DOC, section
