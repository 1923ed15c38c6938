"""``access unused``: principals, access keys and permissions the decision log does not show used."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from iam_middleware.access._decisionlog import Used
from iam_middleware.access._unused import find_unused
from iam_middleware.cli import main
from iam_middleware.cli._access import load_iam, load_routes, report_of

ROOT = Path(__file__).resolve().parents[2]
DIRECTORY = str(ROOT / "examples" / "iam.toml")
LOG = str(ROOT / "examples" / "decisions.jsonl")
APP = "examples.starlette_app:app"
ACCOUNT = "111122223333"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        status = main(["access", "unused", "--directory", DIRECTORY, "--log", LOG, *argv])
    return status, out.getvalue()


def unused_of(*records: Used) -> Any:
    iam = load_iam(DIRECTORY)
    return find_unused(report_of(iam, load_routes(iam, APP), []), iam.snapshot, records)


def used(principal: str, action: str, *, credential: str = "access-key", key: str | None = None,
         allowed: bool = True, pattern: str | None = None) -> Used:
    return Used(principal, action, f"arn:app:orders::{ACCOUNT}:order/1", allowed, pattern,
                datetime(2026, 12, 1, tzinfo=UTC), credential, key)


def test_the_demo_log_leaves_the_role_bobs_key_and_unread_routes_unused() -> None:
    status, out = run("--app", APP, "--format", "json")
    report = json.loads(out)
    assert status == 0
    assert report["principals"] == ["role/partner", "role/partner@idp.example"]
    assert report["access_keys"] == [{"user": "bob", "access_key_id": "AKIADEMOBOB000000001"}]
    alice = [(p["action"], p["routes"]) for p in report["permissions"] if p["principal"] == "alice"]
    assert alice == [("orders:GetOrder", ["WEBSOCKET /orders/feed"])]  # she listed and read orders, never the feed
    bob = {p["action"]: p["outcome"] for p in report["permissions"] if p["principal"] == "bob"}
    assert bob == {"orders:ListOrders": "Allowed", "orders:CreateOrder": "Conditional",
                   "orders:DeleteOrder": "Conditional", "orders:GetOrder": "Allowed"}


def test_a_window_after_the_log_leaves_everything_unused() -> None:
    status, out = run("--app", APP, "--since", "2999-01-01", "--format", "json")
    report = json.loads(out)
    assert status == 0 and report["principals"] == ["alice", "bob", "carol", "role/partner",
                                                    "role/partner@idp.example"]
    assert len(report["access_keys"]) == 3


def test_the_table_names_each_kind() -> None:
    status, out = run("--app", APP)
    lines = out.splitlines()
    assert status == 0 and lines[0].split() == ["UNUSED", "PRINCIPAL", "DETAIL"]
    assert "access key  bob" in out and "[conditional]" in out
    assert any(line.startswith("principal") and "role/partner@idp.example" in line for line in lines)


def test_role_sessions_and_web_identity_sessions_are_told_apart() -> None:
    session = f"arn:app:sts::{ACCOUNT}:assumed-role/partner/s1"
    unused = unused_of(used(session, "orders:GetOrder", credential="temporary-access-key"))
    assert "role/partner" not in unused.principals and "role/partner@idp.example" in unused.principals
    unused = unused_of(used(session, "orders:GetOrder", credential="web-identity"))
    assert "role/partner" in unused.principals and "role/partner@idp.example" not in unused.principals


def test_a_denied_request_uses_the_principal_but_not_the_permission() -> None:
    alice = f"arn:app:iam::{ACCOUNT}:user/alice"
    unused = unused_of(used(alice, "orders:ListOrders", key="AKIADEMOALICE0000001", allowed=False))
    assert "alice" not in unused.principals
    assert all(key.user != "alice" for key in unused.access_keys)
    assert ("alice", "orders:ListOrders") in {(p.principal, p.action) for p in unused.permissions}


def test_a_permission_is_used_only_through_its_own_route_pattern() -> None:
    alice = f"arn:app:iam::{ACCOUNT}:user/alice"
    unused = unused_of(used(alice, "orders:GetOrder", pattern="arn:app:orders::{account}:order/{order_id}"))
    assert [p.routes for p in unused.permissions if p.principal == "alice" and p.action == "orders:GetOrder"] == \
        [("WEBSOCKET /orders/feed",)]


def test_an_unreadable_log_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("[1]\n")
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        assert main(["access", "unused", "--directory", DIRECTORY, "--log", str(bad)]) == 2
        assert main(["access", "unused", "--directory", DIRECTORY, "--log", str(tmp_path / "none")]) == 2
    assert "line 1: not a JSON object" in err.getvalue()
