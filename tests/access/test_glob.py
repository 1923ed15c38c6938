"""Resource patterns against templates with unknown ids: always, never or maybe, and what the id must be; checked
against the evaluator's own resource matcher on concrete ids."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iam_middleware.access._glob import ALWAYS, MAYBE, NEVER, Hole, classify, hole_pattern
from iam_middleware.policy._match import compile_resource

ORDER = ("arn:app:orders::111122223333:order/", Hole("order_id"))


@pytest.mark.parametrize(("pattern", "verdict", "shape"), [
    ("*", ALWAYS, ("*", True)),
    ("arn:app:orders::111122223333:order/*", ALWAYS, ("*", True)),
    ("arn:app:*", ALWAYS, ("*", True)),
    ("arn:app:orders:*:*:order/archived-*", MAYBE, ("archived-*", True)),
    ("arn:app:orders::111122223333:order/42", MAYBE, ("42", False)),
    ("arn:app:orders::*:order/?", MAYBE, ("?", True)),
    ("arn:app:orders::111122223333:invoice/*", NEVER, None),
    ("arn:app:orders::111122223333:order/a/*", NEVER, None),  # an id never holds a "/" (it is percent-encoded)
    ("arn:app:orders::111122223333:order/a:b", NEVER, None),
    ("arn:app:orders::444455556666:order/*", NEVER, None),
])
def test_a_pattern_matches_an_unknown_id_always_never_or_for_some_ids(pattern: str, verdict: str,
                                                                       shape: tuple[str, bool] | None) -> None:
    assert classify((pattern,), ORDER) == verdict
    assert hole_pattern((pattern,), ORDER) == shape


def test_an_id_in_the_middle_or_two_ids_are_classified_but_not_described() -> None:
    middle = ("arn:app:orders::1:", Hole("kind"), "/x")
    assert classify(("arn:app:orders::1:order/*",), middle) == MAYBE  # kind "order" matches, "" does not
    assert hole_pattern(("arn:app:orders::1:order/*",), middle) is None
    assert classify(("arn:app:orders::1:*/x",), middle) == ALWAYS
    two = ("arn:app:orders::1:order/", Hole("a"), "-", Hole("b"))
    assert classify(("arn:app:orders::1:order/*-*",), two) == ALWAYS
    assert classify(("arn:app:orders::1:order/x*",), two) == MAYBE
    assert hole_pattern(("arn:app:orders::1:order/x*",), two) is None


PATTERNS = ["*", "arn:app:orders::1:order/*", "arn:app:orders:*:*:order/archived-*", "arn:app:orders::1:order/4?",
            "arn:app:orders::1:order/*-7", "arn:app:orders::1:order/a*b*c", "arn:app:orders::1:*", "arn:*:orders:*",
            "arn:app:orders::1:order/%2F*", "arn:app:orders::1:order/*:x", "arn:app:orders::1:order"]
IDS = st.text(alphabet="abc47-_.~%/:*? ", max_size=8)


@given(pattern=st.sampled_from(PATTERNS), ids=st.lists(IDS, min_size=1, max_size=20))
def test_the_verdict_and_the_id_pattern_agree_with_the_evaluators_matcher(pattern: str, ids: list[str]) -> None:
    template = ("arn:app:orders::1:order/", Hole("order_id"))
    matcher = compile_resource([pattern])
    verdict = classify((pattern,), template)
    shape = hole_pattern((pattern,), template)
    for raw in ids:
        value = quote(raw, safe="-._~")  # as routing.render_template encodes it
        matched = matcher(f"arn:app:orders::1:order/{value}")
        if verdict == ALWAYS:
            assert matched
        if verdict == NEVER:
            assert not matched
        if shape is not None:
            assert compile_resource([shape[0]])(value) == matched
