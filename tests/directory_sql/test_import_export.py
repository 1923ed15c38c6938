"""File <-> database: an import makes the database hold the file's directory, an export writes it back, and the
export of an import loads to the same directory as the original (the demo, examples/iam.toml)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from iam_middleware._exceptions import ConfigurationError
from iam_middleware.cli import main
from iam_middleware.directory import Snapshot, load_directory
from iam_middleware.directory.sql import SQLDirectory

from .conftest import DEMO, EXAMPLES


def semantic(snapshot: Snapshot) -> dict[str, Any]:
    """Everything a snapshot decides with, in comparable form (policies by their documents)."""

    def docs(policies: Any) -> list[Any]:
        return [p.document for p in policies]

    return {
        "partition": snapshot.partition,
        "accounts": {a.id: (a.name, docs(a.guardrails)) for a in snapshot.accounts.values()},
        "groups": {k: docs(g.policies) for k, g in snapshot.groups.items()},
        "users": {arn: (u.id, u.path, u.groups, dict(u.tags), docs(u.policies),
                        u.boundary.document if u.boundary else None, u.password_hash,
                        u.totp.secret if u.totp else None, [(k.id, k.secret, k.active) for k in u.access_keys],
                        u.active) for arn, u in snapshot.users.items()},
        "roles": {arn: (r.id, r.path, dict(r.tags), docs(r.policies), r.trust_policy.document,
                        r.boundary.document if r.boundary else None, r.max_session_duration)
                  for arn, r in snapshot.roles.items()},
    }


def test_the_export_of_an_import_is_the_same_directory(demo: SQLDirectory, tmp_path: Path) -> None:
    exported = tmp_path / "exported.toml"
    exported.write_text(demo.export_toml())
    assert semantic(load_directory(exported)) == semantic(load_directory(DEMO))
    assert semantic(demo.load().snapshot) == semantic(load_directory(DEMO))
    import tomllib

    original, again = tomllib.loads(DEMO.read_text()), tomllib.loads(exported.read_text())
    assert again["settings"] == original["settings"]
    # Importing the export changes nothing: the same records, the same revision.
    result = demo.import_file(exported)
    assert result.changes == () and not result.applied and demo.revision() == 1


def test_a_dry_run_says_what_would_change_and_changes_nothing(directory: SQLDirectory, tmp_path: Path) -> None:
    result = directory.import_file(DEMO, dry_run=True)
    assert not result.applied and directory.revision() == 0 and directory.records()["users"] == {}
    assert "+ user alice (account 111122223333, id AIDARFDWRBWM3TWMYVTII)" in result.changes
    assert "+ policy OrdersReadOnly" in result.changes and "+ settings.session_secret" in result.changes
    directory.import_file(DEMO)
    changed = tmp_path / "iam.toml"
    shutil.copytree(EXAMPLES / "policies", tmp_path / "policies")
    text = DEMO.read_text().replace('tags = { team = "red" }', 'tags = { team = "green" }').replace(
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXR")
    changed.write_text(text.replace('[users.carol]', '[users.carol]\nactive = false'))
    lines = directory.import_file(changed, dry_run=True).changes
    assert lines == ('~ user bob (account 111122223333, id AIDA2ZN7E7IK5R76KPCA4): tags {"team": "red"} -> '
                     '{"team": "green"}',
                     "~ user carol (account 111122223333, id AIDACQDJNSQKCEDK4DUG6): active true -> false; "
                     "totp_secret changed")
    assert "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX" not in "\n".join(lines)  # a secret is only said to change
    assert directory.revision() == 1


def test_a_changed_policy_becomes_a_new_default_version(demo: SQLDirectory, tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "policies", tmp_path / "policies")
    (tmp_path / "policies" / "orders-read-only.json").write_text(json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"}]}))
    shutil.copy(DEMO, tmp_path / "iam.toml")
    result = demo.import_file(tmp_path / "iam.toml")
    assert result.changes == ("~ policy OrdersReadOnly: default version v1 -> v2 (document changed)",)
    policy = demo.records()["policies"]["OrdersReadOnly"]
    assert policy["default_version"] == "v2" and set(policy["versions"]) == {"v1", "v2"}
    assert demo.load().snapshot.group("111122223333", "readers").policies[0].document["Statement"][0][
        "Action"] == "orders:GetOrder"


def test_an_invalid_file_is_refused_whole_and_nothing_is_written(directory: SQLDirectory, tmp_path: Path) -> None:
    bad = tmp_path / "iam.toml"
    bad.write_text('[accounts.111122223333]\n[users.alice]\ngroups = ["nope"]\n[policies.P]\ndocument = "{}"\n')
    with pytest.raises(ConfigurationError) as caught:
        directory.import_file(bad)
    assert "users.alice.groups[0]: group 'nope' does not exist" in str(caught.value)
    assert "policies.P" in str(caught.value)
    assert directory.revision() == 0


def test_the_command_line_imports_with_a_diff_and_exports(sqlite_url: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["directory", "import", str(DEMO), "--database", sqlite_url, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "+ user carol" in out and "dry run: 18 change(s), none applied" in out
    assert main(["directory", "import", str(DEMO), "--database", sqlite_url]) == 0
    assert "revision 1" in capsys.readouterr().out
    assert main(["directory", "export", "--database", sqlite_url]) == 0
    exported = tmp_path / "out.toml"
    exported.write_text(capsys.readouterr().out)
    assert semantic(load_directory(exported)) == semantic(load_directory(DEMO))
    assert main(["directory", "migrate", "--database", sqlite_url]) == 0
    assert "steps applied: none (up to date)" in capsys.readouterr().out
    assert main(["directory", "import", str(tmp_path / "missing.toml"), "--database", sqlite_url]) == 1


def test_a_url_password_never_shows(postgres_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://iam:hunter2-secret@127.0.0.1:{postgres_server.port}/no_such_database"
    assert main(["directory", "export", "--database", url]) == 2
    err = capsys.readouterr().err
    assert "no_such_database" in err and "hunter2" not in err
    directory = SQLDirectory(postgres_server.create_database().replace("iam@", "iam:hunter2-secret@"))
    assert "hunter2" not in repr(directory) and "hunter2" not in directory.source
    directory.close()


def test_one_name_in_two_accounts_round_trips(directory: SQLDirectory, tmp_path: Path) -> None:
    source = tmp_path / "iam.toml"
    source.write_text('''
[settings]
default_account = "111111111111"
[accounts.111111111111]
[accounts.222222222222]
[policies.Read]
document = { Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = "orders:GetOrder", Resource = "*" }] }
[users.sam]
policies = ["Read"]
[users.sam-too]
name = "sam"
account = "222222222222"
path = "/b/"
''')
    directory.import_file(source)
    exported = tmp_path / "exported.toml"
    exported.write_text(directory.export_toml())
    assert '[users."222222222222/sam"]' in exported.read_text()
    assert semantic(load_directory(exported)) == semantic(load_directory(source))
