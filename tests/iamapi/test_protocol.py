"""The IAM API as a protocol: SigV4 for the signing name ``iam`` only (no bearer token, no cookie, no signature
for another service), POST only, IAM's ``Version``, a parameter the action does not take refused, refusals in AWS's
XML, and every call recorded by the gate's decision log without its secrets."""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import botocore.auth
import httpx
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .conftest import ACCOUNT, ALICE_KEY, Live, arn

NS = "{https://iam.amazonaws.com/doc/2010-05-08/}"


def call(live: Live, parameters: dict[str, str], *, key: tuple[str, str] | None = None, service: str = "iam",
         method: str = "POST", headers: dict[str, str] | None = None) -> httpx.Response:
    """A Query call signed by botocore (``key`` None: unsigned)."""
    url = f"{live.base}/iam/"
    body = urlencode(parameters)
    request = AWSRequest(method=method, url=url, data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                                  **(headers or {})})
    if key is not None:
        botocore.auth.SigV4Auth(Credentials(*key), service, "local").add_auth(request)
    return httpx.request(method, url, content=body.encode(), headers=dict(request.headers.items()))


def refusal(response: httpx.Response) -> tuple[int, str]:
    root = ET.fromstring(response.content)
    assert root.tag == f"{NS}ErrorResponse" and root.find(f"{NS}RequestId") is not None
    error = root.find(f"{NS}Error")
    assert error is not None and error.findtext(f"{NS}Type") == ("Sender" if response.status_code < 500 else
                                                                 "Receiver")
    return response.status_code, error.findtext(f"{NS}Code") or ""


GET_USER = {"Action": "GetUser", "Version": "2010-05-08", "UserName": "alice"}


def test_only_a_sigv4_signature_for_iam_is_taken(live: Live) -> None:
    admin = live.admin_key
    assert call(live, GET_USER, key=admin).status_code == 200
    assert refusal(call(live, GET_USER)) == (403, "MissingAuthenticationToken")
    assert refusal(call(live, GET_USER, key=admin, service="orders"))[0] in (400, 403)
    bearer = call(live, GET_USER, headers={"Authorization": "Bearer not-even-a-jwt"})
    assert refusal(bearer) == (403, "MissingAuthenticationToken")  # a bearer token never counts here
    cookie = call(live, GET_USER, headers={"Cookie": "iam_session=anything"})
    assert refusal(cookie) == (403, "MissingAuthenticationToken")
    assert refusal(call(live, GET_USER, key=(admin[0], "not-the-secret"))) == (403, "SignatureDoesNotMatch")


def test_the_form_and_the_action_are_iams(live: Live) -> None:
    admin = live.admin_key
    assert refusal(call(live, {"Version": "2010-05-08"}, key=admin)) == (400, "MissingAction")
    assert refusal(call(live, {**GET_USER, "Action": "CreateBucket"}, key=admin)) == (400, "InvalidAction")
    assert refusal(call(live, {**GET_USER, "Version": "2011-06-15"}, key=admin)) == (400, "ValidationError")
    assert refusal(call(live, {**GET_USER, "Color": "blue"}, key=admin)) == (400, "ValidationError")
    assert refusal(call(live, {"Action": "CreateUser", "Version": "2010-05-08"}, key=admin)) == (
        400, "ValidationError")
    assert refusal(call(live, {"Action": "TagUser", "Version": "2010-05-08", "UserName": "alice",
                               "Tags.member.2.Key": "a", "Tags.member.2.Value": "b"}, key=admin)) == (
        400, "ValidationError")
    got = httpx.get(f"{live.base}/iam/?Action=ListUsers&Version=2010-05-08")
    assert refusal(got) == (405, "MethodNotAllowed") and got.headers["allow"] == "POST"
    as_json = httpx.post(f"{live.base}/iam/", json=GET_USER)
    assert refusal(as_json)[1] == "UnsupportedMediaType"


def test_an_answer_is_iams_xml_and_says_nothing_twice(live: Live) -> None:
    response = call(live, {"Action": "CreateAccessKey", "Version": "2010-05-08", "UserName": "bob"},
                    key=live.admin_key)
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    root = ET.fromstring(response.content)
    assert root.tag == f"{NS}CreateAccessKeyResponse"
    assert root.findtext(f"{NS}ResponseMetadata/{NS}RequestId") == response.headers["x-amzn-requestid"]
    secret = root.findtext(f"{NS}CreateAccessKeyResult/{NS}AccessKey/{NS}SecretAccessKey")
    assert secret
    deleted = call(live, {"Action": "DeleteAccessKey", "Version": "2010-05-08", "UserName": "bob",
                          "AccessKeyId": root.findtext(f"{NS}CreateAccessKeyResult/{NS}AccessKey/{NS}AccessKeyId")
                          or ""}, key=live.admin_key)
    assert [child.tag for child in ET.fromstring(deleted.content)] == [f"{NS}ResponseMetadata"]


def test_every_call_is_recorded_without_its_secrets(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="iam_middleware")
    made = call(live, {"Action": "CreateAccessKey", "Version": "2010-05-08", "UserName": "bob"},
                key=live.admin_key)
    secret = ET.fromstring(made.content).findtext(f".//{NS}SecretAccessKey") or ""
    denied = call(live, {"Action": "CreateAccessKey", "Version": "2010-05-08", "UserName": "bob"}, key=ALICE_KEY)
    assert refusal(denied) == (403, "AccessDenied")
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "iam_middleware.decisions"]
    allowed, refused = records[-2], records[-1]
    assert (allowed["action"], allowed["resource"], allowed["decision"]) == (
        "iam:CreateAccessKey", arn("user", "bob"), "Allowed")
    assert allowed["principal"] == arn("user", "admin")
    assert (refused["principal"], refused["decision"], refused["status"]) == (
        arn("user", "alice"), "ImplicitlyDenied", 403)
    assert secret and all(secret not in r.getMessage() for r in caplog.records)
    assert ACCOUNT in allowed["resource"]


def test_a_name_is_iams_before_anything_is_looked_up(live: Live) -> None:
    """The directory's marker for an account's root user (``<root_account>``) is no user name a call can give: an
    administrator of users must never reach the root user's credentials."""
    for parameters in ({"Action": "CreateAccessKey", "UserName": "<root_account>"},
                       {"Action": "GetUser", "UserName": "alice bob"},
                       {"Action": "GetRole", "RoleName": "x" * 129}):
        response = call(live, {**parameters, "Version": "2010-05-08"}, key=live.admin_key)
        assert refusal(response) == (400, "ValidationError")
    assert live.directory.records()["accounts"]["111122223333"].get("root") is None
