"""Credentials look like AWS's where clients expect it, and outside identities never share a session.

Temporary secret access keys are 40 characters of base64's alphabet and never start with "-" (an argparse-style CLI
would take "--secret -abc" for an option); session tokens are safe on a command line. A web identity's session name
keeps IAM's rules (2-64 of \\w+=,.@-) and stays injective: subjects that differ get names that differ."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from iam_middleware._credentials import _safe_session_name
from iam_middleware._temporary import TemporaryCredentials
from iam_middleware.state import MemoryStore

SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)


def test_temporary_secrets_and_tokens_have_aws_shapes() -> None:
    issuer = TemporaryCredentials(MemoryStore())
    for _ in range(300):
        credential = issuer.issue(kind="role", arn="arn:app:iam::1:role/r", session_name="s", now=0.0,
                                  duration=900)
        secret, token = credential.secret_access_key, credential.session_token
        assert len(secret) == 40 and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9+/]{39}", secret)
        assert re.fullmatch(r"[A-Za-z0-9]{64}", token)
        assert re.fullmatch(r"ASIA[A-Z2-7]{16}", credential.access_key_id)


@given(st.text(min_size=1, max_size=100))
def test_a_session_name_is_always_valid(subject: str) -> None:
    assert SESSION_NAME.fullmatch(_safe_session_name(subject))


@given(st.text(min_size=1, max_size=100), st.text(min_size=1, max_size=100))
def test_different_subjects_never_share_a_session_name(first: str, second: str) -> None:
    if first != second:
        assert _safe_session_name(first) != _safe_session_name(second)


def test_readable_names_stay_as_they_are() -> None:
    assert _safe_session_name("partner-42") == "partner-42"
    assert _safe_session_name("alice@example.com") == "alice@example.com"
    # The collisions the old mapping made: replaced characters and cut names now differ.
    assert _safe_session_name("a b") != _safe_session_name("a-b") and _safe_session_name("a b").startswith("a-b-")
    long_one, long_two = "x" * 64 + "1", "x" * 64 + "2"
    assert _safe_session_name(long_one) != _safe_session_name(long_two)
    assert len(_safe_session_name(long_one)) <= 64
    # A subject spelled like another's mapped name does not take it.
    mapped = _safe_session_name("a b")
    assert _safe_session_name(mapped) != mapped
