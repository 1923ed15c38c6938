"""The action catalog: ``check`` and ``validate --directory`` warn about policy names no route can match, with the
nearest real name, and never fail for them."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from iam_middleware.access._catalog import UNKNOWN_NAME, catalog_of, unknown_names
from iam_middleware.access._routes import RouteSpec
from iam_middleware.cli import main
from iam_middleware.policy import parse_policy
from iam_middleware.routing import PUBLIC, Permission

ROOT = Path(__file__).resolve().parents[2]
DIRECTORY = str(ROOT / "examples" / "iam.toml")
APP = "examples.starlette_app:app"
ROUTES = [
    RouteSpec("GET", "/orders/{order_id}", Permission("orders:GetOrder", "arn:app:orders::{account}:order/{order_id}")),
    RouteSpec("POST", "/orders", Permission("orders:CreateOrder", "arn:app:orders::{account}:order/new")),
    RouteSpec("GET", "/health", PUBLIC),
    RouteSpec("GET", "/nothing", None),
]


def messages(statement: dict[str, Any]) -> list[str]:
    policy = parse_policy({"Version": "2012-10-17", "Statement": [statement]})
    issues = unknown_names(policy, catalog_of(ROUTES))
    assert all(issue.code == UNKNOWN_NAME for issue in issues)
    return [f"{issue.location}: {issue.message}" for issue in issues]


def test_a_misspelt_action_names_the_nearest_real_one() -> None:
    assert messages({"Effect": "Allow", "Action": ["orders:GetOrdr", "orders:Get*", "ORDERS:createorder"],
                     "Resource": "*"}) == [
        "Statement[0].Action: orders:GetOrdr matches no action of the app's routes or the token service; "
        "did you mean orders:GetOrder?"]


def test_token_service_and_admin_actions_are_known_and_foreign_ones_are_not() -> None:
    assert messages({"Effect": "Allow", "Action": ["sts:AssumeRole", "iam:ReloadDirectory", "s3:GetObject"],
                     "Resource": "*"}) == [
        "Statement[0].Action: s3:GetObject matches no action of the app's routes or the token service"]


def test_a_resource_no_route_renders_names_the_nearest_pattern() -> None:
    found = messages({"Effect": "Deny", "Action": "orders:GetOrder", "Resource": [
        "arn:app:order::111122223333:order/42",  # the service misspelt
        "arn:app:orders::111122223333:order/42", "arn:app:orders:*:*:order/*", "*",
        "arn:app:orders::111122223333:order/${aws:username}",  # a variable may be any id
        "arn:app:iam::111122223333:role/partner",  # the token service's roles
    ]})
    assert found == ["Statement[0].Resource: arn:app:order::111122223333:order/42 matches no resource of the app's "
                     "routes; did you mean arn:app:orders::111122223333:order/42?"]


def test_an_id_cannot_hold_a_slash_so_a_deeper_path_is_unknown() -> None:
    assert len(messages({"Effect": "Allow", "Action": "orders:GetOrder",
                         "Resource": "arn:app:orders::111122223333:order/42/items"})) == 1


def test_not_action_and_not_resource_are_not_checked() -> None:
    assert messages({"Effect": "Deny", "NotAction": "orders:Nope", "NotResource": "arn:app:nope::1:x"}) == []


def test_check_warns_and_still_passes_when_strict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", DIRECTORY, "--app", APP, "--strict"]) == 0
    out = capsys.readouterr().out
    assert "warning: AcmeGuardrail: Statement[1].Action: orders:PurgeOrders matches no action" in out
    assert main(["check", DIRECTORY, "--app", APP, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["warnings"] == [] and len(report["unknown_names"]) == 1


def test_check_without_routes_has_no_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", DIRECTORY, "--format", "json"]) == 0  # the demo directory declares no [[routes]]
    assert json.loads(capsys.readouterr().out)["unknown_names"] == []


def test_validate_with_a_directory_warns_and_strict_still_passes(tmp_path: Path) -> None:
    policy = tmp_path / "typo.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Read", "Effect": "Allow", "Action": "orders:GetOrdr", "Resource": "arn:app:orders::*:order/*"}]}))
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["validate", str(policy), "--directory", DIRECTORY, "--app", APP, "--strict"]) == 0
    assert "warning: orders:GetOrdr matches no action" in out.getvalue() and "did you mean orders:GetOrder?" in \
        out.getvalue()
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["validate", str(policy), "--directory", DIRECTORY, "--app", APP, "--format", "json"]) == 0
    finding, = json.loads(out.getvalue())["files"][0]["findings"]
    assert finding["code"] == UNKNOWN_NAME and finding["severity"] == "warning"
    with redirect_stdout(io.StringIO()):
        assert main(["validate", str(policy)]) == 0  # no directory, no catalog


def test_validate_app_needs_a_directory(tmp_path: Path) -> None:
    with redirect_stderr(io.StringIO()), pytest.raises(SystemExit) as exited:
        main(["validate", str(tmp_path / "x.json"), "--app", APP])
    assert exited.value.code == 2
