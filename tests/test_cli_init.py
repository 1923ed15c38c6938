"""``iam-middleware init``: a starting directory that loads, checks clean, and works as its comments say."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pyotp
import pytest

from iam_middleware import IAM
from iam_middleware.cli import main
from iam_middleware.testing import principal_for

NOW = 1_800_000_000.0


def init(target: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[str, str]:
    assert main(["init", str(target), "--no-qr", *extra]) == 0
    out = capsys.readouterr().out
    password = re.search(r"password \(shown once\): (\S+)", out)
    seed = re.search(r"secret=([A-Z2-7]+)", out)
    assert password is not None and seed is not None
    return password.group(1), seed.group(1)


def test_the_directory_loads_checks_clean_and_logs_the_admin_in(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    password, seed = init(tmp_path, capsys)
    assert main(["check", str(tmp_path / "iam.toml"), "--strict"]) == 0
    iam = IAM.from_file(tmp_path / "iam.toml", clock=lambda: NOW)
    issued = iam.login("admin", password, pyotp.TOTP(seed).at(NOW))
    assert issued.token
    assert (tmp_path / "secrets.toml").stat().st_mode & 0o777 == 0o600
    # The file for version control names its secrets; none of their values is in it, nor the password.
    directory = (tmp_path / "iam.toml").read_text()
    for value in tomllib.loads((tmp_path / "secrets.toml").read_text()).values():
        assert value not in directory
    assert password not in directory


def test_the_policies_do_what_the_comments_say(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    init(tmp_path, capsys, "--service", "shop", "--admin", "ops")
    iam = IAM.from_file(tmp_path / "iam.toml", clock=lambda: NOW)
    item = "arn:app:shop::111122223333:item/7"
    with_key = principal_for(iam, "ops")  # an access key: no MFA
    with_mfa = principal_for(iam, "ops", mfa=True)
    assert iam.authorize(with_key, "shop:GetItem", item).allowed
    assert not iam.authorize(with_key, "shop:DeleteItem", item).allowed  # the guardrail: writes need MFA
    assert iam.authorize(with_mfa, "shop:DeleteItem", item).allowed
    service = principal_for(iam, role="service")
    assert iam.authorize(service, "shop:ListItems", item).allowed
    assert not iam.authorize(service, "shop:DeleteItem", item).allowed
    assert [rule.path for rule in iam.rules.rules] == ["/health", "/items/{item_id}"]


def test_init_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    init(tmp_path, capsys)
    before = (tmp_path / "secrets.toml").read_text()
    assert main(["init", str(tmp_path), "--no-qr"]) == 1
    assert "nothing was written" in capsys.readouterr().err
    assert (tmp_path / "secrets.toml").read_text() == before


def test_bad_names_are_usage_errors(tmp_path: Path) -> None:
    for args in (["--account", "12"], ["--admin", "a:b"], ["--service", "Not Valid"]):
        with pytest.raises(SystemExit) as usage:
            main(["init", str(tmp_path), *args])
        assert usage.value.code == 2
    assert not (tmp_path / "iam.toml").exists()
