"""The TOML writer of ``directory export``: whatever a directory mapping holds reads back the same."""

from __future__ import annotations

import json
import tomllib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from iam_middleware.directory._write import dump_toml

TEXT = st.text(max_size=40)
SCALAR = st.one_of(TEXT, st.booleans(), st.integers(-(2**63), 2**63 - 1))
VALUE = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                     max_leaves=8)


@given(st.dictionaries(TEXT, VALUE, max_size=4), st.dictionaries(TEXT, st.dictionaries(TEXT, VALUE, max_size=4),
                                                                  max_size=3))
def test_any_mapping_reads_back_the_same(settings: dict[str, Any], users: dict[str, Any]) -> None:
    data = {"settings": settings, "users": users}
    expected = {key: value for key, value in data.items() if value}
    assert tomllib.loads(dump_toml(data)) == expected


@given(st.text(max_size=200))
def test_a_document_of_any_text_reads_back_the_same(text: str) -> None:
    document = json.dumps({"Statement": [{"Sid": text}]}, indent=2, ensure_ascii=False) + text
    data = {"policies": {"P": {"document": document}}, "routes": [{"path": text, "public": True}]}
    assert tomllib.loads(dump_toml(data, header="line one\nline two")) == data


def test_a_policy_document_is_written_as_a_person_writes_it() -> None:
    document = '{\n  "Version": "2012-10-17",\n  "Statement": []\n}'
    text = dump_toml({"policies": {"Read Only": {"document": document}}})
    assert text == f"[policies.\"Read Only\"]\ndocument = '''\n{document}'''\n"


def test_web_identity_providers_are_arrays_of_tables_and_anything_else_stays_a_value() -> None:
    providers = [{"issuer": "https://idp.example", "tag_claims": {"team": "team"}}]
    text = dump_toml({"settings": {"web_identity": providers, "regions": ["local"]}})
    assert "[[settings.web_identity]]" in text
    assert tomllib.loads(text) == {"settings": {"web_identity": providers, "regions": ["local"]}}
    assert tomllib.loads(dump_toml({"settings": {"web_identity": "x"}})) == {"settings": {"web_identity": "x"}}
