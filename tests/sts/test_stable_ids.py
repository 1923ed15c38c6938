"""Credentials are bound to the user's or role's unique id, not its name: a user or role deleted and re-created under
the same name (with a new ``id``) is a new identity that no earlier session or temporary credential reaches, while a
directory reload that keeps the id (a revert) keeps them working."""

from __future__ import annotations

from typing import Any

import pytest

from iam_middleware import IAM, ConfigurationError
from iam_middleware._exceptions import AuthenticationError, InvalidTokenError

from ._support import (
    EXAMPLES,
    PARTNER,
    PASSWORD,
    Client,
    Clock,
    code,
    credentials_of,
    demo_data,
    make_iam,
    signed_view,
)

NEW_USER_ID = "AIDA" + "N" * 17
NEW_ROLE_ID = "AROA" + "N" * 17


def reloaded(iam: IAM, change: Any = None) -> None:
    """Swap in the demo directory, changed by ``change(data)``, as a reload would (same process, same store)."""
    data = demo_data()
    if change is not None:
        change(data)
    iam.snapshots.swap(IAM.from_dict(data, base_dir=EXAMPLES).snapshot)


def recreate_user(name: str) -> Any:
    return lambda data: data["users"][name].update(id=NEW_USER_ID)


def recreate_role(name: str) -> Any:
    return lambda data: data["roles"][name].update(id=NEW_ROLE_ID)


def test_a_login_session_ends_when_its_user_is_recreated(iam: IAM, clock: Clock) -> None:
    token = iam.login("bob", PASSWORD, code(iam, "bob", clock.now), now=clock.now).token
    assert iam.credentials.from_token(token).arn.endswith(":user/bob")
    reloaded(iam)  # a reload that keeps the user as it was (its derived id): the session goes on
    assert iam.credentials.from_token(token).arn.endswith(":user/bob")
    reloaded(iam, recreate_user("bob"))
    with pytest.raises(InvalidTokenError) as ended:
        iam.credentials.from_token(token)
    assert ended.value.code == "SessionRevoked"
    clock.tick(30)  # the re-created user logs in afresh with a new code
    assert iam.login("bob", PASSWORD, code(iam, "bob", clock.now), now=clock.now).token


def test_get_session_token_credentials_end_when_their_user_is_recreated(client: Client, iam: IAM) -> None:
    key = credentials_of(client.signed("/GetSessionToken", {"code": code(iam, "alice", iam.clock())}))
    request = signed_view("GET", "https://api.example/orders", key=key)
    assert iam.authenticate(request) is not None
    reloaded(iam, recreate_user("alice"))
    with pytest.raises(AuthenticationError) as ended:
        iam.authenticate(signed_view("GET", "https://api.example/orders", key=key))
    assert ended.value.code == "InvalidClientTokenId"


def test_role_session_credentials_end_when_their_role_is_recreated(client: Client, iam: IAM) -> None:
    key = credentials_of(client.signed("/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "nightly"}))
    assert iam.authenticate(signed_view("GET", "https://api.example/orders", key=key)) is not None
    reloaded(iam)
    assert iam.authenticate(signed_view("GET", "https://api.example/orders", key=key)) is not None
    reloaded(iam, recreate_role("partner"))
    with pytest.raises(AuthenticationError) as ended:
        iam.authenticate(signed_view("GET", "https://api.example/orders", key=key))
    assert ended.value.code == "InvalidClientTokenId"


def test_a_one_time_code_spent_at_login_cannot_be_spent_on_get_session_token(client: Client, iam: IAM,
                                                                             clock: Clock) -> None:
    # Both paths guard the same user's last accepted step under the user's id.
    spent = code(iam, "alice", clock.now)
    assert iam.login("alice", PASSWORD, spent, now=clock.now).token
    response = client.signed("/GetSessionToken", {"code": spent})
    assert response.status_code == 401 and response.json()["error"] == "OTPAlreadyUsed", response.text


@pytest.mark.parametrize(("value", "problem"), [
    ("AIDA123", "users.bob.id: an id is AIDA and 17 more"),
    ("AROA" + "N" * 17, "users.bob.id: an id is AIDA and 17 more"),
    (42, "users.bob.id: an id is AIDA and 17 more"),
])
def test_a_malformed_id_is_refused_at_load_with_its_place_named(value: object, problem: str) -> None:
    data = demo_data()
    data["users"]["bob"]["id"] = value
    with pytest.raises(ConfigurationError, match=problem):
        IAM.from_dict(data, base_dir=EXAMPLES)


def test_two_entries_with_one_id_are_refused(clock: Clock) -> None:
    data = demo_data()
    data["users"]["bob"]["id"] = NEW_USER_ID
    data["users"]["alice"]["id"] = NEW_USER_ID
    with pytest.raises(ConfigurationError, match=f"{NEW_USER_ID} is also the id of users"):
        make_iam(clock, data)
