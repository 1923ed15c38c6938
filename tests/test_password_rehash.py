"""Stored passwords follow current practice at the IAM level: the CLI writes PHC strings at the cost of new hashes,
IAM hands an upgraded hash to on_password_rehash at a user's next login (the directory file is never written), and an
unknown user's login costs what the directory's hashes cost."""

from __future__ import annotations

import base64
import hashlib
import tomllib
from pathlib import Path
from typing import Any

import pyotp
import pytest

from iam_middleware import IAM, PasswordCost, needs_rehash, verify_password
from iam_middleware.authenticators._login import LoginFailedError
from iam_middleware.cli import main

NOW = 1_800_000_000.0
ACCOUNT = "111122223333"
PASSWORD = "correct horse battery staple"
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def legacy_hash(password: str, log2_n: int = 4) -> str:
    """A cheap hash in the earlier ``scrypt$...`` form, as directories written before hold."""
    salt = bytes(range(16))
    key = hashlib.scrypt(password.encode(), salt=salt, n=2**log2_n, r=8, p=1, dklen=32)
    return f"scrypt${log2_n}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def directory(tmp_path: Path) -> Path:
    path = tmp_path / "iam.toml"
    path.write_text(f"""
[accounts.{ACCOUNT}]

[users.alice]
password_hash = "{legacy_hash(PASSWORD)}"
totp_secret = "{SEED}"

[users.bob]
password_hash = "{legacy_hash(PASSWORD)}"
totp_secret = "{SEED}"
""")
    return path


def test_init_and_hash_password_write_phc_strings_at_the_cost_of_new_hashes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path), "--no-qr"]) == 0
    capsys.readouterr()
    users: dict[str, Any] = tomllib.loads((tmp_path / "iam.toml").read_text())["users"]
    (written,) = [user["password_hash"] for user in users.values() if "password_hash" in user]
    assert written.startswith("$scrypt$ln=17,r=8,p=1$") and not needs_rehash(written)


def test_a_login_hands_the_upgraded_hash_to_the_hook_and_leaves_the_file_alone(tmp_path: Path) -> None:
    path = directory(tmp_path)
    before = path.read_bytes()
    handed: list[tuple[str, str]] = []
    iam = IAM.from_file(path, clock=lambda: NOW, on_password_rehash=lambda arn, new: handed.append((arn, new)))
    iam.login("alice", PASSWORD, pyotp.TOTP(SEED).at(NOW))
    ((arn, new_hash),) = handed
    assert arn == f"arn:app:iam::{ACCOUNT}:user/alice"
    assert new_hash.startswith("$scrypt$ln=17,r=8,p=1$") and not needs_rehash(new_hash)
    assert verify_password(PASSWORD, new_hash)
    assert path.read_bytes() == before


def test_an_unknown_user_costs_what_the_directorys_hashes_cost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The directory's hashes cost N=2**4; the cost of new hashes (N=2**17) would make an unknown name slower than a
    # known one, and so tell which names exist.
    spent: list[PasswordCost | None] = []
    monkeypatch.setattr("iam_middleware.authenticators._login.verify_dummy",
                        lambda password, cost=None: spent.append(cost) or False)
    iam = IAM.from_file(directory(tmp_path), clock=lambda: NOW)
    with pytest.raises(LoginFailedError):
        iam.login("nobody", PASSWORD, "123456")
    assert spent == [PasswordCost(n=2**4)]
