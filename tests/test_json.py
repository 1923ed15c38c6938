"""The strict JSON parser (iam_middleware._json): it reads valid documents as json does, refuses duplicate member
names, non-finite numbers, unpaired surrogates, text that is not UTF-8 and deep nesting, each with one exception
naming the problem; and every reader of outside input goes through it."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iam_middleware._json import MAX_DEPTH, JSONError, loads, parser

ROOT = Path(__file__).resolve().parent.parent

# Unicode text without surrogates: what a JSON string can hold.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                      max_leaves=24)


@settings(max_examples=300, deadline=None)
@given(value=VALUES, ensure_ascii=st.booleans(), indent=st.sampled_from([None, 1]))
def test_valid_documents_read_as_json_reads_them(value: Any, ensure_ascii: bool, indent: int | None) -> None:
    text = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent)
    assert loads(text) == json.loads(text)
    assert loads(text.encode("utf-8")) == json.loads(text)
    assert loads(bytearray(f" \r\n\t{text}\n".encode())) == json.loads(text)


@settings(max_examples=200, deadline=None)
@given(members=st.dictionaries(TEXT, SCALARS, min_size=1, max_size=5), data=st.data())
def test_a_duplicate_member_name_is_refused_and_named_at_any_depth(members: dict[str, Any], data: Any) -> None:
    name = data.draw(st.sampled_from(sorted(members)))
    pairs = [*members.items(), (name, data.draw(SCALARS))]
    pairs = data.draw(st.permutations(pairs))
    obj = "{" + ",".join(f"{json.dumps(key)}:{json.dumps(value)}" for key, value in pairs) + "}"
    document = data.draw(st.sampled_from([obj, f"[1,{obj}]", f'{{"outer":{{"inner":[{obj}]}}}}']))
    with pytest.raises(JSONError) as caught:
        loads(document)
    assert caught.value.member == name
    assert f"duplicate member name {name!r}" in str(caught.value)
    assert json.loads(document) is not None  # json itself quietly keeps the last one


def test_a_long_duplicated_name_is_cut_in_the_message_but_whole_in_member() -> None:
    name = "n" * 500
    with pytest.raises(JSONError) as caught:
        loads(f'{{"{name}": 1, "{name}": 2}}')
    assert caught.value.member == name and len(str(caught.value)) < 120


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "[1, NaN]"])
def test_non_finite_numbers_are_refused(literal: str) -> None:
    assert not math.isfinite(json.loads(literal.strip("[]").removeprefix("1, ")))  # json reads them all
    with pytest.raises(JSONError, match="not JSON|too large"):
        loads(f'{{"n": {literal}}}')


def test_large_finite_numbers_still_read() -> None:
    assert loads('{"big": 1e308, "int": ' + "9" * 400 + "}") == {"big": 1e308, "int": int("9" * 400)}


def test_an_integer_too_long_for_int_is_a_json_error() -> None:
    with pytest.raises(JSONError, match="digits"):
        loads('{"n": ' + "9" * 5000 + "}")


@pytest.mark.parametrize("document", [r'"\ud800"', r'"\udc00"', r'"a\ud800b"', r'"\ud800\ud800"', r'"\udc00\ud800"',
                                      r'{"\ud800": 1}', r'"\\\ud800"', r'"\uDBFF"'])
def test_an_unpaired_surrogate_escape_is_refused(document: str) -> None:
    with pytest.raises(JSONError, match="surrogate"):
        loads(document)


@pytest.mark.parametrize(("document", "value"), [(r'"\ud83d\ude00"', "\U0001f600"), (r'"\\ud800"', "\\ud800"),
                                                 (r'"\\\\ud800"', "\\\\ud800"), (r'"\u005cud800"', "\\ud800")])
def test_surrogate_pairs_and_escaped_backslashes_are_fine(document: str, value: str) -> None:
    assert loads(document) == value


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010) | st.sampled_from("a\\\"u"),
                    max_size=8))
def test_surrogates_are_refused_exactly_when_the_text_is_not_unicode(text: str) -> None:
    for document in (json.dumps(text), json.dumps(text, ensure_ascii=False)):  # escaped, then as raw characters
        value = json.loads(document)  # an escaped pair is one character again; a lone one stays a surrogate
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            with pytest.raises(JSONError):
                loads(document)
        else:
            assert loads(document) == value


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_is_bounded() -> None:
    assert loads(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))
    assert loads('{"a":' * MAX_DEPTH + "1" + "}" * MAX_DEPTH)
    for depth in (MAX_DEPTH + 1, 900, 100_000):
        with pytest.raises(JSONError, match=f"nested deeper than {MAX_DEPTH}"):
            loads(nested(depth))
    with pytest.raises(JSONError, match="nested deeper"):
        loads('{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1))


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = json.dumps(["[" * 500, "{" * 500, '\\"[[[', [["]]]"]]])
    assert loads(text) == json.loads(text)


@pytest.mark.parametrize("raw", [b"\xff{}", b'{"a": "\xc3"}', '{"a": 1}'.encode("utf-16"), '{"a":1}'.encode("utf-32"),
                                 b"\xef\xbb\xbf{}"])
def test_only_utf_8_text_is_json(raw: bytes) -> None:
    with pytest.raises(JSONError):
        loads(raw)


@pytest.mark.parametrize("text", ["", " ", "{", "{} {}", "[1] x", "{'a': 1}", "01", '"\x01"', "[1,]", "\ufeff{}"])
def test_syntax_errors_are_json_errors_with_a_place(text: str) -> None:
    with pytest.raises(JSONError) as caught:
        loads(text)
    assert isinstance(caught.value, ValueError) and caught.value.member is None
    assert str(caught.value)


def test_a_parser_with_an_object_hook_builds_its_own_objects_after_the_checks() -> None:
    frozen = parser(MappingProxyType)
    value = frozen('{"a": {"b": 1}, "c": [{}]}')
    assert isinstance(value, MappingProxyType) and isinstance(value["a"], MappingProxyType)
    assert isinstance(value["c"][0], MappingProxyType)
    with pytest.raises(JSONError) as caught:
        frozen('{"a": 1, "b": {"x": 1, "x": 2}}')
    assert caught.value.member == "x"


def test_json_is_parsed_in_one_place() -> None:
    # Strict parsing exists once: no other module of the package decodes JSON itself.
    for path in (ROOT / "iam_middleware").rglob("*.py"):
        # The demo reads back a JWK it has just made; the client package runs in a caller's process.
        if path.name in ("_json.py", "_demo.py") or path.parent.name == "client":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "json":
                assert node.attr in {"dumps", "dump"}, f"{path.relative_to(ROOT)}:{node.lineno} uses json.{node.attr}"
