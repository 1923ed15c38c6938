"""Matching: Action (case-insensitive), Resource (case-sensitive, segment rules), StringLike and ArnLike."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iam_middleware.policy._match import compile_action, compile_arn, compile_plain, compile_resource

from ._helpers import allow, condition_holds, decide, doc


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("iam:ListAccessKeys", "IAM:listaccesskeys", True),
        ("IAM:LISTACCESSKEYS", "iam:ListAccessKeys", True),
        ("s3:Get*", "s3:GetObject", True),
        ("s3:get*", "S3:GETOBJECTACL", True),
        ("s3:*Object", "s3:PutObject", True),
        ("s3:*Object", "s3:PutObjectAcl", False),
        ("s3:Get?bject", "s3:GetObject", True),
        ("s3:Get?bject", "s3:GetObbject", False),
        ("s3:*", "s3-outposts:GetObject", False),
        ("s3*:*", "s3-outposts:GetObject", True),
        ("*", "anything:AtAll", True),
        ("s3:GetObject", "s3:GetObjectAcl", False),
        ("s3:GetObject", "s3:GetObjec", False),
    ],
)
def test_action_matching(pattern: str, action: str, expected: bool) -> None:
    assert compile_action(pattern)(action.lower()) is expected
    assert decide(doc(allow(action=pattern)), action=action).allowed is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("arn:aws:iam::111122223333:user/Bob", "arn:aws:iam::111122223333:user/Bob", True),
        ("arn:aws:iam::111122223333:user/Bob", "arn:aws:iam::111122223333:user/bob", False),
        ("arn:aws:s3:::Bucket/*", "arn:aws:s3:::bucket/key", False),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b/c", True),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a:b", True),  # segment-final * crosses ':'
        ("arn:aws:s3:::bucket/?", "arn:aws:s3:::bucket/k", True),
        ("arn:aws:s3:::bucket/?", "arn:aws:s3:::bucket/kk", False),
        ("arn:aws:s3:::bucket/?", "arn:aws:s3:::bucket/:", False),  # ? stays within the segment
        ("arn:aws:s3:::b*/x", "arn:aws:s3:::bb/cc/x", True),  # '/' is not a delimiter
        ("arn:aws:s3:::b*/x", "arn:aws:s3:::bb:cc/x", False),  # an interior * does not cross ':'
        ("arn:aws:iam::*:user/bob", "arn:aws:iam::111122223333:user/bob", True),
        ("arn:aws:iam::*:user/bob", "arn:aws:iam::1:2:user/bob", True),  # segment-final * may extend across ':'
        ("arn:aws:sqs:us-*-1:111122223333:q", "arn:aws:sqs:us-east-1:111122223333:q", True),
        ("arn:aws:sqs:us-*-1:111122223333:q", "arn:aws:sqs:us-east:x-1:111122223333:q", False),
        ("arn:aws:dynamodb:*:*:table/T", "arn:aws:dynamodb:eu-west-1:111122223333:table/T", True),
        ("arn:aws:dynamodb:*:*:table/T", "arn:aws:dynamodb:eu-west-1:111122223333:table/T2", False),
        ("*", "anything", True),
        ("arn:aws:fdsasf", "arn:aws:fdsasf", True),  # fewer than six components: compared as written
        ("arn:aws:fdsasf", "arn:aws:fdsasf:x", False),
    ],
)
def test_resource_matching(pattern: str, resource: str, expected: bool) -> None:
    assert compile_resource([pattern])(resource) is expected
    assert decide(doc(allow(resource=pattern)), resource=resource).allowed is expected


METACHARACTERS = [".", "+", "(", ")", "[", "]", "{", "}", "\\", "^", "$", "|"]


@pytest.mark.parametrize("meta", METACHARACTERS)
def test_regex_metacharacters_are_literal_everywhere(meta: str) -> None:
    literal = f"a{meta}b"
    near_miss = "axb" if meta != "x" else "ayb"
    assert compile_action(f"svc:{literal}*")(f"svc:{literal}z".lower())
    assert not compile_action(f"svc:{literal}*")(f"svc:{near_miss}z")
    assert compile_resource([f"arn:aws:s3:::{literal}/*"])(f"arn:aws:s3:::{literal}/k")
    assert not compile_resource([f"arn:aws:s3:::{literal}/*"])(f"arn:aws:s3:::{near_miss}/k")
    assert compile_plain([f"{literal}*"])(f"{literal}zz")
    assert not compile_plain([f"{literal}*"])(f"{near_miss}zz")
    assert compile_arn([f"arn:aws:s3:::{literal}*"])(f"arn:aws:s3:::{literal}z")
    assert not compile_arn([f"arn:aws:s3:::{literal}*"])(f"arn:aws:s3:::{near_miss}z")
    assert condition_holds("StringLike", "k", f"{literal}?", {"k": f"{literal}!"})
    assert not condition_holds("StringLike", "k", f"{literal}?", {"k": f"{near_miss}!"})


def test_a_dot_is_not_a_wildcard_in_a_naive_regex_sense() -> None:
    # moto and keyMatch-style matchers turn "." into "any character"; IAM does not.
    assert not decide(doc(allow(resource="arn:aws:s3:::my.bucket/*")), resource="arn:aws:s3:::myxbucket/k").allowed


def test_arnlike_is_per_component_but_stringlike_is_not() -> None:
    pattern = "arn:aws:svc:*:111122223333:finance/*"
    tricky = "arn:aws:svc:us-east-2:999999999999:store/abc:111122223333:finance/doc"
    honest = "arn:aws:svc:us-east-2:111122223333:finance/doc"
    for op in ("ArnLike", "ArnEquals"):
        assert not condition_holds(op, "aws:SourceArn", pattern, {"aws:SourceArn": tricky})
        assert condition_holds(op, "aws:SourceArn", pattern, {"aws:SourceArn": honest})
    assert condition_holds("StringLike", "aws:SourceArn", pattern, {"aws:SourceArn": tricky})


def test_arn_resource_component_may_hold_colons() -> None:
    arn = compile_arn(["arn:aws:lambda:us-east-1:111122223333:function:*"])
    assert arn("arn:aws:lambda:us-east-1:111122223333:function:f:prod")
    assert compile_arn(["arn:aws:svc:::a?b"])("arn:aws:svc:::a:b")
    assert not compile_arn(["arn:aws:svc:us-eas?:1:x"])("arn:aws:svc:us-ea:t:1:x")


@pytest.mark.parametrize("pattern", ["arn:aws:s3", "arn:aws:s3:us-east-1:111122223333", "*", "arn:*"])
def test_arnlike_pattern_with_fewer_than_six_components_matches_nothing(pattern: str) -> None:
    matcher = compile_arn([pattern])
    for value in (pattern, "arn:aws:s3:::bucket", "arn:aws:s3:us-east-1:111122223333:thing"):
        assert not matcher(value)
    assert not condition_holds("ArnLike", "aws:SourceArn", pattern, {"aws:SourceArn": pattern})


def test_arnlike_request_value_with_fewer_components_does_not_match() -> None:
    assert not compile_arn(["arn:aws:s3:*:*:*"])("arn:aws:s3")
    assert not condition_holds("ArnLike", "aws:SourceArn", "arn:aws:s3:*:*:*", {"aws:SourceArn": "arn:aws:s3"})
    assert condition_holds("ArnNotLike", "aws:SourceArn", "arn:aws:s3:*:*:*", {"aws:SourceArn": "arn:aws:s3"})


def test_stringlike_crosses_colons_and_slashes() -> None:
    assert compile_plain(["a*z"])("a:b/c:z")
    assert compile_plain(["a?z"])("a:z")


def test_stringlike_is_case_sensitive() -> None:
    assert not condition_holds("StringLike", "k", "Abc*", {"k": "abcd"})


SAFE = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="*?"), max_size=30)


@settings(deadline=None, max_examples=60)
@given(literal=SAFE, suffix=st.text(min_size=1, max_size=5))
def test_a_pattern_without_wildcards_matches_exactly_itself(literal: str, suffix: str) -> None:
    for matcher in (compile_plain([literal]), compile_resource([literal])):
        assert matcher(literal)
        assert not matcher(literal + suffix)
    assert compile_action(literal)(literal.lower())


@settings(deadline=None, max_examples=60)
@given(prefix=SAFE, rest=st.text(max_size=20))
def test_trailing_star_matches_every_extension(prefix: str, rest: str) -> None:
    assert compile_plain([prefix + "*"])(prefix + rest)
    assert compile_resource([prefix + "*"])(prefix + rest)
    assert compile_action(prefix + "*")((prefix + rest).lower())


@settings(deadline=None, max_examples=60)
@given(pattern=st.text(alphabet="ab*?.:", max_size=8), value=st.text(alphabet="ab.:x", max_size=8))
def test_stringlike_agrees_with_a_reference_glob(pattern: str, value: str) -> None:
    reference = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    assert compile_plain([pattern])(value) is (re.fullmatch(reference, value, re.DOTALL) is not None)
