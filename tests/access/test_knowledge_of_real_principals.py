"""What the report takes as known is what real principals carry: for the demo's directory, principals as requests
bring them (an access key, MFA sessions young and old, role sessions, a web identity from a real token) have exactly
the known keys' values, no key the report takes as absent, and the cell's residual decides their requests as
``IAM.authorize`` does."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from iam_middleware import IAM, Principal
from iam_middleware.access._report import AccessReport, Cell
from iam_middleware.cli._access import load_report
from iam_middleware.routing import Permission, render_template
from iam_middleware.testing import principal_for, web_identity_token

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "iam.toml"
IDS = ["42", "archived-7", "alice-1"]


def _principals(iam: IAM, now: float) -> dict[str, list[Principal]]:
    provider = iam.settings.web_identity[0]
    assert iam.credentials.web_identity is not None
    token = web_identity_token(iam, subject="p-9", claims={"team": "blue"}, now=now)
    verified = iam.credentials.web_identity.verify(token, now=now)
    web, _ = iam.credentials.assume_role_with_web_identity(provider, verified, now=now)
    assert web is not None
    users = {name: [principal_for(iam, name), principal_for(iam, name, mfa=True, now=now),
                    principal_for(iam, name, mfa=True, now=now - 4000)] for name in ("alice", "bob", "carol")}
    roles = [principal_for(iam, role="partner", now=now), principal_for(iam, role="partner", mfa=True, now=now)]
    return {**users, "role/partner": roles, "role/partner@idp.example": [web]}


@pytest.fixture(scope="module")
def demo() -> tuple[IAM, AccessReport]:
    return IAM.from_file(DEMO), load_report(DEMO, "examples.starlette_app:app", [])


def _check(iam: IAM, cell: Cell, principal: Principal, now: float) -> None:
    requirement = cell.route.requirement
    assert isinstance(requirement, Permission) and cell.residual is not None
    context = iam.decisions.context_for(principal, None, now=now)
    for key, value in cell.knowledge.values.items():
        assert context.get(key) == value, (cell.subject.name, key)
    unexpected = set(context) - set(cell.knowledge.values) - cell.knowledge.unknown
    assert not unexpected, (cell.subject.name, unexpected)
    for order_id in IDS:
        resource = render_template(requirement.resource, {**cell.fixed, "order_id": order_id})
        decision = iam.authorize(principal, requirement.action, resource, now=now)
        assert cell.residual.verdict(context, resource) is decision.kind, (cell.subject.name, resource)


def test_known_keys_and_decisions_hold_for_real_principals(demo: tuple[IAM, AccessReport]) -> None:
    iam, report = demo
    now = time.time()
    principals = _principals(iam, now)
    checked = 0
    for cell in report.cells:
        if cell.residual is None:
            continue
        for principal in principals[cell.subject.name]:
            _check(iam, cell, principal, now)
            checked += 1
    assert checked == 5 * 12  # five routes with a permission, twelve principals
