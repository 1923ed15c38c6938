"""IAM's credential report: IAM's exact columns and value conventions, the root user's row first, times from the
database, last use from the shared state; ``GenerateCredentialReport``/``GetCredentialReport``; the CLI."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from iam_middleware.cli import main
from iam_middleware.directory import directory_from_dict, load_directory
from iam_middleware.directory._credential_report import (
    REPORT_LIFETIME,
    access_key_last_used,
    credential_report,
    generate_credential_report,
    get_credential_report,
)
from iam_middleware.directory._last_used import LastUsedTracker
from iam_middleware.directory.sql import ROOT, SQLDirectory
from iam_middleware.state import MemoryStore

from .conftest import DEMO

#: The header of IAM's credential report, as IAM writes it (IAM User Guide, "Getting credential reports").
IAM_HEADER = (
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,"
    "mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,"
    "access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,"
    "access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"
    "cert_1_last_rotated,cert_2_active,cert_2_last_rotated"
)
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")
T = 1_700_000_000


def rows(text: str) -> dict[str, dict[str, str]]:
    return {row["user"]: row for row in csv.DictReader(io.StringIO(text))}


def test_the_demo_directory_gives_iams_layout(capsys: pytest.CaptureFixture[str]) -> None:
    text = credential_report(load_directory(DEMO))
    assert text.splitlines()[0] == IAM_HEADER
    assert main(["directory", "credential-report", "--directory", str(DEMO)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == IAM_HEADER and out == text + "\n"
    report = rows(text)
    assert list(report) == ["<root_account>", "alice", "bob", "carol"]  # the root user first, then by name
    root = report["<root_account>"]
    assert root["arn"] == "arn:app:iam::111122223333:root"
    for column in ("password_enabled", "password_last_changed", "password_next_rotation"):
        assert root[column] == "not_supported"
    alice = report["alice"]
    assert (alice["password_enabled"], alice["password_last_used"], alice["mfa_active"]) == ("true", "no_information",
                                                                                             "true")
    assert (alice["access_key_1_active"], alice["access_key_1_last_used_date"]) == ("true", "N/A")
    assert [alice[f"access_key_2_{c}"] for c in ("active", "last_rotated", "last_used_date", "last_used_region",
                                                 "last_used_service")] == ["false", "N/A", "N/A", "N/A", "N/A"]
    assert [alice[c] for c in ("cert_1_active", "cert_1_last_rotated", "cert_2_active", "cert_2_last_rotated")] == [
        "false", "N/A", "false", "N/A"]
    assert "demo/alice" not in text  # no secret in the report


def test_values_from_the_database_and_the_shared_state(demo: SQLDirectory) -> None:
    demo.clock = lambda: float(T)
    with demo.change() as draft:
        draft.create_user("erin")
        key = draft.create_access_key("erin")
        second = draft.create_access_key("erin")
        draft.update_access_key("erin", second.access_key_id, "Inactive")
        draft.create_login_profile(ROOT, "a root password that is long enough")
    store = MemoryStore()
    tracker = LastUsedTracker(store)
    tracker.access_key_used(key.access_key_id, now=T + 60, region="local", service="orders")
    tracker.password_used("111122223333", now=T + 120)
    text = credential_report(demo.load().snapshot, times=demo.credential_times(), last_used=tracker)
    report = rows(text)
    erin = report["erin"]
    assert erin["user_creation_time"] == "2023-11-14T22:13:20+00:00"
    assert (erin["password_enabled"], erin["password_last_used"], erin["password_last_changed"]) == ("false", "N/A",
                                                                                                     "N/A")
    assert erin["mfa_active"] == "false"
    assert [erin[f"access_key_1_{c}"] for c in ("active", "last_rotated", "last_used_date", "last_used_region",
                                                "last_used_service")] == [
        "true", "2023-11-14T22:13:20+00:00", "2023-11-14T22:14:20+00:00", "local", "orders"]
    assert (erin["access_key_2_active"], erin["access_key_2_last_used_date"]) == ("false", "N/A")
    assert ISO.fullmatch(erin["access_key_2_last_rotated"])
    root = report["<root_account>"]
    assert root["password_last_used"] == "2023-11-14T22:15:20+00:00" and root["password_enabled"] == "not_supported"
    assert ISO.fullmatch(report["alice"]["user_creation_time"]) and ISO.fullmatch(
        report["alice"]["password_last_changed"])
    answer = access_key_last_used(demo.load().snapshot, tracker, key.access_key_id)
    assert answer is not None and answer["UserName"] == "erin"
    assert answer["AccessKeyLastUsed"]["ServiceName"] == "orders" and answer["AccessKeyLastUsed"]["Region"] == "local"
    assert answer["AccessKeyLastUsed"]["LastUsedDate"].timestamp() == T + 60
    never = access_key_last_used(demo.load().snapshot, tracker, second.access_key_id)
    assert never == {"UserName": "erin", "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}}


def test_generate_then_get_as_iam_keeps_a_report_four_hours(demo: SQLDirectory) -> None:
    store, snapshot = MemoryStore(clock=lambda: 0.0), demo.load().snapshot
    assert get_credential_report(store, "111122223333", now=T) is None
    assert generate_credential_report(store, snapshot, now=T) == "STARTED"
    assert generate_credential_report(store, snapshot, now=T + 1) == "COMPLETE"
    kept = get_credential_report(store, "111122223333", now=T + 2)
    assert kept is not None and kept.generated_time == T and kept.report_format == "text/csv"
    assert kept.content.splitlines()[0] == IAM_HEADER
    assert get_credential_report(store, "111122223333", now=T + REPORT_LIFETIME) is None  # expired
    assert generate_credential_report(store, snapshot, now=T + REPORT_LIFETIME) == "STARTED"


def test_an_account_must_be_named_where_there_are_several(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    data = {"accounts": {"111122223333": {}, "999988887777": {}},
            "users": {"zed": {"account": "999988887777"}, "amy": {"account": "111122223333"}}}
    with pytest.raises(ValueError, match="2 accounts"):
        credential_report(directory_from_dict(data))
    file = tmp_path / "two.json"
    file.write_text(json.dumps(data))
    assert main(["directory", "credential-report", "--directory", str(file)]) == 2
    assert "name the account" in capsys.readouterr().err
    assert main(["directory", "credential-report", "--directory", str(file), "--account", "999988887777"]) == 0
    assert list(rows(capsys.readouterr().out)) == ["<root_account>", "zed"]


def test_the_cli_reports_a_database(demo: SQLDirectory, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["directory", "credential-report", "--database", str(demo.url.render_as_string(
        hide_password=False))]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == IAM_HEADER
    assert ISO.fullmatch(rows(out)["bob"]["user_creation_time"])
