"""docs/settings.md is the reference of every setting: the same keys as the code takes, and for each declared one the
type, range, unit and default the code enforces. A setting added, retyped or re-ranged in code and not on the page
(or the reverse) fails here."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from iam_middleware._settings import _DECLARED, SETTINGS_KEYS, Settings

PAGE = (Path(__file__).resolve().parent.parent / "docs" / "settings.md").read_text()
ROWS = {name: (kind, default) for name, kind, default in
        re.findall(r"^\| `([a-z0-9_]+)` \| (.+?) \| (.+?) \| .+ \|$", PAGE, re.M)}
DEFAULTS = {field.name: field.default for field in dataclasses.fields(Settings)}


def declared_type(name: str) -> str:
    kind, low, high, unit = _DECLARED[name]
    plain = {"name": "string", "names": "list of strings", "boolean": "boolean"}
    return plain.get(kind) or f"{kind}, {low:g} to {high:g} {unit}"


def shown(value: Any) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"`{value:g}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    assert isinstance(value, tuple), value
    return "`[" + ", ".join(f'"{item}"' for item in value) + "]`"


def test_the_page_lists_exactly_the_settings_the_code_takes() -> None:
    assert set(ROWS) == SETTINGS_KEYS


@pytest.mark.parametrize("name", sorted(_DECLARED))
def test_each_declared_setting_shows_its_type_range_and_default(name: str) -> None:
    kind, default = ROWS[name]
    assert kind == declared_type(name)
    if DEFAULTS[name] is None:
        assert default == "any"
    else:
        assert default == shown(DEFAULTS[name])
