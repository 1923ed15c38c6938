"""The access report on the demo's directory and app, and the cases that shape it: what a principal fixes, what a
request decides, what a route adds, and an explicit Deny with unknown conditions (Conditional, never Allowed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iam_middleware import IAM
from iam_middleware.access import RouteSpec, build_report, subjects_of
from iam_middleware.access._report import AccessReport
from iam_middleware.cli._access import ReportError, load_report
from iam_middleware.policy import DecisionKind
from iam_middleware.routing import Permission

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "iam.toml"
PRINCIPALS = ["alice", "bob", "carol", "role/partner", "role/partner@idp.example"]
#: The demo's answer, route by route, principal by principal (docs/access.md shows this table).
EXPECTED = {
    "GET /health": ["Public"] * 5,
    "GET /orders": ["Allowed"] * 5,
    "POST /orders": ["Denied", "Conditional", "Allowed", "Denied", "Denied"],
    "GET /orders/{order_id}": ["Allowed"] * 5,
    "DELETE /orders/{order_id}": ["Denied", "Conditional", "Conditional", "Denied", "Denied"],
    "WEBSOCKET /orders/feed": ["Allowed"] * 5,
}
MFA = "allowed when aws:MultiFactorAuthPresent is true and aws:MultiFactorAuthAge < 3600"


@pytest.fixture(scope="module")
def demo() -> AccessReport:
    return load_report(DEMO, "examples.starlette_app:app", [])


def test_every_principal_meets_every_route_of_the_demo(demo: AccessReport) -> None:
    assert [s.name for s in demo.subjects] == PRINCIPALS
    assert [s.kind for s in demo.subjects] == ["user", "user", "user", "role", "web-identity"]
    found = {route.label: [demo.cell(name, route.label).outcome for name in PRINCIPALS] for route in demo.routes}
    assert found == EXPECTED


def test_a_conditional_cell_names_the_keys_and_what_they_must_be(demo: AccessReport) -> None:
    bob = demo.cell("bob", "POST /orders")
    assert bob.summary == MFA
    assert bob.residual is not None and bob.residual.keys == ("aws:MultiFactorAuthAge", "aws:MultiFactorAuthPresent")
    carol = demo.cell("carol", "DELETE /orders/{order_id}")
    assert carol.summary == "allowed unless {order_id} matches archived-*"
    assert carol.residual is not None and carol.residual.ids == ("order_id",) and carol.residual.keys == ()
    assert carol.resource == "arn:app:orders::111122223333:order/{order_id}"
    denied = demo.cell("alice", "DELETE /orders/{order_id}")
    assert denied.decision is DecisionKind.IMPLICITLY_DENIED and denied.summary == "Denied"


def test_every_app_shell_gives_the_same_report() -> None:
    def outcomes(report: AccessReport) -> dict[tuple[str, str], str]:
        return {(c.subject.name, c.route.method, c.route.requirement.action): c.outcome  # type: ignore[union-attr]
                for c in report.cells if c.residual is not None}

    starlette = outcomes(load_report(DEMO, "examples.starlette_app:app", []))
    for app in ("examples.fastapi_app:app", "examples.flask_app:app"):
        other = outcomes(load_report(DEMO, app, []))
        assert other.items() <= starlette.items() and other, app


def _report(tmp_path: Path, body: str, routes: str = "", principals: list[str] | None = None) -> AccessReport:
    (tmp_path / "iam.toml").write_text(f'[settings]\npartition = "app"\nregions = ["local"]\n'
                                       f'session_secret = "{"s" * 40}"\n[accounts.111122223333]\n{body}\n{routes}')
    return load_report(tmp_path / "iam.toml", None, principals or [])


def _policy(name: str, *statements: dict[str, Any]) -> str:
    document = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return f"[policies.{name}]\ndocument = {json.dumps(document)}\n"


ROUTE = '[[routes]]\nmethod = "GET"\npath = "/orders/{order_id}"\naction = "orders:GetOrder"\n' \
        'resource = "arn:app:orders::{account}:order/{order_id}"\n'


def test_an_explicit_deny_with_unknown_conditions_makes_the_cell_conditional_never_allowed(tmp_path: Path) -> None:
    body = _policy("P", {"Effect": "Allow", "Action": "orders:*", "Resource": "*"},
                   {"Effect": "Deny", "Action": "orders:*", "Resource": "*",
                    "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})
    report = _report(tmp_path, body + '[users.alice]\npolicies = ["P"]\n', ROUTE)
    cell = report.cell("alice", "GET /orders/{order_id}")
    assert cell.outcome == "Conditional" and cell.decision is None
    assert cell.summary == 'allowed unless aws:SourceIp not in 10.0.0.0/8'


def test_a_principals_own_keys_are_known_and_a_variable_resource_names_the_id(tmp_path: Path) -> None:
    body = _policy("Own", {"Effect": "Allow", "Action": "orders:GetOrder",
                           "Resource": "arn:app:orders::111122223333:order/${aws:username}-*",
                           "Condition": {"StringEquals": {"aws:PrincipalTag/team": "blue"}}})
    users = '[users.alice]\npolicies = ["Own"]\ntags = { team = "blue" }\n' \
            '[users.bob]\npolicies = ["Own"]\ntags = { team = "red" }\n'
    report = _report(tmp_path, body + users, ROUTE)
    assert report.cell("alice", "GET /orders/{order_id}").summary == "allowed when {order_id} matches alice-*"
    assert report.cell("bob", "GET /orders/{order_id}").outcome == "Denied"  # his tag is known: red


def test_a_web_identitys_claims_and_session_tags_are_unknown_and_its_mfa_is_false(tmp_path: Path) -> None:
    body = _policy("Team", {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*",
                            "Condition": {"StringEquals": {"aws:PrincipalTag/team": "blue",
                                                           "idp.example:sub": "p-1"}}},
                   {"Effect": "Allow", "Action": "orders:DeleteOrder", "Resource": "*",
                    "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}})
    trust = json.dumps(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Federated": "idp.example"}, "Action": "sts:AssumeRoleWithWebIdentity"}]}))
    provider = ('[[settings.web_identity]]\nname = "idp.example"\nissuer = "https://idp.example"\n'
                f'audiences = ["api"]\nalgorithms = ["HS256"]\nhmac_secret = "{"h" * 40}"\nrole = "partner"\n'
                'tag_claims = { team = "team" }\n')
    (tmp_path / "iam.toml").write_text(
        f'[settings]\npartition = "app"\nregions = ["local"]\nsession_secret = "{"s" * 40}"\n{provider}'
        f'[accounts.111122223333]\n{body}[roles.partner]\npolicies = ["Team"]\ntags = {{ team = "red" }}\n'
        f'trust_policy = {{ document = {trust} }}\n' + ROUTE
        + ROUTE.replace('"GET"', '"DELETE"').replace("GetOrder", "DeleteOrder"))
    report = load_report(tmp_path / "iam.toml", None, [])
    assert report.cell("role/partner", "GET /orders/{order_id}").outcome == "Denied"  # the role's tag: red
    web = report.cell("role/partner@idp.example", "GET /orders/{order_id}")
    assert web.summary == 'allowed when aws:PrincipalTag/team = "blue" and idp.example:sub = "p-1"'
    assert report.cell("role/partner", "DELETE /orders/{order_id}").outcome == "Conditional"  # AssumeRole's MFA
    assert report.cell("role/partner@idp.example", "DELETE /orders/{order_id}").outcome == "Denied"  # never MFA


def test_a_routes_context_is_known_when_constant_and_unknown_when_taken_from_the_request() -> None:
    iam = IAM.from_file(DEMO)
    subjects = [s for s in subjects_of(iam.snapshot) if s.name == "alice"]
    routes = [RouteSpec("GET", "/a", Permission("orders:ListOrders", "*", {"orders:Channel": "web"})),
              RouteSpec("GET", "/b", Permission("orders:ListOrders", "*", {"orders:Channel": "{query.channel}"}))]
    report = build_report(subjects, routes, iam.settings)
    assert report.cells[0].knowledge.values["orders:channel"] == "web"
    assert "orders:channel" in report.cells[1].knowledge.unknown


def test_undeclared_routes_are_listed_apart_and_unknown_principals_are_refused(tmp_path: Path) -> None:
    iam = IAM.from_file(DEMO)
    report = build_report(subjects_of(iam.snapshot), [RouteSpec("GET", "/x", None)], iam.settings)
    assert report.cells == () and [r.label for r in report.undeclared] == ["GET /x"]
    with pytest.raises(ReportError, match="no principal named 'mallory'"):
        load_report(DEMO, None, ["mallory"])
    with pytest.raises(ReportError, match="cannot load the app"):
        load_report(DEMO, "no_such_module:app", [])
