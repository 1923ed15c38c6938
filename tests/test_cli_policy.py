"""``iam-middleware validate`` and ``simulate``: exit codes, output formats, batches, the console script."""

from __future__ import annotations

import io
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from iam_middleware.cli import main

USER = "arn:aws:iam::111122223333:user/alice"
SESSION = "arn:aws:sts::111122223333:assumed-role/Reader/s1"
GOOD = {"Version": "2012-10-17", "Statement": [{"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject",
                                                "Resource": "arn:aws:s3:::bucket/*"}]}
WARNED = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}
SUGGESTED = {**GOOD, "Id": "only-a-suggestion"}
BAD = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
     "Condition": {"IpAddress": {"aws:SourceIp": "not-an-address"}}},
    {"Effect": "allow", "Action": "s3:Get:Object", "Resource": "bucket"},
]}


def write(tmp_path: Path, name: str, document: Any) -> str:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


# ---- validate -------------------------------------------------------------------------------------------------------


def test_validate_a_good_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "good.json", GOOD)
    assert main(["validate", path]) == 0
    assert capsys.readouterr().out == f"{path}: valid\n"


def test_validate_prints_every_error_with_its_location(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "bad.json", BAD)
    assert main(["validate", path]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        'Statement[1].Condition.IpAddress."aws:SourceIp"',
        "Statement[2].Effect",
        "Statement[2].Action",
        "Statement[2].Resource",
    ]
    assert all(line.startswith(f"{path}: ") and ": error: " in line for line in lines)
    assert "The policy failed legacy parsing" in lines[1]
    assert lines[2].endswith("Actions/Condition can contain only one colon.")


def test_validate_warnings_fail_only_when_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "warned.json", WARNED)
    assert main(["validate", path]) == 0
    out = capsys.readouterr().out
    assert f"{path}: Statement[0].NotAction: security warning: Allow with NotAction" in out
    assert main(["validate", "--strict", path]) == 1
    flagged = write(tmp_path, "suggested.json", SUGGESTED)
    assert main(["validate", flagged]) == 0
    assert main(["validate", "--strict", flagged]) == 1
    assert ": Id: warning: " in capsys.readouterr().out


def test_validate_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = write(tmp_path, "good.json", GOOD), write(tmp_path, "bad.json", BAD)
    assert main(["validate", "--format", "json", good, bad]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert [(f["file"], f["valid"], len(f["errors"])) for f in report["files"]] == [(good, True, 0), (bad, False, 4)]
    first = report["files"][1]["errors"][0]
    assert first == {"location": 'Statement[1].Condition.IpAddress."aws:SourceIp"', "severity": "error",
                     "code": "type", "message": first["message"]}
    assert main(["validate", "--format", "json", good]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True


def test_validate_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}
    path = write(tmp_path, "trust.json", trust)
    assert main(["validate", "--kind", "trust", path]) == 0
    assert main(["validate", path]) == 1
    out = capsys.readouterr().out
    assert "Statement[0].Principal: error: Policy document should not specify a principal." in out


def test_validate_reads_standard_input(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(GOOD).encode())))
    assert main(["validate", "-"]) == 0
    assert capsys.readouterr().out == "-: valid\n"


def test_validate_not_json_and_duplicate_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", write(tmp_path, "x.json", "{not json")]) == 1
    assert main(["validate", write(tmp_path, "d.json", '{"Version": "2012-10-17", "Version": "2008-10-17"}')]) == 1
    out = capsys.readouterr().out
    assert "(document): error: Syntax errors in policy." in out and "Duplicate member name 'Version'" in out


@pytest.mark.parametrize("argv", [["validate"], ["validate", "--kind", "nonsense", "x.json"], ["validate", "--nope"],
                                  ["frobnicate"], []])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_validate_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["validate", str(tmp_path / "absent.json")])
    assert info.value.code == 2
    assert "cannot read" in capsys.readouterr().err


# ---- simulate: batch ------------------------------------------------------------------------------------------------


def case(case_id: str, action: str = "s3:GetObject", **extra: Any) -> dict[str, Any]:
    return {"id": case_id, "principal": USER, "action": action, "resource": "arn:aws:s3:::bucket/key",
            "identity_policies": [GOOD], **extra}


def run_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[str], status: int = 0) -> list[str]:
    path = write(tmp_path, "cases.jsonl", "\n".join(lines) + "\n")
    assert main(["simulate", "--input", path]) == status  # 1 when any line is an Error
    return capsys.readouterr().out.splitlines()


