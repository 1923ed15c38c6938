"""The microservices example (examples/microservices, docs/microservices.md) as it runs: a real redis-server and
three uvicorn processes on loopback (the token service, the reports API "A" and the ledger API "B"), each loading
the example's directory file and writing its decision log to a file of its own.

People log in at the token service and call A with their session; A calls B with the credentials of a
``ledger-reader`` session it assumed with the person's name as source identity and their department as a session
tag. Every test checks what the person got from A, and the decision records of A and B for that request id.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from _redis_server import RedisServer, free_ports

from iam_middleware.client import Credentials, SigV4Auth, TokenServiceClient, TokenServiceError

from ._cluster import ROOT, Worker, stop, wait_ready

EXAMPLE = ROOT / "examples" / "microservices"
DIRECTORY = tomllib.loads((EXAMPLE / "iam.toml").read_text())
PASSWORD = "correct horse battery staple"
ACCOUNT = "111122223333"
REPORTS_KEY = DIRECTORY["users"]["reports-service"]["access_keys"][0]
LEDGER_ROLE = f"arn:app:iam::{ACCOUNT}:role/ledger-reader"
SESSION_OF = f"arn:app:sts::{ACCOUNT}:assumed-role/ledger-reader/reports-"
TIMEOUT = 15.0


@dataclass
class Service(Worker):
    """One process of the example, and the file its decision log goes to."""

    decisions: Path = Path()

    def records(self, request_id: str) -> list[dict[str, Any]]:
        """This process's decision records of one request id, in the order they were written."""
        lines = self.decisions.read_text().splitlines() if self.decisions.exists() else []
        return [record for record in map(json.loads, lines) if record["request_id"] == request_id]


@dataclass
class Example:
    token: Service
    reports: Service
    ledger: Service
    sessions: dict[str, str]

    def ask(self, path: str, person: str | None) -> httpx.Response:
        """GET ``path`` of the reports API with ``person``'s session (none: anonymous)."""
        headers = {"Authorization": f"Bearer {self.sessions[person]}"} if person is not None else {}
        return httpx.get(f"{self.reports.url}{path}", headers=headers, timeout=TIMEOUT)


