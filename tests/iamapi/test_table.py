"""The action table against botocore's ``iam`` model (what boto3 and the AWS CLI send): every action is IAM's, each
member is the model's with the model's kind, every member the model requires is required here; and whatever
botocore's own Query serializer sends for an action, the decoder reads back as the values given (hypothesis)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import botocore.session
import pytest
from botocore.serialize import create_serializer
from hypothesis import given
from hypothesis import strategies as st

from iam_middleware._awsquery import BOOLEAN, INTEGER, STRING, ListOf, Struct, decode
from iam_middleware.iamapi import ACTIONS

MODEL = botocore.session.get_session().get_service_model("iam")


def kind_of(shape: Any) -> Any:
    """The decoder's kind for a botocore shape."""
    if shape.type_name == "list":
        return ListOf(kind_of(shape.member))
    if shape.type_name == "structure":
        return Struct({name: kind_of(member) for name, member in shape.members.items()})
    return {"string": STRING, "integer": INTEGER, "boolean": BOOLEAN}[shape.type_name]


def same_kind(ours: Any, theirs: Any) -> bool:
    """Ours may take fewer members of a structure than the model has (never other ones)."""
    if isinstance(ours, Struct):
        return isinstance(theirs, Struct) and all(
            name in theirs.members and same_kind(kind, theirs.members[name]) for name, kind in ours.members.items())
    if isinstance(ours, ListOf):
        return isinstance(theirs, ListOf) and same_kind(ours.member, theirs.member)
    return bool(ours == theirs)


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_every_action_is_iams_with_the_models_member_names(name: str) -> None:
    operation = MODEL.operation_model(name)  # raises for a name that is not an IAM action
    shape = operation.input_shape
    action = ACTIONS[name]
    if shape is None:  # an action without parameters (GenerateCredentialReport, GetCredentialReport)
        assert not action.members and not action.required, name
        return
    for member, kind in action.members.items():
        assert member in shape.members, f"{name}.{member} is not in botocore's model"
        assert same_kind(kind, kind_of(shape.members[member])), f"{name}.{member}: {kind} is not the model's kind"
    assert set(shape.required_members) <= set(action.required), name
    assert set(action.required) <= set(action.members), name


#: IAM actions the DirectoryDraft takes that the API does not answer yet: each is one row of ACTIONS to add.
TO_WIRE: set[str] = set()


def test_the_table_has_every_action_of_the_directory_draft() -> None:
    """Each IAM action the DirectoryDraft takes is answered, but for those still to wire (a new one fails here
    until it is added to ACTIONS or to TO_WIRE); set_password_hash is not an IAM action."""
    from iam_middleware.directory.sql import DirectoryDraft

    draft_actions = {name for name in vars(DirectoryDraft) if not name.startswith("_") and callable(
        getattr(DirectoryDraft, name))} - {"set_password_hash"}
    camel = {"".join(part.upper() if part == "mfa" else part.capitalize() for part in name.split("_"))
             for name in draft_actions}
    assert camel - set(ACTIONS) <= TO_WIRE, camel - set(ACTIONS)


names = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs",)),
                min_size=1, max_size=12)
tags = st.lists(st.fixed_dictionaries({"Key": names, "Value": st.text(max_size=8)}), max_size=4)
contexts = st.lists(st.fixed_dictionaries({"ContextKeyName": names, "ContextKeyValues": st.lists(names, max_size=3),
                                           "ContextKeyType": st.sampled_from(["string", "stringList"])}), max_size=3)


def sent(operation: str, params: dict[str, Any]) -> dict[str, str]:
    """The form botocore's Query serializer sends for ``params``."""
    serializer = create_serializer("query", include_validation=False)  # botocore's client validates before
    request = serializer.serialize_to_request(params, MODEL.operation_model(operation))
    form = urlencode(request["body"])
    return dict(parse_qsl(form, keep_blank_values=True, strict_parsing=True))


@given(name=names, path=st.sampled_from(["/", "/staff/"]), tags=tags)
def test_botocores_create_user_reads_back(name: str, path: str, tags: list[dict[str, str]]) -> None:
    params = {"UserName": name, "Path": path, "Tags": tags}
    form = sent("CreateUser", params)
    assert form["Action"] == "CreateUser" and form["Version"] == "2010-05-08"
    decoded = decode(form, ACTIONS["CreateUser"].members, action="CreateUser")
    assert decoded == params


@given(actions=st.lists(names, min_size=1, max_size=4), context=contexts, size=st.integers(1, 1000))
def test_botocores_simulate_principal_policy_reads_back(actions: list[str], context: list[dict[str, Any]],
                                                        size: int) -> None:
    params = {"PolicySourceArn": "arn:app:iam::111122223333:user/alice", "ActionNames": actions,
              "ContextEntries": context, "MaxItems": size}
    decoded = decode(sent("SimulatePrincipalPolicy", params), ACTIONS["SimulatePrincipalPolicy"].members,
                     action="SimulatePrincipalPolicy")
    assert decoded == params  # an empty list is sent as "Name=", and read back as []


@given(only=st.booleans(), filters=st.lists(st.sampled_from(["User", "Role", "Group"]), max_size=3))
def test_booleans_and_string_lists_read_back(only: bool, filters: list[str]) -> None:
    assert decode(sent("ListPolicies", {"OnlyAttached": only}), ACTIONS["ListPolicies"].members,
                  action="ListPolicies") == {"OnlyAttached": only}
    assert decode(sent("GetAccountAuthorizationDetails", {"Filter": filters}),
                  ACTIONS["GetAccountAuthorizationDetails"].members,
                  action="GetAccountAuthorizationDetails") == {"Filter": filters}
