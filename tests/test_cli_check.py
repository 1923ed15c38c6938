"""``iam-middleware check``, ``keys new`` and ``token mint``: what a user runs in CI and while setting up."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from iam_middleware import IAM, RequestView
from iam_middleware.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iam_middleware.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "ex")
    return tmp_path / "ex" / "iam.toml"


def test_a_valid_directory_passes_with_a_summary(directory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(directory)]) == 0
    assert "valid (1 accounts, 3 users" in capsys.readouterr().out


def test_every_problem_of_an_invalid_directory_is_reported_with_its_place(directory: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    (directory.parent / "policies" / "orders-read-only.json").write_text(
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder"}]}')
    text = directory.read_text().replace('groups = ["readers"]\ntags = { team = "red" }',
                                         'groups = ["nobody"]\ntags = { team = "red" }')
    directory.write_text(text)
    assert main(["check", str(directory), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    joined = "\n".join(report["errors"])
    assert "OrdersReadOnly" in joined and "Resource" in joined  # the policy and the field
    assert "nobody" in joined  # and the other problem, in the same run


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["check", str(tmp_path / "none.toml")]) == 2


APP = '''
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from iam_middleware import permission

@permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_ID}")
async def get_order(request):
    return PlainTextResponse("ok")

async def undeclared(request):
    return PlainTextResponse("ok")

app = Starlette(routes=[Route("/orders/{order_id}", get_order), Route("/other", undeclared)])
'''


def test_the_route_audit_finds_placeholder_typos_and_undeclared_routes(directory: Path, tmp_path: Path) -> None:
    (tmp_path / "typo_app.py").write_text(APP)
    typo = run("check", str(directory), "--app", "typo_app:app", cwd=tmp_path)
    assert typo.returncode == 1 and "{order_ID}" in typo.stdout, typo.stdout + typo.stderr
    (tmp_path / "fine_app.py").write_text(APP.replace("{order_ID}", "{order_id}"))
    fine = run("check", str(directory), "--app", "fine_app:app", "--format", "json", cwd=tmp_path)
    assert fine.returncode == 0 and json.loads(fine.stdout)["undeclared"] == ["GET /other"]
    strict = run("check", str(directory), "--app", "fine_app:app", "--strict", cwd=tmp_path)
    assert strict.returncode == 1 and "GET /other" in strict.stdout
    assert run("check", str(directory), "--app", "no_such_module:app", cwd=tmp_path).returncode == 2


def test_a_flask_app_is_audited_too(directory: Path) -> None:
    result = run("check", str(directory), "--app", "examples.flask_app:app", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["undeclared"] == ["GET /static/<path:filename>"]


def test_keys_new_prints_lines_the_directory_accepts(directory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "new", "alice"]) == 0
    out = capsys.readouterr().out
    entry = next(line for line in out.splitlines() if line.startswith("access_keys"))
    secret_line = next(line for line in out.splitlines() if "=" in line and not line.startswith(("#", "access")))
    secrets = tomllib.loads(secret_line)
    key_id = tomllib.loads(entry)["access_keys"][0]["id"]
    assert key_id.startswith("AKIA") and len(key_id) == 20 and len(next(iter(secrets.values()))) == 40
    (directory.parent / "secrets.toml").write_text(secret_line + "\n")
    text = directory.read_text().replace('[settings]\n', '[settings]\nsecrets_file = "secrets.toml"\n', 1)
    demo_key = 'access_keys = [{ id = "AKIADEMOALICE0000001", secret = "demo/alice/wJalrXUtnFEMI/K7MDENG/bPxRfiCY" }]'
    assert demo_key in text
    text = text.replace(demo_key, entry)
    directory.write_text(text)
    iam = IAM.from_file(directory)
    assert iam.snapshot.access_key(key_id) is not None


def test_token_mint_makes_a_token_the_directory_maps_to_its_role(directory: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "mint", "--directory", str(directory), "--sub", "p-9", "--claim", "team=blue"]) == 0
    token = capsys.readouterr().out.strip()
    principal = IAM.from_file(directory).authenticate(
        RequestView("GET", b"/", headers=(("authorization", f"Bearer {token}"),)))
    assert principal is not None and principal.arn.endswith("assumed-role/partner/p-9")
    assert main(["token", "mint", "--directory", str(directory), "--provider", "nobody"]) == 1


def test_version_and_subcommand_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0 and capsys.readouterr().out.startswith("iam-middleware ")
    with pytest.raises(SystemExit) as usage:
        main(["check"])
    assert usage.value.code == 2 and "usage: iam-middleware check" in capsys.readouterr().err


def test_token_mint_signs_for_a_provider_configured_with_public_keys(directory: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from jwt.algorithms import OKPAlgorithm

    private = Ed25519PrivateKey.generate()
    (directory.parent / "idp.pem").write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    public = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    (directory.parent / "jwks.json").write_text(json.dumps({"keys": [{**public, "kid": "k1", "alg": "EdDSA"}]}))
    text = directory.read_text()
    start = text.index("[[settings.web_identity]]")
    end = text.index("\n\n", start)
    directory.write_text(text[:start] + '[[settings.web_identity]]\nname = "idp.example"\n'
                         'issuer = "https://idp.example"\naudiences = ["orders-api"]\nalgorithms = ["EdDSA"]\n'
                         'jwks_file = "jwks.json"\nrole = "partner"' + text[end:])
    argv = ["token", "mint", "--directory", str(directory), "--sub", "p-3", "--key", str(directory.parent / "idp.pem"),
            "--kid", "k1"]
    assert main(argv) == 0
    token = capsys.readouterr().out.strip()
    principal = IAM.from_file(directory).authenticate(
        RequestView("GET", b"/", headers=(("authorization", f"Bearer {token}"),)))
    assert principal is not None and principal.arn.endswith("assumed-role/partner/p-3")
    assert main(argv[:-4]) == 1  # without the private key: no HMAC secret to sign with
    assert "--key PEM" in capsys.readouterr().err
