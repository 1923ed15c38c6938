"""The login throttle counts per resolved identity: every spelling of one user shares one budget (``bob`` and
``111122223333/bob``), GetSessionToken's failures count on the same one, and a same-named user of another account
keeps its own."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pyotp
import pytest

from iam_middleware import IAM, LockedOutError, OTPError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOW = 1_800_000_000.0
PASSWORD = "correct horse battery staple"
BOB_SEED = "S7OGSI66TRZN23GL34ETDX36DJYB2AJM"


def two_tenants() -> IAM:
    data = copy.deepcopy(tomllib.loads((EXAMPLES / "iam.toml").read_text()))
    data["settings"]["default_account"] = "111122223333"
    data["accounts"]["444455556666"] = {"name": "other"}
    other_bob = copy.deepcopy(data["users"]["bob"])
    other_bob.update(name="bob", account="444455556666", access_keys=[], groups=[], policies=[])
    data["users"]["bob-other"] = other_bob
    return IAM.from_dict(data, base_dir=EXAMPLES, clock=lambda: NOW)


def attempts(iam: IAM, names: list[str], start: float) -> float:
    """Failed logins a minute apart (past each failure's growing delay, inside the counting window)."""
    at = start
    for name in names:
        at += 60
        with pytest.raises(OTPError) as failed:
            iam.login(name, "wrong", "000000", now=at)
        assert not isinstance(failed.value, LockedOutError), name
    return at + 60


def test_every_spelling_of_one_user_shares_one_budget() -> None:
    iam = IAM.from_file(EXAMPLES / "iam.toml")
    at = attempts(iam, ["bob", "111122223333/bob", "bob", "111122223333/bob", "bob"], NOW)  # no spelling 5 times
    with pytest.raises(LockedOutError):  # yet the user is locked out, whatever the spelling, right password or not
        iam.login("111122223333/bob", PASSWORD, pyotp.TOTP(BOB_SEED).at(at), now=at)


def test_a_same_named_user_of_another_account_keeps_its_own_budget() -> None:
    iam = two_tenants()
    at = attempts(iam, ["444455556666/bob"] * 5, NOW)
    with pytest.raises(LockedOutError):
        iam.login("444455556666/bob", PASSWORD, pyotp.TOTP(BOB_SEED).at(at), now=at)
    assert iam.login("111122223333/bob", PASSWORD, pyotp.TOTP(BOB_SEED).at(at), now=at).token
