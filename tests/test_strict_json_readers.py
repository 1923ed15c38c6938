"""Every reader of JSON from outside goes through the one strict parser: policies, directory and secrets files, request
bodies of the token service, key sets, records in the shared state, the token-type sniff and the simulator's files
refuse what it refuses (a duplicate member name, NaN, a number that overflows), each in its own error style."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from jwt.algorithms import OKPAlgorithm

from iam_middleware._credentials import _token_type
from iam_middleware._exceptions import ConfigurationError, PolicyValidationError
from iam_middleware._temporary import TemporaryCredential, TemporaryCredentials
from iam_middleware.authenticators._jwks import JWKSSource
from iam_middleware.authenticators._sessions import SessionRevokedError, SessionTokens
from iam_middleware.cli import main
from iam_middleware.directory import load_directory
from iam_middleware.policy import load_json
from iam_middleware.state import MemoryStore
from iam_middleware.sts._operations import MalformedJSONError, parse_body

NOW = 1_700_000_000.0
ACCOUNT = "111122223333"
ALLOW = '{"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"}'


def with_member(document: str, extra: str) -> str:
    """``document`` (a JSON object) with one more member written as-is at its end."""
    return document[:-1] + ", " + extra + "}"


def test_a_policy_with_nan_is_refused() -> None:
    with pytest.raises(PolicyValidationError) as caught:
        load_json('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", '
                  '"Condition": {"NumericLessThan": {"k": NaN}}}}')
    assert "Syntax errors in policy. Not valid JSON: NaN is not JSON" in str(caught.value)


def test_a_json_directory_file_with_a_duplicate_member_is_refused(tmp_path: Path) -> None:
    # json would keep the second "users" (none): the file would load, with alice silently gone.
    text = json.dumps({"accounts": {ACCOUNT: {}}, "users": {"alice": {"account": ACCOUNT}}})
    (tmp_path / "iam.json").write_text(with_member(text, '"users": {}'))
    with pytest.raises(ConfigurationError, match="not valid TOML/JSON: duplicate member name 'users'"):
        load_directory(tmp_path / "iam.json")


def test_a_json_secrets_file_with_a_duplicate_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secrets.json").write_text('{"alice-key": "first", "alice-key": "second"}')
    data = {"settings": {"secrets_file": "secrets.json"}, "accounts": {ACCOUNT: {}},
            "users": {"alice": {"account": ACCOUNT, "access_keys": [{"id": "AKIAFILE", "secret": "secret:alice-key"}]}}}
    (tmp_path / "iam.json").write_text(json.dumps(data))
    with pytest.raises(ConfigurationError) as caught:
        load_directory(tmp_path / "iam.json")
    assert "settings.secrets_file: cannot read" in str(caught.value) and "'alice-key'" in str(caught.value)
    assert "first" not in str(caught.value) and "second" not in str(caught.value)


@pytest.mark.parametrize(("body", "problem"), [
    (b'{"username": "a", "username": "b"}', "duplicate member name 'username'"),
    (b'{"code": NaN}', "NaN is not JSON"),
    (b'{"DurationSeconds": 1e999}', "too large"),
])
def test_a_token_service_body_names_its_problem(body: bytes, problem: str) -> None:
    with pytest.raises(MalformedJSONError) as caught:
        parse_body(body, "application/json")
    assert str(caught.value).startswith("The request body is not valid UTF-8 JSON: ") and problem in str(caught.value)


def test_a_session_record_with_a_duplicate_member_ends_the_session() -> None:
    store = MemoryStore()
    sessions = SessionTokens(b"k" * 32, store=store)
    issued = sessions.issue(f"arn:app:iam::{ACCOUNT}:user/alice", now=NOW, mfa_time=NOW)
    key = f"iam:session:sess:{issued.session_id}"
    record = store.get(key)
    assert record is not None
    store.set(key, with_member(record.decode(), '"iat": 0').encode())  # json would read the session as started at 0
    with pytest.raises(SessionRevokedError):
        sessions.verify(issued.token, now=NOW)


def test_a_temporary_credential_record_with_a_duplicate_member_is_unreadable() -> None:
    store = MemoryStore()
    credential = TemporaryCredentials(store).issue(kind="user", arn=f"arn:app:iam::{ACCOUNT}:user/alice",
                                                   session_name="alice", now=NOW, duration=900)
    text = credential.to_json().decode()
    assert TemporaryCredential.from_json(text.encode()) is not None
    root = f'"arn": "arn:app:iam::{ACCOUNT}:user/root"'
    assert TemporaryCredential.from_json(with_member(text, root).encode()) is None


def b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def test_the_token_type_sniff_reads_strictly() -> None:
    assert _token_type(b64url('{"alg": "HS256", "typ": "iam-session+jwt"}') + ".e30.sig") == "iam-session+jwt"
    assert _token_type(b64url('{"alg": "HS256", "typ": "JWT", "typ": "iam-session+jwt"}') + ".e30.sig") is None


def test_a_key_set_with_an_overflowing_number_is_not_used(tmp_path: Path) -> None:
    jwk: dict[str, Any] = OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate().public_key(), as_dict=True)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "a"}]}))
    source = JWKSSource.from_file(path, min_refresh_interval=0)
    assert source.refresh(now=NOW) and [key.kid for key in source.keys(now=NOW)] == ["a"]
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "b"}], "x": 1}).replace(": 1}", ": 1e999}"))
    assert source.refresh(now=NOW + 1) is False  # refused whole: the last good set stays
    assert [key.kid for key in source.keys(now=NOW + 1)] == ["a"]


def test_the_simulator_refuses_a_policy_file_with_a_duplicate_member(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "policy.json"
    path.write_text('{"Version": "2012-10-17", "Statement": ' + ALLOW + ', "Statement": ' + ALLOW + "}")
    with pytest.raises(SystemExit) as caught:
        main(["simulate", "--policy", str(path), "--principal", f"arn:app:iam::{ACCOUNT}:user/alice",
              "--action", "orders:GetOrder", "--resource", "r"])
    assert caught.value.code == 2
    assert "is not JSON: duplicate member name 'Statement'" in capsys.readouterr().err
