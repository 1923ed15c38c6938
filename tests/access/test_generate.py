"""``policy generate``: least privilege from the decision log; a generated policy, re-evaluated against the same log,
allows every logged allowed request of the principal and nothing it was denied."""

from __future__ import annotations

import importlib
import io
import itertools
import json
import logging
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iam_middleware._principal import CredentialKind
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


# Conditions the original policies required ----------------------------------------------------------------------
def _matched(decision: Any) -> list[dict[str, Any]]:
    return [m.as_dict() for m in decision.matched]


def test_the_conditions_every_allowing_statement_had_are_kept() -> None:
    """bob deletes orders only with MFA (OrdersWriteWithMFA), reads them with any credential: the generated policy
    keeps the MFA condition on DeleteOrder, none on GetOrder, and a delete without MFA stays denied."""
    from iam_middleware import IAM
    from iam_middleware.access._generate import identity_statements

    iam = IAM.from_file(Path(__file__).resolve().parents[2] / "examples" / "iam.toml")
    snapshot = iam.snapshot
    user = snapshot.user("bob")
    assert user is not None
    now = 1_800_000_000.0
    with_mfa = snapshot.user_principal(user, CredentialKind.SESSION, auth_time=now - 60, mfa_time=now - 60)
    without = snapshot.user_principal(user, CredentialKind.SESSION, auth_time=now - 60)
    entries, contexts = [], []
    for action, order_id, bob in (("orders:DeleteOrder", "1", with_mfa), ("orders:DeleteOrder", "2", with_mfa),
                                  ("orders:DeleteOrder", "1", without), ("orders:GetOrder", "1", without)):
        decision = iam.authorize(bob, action, order(order_id), now=now)
        entry = record(BOB, action, order(order_id), decision.kind.value)
        entry["statements"] = _matched(decision)
        entries.append(entry)
        contexts.append(iam.decisions.context_for(bob, None, now=now))
    statements = identity_statements(snapshot, BOB)
    assert statements is not None
    generated = generate_policy(used(*entries), BOB, statements=statements)
    assert generated is not None and generated.conflicts == []
    assert generated.guarded == [("orders:DeleteOrder", order("1"))]
    assert generated.document["Statement"] == [
        {"Sid": "Orders", "Effect": "Allow", "Action": "orders:DeleteOrder", "Resource": order("*"),
         "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"},
                       "NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}},
        {"Sid": "Orders2", "Effect": "Allow", "Action": "orders:GetOrder", "Resource": order("1")},
    ]
    identity = PolicySet.of(as_policy(generated))
    for entry, context in zip(entries, contexts, strict=True):
        decision = evaluate(Caller.from_arn(BOB), entry["action"], entry["resource"], context, identity=identity,
                            context_is_lower=True)
        assert decision.allowed == (entry["decision"] == "Allowed"), entry
    # Without the directory, nothing tells the policies' conditions: the request is a conflict the policy allows.
    plain = generate_policy(used(*entries), BOB)
    assert plain is not None and plain.conflicts == [("orders:DeleteOrder", order("1"))]
    assert identity_statements(snapshot, "arn:app:iam::111122223333:user/nobody") is None


