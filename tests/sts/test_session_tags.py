"""AssumeRole's session tags, source identity, external id and one-time code (JSON API): what the trust policy must
allow (sts:TagSession, sts:SetSourceIdentity, with aws:RequestTag/*, aws:TagKeys, sts:SourceIdentity,
sts:ExternalId and the code's MFA in its context), what policies then see (aws:PrincipalTag/*, aws:SourceIdentity),
role chaining (transitive tags and source identity carried over, never changed), AWS's limits, GetCallerIdentity."""

from __future__ import annotations

import json
import random
import string
from typing import Any

import pytest

from iam_middleware._iam import IAM
from iam_middleware._principal import Principal

from ._support import (
    ACCOUNT,
    ALICE,
    PARTNER,
    Client,
    Clock,
    code,
    credentials_of,
    demo_data,
    make_iam,
    signed_view,
)

AUDITOR = f"arn:app:iam::{ACCOUNT}:role/auditor"
PLAIN = f"arn:app:iam::{ACCOUNT}:role/plain"
ORDER = f"arn:app:orders::{ACCOUNT}:order/42"
ALICE_MFA = f"arn:app:iam::{ACCOUNT}:mfa/alice"
TAGGED = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]


def statement(principal: str, actions: list[str] | str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": actions}
    if condition:
        found["Condition"] = condition
    return found


def trust(*statements: dict[str, Any]) -> dict[str, str]:
    return {"document": json.dumps({"Version": "2012-10-17", "Statement": list(statements)})}


def directory(*, partner_trust: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The demo, with roles whose policies read session tags and source identity.

    partner: alice may assume it, tag the session (keys team and cost only, never team=admins) and set its source
    identity to her own user name, as may tokens of idp.example; its orders policy reads aws:PrincipalTag/team and
    aws:SourceIdentity.
    auditor: partner sessions may assume it with tags and source identity; the same policy.
    plain: alice and partner sessions may assume it, without tags or source identity.
    """
    data = demo_data()
    data["policies"]["TeamOrders"] = {"document": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*",
         "Condition": {"StringEquals": {"aws:PrincipalTag/team": "blue"}}},
        {"Effect": "Allow", "Action": "orders:ListOrders", "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceIdentity": "alice"}}}]}}
    data["roles"]["partner"]["policies"] = ["TeamOrders"]
    data["roles"]["partner"]["tags"] = {"Team": "gray", "tier": "2"}
    data["roles"]["partner"]["trust_policy"] = trust(*(partner_trust or [
        statement(ALICE, "sts:AssumeRole"),
        statement(ALICE, "sts:TagSession", {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "cost"]},
                                            "StringNotEquals": {"aws:RequestTag/team": "admins"}}),
        statement(ALICE, "sts:SetSourceIdentity", {"StringEquals": {"sts:SourceIdentity": "${aws:username}"}}),
        {"Effect": "Allow", "Principal": {"Federated": "idp.example"}, "Action": "sts:AssumeRoleWithWebIdentity"},
    ]))
    data["roles"]["auditor"] = {"policies": ["TeamOrders"], "trust_policy": trust(statement(PARTNER, TAGGED))}
    data["roles"]["plain"] = {"policies": ["TeamOrders"],
                              "trust_policy": trust(statement(ALICE, "sts:AssumeRole"),
                                                    statement(PARTNER, "sts:AssumeRole"))}
    return data


@pytest.fixture
def iam(clock: Clock) -> IAM:
    return make_iam(clock, directory())


def assume(client: Client, role: str = PARTNER, *, key: tuple[str, ...] | None = None, **fields: Any) -> Any:
    body = {"RoleArn": role, "RoleSessionName": "tagged", **fields}
    return client.signed("/AssumeRole", body, key=key) if key is not None else client.signed("/AssumeRole", body)


def principal_of(iam: IAM, key: tuple[str, str, str]) -> Principal:
    principal = iam.authenticate(signed_view("GET", "https://api.example/orders/42", key=key))
    assert principal is not None
    return principal


def allowed(iam: IAM, key: tuple[str, str, str], action: str) -> bool:
    return iam.authorize(principal_of(iam, key), action, ORDER).allowed


def tags(**pairs: str) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in pairs.items()]


def test_session_tags_are_principal_tags_that_policies_read(client: Client, iam: IAM) -> None:
    blue = assume(client, Tags=tags(team="blue", cost="7"))
    assert blue.status_code == 200, blue.text
    assert 0 < blue.json()["PackedPolicySize"] <= 100
    principal = principal_of(iam, credentials_of(blue))
    keys = principal.context_keys(0)
    # A session tag overrides the role's tag of the same key, compared without case (the role says Team=gray).
    assert keys["aws:PrincipalTag/team"] == "blue" and "aws:PrincipalTag/Team" not in keys
    assert sorted(keys["aws:PrincipalTagKeys"]) == ["cost", "team", "tier"]
    assert allowed(iam, credentials_of(blue), "orders:GetOrder")
    red = assume(client, Tags=tags(team="red"))
    assert red.status_code == 200, red.text
    assert not allowed(iam, credentials_of(red), "orders:GetOrder")  # the tag decides


def test_tagging_a_session_needs_sts_tag_session_in_the_trust_policy(client: Client) -> None:
    refused = assume(client, PLAIN, Tags=tags(team="blue"))
    assert refused.status_code == 403
    assert refused.json()["message"] == (f"User: {ALICE} is not authorized to perform: sts:TagSession on resource: "
                                         f"{PLAIN}")
    assert assume(client, PLAIN).status_code == 200


@pytest.mark.parametrize(("pairs", "status"), [
    ({"team": "blue", "cost": "7"}, 200),
    ({"project": "x"}, 403),  # aws:TagKeys: team and cost only
    ({"team": "admins"}, 403),  # aws:RequestTag/team
])
def test_the_trust_policy_reads_the_request_tags(client: Client, pairs: dict[str, str], status: int) -> None:
    assert assume(client, Tags=tags(**pairs)).status_code == status


def test_source_identity_is_aws_source_identity_and_needs_sts_set_source_identity(client: Client, iam: IAM) -> None:
    response = assume(client, SourceIdentity="alice")
    assert response.status_code == 200, response.text
    assert response.json()["SourceIdentity"] == "alice" and "PackedPolicySize" not in response.json()
    key = credentials_of(response)
    assert principal_of(iam, key).context_keys(0)["aws:sourceidentity"] == "alice"
    assert allowed(iam, key, "orders:ListOrders")
    assert not allowed(iam, credentials_of(assume(client)), "orders:ListOrders")  # no source identity, no list
    # sts:SourceIdentity is in the trust policy's context: alice may set her own user name only.
    assert assume(client, SourceIdentity="bob").status_code == 403
    refused = assume(client, PLAIN, SourceIdentity="alice")
    assert refused.status_code == 403 and "sts:SetSourceIdentity" in refused.json()["message"]


def test_role_chaining_keeps_transitive_tags_and_the_source_identity(client: Client, iam: IAM) -> None:
    first = assume(client, Tags=tags(team="blue", cost="7"), TransitiveTagKeys=["TEAM"], SourceIdentity="alice")
    assert first.status_code == 200, first.text
    chained = assume(client, AUDITOR, key=credentials_of(first))
    assert chained.status_code == 200, chained.text
    assert chained.json()["SourceIdentity"] == "alice"
    key = credentials_of(chained)
    keys = principal_of(iam, key).context_keys(0)
    # team passed on (with the key's spelling of Tags), cost did not; the auditor role has no tags of its own.
    assert keys["aws:PrincipalTagKeys"] == ["team"] and keys["aws:sourceidentity"] == "alice"
    assert allowed(iam, key, "orders:GetOrder") and allowed(iam, key, "orders:ListOrders")
    record = iam.credentials.temporary.lookup(key[0])
    assert record is not None and record.transitive_tag_keys == ("team",)
    # ...and on again from the auditor session: still transitive, the same source identity.
    data = directory()
    data["roles"]["partner"]["trust_policy"] = trust(statement(AUDITOR, TAGGED))
    again = Client(make_iam(iam.clock, data, store=iam.store)).signed(
        "/AssumeRole", {"RoleArn": PARTNER, "RoleSessionName": "third"}, key=key)
    assert again.status_code == 200, again.text
    third = principal_of(iam, credentials_of(again)).context_keys(0)
    assert third["aws:PrincipalTag/team"] == "blue" and third["aws:sourceidentity"] == "alice"


def test_a_chain_never_changes_a_transitive_tag_nor_the_source_identity(client: Client) -> None:
    key = credentials_of(assume(client, Tags=tags(team="blue"), TransitiveTagKeys=["team"], SourceIdentity="alice"))
    for fields in ({"SourceIdentity": "mallory"}, {"Tags": tags(Team="red")}):
        refused = assume(client, AUDITOR, key=key, **fields)
        assert (refused.status_code, refused.json()["error"]) == (400, "ValidationError"), fields
    assert assume(client, AUDITOR, key=key, SourceIdentity="alice").status_code == 200  # the same one: no change
    assert assume(client, AUDITOR, key=key, Tags=tags(cost="7")).status_code == 200  # another key: a new tag


def test_a_chained_session_with_inherited_attributes_needs_the_permissions_too(client: Client) -> None:
    tagged = credentials_of(assume(client, Tags=tags(team="blue"), TransitiveTagKeys=["team"]))
    refused = assume(client, PLAIN, key=tagged)
    assert refused.status_code == 403 and "sts:TagSession" in refused.json()["message"]
    identified = credentials_of(assume(client, SourceIdentity="alice"))
    refused = assume(client, PLAIN, key=identified)
    assert refused.status_code == 403 and "sts:SetSourceIdentity" in refused.json()["message"]
    untransitive = credentials_of(assume(client, Tags=tags(team="blue")))
    assert assume(client, PLAIN, key=untransitive).status_code == 200


def _word(size: int, rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(size))


RNG = random.Random(13)


@pytest.mark.parametrize("fields", [
    {"Tags": [{"Key": f"k{n}", "Value": "v"} for n in range(51)]},
    {"Tags": tags(**{"k" * 129: "v"})},
    {"Tags": tags(team="v" * 257)},
    {"Tags": tags(**{"aws:team": "blue"})},
    {"Tags": tags(**{"a*b": "blue"})},
    {"Tags": tags(team="blue<script>")},
    {"Tags": [{"Key": "team", "Value": "blue"}, {"Key": "TEAM", "Value": "red"}]},
    {"Tags": [{"Key": "team"}]},
    {"Tags": [{"Key": "team", "Value": "blue", "Extra": "x"}]},
    {"Tags": {"team": "blue"}},
    {"Tags": tags(team="blue"), "TransitiveTagKeys": ["cost"]},
    {"TransitiveTagKeys": "team"},
    {"SourceIdentity": "a"},
    {"SourceIdentity": "aws:alice"},
    {"SourceIdentity": "has space"},
    {"SourceIdentity": None},
    {"ExternalId": "x"},
])
def test_malformed_tags_and_source_identities_are_validation_errors(client: Client, fields: dict[str, Any]) -> None:
    response = assume(client, **fields)
    assert (response.status_code, response.json()["error"]) == (400, "ValidationError"), response.text


def test_tags_and_policy_past_the_packed_limit_are_packed_policy_too_large(client: Client) -> None:
    many = [{"Key": _word(128, RNG), "Value": _word(256, RNG)} for _ in range(50)]
    response = assume(client, Tags=many)
    assert (response.status_code, response.json()["error"]) == (400, "PackedPolicyTooLarge")
    assert "%" in response.json()["message"]
    # The largest session policy AWS allows fits by itself, whatever it holds.
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder",
                                                                 "Resource": "arn:app:orders:::order/x"}]})
    policy = policy[:-3] + ', "Sid": "' + _word(2048 - len(policy) - 11, RNG) + '"}]}'
    assert len(policy) == 2048
    fits = assume(client, Policy=policy)
    assert fits.status_code == 200, fits.text
    assert fits.json()["PackedPolicySize"] <= 100


def test_a_one_time_code_in_assume_role_gives_the_session_mfa(clock: Clock) -> None:
    data = directory(partner_trust=[statement(ALICE, "sts:AssumeRole",
                                              {"Bool": {"aws:MultiFactorAuthPresent": "true"}})])
    iam = make_iam(clock, data)
    client = Client(iam)
    assert assume(client).status_code == 403  # a long-term key carries no MFA
    response = assume(client, SerialNumber=ALICE_MFA, TokenCode=code(iam, "alice", clock.now))
    assert response.status_code == 200, response.text
    principal = principal_of(iam, credentials_of(response))
    assert principal.mfa_present and principal.mfa_time == clock.now
    clock.tick(30)
    wrong_device = assume(client, SerialNumber=f"arn:app:iam::{ACCOUNT}:mfa/bob",
                          TokenCode=code(iam, "alice", clock.now))
    assert (wrong_device.status_code, wrong_device.json()["error"]) == (403, "AccessDenied")
    alone = assume(client, TokenCode=code(iam, "alice", clock.now))
    assert (alone.status_code, alone.json()["error"]) == (400, "MissingParameter")
    assert assume(client, SerialNumber=ALICE_MFA, TokenCode="000000").status_code == 401
    session = credentials_of(response)
    data["roles"]["plain"]["trust_policy"] = trust(statement(PARTNER, "sts:AssumeRole"))
    from_role = assume(Client(make_iam(clock, data, store=iam.store)), PLAIN, key=session, SerialNumber=ALICE_MFA,
                       TokenCode=code(iam, "alice", clock.now))
    assert (from_role.status_code, from_role.json()["error"]) == (403, "NoMFADevice")


def test_the_external_id_is_sts_external_id(clock: Clock) -> None:
    client = Client(make_iam(clock, directory(partner_trust=[
        statement(ALICE, "sts:AssumeRole", {"StringEquals": {"sts:ExternalId": "partner-7f3a"}})])))
    assert assume(client).status_code == 403
    assert assume(client, ExternalId="partner-other").status_code == 403
    assert assume(client, ExternalId="partner-7f3a").status_code == 200


def test_get_caller_identity_says_who_calls_without_any_permission(client: Client, iam: IAM) -> None:
    user = client.signed("/GetCallerIdentity", {})
    alice = iam.snapshot.user("alice")
    assert alice is not None
    assert user.json() == {"UserId": alice.id, "Account": ACCOUNT, "Arn": ALICE}
    session = client.signed("/GetCallerIdentity", {}, key=credentials_of(assume(client)))
    role = iam.snapshot.role(PARTNER)
    assert role is not None
    assert session.json() == {"UserId": f"{role.id}:tagged", "Account": ACCOUNT,
                              "Arn": f"arn:app:sts::{ACCOUNT}:assumed-role/partner/tagged"}
    assert client.signed("/GetCallerIdentity", {"extra": 1}).status_code == 400
    assert client.post("/GetCallerIdentity", {}).status_code == 401
