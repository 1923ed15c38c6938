"""The external authorizer serves the AuthZEN endpoints beside its gateway paths (mounted or not), and
``iam-middleware authz --pdp-url`` publishes the metadata document, refusing a URL the spec does not allow."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from iam_middleware import IAM, RuleTable
from iam_middleware.authz import Authorizer
from iam_middleware.cli import main
from iam_middleware.testing import session_token

from ._pdp import ROOT, client, make_iam

pytestmark = pytest.mark.anyio

BODY = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "orders:GetOrder"},
        "resource": {"type": "order", "id": "42"}}
RULES = RuleTable.from_config([{"method": "GET", "path": "/orders/{order_id}", "action": "orders:GetOrder",
                                "resource": "arn:app:orders::{account}:order/{order_id}"}])


@pytest.fixture(scope="module")
def iam() -> IAM:
    return make_iam()


@pytest.mark.parametrize("mount", ["", "/authz"])
async def test_the_authorizer_answers_authzen_beside_nginx(iam: IAM, mount: str) -> None:
    authorizer = Authorizer(iam, rules=RULES, pdp_url=f"https://authz.example{mount}")
    app = Starlette(routes=[Mount(mount, app=authorizer)]) if mount else authorizer
    token = session_token(iam, "gateway")
    headers = {"authorization": f"Bearer {token}"}
    async with client(app) as pdp:
        evaluated = await pdp.post(f"{mount}/access/v1/evaluation", json=BODY, headers=headers)
        batch = await pdp.post(f"{mount}/access/v1/evaluations", json={**BODY, "evaluations": [{}, {}]},
                               headers=headers)
        metadata = await pdp.get(f"{mount}/.well-known/authzen-configuration")
        nginx = await pdp.get(f"{mount}/nginx", headers={**headers, "x-original-method": "GET",
                                                         "x-original-uri": "/orders/42"})
        elsewhere = await pdp.get(f"{mount}/access/v1")
    assert evaluated.json() == {"decision": True}
    assert batch.json() == {"evaluations": [{"decision": True}, {"decision": True}]}
    assert metadata.json()["access_evaluation_endpoint"] == f"https://authz.example{mount}/access/v1/evaluation"
    assert nginx.status_code == 403  # the gateway path is the gateway's: the PEP may not read orders itself
    assert elsewhere.status_code == 404 and elsewhere.json()["error"] == "NotFound"


@pytest.mark.parametrize("url", ["http://authz.example", "https://authz.example/?tenant=1", "https://"])
def test_the_command_refuses_a_pdp_url_the_spec_does_not_allow(tmp_path: Path, url: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "iam.toml"
    directory.write_text((ROOT / "examples" / "iam.toml").read_text() + '\n[[routes]]\npath = "/health"\n'
                         "public = true\n")
    (tmp_path / "policies").symlink_to(ROOT / "examples" / "policies")
    assert main(["authz", "--directory", str(directory), "--pdp-url", url]) == 1
    assert "--pdp-url: pdp_url" in capsys.readouterr().err
