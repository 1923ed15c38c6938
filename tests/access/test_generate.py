"""``policy generate``: least privilege from the decision log; a generated policy, re-evaluated against the same log,
allows every logged allowed request of the principal and nothing it was denied."""

from __future__ import annotations

import importlib
import io
import json
import logging
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iam_middleware.access._decisionlog import LogFormatError, Used, parse_time, read_log
from iam_middleware.access._generate import as_policy, generate_policy
from iam_middleware.cli import main
from iam_middleware.policy import Caller, DecisionKind, PolicySet, evaluate, parse_policy
from iam_middleware.testing import AsyncRouteClient

ALICE = "arn:app:iam::111122223333:user/alice"
BOB = "arn:app:iam::111122223333:user/bob"
PATTERN = "arn:app:orders::{account}:order/{order_id}"


def order(order_id: str) -> str:
    return f"arn:app:orders::111122223333:order/{order_id}"


def record(principal: str, action: str, resource: str, decision: str = "Allowed", *,
           pattern: str | None = PATTERN, time: str = "2026-12-01T10:00:00.000Z") -> dict[str, Any]:
    entry: dict[str, Any] = {"time": time, "request_id": "r", "method": "GET", "path": "/", "principal": principal,
                             "credential": "session", "source_ip": None, "action": action, "resource": resource,
                             "decision": decision}
    if pattern is not None:
        entry["resource_pattern"] = pattern
    return entry


def used(*records: dict[str, Any]) -> list[Used]:
    return read_log(json.dumps(entry) for entry in records)


def allows(document: dict[str, Any], principal: str, action: str, resource: str) -> bool:
    identity = PolicySet.of(parse_policy(document, policy_id="generated"))
    return evaluate(Caller.from_arn(principal), action, resource, {}, identity=identity).kind is DecisionKind.ALLOWED


def test_ids_that_varied_become_their_common_prefix_and_a_star() -> None:
    generated = generate_policy(used(
        record(ALICE, "orders:GetOrder", order("alice-1")), record(ALICE, "orders:GetOrder", order("alice-2")),
        record(ALICE, "orders:ListOrders", "arn:app:orders::111122223333:order", pattern=None),
        record(ALICE, "orders:DeleteOrder", order("alice-1")),
        record(BOB, "orders:DeleteOrder", order("bob-9")),
    ), ALICE)
    assert generated is not None and generated.conflicts == [] and generated.findings == []
    assert generated.document == {"Version": "2012-10-17", "Statement": [
        {"Sid": "Orders", "Effect": "Allow", "Action": "orders:DeleteOrder", "Resource": order("alice-1")},
        {"Sid": "Orders2", "Effect": "Allow", "Action": "orders:GetOrder", "Resource": order("alice-*")},
        {"Sid": "Orders3", "Effect": "Allow", "Action": "orders:ListOrders",
         "Resource": "arn:app:orders::111122223333:order"},
    ]}


