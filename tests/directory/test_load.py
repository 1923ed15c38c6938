"""The directory loader: every problem is reported at once and names its place; secrets by reference; TOML and
JSON forms mean the same directory; nothing secret is ever shown."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iam_middleware._exceptions import ConfigurationError
from iam_middleware._iam import IAM
from iam_middleware._principal import CredentialKind
from iam_middleware.directory import Snapshot, directory_from_dict, load_directory

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEMO = EXAMPLES / "iam.toml"
ACCOUNT = "111122223333"
HASH = "scrypt$15$8$1$Ipk8yR8c/4fx+SLEPCJW7w==$jkJdamCQtMGz8LHd1QdQi48pSRSbclYv3dao7eyDa20="
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
READ = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"}]}
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:app:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}


def minimal(**sections: Any) -> dict[str, Any]:
    """A valid one-account directory, with sections added or replaced."""
    data: dict[str, Any] = {
        "accounts": {ACCOUNT: {"name": "acme"}},
        "policies": {"Read": READ},
        "groups": {"readers": {"policies": ["Read"]}},
        "users": {"alice": {"groups": ["readers"]}},
        "roles": {"ops": {"trust_policy": TRUST}},
    }
    data.update(sections)
    return data


def problems(data: dict[str, Any], **options: Any) -> list[str]:
    """The problems the loader reports, one per line."""
    with pytest.raises(ConfigurationError) as caught:
        directory_from_dict(data, **options)
    return [line.strip() for line in str(caught.value).splitlines()[1:]]


def test_the_demo_directory_loads() -> None:
    snapshot = load_directory(DEMO)
    assert snapshot.source == str(DEMO)
    assert {user.name for user in snapshot.users.values()} == {"alice", "bob", "carol"}
    assert snapshot.role("partner") is not None
    assert snapshot.access_key("AKIADEMOALICE0000001") is not None


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["users"]["alice"].update(groups=["readers", "ops"]),
     f"users.alice.groups[1]: group 'ops' does not exist in account {ACCOUNT}"),
    (lambda d: d["users"]["alice"].update(groups="readers"), "users.alice.groups: must be a list of names"),
    (lambda d: d["users"]["alice"].update(policies=["Read", "Write"]),
     "users.alice.policies[1]: policy 'Write' does not exist"),
    (lambda d: d["groups"]["readers"].update(policies=["Nope"]), "groups.readers.policies[0]: policy 'Nope' does"),
    (lambda d: d["users"]["alice"].update(boundary="Nope"), "users.alice.boundary: policy 'Nope' does not exist"),
    (lambda d: d["accounts"][ACCOUNT].update(guardrails=["Nope"]),
     f"accounts.{ACCOUNT}.guardrails[0]: policy 'Nope' does not exist"),
    (lambda d: d["users"]["alice"].update(account="999999999999"),
     "users.alice.account: account '999999999999' does not exist"),
    (lambda d: d["policies"].update(Bad={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"},
        {"Effect": "allow", "Action": "orders:GetOrder", "Resource": "*"}]}),
     "policies.Bad.Statement[1].Effect: "),
    (lambda d: d["users"]["alice"].update(inline={"Mine": {"Statement": [{"Effect": "Allow", "Action": "x",
                                                                         "Resource": "*"}]}}),
     "users.alice.inline.Mine.Statement[0].Action"),
    (lambda d: d["roles"]["ops"].update(trust_policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole"}]}), "roles.ops.trust_policy.Statement[0]"),
    (lambda d: d["roles"]["ops"].pop("trust_policy"), "roles.ops.trust_policy: a role needs a trust policy"),
    (lambda d: d["roles"]["ops"].update(max_session_duration=60),
     "roles.ops.max_session_duration: must be whole seconds from 900 to 43200"),
    (lambda d: d["roles"]["ops"].update(path="ops"), "roles.ops.path: a path starts and ends with '/'"),
    (lambda d: d["users"]["alice"].update(password_hash="md5$abc"), "users.alice.password_hash: malformed"),
    (lambda d: d["users"]["alice"].update(totp_secret="env:IAM_TEST_SURELY_UNSET"),
     "users.alice.totp_secret: environment variable IAM_TEST_SURELY_UNSET is not set"),
    (lambda d: d["users"]["alice"].update(totp_secret="secret:alice-totp"),
     "users.alice.totp_secret: secret 'alice-totp' is not in the secrets file"),
    (lambda d: d["users"]["alice"].update(totp_secret="not base32!"), "users.alice.totp_secret: TOTP secret"),
    (lambda d: d["users"]["alice"].update(access_keys=[{"id": "AKIA1"}]),
     "users.alice.access_keys[0]: an access key is a table with id and secret"),
    (lambda d: d["users"]["alice"].update(access_keys=[{"id": "ASIA0000000000000000", "secret": "s"}]),
     "users.alice.access_keys[0].id: a key id is"),
    (lambda d: d["users"]["alice"].update(active="false"), "users.alice.active: must be true or false"),
    (lambda d: d["users"]["alice"].update(access_keys=[{"id": "AKIA1", "secret": "s", "active": "no"}]),
     "users.alice.access_keys[0].active: must be true or false"),
    (lambda d: d["users"].update(bob={"access_keys": [{"id": "AKIA1", "secret": "b"}]},
                                 alice={"access_keys": [{"id": "AKIA1", "secret": "a"}]}),
     "access_keys: key AKIA1 also belongs to"),
    (lambda d: d["users"]["alice"].update(tags={"team": 1}), "users.alice.tags: must be a table of string values"),
    (lambda d: d["users"]["alice"].update(boundry="Read"), "users.alice.boundry: unknown field"),
    (lambda d: d["roles"]["ops"].update(trust="x"), "roles.ops.trust: unknown field"),
    (lambda d: d["users"]["alice"].update(access_keys=[{"id": "AKIA1", "secret": "s", "enabled": False}]),
     "users.alice.access_keys[0].enabled: unknown field"),
    (lambda d: d.update(extras={}), "extras: unknown section"),
    (lambda d: d.update(accounts={}), "accounts: at least one account is needed"),
    (lambda d: d["users"].update(bob="bob"), "users.bob: must be a table"),
])
def test_each_problem_names_its_place(change: Any, expected: str) -> None:
    data = minimal()
    change(data)
    found = problems(data)
    assert any(line.startswith(expected) or expected in line for line in found), found


def test_every_problem_is_reported_at_once() -> None:
    data = minimal()
    data["users"]["alice"].update(groups=["nope"], policies=["Nope"], password_hash="bad")
    data["roles"]["ops"]["max_session_duration"] = 5
    with pytest.raises(ConfigurationError) as caught:
        directory_from_dict(data, source="iam.toml")
    message = str(caught.value)
    assert message.startswith("iam.toml: invalid directory (4 problem(s)):")
    for place in ("users.alice.groups[0]", "users.alice.policies[0]", "users.alice.password_hash",
                  "roles.ops.max_session_duration"):
        assert place in message


def test_a_policy_file_that_cannot_be_read_names_the_file(tmp_path: Path) -> None:
    found = problems(minimal(policies={"Read": {"file": "missing.json"}},
                             groups={"readers": {}}), base_dir=tmp_path)
    assert any(line.startswith("policies.Read: cannot read policy file") and "missing.json" in line
               for line in found), found


def test_a_bad_policy_in_a_file_names_the_statement(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*", "Condition": {"Bogus": {"a": "b"}}}]}))
    found = problems(minimal(policies={"Read": {"file": "p.json"}}, groups={"readers": {}}), base_dir=tmp_path)
    assert any(line.startswith("policies.Read.Statement[0].Condition") for line in found), found


def test_bad_toml_and_unreadable_files_are_configuration_errors(tmp_path: Path) -> None:
    broken = tmp_path / "iam.toml"
    broken.write_text('[accounts.111122223333]\nname = "acme\n')
    with pytest.raises(ConfigurationError, match=r"iam\.toml: not valid TOML/JSON"):
        load_directory(broken)
    broken_json = tmp_path / "iam.json"
    broken_json.write_text('{"accounts": ')
    with pytest.raises(ConfigurationError, match=r"iam\.json: not valid TOML/JSON"):
        load_directory(broken_json)
    with pytest.raises(ConfigurationError, match="cannot read the directory file"):
        load_directory(tmp_path / "absent.toml")
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    with pytest.raises(ConfigurationError, match="table/object at the top level"):
        load_directory(listed)


def test_secrets_by_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IAM_TEST_ALICE_SEED", SEED)
    monkeypatch.setenv("IAM_TEST_ALICE_KEY", "s3cr3t/from/the/environment")
    data = minimal()
    data["users"]["alice"].update(totp_secret="env:IAM_TEST_ALICE_SEED",
                                  access_keys=[{"id": "AKIAENV", "secret": "env:IAM_TEST_ALICE_KEY"}])
    snapshot = directory_from_dict(data)
    found = snapshot.access_key("AKIAENV")
    assert found is not None and found[0].secret == "s3cr3t/from/the/environment"
    alice = snapshot.user("alice")
    assert alice is not None and alice.totp is not None and alice.totp.secret == SEED


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_secrets_by_reference_to_the_secrets_file(tmp_path: Path, suffix: str) -> None:
    secrets = {"alice-seed": SEED, "alice-key": "s3cr3t/from/the/file"}
    secrets_file = tmp_path / f"secrets{suffix}"
    if suffix == ".json":
        secrets_file.write_text(json.dumps(secrets))
    else:
        secrets_file.write_text("".join(f'"{k}" = "{v}"\n' for k, v in secrets.items()))
    data = minimal(settings={"secrets_file": secrets_file.name})
    data["users"]["alice"].update(totp_secret="secret:alice-seed",
                                  access_keys=[{"id": "AKIAFILE", "secret": "secret:alice-key"}])
    snapshot = directory_from_dict(data, base_dir=tmp_path)
    found = snapshot.access_key("AKIAFILE")
    assert found is not None and found[0].secret == "s3cr3t/from/the/file"


def test_an_unreadable_secrets_file_is_a_problem(tmp_path: Path) -> None:
    found = problems(minimal(settings={"secrets_file": "nope.toml"}), base_dir=tmp_path)
    assert any(line.startswith("settings.secrets_file: cannot read") for line in found), found


def _as_json(tmp_path: Path) -> Path:
    """The demo directory converted to JSON, next to a copy of its policy files."""
    shutil.copytree(EXAMPLES / "policies", tmp_path / "policies")
    target = tmp_path / "iam.json"
    target.write_text(json.dumps(tomllib.loads(DEMO.read_text())))
    return target


def test_the_json_form_is_the_same_directory_as_the_toml_form(tmp_path: Path) -> None:
    from_toml = load_directory(DEMO)
    from_json = load_directory(_as_json(tmp_path))
    assert describe(from_toml) == describe(from_json)
    # And the same decisions: each user on each demo action.
    for arn in from_toml.users:
        for action in ("orders:GetOrder", "orders:CreateOrder", "orders:PurgeOrders", "sts:AssumeRole"):
            decisions = []
            for snapshot in (from_toml, from_json):
                user = snapshot.users[arn]
                principal = snapshot.user_principal(user, CredentialKind.ACCESS_KEY)
                decisions.append(snapshot.authorizer(principal).authorize(
                    action, f"arn:app:orders::{ACCOUNT}:order/1", {}).kind)
            assert decisions[0] == decisions[1], (arn, action)


def test_the_json_form_gives_the_same_facade(tmp_path: Path) -> None:
    toml_iam = IAM.from_file(DEMO)
    json_iam = IAM.from_file(_as_json(tmp_path))
    assert repr(toml_iam.settings) == repr(json_iam.settings)
    assert toml_iam.settings.service == json_iam.settings.service == "orders"


def describe(snapshot: Snapshot) -> Any:
    """Everything a snapshot holds, as comparable plain data (secrets included: the forms must agree on them)."""
    return {
        "partition": snapshot.partition,
        "accounts": {a.id: (a.name, [p.document for p in a.guardrails]) for a in snapshot.accounts.values()},
        "groups": {k: [p.document for p in g.policies] for k, g in snapshot.groups.items()},
        "users": {u.arn: (u.id, u.groups, dict(u.tags), [p.document for p in u.policies],
                          u.boundary.document if u.boundary else None, u.password_hash,
                          u.totp.secret if u.totp else None, [(k.id, k.secret, k.active) for k in u.access_keys],
                          u.active) for u in snapshot.users.values()},
        "roles": {r.arn: (r.id, r.trust_policy.document, [p.document for p in r.policies], r.max_session_duration)
                  for r in snapshot.roles.values()},
    }


def test_reprs_never_show_secrets() -> None:
    snapshot = load_directory(DEMO)
    secrets = ["demo/alice/wJalrXUtnFEMI/K7MDENG/bPxRfiCY", "demo/carol/je7MtGbClwBF/2Zp9Utk/h3yCo8nvb", SEED,
               "S7OGSI66TRZN23GL34ETDX36DJYB2AJM", HASH, "demo-session-secret-change-me", "demo-idp-hmac-secret"]
    shown = [repr(snapshot)]
    for user in snapshot.users.values():
        shown += [repr(user), repr(user.totp), *map(repr, user.access_keys), str(user)]
    iam = IAM.from_file(DEMO)
    shown += [repr(iam), repr(iam.settings), repr(iam.credentials.sessions)]
    for text in shown:
        for secret in secrets:
            assert secret not in text, text


secret_text = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=12, max_size=40).filter(
    lambda s: not s.startswith(("env:", "secret:")))


@settings(deadline=None, max_examples=40)
@given(key_secret=secret_text, seed=secret_text | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=32,
                                                         max_size=32), broken=st.booleans())
def test_no_secret_reaches_a_repr_or_an_error_message(key_secret: str, seed: str, broken: bool) -> None:
    data = minimal()
    data["users"]["alice"].update(access_keys=[{"id": "AKIAPROP", "secret": key_secret}], totp_secret=seed)
    if broken:  # a problem elsewhere in the same user: the error message must still not quote the secrets
        data["users"]["alice"]["password_hash"] = "scrypt$" + key_secret
    try:
        snapshot = directory_from_dict(data)
    except ConfigurationError as exc:
        text = str(exc)
    else:
        alice = snapshot.user("alice")
        assert alice is not None
        text = " ".join([repr(snapshot), repr(alice), repr(alice.totp), *map(repr, alice.access_keys)])
    assert key_secret not in text
    assert seed not in text


def test_a_valid_directory_needs_no_settings_and_a_single_account_is_the_default() -> None:
    snapshot = directory_from_dict(minimal())
    alice = snapshot.user("alice")
    assert alice is not None and alice.account == ACCOUNT
    assert alice.arn == f"arn:app:iam::{ACCOUNT}:user/alice"
    assert snapshot.partition == "app"
    principal = snapshot.user_principal(alice, CredentialKind.ACCESS_KEY)
    assert snapshot.authorizer(principal).authorize("orders:GetOrder", "x", {}).allowed
