"""Administration is the deployment's, not a tenant's: a principal of another account never reloads the directory
or reads its status (with its configuration errors), whatever its policies allow, even ``Action: *``."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from iam_middleware import IAM, ConfigurationError, DirectoryReloader, admin_app
from iam_middleware.testing import sign_request

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
pytestmark = pytest.mark.anyio
TENANTS = """
[accounts.444455556666]
name = "tenant"

[policies.Everything]
document = { Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = "*", Resource = "*" }] }

[policies.DirectoryAdmin]
document = { Version = "2012-10-17", Statement = [
    { Effect = "Allow", Action = ["iam:ReloadDirectory", "iam:GetDirectoryStatus"], Resource = "*" },
] }

[users.ops]
account = "111122223333"
policies = ["DirectoryAdmin"]
access_keys = [{ id = "AKIATESTOPS000000001", secret = "test/ops/3nQ7pX9vL2mR8sT4wY6zB1cD5fG0hJ" }]

[users.mallory]
account = "444455556666"
policies = ["Everything"]
access_keys = [{ id = "AKIATESTMALLORY00001", secret = "test/mallory/3nQ7pX9vL2mR8sT4wY6zB1cD5f" }]
"""


def deployment(tmp_path: Path) -> IAM:
    folder = tmp_path / "ex"
    shutil.copytree(EXAMPLES, folder)
    text = (folder / "iam.toml").read_text().replace("[settings]\n", '[settings]\ndefault_account = "111122223333"\n')
    (folder / "iam.toml").write_text(text + TENANTS)
    return IAM.from_file(folder / "iam.toml")


async def call(app: object, iam: IAM, method: str, path: str, user: str) -> httpx.Response:
    signed = sign_request(iam, method, f"http://testserver{path}", user=user)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        return await http.request(method, path, headers=signed.headers)


async def test_a_tenant_with_every_permission_never_administers_the_deployment(tmp_path: Path) -> None:
    iam = deployment(tmp_path)
    app = admin_app(iam, DirectoryReloader(iam), admin_account="111122223333")
    for method, path in (("POST", "/reload"), ("GET", "/status")):
        refused = await call(app, iam, method, path, "mallory")
        assert refused.status_code == 403 and "operators' account" in refused.json()["message"]
        assert (await call(app, iam, method, path, "ops")).status_code == 200


async def test_with_several_accounts_and_none_named_nobody_administers(tmp_path: Path) -> None:
    iam = deployment(tmp_path)
    app = admin_app(iam, DirectoryReloader(iam))
    refused = await call(app, iam, "GET", "/status", "ops")
    assert refused.status_code == 403 and "admin_account=" in refused.json()["message"]


def test_the_admin_account_is_an_account_id() -> None:
    iam = IAM.from_file(EXAMPLES / "iam.toml")
    with pytest.raises(ConfigurationError):
        admin_app(iam, DirectoryReloader(iam), admin_account="ops")