def test_actions_with_the_same_resources_share_a_statement() -> None:
    generated = generate_policy(used(
        record(ALICE, "orders:GetOrder", order("7")), record(ALICE, "orders:UpdateOrder", order("7")),
        record(ALICE, "sts:GetCallerIdentity", "*", pattern="*"),
    ), ALICE)
    assert generated is not None
    assert generated.document["Statement"] == [
        {"Sid": "Orders", "Effect": "Allow", "Action": ["orders:GetOrder", "orders:UpdateOrder"],
         "Resource": order("7")},
        {"Sid": "Sts", "Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
    ]


def test_a_generalization_over_a_denied_resource_falls_back_to_the_exact_ones() -> None:
    generated = generate_policy(used(
        record(ALICE, "orders:GetOrder", order("a1")), record(ALICE, "orders:GetOrder", order("a2")),
        record(ALICE, "orders:GetOrder", order("a3"), "ImplicitlyDenied"),
    ), ALICE)
    assert generated is not None
    assert generated.document["Statement"][0]["Resource"] == [order("a1"), order("a2")]


def test_wildcard_and_variable_characters_of_an_id_stay_literal() -> None:
    generated = generate_policy(used(record(ALICE, "orders:GetOrder", order("x*${y}?"))), ALICE)
    assert generated is not None
    assert generated.document["Statement"][0]["Resource"] == order("x${*}${$}{y}${?}")
    assert allows(generated.document, ALICE, "orders:GetOrder", order("x*${y}?"))
    assert not allows(generated.document, ALICE, "orders:GetOrder", order("xa${y}b"))


def test_a_request_both_allowed_and_denied_is_a_conflict_the_policy_allows() -> None:
    generated = generate_policy(used(
        record(ALICE, "orders:DeleteOrder", order("1")), record(ALICE, "orders:DeleteOrder", order("1"), "Denied"),
    ), ALICE)
    assert generated is not None and generated.conflicts == [("orders:DeleteOrder", order("1"))]


def test_nothing_allowed_is_no_policy() -> None:
    assert generate_policy(used(record(ALICE, "orders:GetOrder", order("1"), "ExplicitlyDenied")), ALICE) is None


def test_since_keeps_the_window_and_drops_records_without_a_time() -> None:
    lines = [json.dumps(record(ALICE, "orders:GetOrder", order("old"), time="2026-11-01T00:00:00Z")),
             json.dumps(record(ALICE, "orders:GetOrder", order("new"), time="2026-12-02T00:00:00.000Z")),
             json.dumps({k: v for k, v in record(ALICE, "orders:GetOrder", order("x")).items() if k != "time"})]
    assert [entry.resource for entry in read_log(lines, since=parse_time("2026-12-01"))] == [order("new")]
    assert len(read_log(lines)) == 3


def test_a_line_that_is_not_a_record_is_an_error_naming_it() -> None:
    with pytest.raises(LogFormatError, match="line 2"):
        read_log(["{}", "INFO something"])


# The guarantee -------------------------------------------------------------------------------------------------
ACTIONS = st.sampled_from(["orders:GetOrder", "orders:DeleteOrder", "sts:AssumeRole", "admin:ListUsers"])
IDS = st.text(alphabet="ab1-/:*?${}", min_size=0, max_size=6)
ITEMS = "arn:app:orders::{account}:order/{order_id}/items/{item}"
EVERY = "arn:app:orders::{account}:order/*"  # a route that declares a wildcard
PATTERNS = st.sampled_from([PATTERN, ITEMS, EVERY, None])
PRINCIPALS = st.sampled_from([ALICE, BOB])


@st.composite
def logs(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Records of one consistent authorizer: each (principal, action, resource) always gets the same outcome."""
    outcome: dict[tuple[str, str, str], str] = {}
    entries = []
    for _ in range(draw(st.integers(0, 25))):
        principal, action, pattern = draw(PRINCIPALS), draw(ACTIONS), draw(PATTERNS)
        first, second = draw(IDS), draw(IDS)
        resource = {ITEMS: order(f"{first}/items/{second}"), EVERY: order("*")}.get(pattern or "", order(first))
        decision = outcome.setdefault((principal, action, resource),
                                      draw(st.sampled_from(["Allowed", "ImplicitlyDenied", "ExplicitlyDenied"])))
        entries.append(record(principal, action, resource, decision, pattern=pattern))
    return entries


@given(logs())
def test_a_generated_policy_allows_every_logged_allowed_request_and_nothing_denied(
        entries: list[dict[str, Any]]) -> None:
    records = used(*entries)
    generated = generate_policy(records, ALICE)
    mine = [entry for entry in records if entry.principal == ALICE]
    if not any(entry.allowed for entry in mine):
        assert generated is None
        return
    assert generated is not None and generated.conflicts == []
    identity = PolicySet.of(as_policy(generated))
    caller = Caller.from_arn(ALICE)
    for entry in mine:
        decision = evaluate(caller, entry.action, entry.resource, {}, identity=identity)
        assert (decision.kind is DecisionKind.ALLOWED) == entry.allowed, entry


# The command, on a log the demo app wrote ---------------------------------------------------------------------
@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_command_on_a_log_the_demo_app_wrote(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    example = importlib.import_module("examples.starlette_app")
    app = example.app
    caplog.set_level(logging.INFO, "iam_middleware.decisions")
    async with AsyncRouteClient(app, getattr(app, "iam", None) or app.state.iam) as client:
        for path in ("/orders/42", "/orders/43"):
            await client.expect(200, "GET", path, user="alice", via="sigv4")
        await client.expect(403, "DELETE", "/orders/42", user="alice", via="sigv4")
    lines = [r.getMessage() for r in caplog.records if r.name == "iam_middleware.decisions"]
    assert all({"time", "resource_pattern"} <= json.loads(line).keys() for line in lines)
    log = tmp_path / "decisions.jsonl"
    log.write_text("\n".join(lines) + "\n")
    alice = json.loads(lines[0])["principal"]
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(["policy", "generate", "--log", str(log), "--principal", alice])
    assert status == 0, err.getvalue()
    statement, = json.loads(out.getvalue())["Statement"]
    assert statement["Action"] == "orders:GetOrder" and statement["Resource"].endswith(":order/4*")
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        assert main(["policy", "generate", "--log", str(log), "--principal", alice,
                     "--since", "2999-01-01T00:00:00Z"]) == 1
    log.write_text("not json\n")
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        assert main(["policy", "generate", "--log", str(log), "--principal", alice]) == 2
