"""Real AWS clients against the token service's Query API over real HTTP (uvicorn, Werkzeug on loopback): boto3's
STS client for every action, session tags that policies read and role chaining; botocore's AssumeRoleProvider from
a config profile (role_arn + source_profile + a services endpoint_url); the AWS CLI (awscli, from the test extra);
and docs/credentials.md's boto3 example and profile, run as written against the demo."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import botocore.auth
import httpx
import pytest
from adapters._support import uvicorn_server, werkzeug_server
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials
from botocore.exceptions import ClientError
from client._support import asgi_app
from conformance import _apps

from iam_middleware._iam import IAM

from ._support import ACCOUNT, ALICE, ALICE_KEY, CAROL_KEY, PARTNER, Clock, code, idp_token, make_iam
from .test_session_tags import AUDITOR, directory

DOCS = Path(__file__).resolve().parents[2] / "docs" / "credentials.md"
ALICE_MFA = f"arn:app:iam::{ACCOUNT}:mfa/alice"
SESSION = f"arn:app:sts::{ACCOUNT}:assumed-role/partner"
needs_cli = pytest.mark.skipif(find_spec("awscli") is None, reason="the AWS CLI (awscli, in the test extra)")


class Live(NamedTuple):
    iam: IAM
    clock: Clock
    base: str


@pytest.fixture
def live() -> Iterator[Live]:
    """The orders API and the token service at /sts on a loopback port, at the real time (botocore signs with it
    and decides by it when credentials expire). alice may tag partner sessions (docs: test_session_tags)."""
    clock = Clock(time.time())
    iam = make_iam(clock, directory())
    with uvicorn_server(asgi_app(iam)) as port:
        yield Live(iam, clock, f"http://127.0.0.1:{port}")


def sts_client(base: str, key: tuple[str, ...] | None = ALICE_KEY) -> Any:
    if key is None:
        return boto3.client("sts", endpoint_url=f"{base}/sts/", region_name="local")
    return boto3.client("sts", endpoint_url=f"{base}/sts/", region_name="local", aws_access_key_id=key[0],
                        aws_secret_access_key=key[1], aws_session_token=key[2] if len(key) > 2 else None)


def session_key(answer: dict[str, Any]) -> tuple[str, str, str]:
    credentials = answer["Credentials"]
    return credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]


def get_order(base: str, key: tuple[str, ...]) -> httpx.Response:
    """GET /orders/42 signed by botocore for the API's own service name."""
    request = AWSRequest(method="GET", url=f"{base}/orders/42")
    botocore.auth.SigV4Auth(BotocoreCredentials(*key), "orders", "local").add_auth(request)
    return httpx.get(f"{base}/orders/42", headers=dict(request.headers.items()))


def test_boto3_calls_every_action_and_policies_read_the_session_tags(live: Live) -> None:
    sts = sts_client(live.base)
    assert sts.get_caller_identity()["Arn"] == ALICE
    mfa = sts.get_session_token(SerialNumber=ALICE_MFA, TokenCode=code(live.iam, "alice", live.clock.now),
                                DurationSeconds=900)
    assert mfa["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert mfa["Credentials"]["Expiration"].timestamp() == int(live.clock.now) + 900
    blue = sts.assume_role(RoleArn=PARTNER, RoleSessionName="boto3-blue", Tags=[{"Key": "team", "Value": "blue"}],
                           TransitiveTagKeys=["team"], SourceIdentity="alice", DurationSeconds=900)
    assert blue["AssumedRoleUser"]["Arn"] == f"{SESSION}/boto3-blue" and blue["SourceIdentity"] == "alice"
    assert 0 < blue["PackedPolicySize"] <= 100
    red = sts.assume_role(RoleArn=PARTNER, RoleSessionName="boto3-red", Tags=[{"Key": "team", "Value": "red"}])
    # The role's policy allows orders:GetOrder for aws:PrincipalTag/team = blue only.
    allowed = get_order(live.base, session_key(blue))
    assert allowed.status_code == 200 and allowed.json()["caller"] == f"{SESSION}/boto3-blue"
    assert get_order(live.base, session_key(red)).status_code == 403
    # Role chaining with boto3: the transitive tag and the source identity carry over.
    chained = sts_client(live.base, session_key(blue)).assume_role(RoleArn=AUDITOR, RoleSessionName="boto3-audit")
    assert chained["SourceIdentity"] == "alice"
    assert get_order(live.base, session_key(chained)).status_code == 200
    web = sts_client(live.base, None).assume_role_with_web_identity(
        RoleArn=PARTNER, RoleSessionName="ignored", WebIdentityToken=idp_token(live.clock.now))
    assert (web["Provider"], web["SubjectFromWebIdentityToken"], web["Audience"]) == (
        "idp.example", "partner-42", "orders-api")
    assert web["AssumedRoleUser"]["Arn"] == f"{SESSION}/partner-42"


def test_boto3_reads_the_refusals_as_client_errors(live: Live) -> None:
    with pytest.raises(ClientError) as untrusted:
        sts_client(live.base, CAROL_KEY).assume_role(RoleArn=PARTNER, RoleSessionName="carol")
    error = untrusted.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert error["Error"]["Message"].startswith("User: arn:app:iam::111122223333:user/carol is not authorized")
    with pytest.raises(ClientError) as tagless:
        sts_client(live.base).assume_role(RoleArn=f"arn:app:iam::{ACCOUNT}:role/plain", RoleSessionName="tags",
                                          Tags=[{"Key": "team", "Value": "blue"}])
    assert "sts:TagSession" in tagless.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as bad_code:
        sts_client(live.base).get_session_token(SerialNumber=ALICE_MFA, TokenCode="000000")
    assert bad_code.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as bad_secret:
        sts_client(live.base, (ALICE_KEY[0], "not-the-secret")).get_caller_identity()
    assert bad_secret.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


@pytest.mark.parametrize("shell", ["flask", "django"])
def test_boto3_against_the_wsgi_shells(shell: str) -> None:
    iam = make_iam(Clock(time.time()))
    app = _apps.flask_app(iam) if shell == "flask" else _apps.django_app(iam, asgi=False)
    with werkzeug_server(app) as port:
        sts = sts_client(f"http://127.0.0.1:{port}")
        assert sts.get_caller_identity()["Arn"] == ALICE
        assert sts.assume_role(RoleArn=PARTNER, RoleSessionName="wsgi")["AssumedRoleUser"]["Arn"] == f"{SESSION}/wsgi"


# docs/credentials.md, "The AWS STS Query API" ------------------------------------------------------------------
def docs_blocks() -> tuple[str, list[str]]:
    """The section's boto3 example and its two AWS files (config, then credentials)."""
    section = DOCS.read_text().split("## The AWS STS Query API", 1)[1].split("\n## ", 1)[0]
    python = re.findall(r"```python\n(.*?)```", section, re.S)
    ini = re.findall(r"```ini\n(.*?)```", section, re.S)
    assert len(python) == 1 and len(ini) == 2
    return python[0], ini


@pytest.fixture
def demo() -> Iterator[int]:
    """The demo (iam-middleware demo's app and directory) on a loopback port, as the docs' examples expect it."""
    from iam_middleware.cli._demo import build_demo_app, demo_config_path

    with uvicorn_server(build_demo_app(IAM.from_file(demo_config_path()))) as port:
        yield port


def test_the_docs_boto3_example_runs_as_written(demo: int) -> None:
    code_block, _ = docs_blocks()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code_block.replace("127.0.0.1:8000", f"127.0.0.1:{demo}"), {"__name__": "docs_example"})  # noqa: S102
    assert printed.getvalue().split() == [ALICE, f"{SESSION}/alice-boto3"]


