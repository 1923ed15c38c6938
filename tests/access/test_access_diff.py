"""``iam-middleware access diff``: the access a change adds and removes, each finding with a request that shows it,
the exit status that gates a pull request, allow-lists, git revisions and ``--check-not-granted``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from iam_middleware import IAM
from iam_middleware.access._diff import diff_reports
from iam_middleware.access._witness import allows
from iam_middleware.cli import main
from iam_middleware.cli._access import load_report

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
APP = "examples.starlette_app:app"
READ = '"Action": ["orders:GetOrder", "orders:ListOrders"]'


@pytest.fixture
def changed(tmp_path: Path) -> Path:
    """The demo's directory with a change under review: readers may also delete orders."""
    shutil.copytree(EXAMPLES, tmp_path / "new")
    policy = tmp_path / "new" / "policies" / "orders-read-only.json"
    policy.write_text(policy.read_text().replace(READ, READ[:-1] + ', "orders:DeleteOrder"]'))
    return tmp_path / "new" / "iam.toml"


def _diff(old: str, new: str, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:  # type: ignore[type-arg]
    status = main(["access", "diff", old, new, "--app", APP, "--format", "json", *extra])
    return status, json.loads(capsys.readouterr().out)


def test_new_access_is_each_found_with_a_request_the_evaluator_allows_only_after(changed: Path) -> None:
    old, new = load_report(EXAMPLES / "iam.toml", APP, []), load_report(changed, APP, [])
    findings = diff_reports(old, new)
    assert [(f.kind, f.key) for f in findings] == [
        ("added", "alice DELETE /orders/{order_id}"), ("added", "bob DELETE /orders/{order_id}"),
        ("added", "role/partner DELETE /orders/{order_id}"),
        ("added", "role/partner@idp.example DELETE /orders/{order_id}")]
    before = {(c.subject.name, c.route.label): c for c in old.cells}
    for finding in findings:
        assert finding.witness is not None
        assert allows(finding.cell, finding.witness)
        assert not allows(before[(finding.cell.subject.name, finding.cell.route.label)], finding.witness)
    bob = findings[1]
    assert (bob.before, bob.after) == (
        "allowed when aws:MultiFactorAuthPresent is true and aws:MultiFactorAuthAge < 3600", "Allowed")
    assert dict(bob.witness.context) == {} if bob.witness else False  # no MFA: what was not enough before


def test_new_access_fails_the_check_unless_allowed_or_reviewed(changed: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    old = str(EXAMPLES / "iam.toml")
    status, report = _diff(old, str(changed), capsys=capsys)
    assert status == 1 and len(report["findings"]) == 4
    alice = report["findings"][0]["replay"]
    assert alice["method"] == "DELETE" and alice["path"] == "/orders/1" and alice["context"] == {}
    assert alice["commands"][-1] == ('curl -X DELETE --aws-sigv4 aws:amz:local:orders --user '
                                     '"AKIADEMOALICE0000001:$AWS_SECRET_ACCESS_KEY" http://127.0.0.1:8000/orders/1')
    assert 'AWSRequest("DELETE", "http://127.0.0.1:8000/orders/1")' in alice["botocore"]
    assert "demo/alice" not in json.dumps(report)  # secrets stay in the environment
    assert _diff(old, str(changed), "--allow-new", capsys=capsys)[0] == 0
    reviewed = tmp_path / "reviewed.txt"
    reviewed.write_text("# readers may delete (ticket 12)\n" + "\n".join(f["key"] for f in report["findings"]))
    status, again = _diff(old, str(changed), "--allow-list", str(reviewed), capsys=capsys)
    assert status == 0 and all(f["reviewed"] for f in again["findings"])
    reviewed.write_text(report["findings"][0]["key"] + "\n")
    assert _diff(old, str(changed), "--allow-list", str(reviewed), capsys=capsys)[0] == 1


def test_access_taken_away_is_reported_and_passes(changed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, report = _diff(str(changed), str(EXAMPLES / "iam.toml"), capsys=capsys)
    assert status == 0 and {f["kind"] for f in report["findings"]} == {"removed"} and len(report["findings"]) == 4


def test_a_narrower_condition_is_removed_access_and_a_wider_one_new_access(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "new")
    mfa = tmp_path / "new" / "policies" / "orders-write-mfa.json"
    mfa.write_text(mfa.read_text().replace('"3600"', '"7200"'))
    toml = tmp_path / "new" / "iam.toml"
    toml.write_text(toml.read_text().replace("order/archived-*", "order/archived-7*"))
    status, report = _diff(str(EXAMPLES / "iam.toml"), str(toml), capsys=capsys)
    assert status == 1
    found = {f["key"]: f for f in report["findings"]}
    assert {f["kind"] for f in found.values()} == {"added"} and len(found) == 3
    assert found["bob POST /orders"]["replay"]["context"] == {"aws:MultiFactorAuthAge": "7199",
                                                              "aws:MultiFactorAuthPresent": "true"}
    carol = found["carol DELETE /orders/{order_id}"]["replay"]
    assert carol["path"] == "/orders/archived-x"  # archived, but not archived-7...


def test_git_revisions_of_one_file_are_compared(changed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo / "config")
    (repo / ".gitignore").write_text("config/secrets.toml\n")
    (repo / "config" / "secrets.toml").write_text("kept = \"out of git\"\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    for command in (["init", "-q"], ["add", "."], ["commit", "-qm", "before"]):
        subprocess.run(["git", *command], cwd=repo, check=True, env=env, capture_output=True)
    shutil.copyfile(changed.parent / "policies" / "orders-read-only.json",
                    repo / "config" / "policies" / "orders-read-only.json")
    monkeypatch.chdir(repo)
    status, report = _diff("HEAD:config/iam.toml", "config/iam.toml", capsys=capsys)
    assert status == 1 and len(report["findings"]) == 4
    assert main(["access", "diff", "HEAD:config/nothing.toml", "config/iam.toml"]) == 2
    assert "not in revision HEAD" in capsys.readouterr().err


def test_check_not_granted_fails_when_any_principal_may(capsys: pytest.CaptureFixture[str]) -> None:
    demo = str(EXAMPLES / "iam.toml")
    assert main(["access", "--directory", demo, "--check-not-granted", "orders:PurgeOrders"]) == 0  # the guardrail
    assert capsys.readouterr().out == "not granted to anyone: orders:PurgeOrders\n"
    assert main(["access", "--directory", demo, "--check-not-granted", "orders:PurgeOrders,orders:DeleteOrder"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "granted: orders:DeleteOrder on any resource to bob (allowed when resource matches "
        "arn:app:orders::111122223333:order/* and aws:MultiFactorAuthPresent is true and "
        "aws:MultiFactorAuthAge < 3600)",
        "granted: orders:DeleteOrder on any resource to carol (allowed unless resource matches "
        "arn:app:orders:*:*:order/archived-*)"]
    archived = "arn:app:orders::{account}:order/archived-1"
    assert main(["access", "--directory", demo, "--check-not-granted", "orders:DeleteOrder", "--resource",
                 archived]) == 1
    assert [line.split(" to ")[1].split(" ")[0] for line in capsys.readouterr().out.splitlines()] == ["bob"]


def test_a_findings_curl_line_replays_against_a_server_like_the_demos(changed: Path) -> None:
    from adapters._support import uvicorn_server

    from iam_middleware.cli._demo import build_demo_app

    if shutil.which("curl") is None and not os.environ.get("CI"):
        pytest.skip("replaying needs curl")
    done = subprocess.run([sys.executable, "-m", "iam_middleware.cli", "access", "diff", str(EXAMPLES / "iam.toml"),
                           str(changed), "--app", APP, "--format", "json"], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    findings = {f["principal"]: f["replay"]["commands"][-1] for f in json.loads(done.stdout)["findings"]}
    scripts = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", ""),
           "AWS_SECRET_ACCESS_KEY": "demo/alice/wJalrXUtnFEMI/K7MDENG/bPxRfiCY"}
    for directory, expected in ((EXAMPLES / "iam.toml", "403"), (changed, "200")):
        with uvicorn_server(build_demo_app(IAM.from_file(directory))) as port:
            for who in ("alice", "role/partner@idp.example"):
                line = findings[who].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
                result = subprocess.run(["bash", "-c", line + " -s -o /dev/null -w '%{http_code}'"], cwd=ROOT,
                                        env=env, capture_output=True, text=True, timeout=60)
                assert result.stdout == expected, (who, directory, line, result.stdout, result.stderr)


def test_a_findings_botocore_line_replays_against_a_server_like_the_demos(changed: Path) -> None:
    """The printed ``python3`` line, run as printed (botocore signs it), is refused before the change and allowed
    after: for a user's access key, and for a role session's temporary credentials from the token service."""
    import boto3
    from adapters._support import uvicorn_server

    from iam_middleware.cli._demo import build_demo_app

    done = subprocess.run([sys.executable, "-m", "iam_middleware.cli", "access", "diff", str(EXAMPLES / "iam.toml"),
                           str(changed), "--app", APP, "--format", "json"], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    findings = {f["principal"]: f["replay"]["botocore"] for f in json.loads(done.stdout)["findings"]}
    assert findings["role/partner@idp.example"] is None  # a bearer token: curl only
    alice_key = ("AKIADEMOALICE0000001", "demo/alice/wJalrXUtnFEMI/K7MDENG/bPxRfiCY")
    scripts = str(Path(sys.executable).parent)
    for directory, expected in ((EXAMPLES / "iam.toml", "403"), (changed, "200")):
        with uvicorn_server(build_demo_app(IAM.from_file(directory))) as port:
            base = f"http://127.0.0.1:{port}"
            session = boto3.client("sts", endpoint_url=f"{base}/sts/", region_name="local",
                                   aws_access_key_id=alice_key[0], aws_secret_access_key=alice_key[1]).assume_role(
                RoleArn="arn:app:iam::111122223333:role/partner", RoleSessionName="replay")["Credentials"]
            secrets = {"alice": {"AWS_SECRET_ACCESS_KEY": alice_key[1]},
                       "role/partner": {"AWS_ACCESS_KEY_ID": session["AccessKeyId"],
                                        "AWS_SECRET_ACCESS_KEY": session["SecretAccessKey"],
                                        "AWS_SESSION_TOKEN": session["SessionToken"]}}
            for who, secret in secrets.items():
                line = findings[who].replace("http://127.0.0.1:8000", base)
                env = {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", ""), **secret}
                result = subprocess.run(["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True,
                                        timeout=60)
                assert result.stdout.split(" ", 1)[0] == expected, (who, directory, line, result.stdout,
                                                                    result.stderr)
                if expected == "200":
                    assert json.loads(result.stdout.split(" ", 1)[1])["deleted"] == "1"


def test_a_counterexample_sends_a_context_key_taken_from_the_query(tmp_path: Path) -> None:
    from iam_middleware.access._replay import replay

    route = ('[[routes]]\nmethod = "GET"\npath = "/orders/{order_id}"\naction = "orders:GetOrder"\n'
             'resource = "arn:app:orders::{account}:order/{order_id}"\n'
             'context = { "orders:Channel" = "{query.channel}" }\n')
    head = f'[settings]\npartition = "app"\nregions = ["local"]\nsession_secret = "{"s" * 40}"\n'
    policy = json.dumps(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "arn:app:orders::111122223333:order/7*",
         "Condition": {"StringEquals": {"orders:Channel": "web"}}}]}))
    (tmp_path / "old.toml").write_text(head + '[accounts.111122223333]\n[users.alice]\n' + route)
    (tmp_path / "new.toml").write_text(head + f'[accounts.111122223333]\n[policies.P]\ndocument = {policy}\n'
                                       '[users.alice]\npolicies = ["P"]\n' + route)
    old, new = load_report(tmp_path / "old.toml", None, []), load_report(tmp_path / "new.toml", None, [])
    (finding,) = diff_reports(old, new)
    assert finding.after == 'allowed when {order_id} matches 7* and orders:Channel = "web"'
    assert finding.witness is not None
    shown = replay(finding.cell, finding.witness, IAM.from_file(tmp_path / "new.toml").settings,
                   base_url="http://127.0.0.1:8000", directory="new.toml")
    assert (shown.path, dict(shown.context)) == ("/orders/7x?channel=web", {"orders:Channel": "web"})
    assert shown.commands[-1].endswith("'http://127.0.0.1:8000/orders/7x?channel=web'")
