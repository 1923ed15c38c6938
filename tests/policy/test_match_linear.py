"""Wildcard matching takes time linear in the value for any pattern, and means what the regex construction meant.

AWS's wildcards (IAM User Guide, "IAM JSON policy elements: Resource": "You can use wildcard characters (* and ?)
within any ARN segment ... a wildcard can't span segments", and the Condition operators page on StringLike: "*"
matches any combination of characters, "?" any single character). A pattern such as ``*a*a*a*a*a*a*a*a*a*b`` made a
backtracking regex take exponential time; a caller chooses its own session policy, so it froze the server."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from iam_middleware.policy._match import compile_arn, compile_plain, compile_resource

patterns = st.text(alphabet="ab:/*?", max_size=14)
values = st.text(alphabet="ab:/", max_size=14)


def reference(pattern: str, flavour: str) -> re.Pattern[str]:
    """The flavours as one regex each: the specification the matcher must keep."""
    out = []
    if flavour == "arn":
        boundary = [i for i, ch in enumerate(pattern) if ch == ":"][4]
    for i, ch in enumerate(pattern):
        if ch == "*":
            if flavour == "plain" or (flavour == "arn" and i > boundary):
                out.append(".*")
            elif flavour == "resource":
                out.append(".*" if i + 1 == len(pattern) or pattern[i + 1] == ":" else "[^:]*")
            else:
                out.append("[^:]*")
        elif ch == "?":
            out.append("." if flavour == "plain" or (flavour == "arn" and i > boundary) else "[^:]")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


@settings(max_examples=400)
@given(patterns, values)
def test_plain_matching_agrees_with_the_regex_meaning(pattern: str, value: str) -> None:
    assert compile_plain([pattern])(value) == (reference(pattern, "plain").fullmatch(value) is not None)


@settings(max_examples=400)
@given(patterns, values)
def test_resource_matching_agrees_with_the_regex_meaning(pattern: str, value: str) -> None:
    assert compile_resource([pattern])(value) == (reference(pattern, "resource").fullmatch(value) is not None)


@settings(max_examples=400)
@given(patterns, values)
def test_arn_matching_agrees_with_the_regex_meaning(pattern: str, value: str) -> None:
    full = "a:b:" + pattern
    expected = full.count(":") >= 5 and reference(full, "arn").fullmatch("a:b:" + value) is not None
    assert compile_arn([full])("a:b:" + value) == expected


@given(st.text(alphabet="Aa", max_size=10), st.text(alphabet="Aa", max_size=10))
def test_case_insensitive_plain_matching(pattern: str, value: str) -> None:
    wild = pattern.replace("A", "*")
    expected = re.fullmatch(reference(wild, "plain").pattern, value, re.IGNORECASE | re.DOTALL) is not None
    assert compile_plain([wild], ignore_case=True)(value) == expected


def test_adversarial_patterns_finish() -> None:
    # Under the old construction each of these took longer than the whole test suite (exponential in the stars).
    for value in ("a" * 5000, "a" * 5000 + "c", ("a:" * 2500)):
        assert compile_plain(["*a*a*a*a*a*a*a*a*a*a*a*a*b"])(value) is False
        assert compile_resource(["arn:aws:s3:::*a*a*a*a*a*a*a*a*a*a*b"])("arn:aws:s3:::" + value) is False
        assert compile_arn(["arn:aws:s3:::*a*a*a*a*a*a*a*a*a*a*b"])("arn:aws:s3:::" + value) is False
    assert compile_plain(["*a*a*a*a*a*a*a*a*a*a*a*a*b"])("a" * 5000 + "b") is True
