"""``iam-middleware access``: the table, JSON and CSV forms of the demo's report, and its usage errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from iam_middleware.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "examples" / "iam.toml")
APP = "examples.starlette_app:app"


def test_the_table_puts_routes_down_principals_across_and_conditions_in_notes(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["access", "--directory", DEMO, "--app", APP]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ROUTE", "ACTION", "alice", "bob", "carol", "role/partner", "role/partner@idp.example"]
    assert lines[3].split() == ["POST", "/orders", "orders:CreateOrder", "Denied", "Conditional", "[1]", "Allowed",
                                "Denied", "Denied"]
    assert "[1] allowed when aws:MultiFactorAuthPresent is true and aws:MultiFactorAuthAge < 3600" in lines
    assert "[2] allowed unless {order_id} matches archived-*" in lines


def test_json_has_a_cell_per_principal_and_route_with_its_statements(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["access", "--directory", DEMO, "--app", APP, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["cells"]) == len(report["principals"]) * len(report["routes"]) == 30
    carol = next(c for c in report["cells"] if c["principal"] == "carol" and c["method"] == "DELETE")
    assert carol["outcome"] == "Conditional" and carol["decision"] is None and carol["ids"] == ["order_id"]
    assert carol["unless"] == ["{order_id} matches archived-*"] and carol["when"] == []
    assert {(s["type"], s["effect"], s["outright"]) for s in carol["statements"]} == {
        ("guardrail", "Allow", True), ("identity", "Allow", True), ("boundary", "Allow", True),
        ("boundary", "Deny", False)}
    alice = next(c for c in report["cells"] if c["principal"] == "alice" and c["method"] == "DELETE")
    assert alice["decision"] == "ImplicitlyDenied" and alice["statements"] == [
        {"type": "guardrail", "policy": "AcmeGuardrail", "statement": 0, "sid": "AllowEverythingElse",
         "effect": "Allow", "outright": True,
         "json": {"Sid": "AllowEverythingElse", "Effect": "Allow", "Action": "*", "Resource": "*"}}]


def test_csv_has_a_header_and_a_row_per_cell(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["access", "--directory", DEMO, "--app", APP, "--format", "csv", "--principal", "bob"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 6
    post = next(r for r in rows if r["method"] == "POST")
    assert post["outcome"] == "Conditional" and post["keys"] == "aws:MultiFactorAuthAge aws:MultiFactorAuthPresent"


def test_without_an_app_the_directorys_routes_table_is_reported(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    text = Path(DEMO).read_text().replace('file = "policies/', f'file = "{ROOT}/examples/policies/')
    route = ('[[routes]]\nmethod = "DELETE"\npath = "/orders/{id}"\naction = "orders:DeleteOrder"\n'
             'resource = "arn:app:orders::{account}:order/{id}"\n')
    (tmp_path / "iam.toml").write_text(text + "\n" + route)
    assert main(["access", "--directory", str(tmp_path / "iam.toml"), "--principal", "carol"]) == 0
    assert "[1] allowed unless {id} matches archived-*" in capsys.readouterr().out


def test_unreadable_input_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["access", "--directory", str(tmp_path / "none.toml")]) == 2
    assert "cannot load the directory" in capsys.readouterr().err
    assert main(["access", "--directory", DEMO, "--principal", "mallory"]) == 2
    with pytest.raises(SystemExit) as exited:
        main(["access"])
    assert exited.value.code == 2