@pytest.fixture
def profile(demo: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The docs' AWS files, for the demo's port, in a scratch home; the environment botocore and the CLI read."""
    _, (config, credentials) = docs_blocks()
    (tmp_path / "config").write_text(config.replace("127.0.0.1:8000", f"127.0.0.1:{demo}"))
    (tmp_path / "credentials").write_text(credentials)
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    # A scratch HOME: the CLI caches assumed-role credentials under ~/.aws/cli/cache.
    env.update(AWS_CONFIG_FILE=str(tmp_path / "config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
               HOME=str(tmp_path))
    for name in os.environ:
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    env["DEMO_BASE"] = f"http://127.0.0.1:{demo}"
    return env


def test_botocores_assume_role_provider_uses_the_docs_profile(profile: dict[str, str]) -> None:
    session = boto3.Session(profile_name="orders-partner")
    assert session.client("sts").get_caller_identity()["Arn"] == f"{SESSION}/alice-cli"
    credentials = session.get_credentials()
    assert credentials is not None and credentials.method == "assume-role"
    frozen = credentials.get_frozen_credentials()
    assert frozen.access_key.startswith("ASIA")
    answer = get_order(profile["DEMO_BASE"], (frozen.access_key, frozen.secret_key, frozen.token))
    assert answer.status_code == 200, answer.text


@needs_cli
def test_the_aws_cli_uses_the_docs_profile(profile: dict[str, str]) -> None:
    def aws(*args: str) -> Any:
        result = subprocess.run([sys.executable, "-m", "awscli", *args, "--output", "json"], env=profile,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    assert aws("sts", "get-caller-identity", "--profile", "orders-partner")["Arn"] == f"{SESSION}/alice-cli"
    assert aws("sts", "get-caller-identity", "--profile", "orders-alice")["Arn"] == ALICE
    answer = aws("sts", "assume-role", "--profile", "orders-alice", "--role-arn", PARTNER,
                 "--role-session-name", "cli-direct", "--duration-seconds", "900")
    assert answer["AssumedRoleUser"]["Arn"] == f"{SESSION}/cli-direct"


@needs_cli
def test_the_aws_cli_sends_session_tags_and_source_identity(live: Live, tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_ACCESS_KEY_ID=ALICE_KEY[0], AWS_SECRET_ACCESS_KEY=ALICE_KEY[1],
               AWS_DEFAULT_REGION="local")
    result = subprocess.run(
        [sys.executable, "-m", "awscli", "sts", "assume-role", "--endpoint-url", f"{live.base}/sts/", "--output",
         "json", "--role-arn", PARTNER, "--role-session-name", "cli-tags", "--tags", "Key=team,Value=blue",
         "--transitive-tag-keys", "team", "--source-identity", "alice"],
        env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["SourceIdentity"] == "alice"
    record = live.iam.credentials.temporary.lookup(answer["Credentials"]["AccessKeyId"])
    assert record is not None and dict(record.tags) == {"team": "blue"} and record.transitive_tag_keys == ("team",)