def test_simulate_batch_output_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_batch(tmp_path, capsys, [json.dumps(case("c1")), json.dumps(case("c2", action="s3:PutObject"))])
    first, second = (json.loads(line) for line in out)
    assert list(first) == ["id", "decision", "matched", "missing_context_keys", "message"]
    assert first == {
        "id": "c1", "decision": "Allowed",
        "matched": [{"policy": "identity_policies[0]", "type": "identity", "statement": 0, "sid": "Read",
                     "effect": "Allow"}],
        "missing_context_keys": [],
        "message": first["message"],
    }
    assert first["message"].startswith(f"User: {USER} is authorized to perform: s3:GetObject on resource: ")
    assert second == {
        "id": "c2", "decision": "ImplicitlyDenied", "matched": [], "missing_context_keys": [],
        "message": f"User: {USER} is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::bucket/key "
                   "because no identity-based policy allows the s3:PutObject action",
    }


def test_simulate_errors_are_per_line_and_the_batch_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [
        json.dumps(case("ok1")),
        "{this is not json",
        json.dumps(case("bad-policy", identity_policies=[BAD])),
        "",
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": "no-principal", "action": "s3:GetObject", "resource": "x"}),
        json.dumps(case("bad-context", context={"k": {"deep": True}})),
        json.dumps(case("bad-boundary", permission_boundary=["not a policy"])),
        json.dumps(case("ok2", context={"aws:SourceIp": "10.0.0.1"})),
    ]
    results = [json.loads(line) for line in run_batch(tmp_path, capsys, lines, status=1)]
    assert [(r["id"], r["decision"]) for r in results] == [
        ("ok1", "Allowed"), (None, "Error"), ("bad-policy", "Error"), (None, "Error"), ("no-principal", "Error"),
        ("bad-context", "Error"), ("bad-boundary", "Error"), ("ok2", "Allowed"),
    ]
    errors = [r for r in results if r["decision"] == "Error"]
    assert all(set(r) == {"id", "decision", "error"} and r["error"] for r in errors)
    assert "line 2" in errors[0]["error"]
    assert 'Statement[1].Condition.IpAddress."aws:SourceIp"' in errors[1]["error"]
    assert '"principal"' in errors[3]["error"]


def test_simulate_optional_fields_may_be_absent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    minimal = {"id": 7, "principal": USER, "action": "s3:GetObject", "resource": "arn:aws:s3:::bucket/key"}
    (line,) = run_batch(tmp_path, capsys, [json.dumps(minimal)])
    assert json.loads(line)["id"] == 7 and json.loads(line)["decision"] == "ImplicitlyDenied"