def _start(service: Service, module: str, env: dict[str, str]) -> None:
    with service.log.open("wb") as log:
        service.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", f"examples.microservices.{module}:create_app",
             "--host", "127.0.0.1", "--port", str(service.port), "--log-level", "warning", "--no-access-log"],
            env={**env, "DECISION_LOG": str(service.decisions)}, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def _login(token_service: Service, person: str) -> str:
    code = pyotp.TOTP(DIRECTORY["users"][person]["totp_secret"]).at(time.time())
    answer = httpx.post(f"{token_service.url}/sts/login", json={"username": person, "password": PASSWORD,
                                                                 "code": code}, timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


@pytest.fixture(scope="module")
def example(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    redis_server.flush()
    root = tmp_path_factory.mktemp("microservices")
    token_port, reports_port, ledger_port = free_ports(3)
    token, reports, ledger = (Service(name, port, root / f"{name}.log", decisions=root / f"{name}.jsonl")
                              for name, port in (("token_service", token_port), ("reports", reports_port),
                                                 ("ledger", ledger_port)))
    env = {**os.environ, "IAM_REDIS_URL": redis_server.url, "TOKEN_SERVICE_URL": f"{token.url}/sts",
           "LEDGER_URL": ledger.url, "REPORTS_ACCESS_KEY_ID": REPORTS_KEY["id"],
           "REPORTS_SECRET_ACCESS_KEY": REPORTS_KEY["secret"],
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    services = (token, reports, ledger)
    try:
        for service in services:
            _start(service, service.name, env)
        for service in services:
            try:
                wait_ready(service)
            except RuntimeError as exc:
                pytest.fail(str(exc))
        yield Example(token, reports, ledger, {person: _login(token, person) for person in ("alice", "bob")})
    finally:
        for service in services:
            stop(service)


def only(records: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(records) == 1, records
    return records[0]


def sids(record: dict[str, Any]) -> set[str]:
    return {statement["sid"] for statement in record.get("statements", [])}


def test_alice_reads_her_statement_as_herself_at_the_ledger(example: Example) -> None:
    answer = example.ask("/statements/alice", "alice")
    assert answer.status_code == 200, answer.text
    statement = answer.json()["statement"]
    assert [entry["id"] for entry in statement["entries"]] == ["e-1", "e-2"]
    # B was called by a ledger-reader session that carries alice's identity and department.
    assert statement["caller"] == {"arn": SESSION_OF + "alice", "source_identity": "alice", "department": "finance"}

    request_id = answer.headers["x-request-id"]
    at_reports = only(example.reports.records(request_id))
    at_ledger = only(example.ledger.records(request_id))
    assert at_reports["principal"] == f"arn:app:iam::{ACCOUNT}:user/alice" and at_reports["credential"] == "session"
    assert at_reports["action"] == "reports:GetStatement" and at_reports["decision"] == "Allowed"
    assert at_ledger["principal"] == SESSION_OF + "alice" and at_ledger["source_identity"] == "alice"
    assert at_ledger["credential"] == "temporary-access-key" and at_ledger["access_key_id"].startswith("ASIA")
    assert at_ledger["action"] == "ledger:ListEntries" and at_ledger["decision"] == "Allowed"
    assert at_ledger["resource"] == f"arn:app:ledger::{ACCOUNT}:entries/alice"


def test_the_ledger_decides_on_the_source_identity(example: Example) -> None:
    own = example.ask("/statements/bob", "bob")  # OwnEntries: entries/${aws:SourceIdentity}
    assert own.status_code == 200, own.text
    assert sids(only(example.ledger.records(own.headers["x-request-id"]))) == {"OwnEntries"}

    refused = example.ask("/statements/alice", "bob")  # allowed at A, refused at B: the 403 comes back through A
    assert refused.status_code == 403, refused.text
    body = refused.json()
    assert body["error"] == "AccessDenied" and body["request_id"] == refused.headers["x-request-id"]
    assert only(example.reports.records(body["request_id"]))["decision"] == "Allowed"
    at_ledger = only(example.ledger.records(body["request_id"]))
    assert at_ledger["principal"] == SESSION_OF + "bob" and at_ledger["source_identity"] == "bob"
    assert at_ledger["decision"] == "ImplicitlyDenied" and at_ledger["status"] == 403
    assert at_ledger["resource"] == f"arn:app:ledger::{ACCOUNT}:entries/alice"


def test_the_ledger_decides_on_the_session_tag(example: Example) -> None:
    finance = example.ask("/statements/bob", "alice")  # FinanceSeesAll: aws:PrincipalTag/department
    assert finance.status_code == 200, finance.text
    assert sids(only(example.ledger.records(finance.headers["x-request-id"]))) == {"FinanceSeesAll"}
    totals = example.ask("/summary", "alice")
    assert totals.status_code == 200 and totals.json()["summary"]["totals"] == {"alice": 80, "bob": 75}

    refused = example.ask("/summary", "bob")
    assert refused.status_code == 403 and refused.json()["error"] == "AccessDenied"
    at_ledger = only(example.ledger.records(refused.headers["x-request-id"]))
    assert at_ledger["action"] == "ledger:GetTotals" and at_ledger["decision"] == "ImplicitlyDenied"


def test_a_refusal_at_the_reports_api_never_reaches_the_ledger(example: Example) -> None:
    anonymous = example.ask("/statements/alice", None)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "MissingAuthenticationToken"
    request_id = anonymous.json()["request_id"]
    assert only(example.reports.records(request_id))["status"] == 401
    assert example.ledger.records(request_id) == []


def test_the_reports_service_reaches_the_ledger_only_on_behalf_of_someone(example: Example) -> None:
    own_key = Credentials(REPORTS_KEY["id"], REPORTS_KEY["secret"])
    direct = httpx.get(f"{example.ledger.url}/entries/alice", auth=SigV4Auth(own_key, service="internal",
                                                                             region="local"), timeout=TIMEOUT)
    assert direct.status_code == 403, direct.text  # its own identity has no permission at the ledger

    sts = TokenServiceClient(f"{example.token.url}/sts", service="internal", region="local")
    nobody = sts.assume_role(own_key, LEDGER_ROLE, "reports-nobody")  # no source identity: the trust policy says no
    with pytest.raises(TokenServiceError) as refused:
        nobody.credentials()
    assert refused.value.status_code == 403 and refused.value.code == "AccessDenied"
    other_tag = sts.assume_role(own_key, LEDGER_ROLE, "reports-alice", source_identity="alice",
                                tags={"clearance": "all"})  # only the department tag may be set
    with pytest.raises(TokenServiceError):
        other_tag.credentials()
