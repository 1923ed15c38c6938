"""The real AWS CLI (awscli, from the test extra) against the IAM API: a representative set of ``aws iam``
commands with ``--endpoint-url``, documents given as ``file://``, and IAM's error codes on its standard error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from .conftest import EXAMPLES, Live, arn

pytestmark = pytest.mark.skipif(find_spec("awscli") is None, reason="the AWS CLI (awscli, in the test extra)")


def cli(live: Live, tmp_path: Path) -> Any:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_ACCESS_KEY_ID=live.admin_key[0], AWS_SECRET_ACCESS_KEY=live.admin_key[1],
               AWS_DEFAULT_REGION="local")

    def aws(*args: str, ok: bool = True) -> Any:
        result = subprocess.run([sys.executable, "-m", "awscli", "iam", *args, "--endpoint-url", f"{live.base}/iam/",
                                 "--output", "json"], env=env, capture_output=True, text=True, timeout=60,
                                cwd=tmp_path)
        if not ok:
            assert result.returncode != 0
            return result.stderr
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else None

    return aws


def test_the_aws_cli_manages_users_keys_groups_roles_and_policies(live: Live, tmp_path: Path) -> None:
    aws = cli(live, tmp_path)
    made = aws("create-user", "--user-name", "gina", "--tags", "Key=team,Value=blue")
    assert made["User"]["Arn"] == arn("user", "gina")
    key = aws("create-access-key", "--user-name", "gina")["AccessKey"]
    assert key["SecretAccessKey"] and key["Status"] == "Active"
    assert "gina" in [u["UserName"] for u in aws("list-users")["Users"]]
    aws("add-user-to-group", "--group-name", "readers", "--user-name", "gina")
    assert [g["GroupName"] for g in aws("list-groups-for-user", "--user-name", "gina")["Groups"]] == ["readers"]
    (tmp_path / "policy.json").write_text((EXAMPLES / "policies" / "orders-read-only.json").read_text())
    policy = aws("create-policy", "--policy-name", "CliRead", "--policy-document", "file://policy.json")["Policy"]
    aws("attach-user-policy", "--user-name", "gina", "--policy-arn", policy["Arn"])
    aws("put-user-policy", "--user-name", "gina", "--policy-name", "Inline", "--policy-document",
        "file://policy.json")
    document = aws("get-user-policy", "--user-name", "gina", "--policy-name", "Inline")["PolicyDocument"]
    assert document["Statement"][0]["Sid"] == "ReadOrders"
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": arn("user", "gina")}, "Action": "sts:AssumeRole"}]}
    role = aws("create-role", "--role-name", "cli-role", "--assume-role-policy-document", json.dumps(trust))
    assert role["Role"]["AssumeRolePolicyDocument"] == trust
    simulated = aws("simulate-principal-policy", "--policy-source-arn", arn("user", "gina"), "--action-names",
                    "orders:GetOrder", "orders:DeleteOrder")
    assert [r["EvalDecision"] for r in simulated["EvaluationResults"]] == ["allowed", "implicitDeny"]
    stderr = aws("delete-user", "--user-name", "gina", ok=False)
    assert "DeleteConflict" in stderr
    aws("delete-access-key", "--user-name", "gina", "--access-key-id", key["AccessKeyId"])
    aws("detach-user-policy", "--user-name", "gina", "--policy-arn", policy["Arn"])
    aws("delete-user-policy", "--user-name", "gina", "--policy-name", "Inline")
    aws("remove-user-from-group", "--group-name", "readers", "--user-name", "gina")
    aws("delete-user", "--user-name", "gina")
    assert "NoSuchEntity" in aws("get-user", "--user-name", "gina", ok=False)
    details = aws("get-account-authorization-details", "--filter", "Role")
    assert "cli-role" in [r["RoleName"] for r in details["RoleDetailList"]]


def test_the_aws_cli_enrolls_a_virtual_mfa_device_and_reads_the_credential_report(live: Live,
                                                                                  tmp_path: Path) -> None:
    import base64
    import time

    import pyotp

    aws = cli(live, tmp_path)
    # The QR code to scan, written by the CLI as the PNG it is; or the seed as Base32 text.
    made = aws("create-virtual-mfa-device", "--virtual-mfa-device-name", "hana-phone", "--outfile", "qr.png",
               "--bootstrap-method", "QRCodePNG")["VirtualMFADevice"]
    assert made["SerialNumber"] == arn("mfa", "hana-phone")
    assert (tmp_path / "qr.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    aws("delete-virtual-mfa-device", "--serial-number", made["SerialNumber"])
    made = aws("create-virtual-mfa-device", "--virtual-mfa-device-name", "hana-phone", "--outfile", "seed.txt",
               "--bootstrap-method", "Base32StringSeed")["VirtualMFADevice"]
    totp = pyotp.TOTP((tmp_path / "seed.txt").read_text())
    aws("create-user", "--user-name", "hana")
    now = time.time()
    aws("enable-mfa-device", "--user-name", "hana", "--serial-number", made["SerialNumber"],
        "--authentication-code1", totp.at(now - 30), "--authentication-code2", totp.at(now))
    assigned = aws("list-virtual-mfa-devices", "--assignment-status", "Assigned")["VirtualMFADevices"]
    assert {"hana-phone": "hana"}.items() <= {d["SerialNumber"].rsplit("/", 1)[1]: d["User"]["UserName"]
                                            for d in assigned}.items()
    assert "ReportNotPresent" in aws("get-credential-report", ok=False)
    assert aws("generate-credential-report")["State"] == "STARTED"
    report = aws("get-credential-report")
    assert report["ReportFormat"] == "text/csv"
    rows = base64.b64decode(report["Content"]).decode().splitlines()  # the CLI shows a blob as base64
    hana = next(row.split(",") for row in rows if row.startswith("hana,"))
    assert hana[1] == arn("user", "hana") and hana[7] == "true"  # mfa_active