def test_simulate_reads_standard_input(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(case("stdin")) + "\n"))
    assert main(["simulate"]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "Allowed"


def test_simulate_ten_thousand_cases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policies = [
        GOOD,
        {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::bucket/home/${aws:username}/*"},
            {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*",
             "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}]},
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                                                 "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]},
    ]
    rng = random.Random(7)
    cases, expected = [], []
    for i in range(10_000):
        policy = rng.randrange(3)
        action = rng.choice(["s3:GetObject", "s3:DeleteObject", "iam:CreateUser"])
        user = rng.choice(["alice", "bob"])
        ip = rng.choice(["10.1.2.3", "192.0.2.1"])
        mfa = rng.choice(["true", "false"])
        resource = rng.choice(["arn:aws:s3:::bucket/home/alice/x", "arn:aws:s3:::bucket/other"])
        cases.append({"id": f"c{i}", "principal": f"arn:aws:iam::111122223333:user/{user}", "action": action,
                      "resource": resource, "identity_policies": [policies[policy]],
                      "context": {"aws:username": user, "aws:SourceIp": ip, "aws:MultiFactorAuthPresent": mfa}})
        if policy == 0:
            verdict = "Allowed" if action == "s3:GetObject" else "ImplicitlyDenied"
        elif policy == 1:
            if action == "s3:DeleteObject" and mfa == "false":
                verdict = "ExplicitlyDenied"
            elif action.startswith("s3:") and resource == f"arn:aws:s3:::bucket/home/{user}/x":
                verdict = "Allowed"
            else:
                verdict = "ImplicitlyDenied"
        else:
            verdict = "Allowed" if ip.startswith("10.") else "ImplicitlyDenied"
        expected.append(verdict)
    out = run_batch(tmp_path, capsys, [json.dumps(c) for c in cases])
    assert len(out) == 10_000
    for index in [*range(0, 10_000, 97), 9_999]:
        result = json.loads(out[index])
        assert (result["id"], result["decision"]) == (f"c{index}", expected[index])


# ---- simulate: one shot ---------------------------------------------------------------------------------------------


def test_simulate_one_shot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write(tmp_path, "p.json", {"Version": "2012-10-17", "Statement": [
        {"Sid": "FromOffice", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
         "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}]})
    argv = ["simulate", "--policy", policy, "--principal", USER, "--action", "s3:GetObject",
            "--resource", "arn:aws:s3:::bucket/key"]
    assert main([*argv, "--context", "aws:SourceIp=203.0.113.7"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Decision: Allowed"
    assert out[1].startswith(f"User: {USER} is authorized to perform: s3:GetObject")
    assert out[2].split() == ["Allow", "identity", "identity_policies[0]", "FromOffice"]
    assert main([*argv, "--context", "aws:SourceIp=198.51.100.1"]) == 1
    assert capsys.readouterr().out.splitlines()[0] == "Decision: ImplicitlyDenied"


def test_simulate_one_shot_repeated_context_key_is_multivalued(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write(tmp_path, "p.json", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:TagUser", "Resource": "*",
         "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "cost"]}}}]})
    argv = ["simulate", "--policy", policy, "--principal", USER, "--action", "iam:TagUser", "--resource", USER]
    assert main([*argv, "--context", "aws:TagKeys=team", "--context", "aws:TagKeys=cost"]) == 0
    assert main([*argv, "--context", "aws:TagKeys=team", "--context", "aws:TagKeys=secret"]) == 1
    capsys.readouterr()


def test_simulate_one_shot_with_every_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    allow_all = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    deny_put = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                                                       {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*"}]}
    shared = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": SESSION},
                                                      "Action": "s3:GetObject"}]}
    base = ["simulate", "--principal", SESSION, "--resource", "arn:aws:s3:::bucket/key",
            "--boundary", write(tmp_path, "b.json", deny_put), "--session-policy", write(tmp_path, "s.json", allow_all),
            "--resource-policy", write(tmp_path, "r.json", shared), "--resource-account", "444455556666",
            "--policy", write(tmp_path, "i.json", allow_all)]
    assert main([*base, "--action", "s3:GetObject"]) == 0
    assert main([*base, "--action", "s3:PutObject"]) == 1
    out = capsys.readouterr().out
    assert "Decision: ExplicitlyDenied" in out and "with an explicit deny in a permissions boundary" in out


def test_simulate_one_shot_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "bad.json", BAD)
    argv = ["simulate", "--policy", bad, "--principal", USER, "--action", "s3:GetObject", "--resource", "r"]
    assert main(argv) == 1
    assert capsys.readouterr().err.startswith("error: invalid policy identity_policies[0]: ")
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--principal", USER])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--principal", USER, "--action", "a:b", "--resource", "r", "--context", "novalue"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--policy", str(tmp_path / "absent.json"), "--principal", USER, "--action", "a:b",
              "--resource", "r"])
    assert info.value.code == 2
    capsys.readouterr()


# ---- the installed console script -----------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("iam-middleware") is None, reason="the console script is not installed")
def test_console_script(tmp_path: Path) -> None:
    good, bad = write(tmp_path, "good.json", GOOD), write(tmp_path, "bad.json", BAD)
    executable = shutil.which("iam-middleware")
    assert executable is not None
    validate = subprocess.run([executable, "validate", good, bad], capture_output=True, text=True, timeout=60)
    assert validate.returncode == 1
    assert f"{good}: valid" in validate.stdout and f"{bad}: Statement[2].Effect: error:" in validate.stdout
    simulate = subprocess.run([executable, "simulate"], input=json.dumps(case("sub")) + "\n{oops\n",
                              capture_output=True, text=True, timeout=60)
    assert simulate.returncode == 1  # a line was an Error
    results = [json.loads(line) for line in simulate.stdout.splitlines()]
    assert [(r["id"], r["decision"]) for r in results] == [("sub", "Allowed"), (None, "Error")]


def test_a_document_reused_at_another_position_is_named_by_that_position() -> None:
    from iam_middleware.cli._simulate import simulate_lines

    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    other = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}
    base = {"principal": "arn:aws:iam::111122223333:user/a", "action": "s3:GetObject", "resource": "*"}
    lines = [json.dumps({"id": "first", **base, "identity_policies": [allow]}),
             json.dumps({"id": "second", **base, "identity_policies": [other, allow]})]
    first, second = simulate_lines(lines)
    assert first["matched"][0]["policy"] == "identity_policies[0]"
    assert second["matched"][0]["policy"] == "identity_policies[1]"


def test_simulate_one_shot_names_the_missing_context_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write(tmp_path, "ip.json", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
         "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]})
    argv = ["simulate", "--policy", policy, "--principal", USER, "--action", "s3:GetObject", "--resource", "x"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    missing = next(line for line in out.splitlines() if line.startswith("Missing context keys"))
    assert "aws:sourceip" in missing.lower()
    assert main([*argv, "--context", "aws:SourceIp=10.1.2.3"]) == 0
    assert "Missing context keys" not in capsys.readouterr().out


def test_simulate_help_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    assert "``" not in capsys.readouterr().out
