"""The cost an unknown user's login spends (so it takes as long as a known user's) is read from a bounded sample of
the directory's hashes: a large directory, reloaded at every change, does not parse every hash at the next login."""

from __future__ import annotations

from typing import Any

import pytest

from iam_middleware import IAM
from iam_middleware.authenticators import _passwords
from iam_middleware.passwords import hash_password

CHEAP = hash_password("correct horse", n=2**4)
DEAR = hash_password("correct horse", n=2**6)


def _directory(users: int, dear: int) -> dict[str, Any]:
    return {"settings": {"partition": "app"}, "accounts": {"111122223333": {"name": "acme"}},
            "users": {f"u{n:05d}": {"password_hash": DEAR if n < dear else CHEAP} for n in range(users)}}


def test_the_usual_cost_is_the_most_common_one() -> None:
    iam = IAM.from_dict(_directory(100, dear=70))
    assert iam.logins._usual_password_cost() == _passwords.PasswordHash.parse(DEAR).cost


def test_a_large_directory_parses_a_bounded_sample_once_per_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    iam = IAM.from_dict(_directory(2_000, dear=2_000))
    parsed: list[str] = []
    original = _passwords.PasswordHash.parse

    def counting(text: str) -> Any:
        parsed.append(text)
        return original(text)

    monkeypatch.setattr(_passwords.PasswordHash, "parse", staticmethod(counting))
    assert iam.logins._usual_password_cost() == original(DEAR).cost
    assert 0 < len(parsed) <= 256
    parsed.clear()
    iam.logins._usual_password_cost()
    assert parsed == []  # the same snapshot: remembered
