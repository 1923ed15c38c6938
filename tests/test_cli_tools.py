"""The directory authors' helpers: hash-password, totp new (with activation by a first code), totp code."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from pathlib import Path

import pyotp
import pytest

from iam_middleware.authenticators import TOTPDevice, verify_password
from iam_middleware.cli import main


def test_hash_password_reads_stdin_and_the_hash_verifies(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery staple\n"))
    assert main(["hash-password", "--stdin"]) == 0
    encoded = capsys.readouterr().out.strip()
    assert encoded.startswith("$scrypt$ln=17,r=8,p=1$")  # a PHC string at the cost of new hashes
    assert verify_password("correct horse battery staple", encoded)
    assert not verify_password("correct horse battery stapler", encoded)


def test_hash_password_refuses_an_empty_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main(["hash-password", "--stdin"]) == 1


def test_totp_code_is_the_current_code_of_the_seed(capsys: pytest.CaptureFixture[str]) -> None:
    seed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    before = pyotp.TOTP(seed).now()
    assert main(["totp", "code", seed]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed in {before, pyotp.TOTP(seed).now()}


def test_totp_code_refuses_a_bad_seed() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["totp", "code", "not-base32!"])
    assert exit_info.value.code == 2


def _answering(monkeypatch: pytest.MonkeyPatch, answer: Callable[[], str]) -> None:
    """Answer the --confirm prompt with what ``answer()`` returns (it may read what was printed so far)."""
    monkeypatch.setattr("builtins.input", lambda prompt="": answer())


def test_totp_new_activates_the_device_only_after_a_valid_first_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shown: list[str] = []

    def first_code() -> str:
        seed = re.search(r"secret=([A-Z2-7]+)", capsys.readouterr().out)
        assert seed is not None
        shown.append(seed.group(1))
        return TOTPDevice(seed.group(1)).code_at(time.time())

    _answering(monkeypatch, first_code)
    assert main(["totp", "new", "--no-qr", "--confirm", "--account", "eve"]) == 0
    out = capsys.readouterr().out
    assert "Verified" in out
    assert f'totp_secret = "{shown[0]}"' in out


def test_totp_new_refuses_a_wrong_first_code_and_prints_no_seed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def wrong_code() -> str:
        uri = capsys.readouterr().out
        seed = re.search(r"secret=([A-Z2-7]+)", uri)
        assert seed is not None
        device = TOTPDevice(seed.group(1))
        now = time.time()
        valid = {device.code_at(now + step * 30) for step in (-1, 0, 1)}
        return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in valid)

    _answering(monkeypatch, wrong_code)
    assert main(["totp", "new", "--no-qr", "--confirm"]) == 1
    captured = capsys.readouterr()
    assert "totp_secret" not in captured.out
    assert "not activated" in captured.err


def test_totp_new_writes_an_svg_qr_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "qr.svg"
    assert main(["totp", "new", "--no-qr", "--svg", str(target)]) == 0
    assert target.read_text().lstrip().startswith("<svg")
    assert "otpauth://totp/" in capsys.readouterr().out
