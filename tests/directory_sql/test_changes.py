"""Changes through IAM's actions: IAM's rules with IAM's error codes, validated whole, committed atomically, and a
refused change never written (nor served)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from iam_middleware._exceptions import ConfigurationError
from iam_middleware._request import RequestView
from iam_middleware.directory.sql import (
    DeleteConflictError,
    EntityAlreadyExistsError,
    InvalidAuthenticationCodeError,
    InvalidInputError,
    LimitExceededError,
    MalformedPolicyDocumentError,
    NoSuchEntityError,
    SQLDirectory,
    ValidationError,
)
from iam_middleware.directory.sql import _schema as schema
from iam_middleware.directory.sql._records import bump_revision
from iam_middleware.testing import sign_request

READ = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"}]}


def test_a_user_made_through_the_api_signs_requests(demo: SQLDirectory) -> None:
    with demo.change() as draft:
        unique = draft.create_user("dave", path="/ops/", tags={"team": "blue"})
        draft.add_user_to_group("readers", "dave")
        key = draft.create_access_key("dave")
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", unique)
    assert "secret='********'" in repr(key) and key.secret_access_key not in repr(key)
    assert demo.revision() == 2
    iam = demo.iam()
    user = iam.snapshot.user("dave")
    assert user is not None and user.id == unique and user.arn == "arn:app:iam::111122223333:user/ops/dave"
    signed = sign_request(iam, "GET", "http://testserver/orders/1", user="dave")
    principal = iam.authenticate(RequestView(method="GET", raw_path=b"/orders/1", headers=(
        ("host", "testserver"), *((name.lower(), value) for name, value in signed.headers.items())), body=b""))
    assert principal is not None and principal.arn == user.arn
    assert iam.authorize(principal, "orders:GetOrder", "arn:app:orders::111122223333:order/1").allowed
    assert not iam.authorize(principal, "orders:DeleteOrder", "arn:app:orders::111122223333:order/1").allowed


def test_a_third_access_key_is_refused(demo: SQLDirectory) -> None:
    with demo.change() as draft:
        draft.create_access_key("alice")
    with pytest.raises(LimitExceededError) as caught, demo.change() as draft:
        draft.create_access_key("alice")
    assert caught.value.code == "LimitExceeded" and caught.value.status_code == 409
    assert len(demo.load().snapshot.user("alice").access_keys) == 2  # type: ignore[union-attr]


def test_deleting_a_user_with_keys_is_refused_until_they_are_gone(demo: SQLDirectory) -> None:
    with pytest.raises(DeleteConflictError, match="access keys") as caught, demo.change() as draft:
        draft.delete_user("carol")
    assert caught.value.code == "DeleteConflict"
    with demo.change() as draft:
        draft.delete_access_key("carol", "AKIADEMOCAROL0000001")
        draft.delete_login_profile("carol")
        draft.deactivate_mfa_device("carol")
        draft.detach_user_policy("carol", "OrdersFullAccess")
        draft.delete_user("carol")
    assert demo.load().snapshot.user("carol") is None


def test_a_name_taken_in_any_case_is_refused(demo: SQLDirectory) -> None:
    for action in (lambda d: d.create_user("Alice"), lambda d: d.create_group("READERS"),
                   lambda d: d.create_role("Partner", READ), lambda d: d.create_policy("ordersreadonly", READ)):
        with pytest.raises(EntityAlreadyExistsError) as caught, demo.change() as draft:
            action(draft)
        assert caught.value.code == "EntityAlreadyExists"
    assert demo.revision() == 1


def test_a_malformed_policy_is_refused_naming_the_statement(demo: SQLDirectory) -> None:
    bad = {"Version": "2012-10-17", "Statement": [READ["Statement"][0],  # type: ignore[index]
                                                  {"Effect": "Perhaps", "Action": "orders:GetOrder", "Resource": "*"}]}
    with pytest.raises(MalformedPolicyDocumentError) as caught, demo.change() as draft:
        draft.put_user_policy("alice", "Broken", bad)
    assert caught.value.code == "MalformedPolicyDocument"
    assert "user/alice/Broken: Statement[1].Effect" in caught.value.message
    assert [issue.location for issue in caught.value.issues] == ["Statement[1].Effect"]
    with pytest.raises(MalformedPolicyDocumentError, match="not a policy document|Syntax"), demo.change() as draft:
        draft.create_policy("Text", "{not json")
    assert demo.revision() == 1


def test_unknown_names_and_bad_input_have_their_codes(demo: SQLDirectory) -> None:
    cases = [(NoSuchEntityError, lambda d: d.attach_user_policy("alice", "Nope")),
             (NoSuchEntityError, lambda d: d.create_access_key("nobody")),
             (NoSuchEntityError, lambda d: d.detach_role_policy("partner", "AssumePartner")),
             (NoSuchEntityError, lambda d: d.delete_access_key("alice", "AKIADEMOBOB000000001")),
             (InvalidInputError, lambda d: d.create_user("no spaces")),
             (InvalidInputError, lambda d: d.create_user("x", path="ops")),
             (InvalidInputError, lambda d: d.update_access_key("alice", "AKIADEMOALICE0000001", "Paused")),
             (InvalidInputError, lambda d: d.update_role("partner", max_session_duration=60)),
             (DeleteConflictError, lambda d: d.delete_group("readers")),
             (DeleteConflictError, lambda d: d.delete_policy("OrdersReadOnly")),
             (EntityAlreadyExistsError, lambda d: d.create_login_profile("alice", "another password"))]
    for error, action in cases:
        with pytest.raises(error), demo.change() as draft:
            action(draft)
    assert demo.revision() == 1


def test_policy_versions_follow_iams_rules(demo: SQLDirectory) -> None:
    with demo.change() as draft:
        versions = [draft.create_policy_version("AssumePartner", READ) for _ in range(4)]
        with pytest.raises(LimitExceededError):
            draft.create_policy_version("AssumePartner", READ)
        with pytest.raises(DeleteConflictError):
            draft.delete_policy_version("AssumePartner", "v1")
        draft.set_default_policy_version("AssumePartner", "v3")
        draft.delete_policy_version("AssumePartner", "v1")
    assert versions == ["v2", "v3", "v4", "v5"]
    policy = demo.records()["policies"]["AssumePartner"]
    assert policy["default_version"] == "v3" and set(policy["versions"]) == {"v2", "v3", "v4", "v5"}
    assert demo.load().snapshot.user("alice").policies[0].document == READ  # type: ignore[union-attr]


def test_a_change_that_breaks_the_directory_is_refused_whole(demo: SQLDirectory) -> None:
    # Whatever the block leaves (here an edit of the records no action checks) is validated whole at its end.
    with pytest.raises(ValidationError) as caught, demo.change() as draft:
        draft.create_user("erin")
        draft.records["accounts"]["111122223333"]["guardrails"].append("Missing")
    assert "accounts.111122223333.guardrails[1]: policy 'Missing' does not exist" in caught.value.message
    assert demo.load().snapshot.user("erin") is None and demo.revision() == 1


def test_an_exception_in_the_block_writes_nothing(demo: SQLDirectory) -> None:
    with pytest.raises(RuntimeError), demo.change() as draft:
        draft.create_user("frank")
        raise RuntimeError("the caller changed its mind")
    assert demo.load().snapshot.user("frank") is None and demo.revision() == 1


def test_a_change_that_changes_nothing_keeps_the_revision(demo: SQLDirectory) -> None:
    with demo.change() as draft:
        draft.attach_user_policy("alice", "AssumePartner")  # attached already: IAM answers success
    assert demo.revision() == 1


def test_renaming_keeps_the_identity_and_boundaries_attach(demo: SQLDirectory) -> None:
    before = demo.load().snapshot.user("bob")
    with demo.change() as draft:
        draft.update_user("bob", new_user_name="robert", new_path="/staff/")
        draft.put_user_permissions_boundary("robert", "OrdersReadOnly")
        draft.tag_user("robert", {"level": "2"})
        draft.untag_user("robert", ["team"])
        draft.update_access_key("robert", "AKIADEMOBOB000000001", "Inactive")
    after = demo.load().snapshot.user("robert")
    assert before is not None and after is not None and after.id == before.id
    assert after.arn.endswith(":user/staff/robert") and dict(after.tags) == {"level": "2"}
    assert after.boundary is not None and not after.access_keys[0].active


def test_mfa_needs_two_consecutive_codes(demo: SQLDirectory) -> None:
    import pyotp

    seed = pyotp.random_base32()
    now = int(demo.clock())
    totp = pyotp.TOTP(seed)
    with demo.change() as draft:
        draft.create_user("gina")
        with pytest.raises(InvalidAuthenticationCodeError):
            draft.enable_mfa_device("gina", seed, totp.at(now), totp.at(now))
        draft.enable_mfa_device("gina", seed, totp.at(now - 30), totp.at(now))
    user = demo.load().snapshot.user("gina")
    assert user is not None and user.totp is not None and user.totp.secret == seed


def test_a_bad_state_in_the_database_is_named_like_a_bad_file(demo: SQLDirectory) -> None:
    with demo.engine.begin() as connection:
        connection.execute(update(schema.users).where(schema.users.c.name == "bob").values(path="staff"))
        bump_revision(connection)
    with pytest.raises(ConfigurationError, match=r"users\.bob\.path: a path starts and ends with '/'"):
        demo.load()
