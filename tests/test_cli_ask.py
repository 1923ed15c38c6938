"""``simulate --directory iam.toml --as ...``: the question people have once their app runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from iam_middleware.cli import main

ROOT = Path(__file__).resolve().parent.parent
DIRECTORY = str(ROOT / "examples" / "iam.toml")
ORDER = "arn:app:orders::111122223333:order/42"


@pytest.fixture(autouse=True)
def _from_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # --app examples.<module>:app imports from the working directory


def ask(*args: str) -> int:
    return main(["simulate", "--directory", DIRECTORY, *args])


def test_by_action_and_resource(capsys: pytest.CaptureFixture[str]) -> None:
    assert ask("--as", "alice", "--action", "orders:GetOrder", "--resource", ORDER) == 0
    assert ask("--as", "alice", "--action", "orders:DeleteOrder", "--resource", ORDER) == 1
    out = capsys.readouterr().out
    assert "Decision: Allowed" in out and "Decision: ImplicitlyDenied" in out
    assert "OrdersReadOnly" in out  # the deciding statement is named


def test_mfa_and_role_sessions(capsys: pytest.CaptureFixture[str]) -> None:
    assert ask("--as", "bob", "--action", "orders:DeleteOrder", "--resource", ORDER) == 1
    out = capsys.readouterr().out
    missing = next(line for line in out.splitlines() if line.startswith("Missing context keys"))
    assert "aws:MultiFactorAuthPresent" in missing  # an access key has no MFA keys: the condition cannot be met
    assert ask("--as", "bob", "--mfa", "--action", "orders:DeleteOrder", "--resource", ORDER) == 0
    assert ask("--as", "role/partner", "--action", "orders:GetOrder", "--resource", ORDER) == 0
    assert "assumed-role/partner/" in capsys.readouterr().out


@pytest.mark.parametrize("app", ["examples.starlette_app:app", "examples.fastapi_app:app", "examples.flask_app:app"])
def test_by_method_and_path_through_the_apps_routes(app: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert ask("--as", "bob", "--mfa", "--method", "DELETE", "--path", "/orders/42", "--app", app) == 0
    out = capsys.readouterr().out
    assert f"orders:DeleteOrder on {ORDER}" in out
    assert ask("--as", "alice", "--method", "DELETE", "--path", "/orders/42", "--app", app) == 1
    assert ask("--as", "alice", "--method", "GET", "--path", "/nowhere", "--app", app) == 1
    assert "No permission is declared" in capsys.readouterr().out


def test_by_method_and_path_through_the_directory_routes(tmp_path: Path) -> None:
    text = Path(DIRECTORY).read_text() + (
        '\n[[routes]]\nmethod = "GET"\npath = "/orders/{order_id}"\naction = "orders:GetOrder"\n'
        'resource = "arn:app:orders::{account}:order/{order_id}"\n\n[[routes]]\npath = "/health"\npublic = true\n')
    directory = tmp_path / "iam.toml"
    directory.write_text(text.replace('file = "policies/', f'file = "{ROOT}/examples/policies/'))
    run = ["simulate", "--directory", str(directory), "--as", "alice"]
    assert main([*run, "--method", "GET", "--path", "/orders/7"]) == 0
    assert main([*run, "--method", "GET", "--path", "/health"]) == 0
    assert main([*run, "--method", "GET", "--path", "/orders//7"]) == 2  # an ambiguous path is refused


def test_usage_errors() -> None:
    for args in (["--action", "orders:GetOrder", "--resource", ORDER],  # no --as
                 ["--as", "alice", "--action", "orders:GetOrder"],  # no --resource
                 ["--as", "alice", "--action", "a:b", "--resource", ORDER, "--method", "GET", "--path", "/"]):
        with pytest.raises(SystemExit) as usage:
            ask(*args)
        assert usage.value.code == 2
    assert ask("--as", "nobody", "--action", "orders:GetOrder", "--resource", ORDER) == 2