def test_a_generalization_never_covers_a_resource_granted_under_conditions_it_lacks() -> None:
    original = [{"Effect": "Allow", "Action": "orders:GetOrder", "Resource": [order("a*"), order("b*")]},
                {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": order("7"),
                 "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]
    policy = parse_policy({"Version": "2012-10-17", "Statement": original}, policy_id="Original")
    entries = []
    for order_id, mfa in (("a1", "false"), ("b1", "false"), ("7", "true")):
        decision = evaluate(Caller.from_arn(ALICE), "orders:GetOrder", order(order_id),
                            {"aws:multifactorauthpresent": mfa}, identity=PolicySet.of(policy), context_is_lower=True)
        entries.append({**record(ALICE, "orders:GetOrder", order(order_id), decision.kind.value),
                        "statements": _matched(decision)})
    table = {(policy.id, statement.index): statement for statement in policy.statements}
    generated = generate_policy(used(*entries), ALICE, statements=lambda name, index: table.get((name, index)))
    assert generated is not None
    assert [(s["Resource"], s.get("Condition")) for s in generated.document["Statement"]] == [
        (order("7"), {"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
        ([order("a1"), order("b1")], None),  # order/* would grant order/7 without MFA
    ]


FACTS: dict[str, tuple[str, str, str, list[str]]] = {
    # name: (operator, key, policy value, values a request may carry: the first meets the condition)
    "mfa": ("Bool", "aws:MultiFactorAuthPresent", "true", ["true", "false"]),
    "ip": ("IpAddress", "aws:SourceIp", "10.0.0.0/8", ["10.1.2.3", "192.0.2.7"]),
    "tls": ("Bool", "aws:SecureTransport", "true", ["true", "false"]),
}
REQUEST_IDS = st.sampled_from(["a1", "a2", "b1", "7"])


@st.composite
def originals(draw: st.DrawFn) -> list[dict[str, Any]]:
    """An identity policy whose statements demand some of the facts."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        statement: dict[str, Any] = {
            "Effect": "Allow",
            "Action": draw(st.sampled_from(["orders:GetOrder", "orders:DeleteOrder", "orders:*"])),
            "Resource": draw(st.lists(st.sampled_from([order("*"), order("a*"), order("b*"), order("7")]),
                                      min_size=1, max_size=2, unique=True))}
        condition: dict[str, dict[str, str]] = {}
        for name in draw(st.lists(st.sampled_from(sorted(FACTS)), unique=True, max_size=2)):
            operator, key, value, _ = FACTS[name]
            condition.setdefault(operator, {})[key] = value
        if condition:
            statement["Condition"] = condition
        out.append(statement)
    return out


@given(original=originals(), data=st.data())
def test_a_policy_with_the_kept_conditions_decides_every_logged_request_as_logged(
        original: list[dict[str, Any]], data: st.DataObject) -> None:
    policy = parse_policy({"Version": "2012-10-17", "Statement": original}, policy_id="Original")
    identity = PolicySet.of(policy)
    caller = Caller.from_arn(ALICE)
    entries, contexts = [], []
    for _ in range(data.draw(st.integers(1, 12))):
        action = data.draw(st.sampled_from(["orders:GetOrder", "orders:DeleteOrder"]))
        resource = order(data.draw(REQUEST_IDS))
        context = {FACTS[name][1].lower(): data.draw(st.sampled_from(FACTS[name][3])) for name in sorted(FACTS)}
        decision = evaluate(caller, action, resource, context, identity=identity, context_is_lower=True)
        entry = record(ALICE, action, resource, decision.kind.value)
        entry["statements"] = _matched(decision)
        entries.append(entry)
        contexts.append(context)
    table = {(policy.id, statement.index): statement for statement in policy.statements}
    generated = generate_policy(used(*entries), ALICE, statements=lambda name, index: table.get((name, index)))
    if not any(entry["decision"] == "Allowed" for entry in entries):
        assert generated is None
        return
    assert generated is not None
    produced = PolicySet.of(as_policy(generated))
    ever_allowed = {(e["action"], e["resource"]) for e in entries if e["decision"] == "Allowed"}
    for entry, context in zip(entries, contexts, strict=True):
        decision = evaluate(caller, entry["action"], entry["resource"], context, identity=produced,
                            context_is_lower=True)
        if entry["decision"] == "Allowed":
            assert decision.allowed, (entry, generated.document)
        elif (entry["action"], entry["resource"]) not in ever_allowed:
            assert not decision.allowed, (entry, generated.document)
    # Not broader than the original on the resources the log shows, whatever the request carries.
    for action, resource in sorted(ever_allowed):
        for values in itertools.product(*(FACTS[name][3] for name in sorted(FACTS))):
            context = {FACTS[name][1].lower(): value for name, value in zip(sorted(FACTS), values, strict=True)}
            if evaluate(caller, action, resource, context, identity=produced, context_is_lower=True).allowed:
                assert evaluate(caller, action, resource, context, identity=identity, context_is_lower=True).allowed, \
                    (action, resource, context, generated.document)
    # A fact every statement that could allow an action demands stays demanded on every statement of that action.
    for action in {action for action, _ in ever_allowed}:
        could = [s for s in original if s["Action"] in (action, "orders:*")]
        demanded = set.intersection(*({(op, key) for op, keys in s.get("Condition", {}).items() for key in keys}
                                      for s in could))
        for statement in generated.document["Statement"]:
            if action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]):
                kept = {(op, key) for op, keys in statement.get("Condition", {}).items() for key in keys}
                assert demanded <= kept, (action, statement, original)
