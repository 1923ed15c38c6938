"""The token service's AWS Query API in process: AWS's exact XML shapes for each action and for refusals (codes and
statuses), the parameter forms botocore sends (X.member.N lists), SigV4 for the signing name ``sts`` only (no cookie,
no bearer token, no signature made for another service), presigned GetCallerIdentity URLs, escaping, and the same
answers from the Flask and Django shells."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any
from unittest.mock import patch
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

import boto3
import botocore.auth
import httpx
import pytest
from conformance import _apps
from hypothesis import given, settings
from hypothesis import strategies as st

from iam_middleware._iam import IAM
from iam_middleware.sts._xml import NAMESPACE, error_document, response_document

from ._support import (
    ACCOUNT,
    ALICE,
    ALICE_KEY,
    BASE,
    CAROL_KEY,
    PARTNER,
    START,
    Client,
    Clock,
    botocore_request,
    code,
    demo_data,
    idp_token,
    make_iam,
)

FORM = "application/x-www-form-urlencoded; charset=utf-8"
VERSION = {"Version": "2011-06-15"}
ALICE_MFA = f"arn:app:iam::{ACCOUNT}:mfa/alice"


def query(client: Client, parameters: Mapping[str, str], *, key: tuple[str, ...] | None = ALICE_KEY,
          service: str = "sts", headers: Mapping[str, str] | None = None) -> httpx.Response:
    """A Query call as botocore makes it: a form POST to the service's root, signed for ``service``."""
    body = urlencode(parameters).encode()
    wire = {"content-type": FORM, **(headers or {})}
    if key is None:
        return client.request("POST", "/", content=body, headers=wire)
    signed = botocore_request("POST", f"{BASE}{client.prefix}/", body=body, headers=wire, key=key, service=service)
    return client.request("POST", "/", content=signed.body, headers=dict(signed.headers.items()))


def tree(response: httpx.Response) -> tuple[str, Any]:
    """(root name, nested content) of an answer of ours: elements as dicts, leaves as their text."""
    assert response.headers["content-type"] == "text/xml"
    root = ElementTree.fromstring(response.content)  # noqa: S314 - the service's own output, not untrusted input

    def content(element: ElementTree.Element) -> Any:
        children = list(element)
        if not children:
            return element.text or ""
        names = [child.tag.removeprefix(f"{{{NAMESPACE}}}") for child in children]
        assert len(set(names)) == len(names), names
        return {name: content(child) for name, child in zip(names, children, strict=True)}

    assert root.tag.startswith(f"{{{NAMESPACE}}}"), root.tag
    return root.tag.removeprefix(f"{{{NAMESPACE}}}"), content(root)


def error_of(response: httpx.Response) -> tuple[int, str]:
    """(status, code) of a refusal, after checking it is AWS's ErrorResponse exactly."""
    name, body = tree(response)
    request_id = response.headers["x-amzn-requestid"]
    assert name == "ErrorResponse" and set(body) == {"Error", "RequestId"} and body["RequestId"] == request_id
    assert set(body["Error"]) == {"Type", "Code", "Message"} and body["Error"]["Message"]
    assert body["Error"]["Type"] == ("Sender" if response.status_code < 500 else "Receiver")
    assert response.headers["cache-control"] == "no-store"
    return response.status_code, body["Error"]["Code"]


def credentials_shape(credentials: Mapping[str, str]) -> None:
    assert list(credentials) == ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"]
    assert credentials["AccessKeyId"].startswith("ASIA") and credentials["Expiration"].endswith("Z")


def tagging_iam(clock: Clock) -> IAM:
    """The demo, where alice may also tag partner sessions and set their source identity."""
    data = demo_data()
    trust = json.loads(data["roles"]["partner"]["trust_policy"]["document"])
    trust["Statement"][0]["Action"] = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
    data["roles"]["partner"]["trust_policy"]["document"] = json.dumps(trust)
    return make_iam(clock, data)


def test_get_caller_identity_is_aws_xml(client: Client, iam: IAM) -> None:
    response = query(client, {"Action": "GetCallerIdentity", **VERSION})
    assert response.status_code == 200, response.text
    alice = iam.snapshot.user("alice")
    assert alice is not None
    request_id = response.headers["x-amzn-requestid"]
    assert tree(response) == ("GetCallerIdentityResponse", {
        "GetCallerIdentityResult": {"UserId": alice.id, "Account": ACCOUNT, "Arn": ALICE},
        "ResponseMetadata": {"RequestId": request_id}})
    assert response.headers["cache-control"] == "no-store"


def test_assume_role_is_aws_xml_with_tags_and_source_identity(clock: Clock) -> None:
    iam = tagging_iam(clock)
    client = Client(iam)
    response = query(client, {
        "Action": "AssumeRole", **VERSION, "RoleArn": PARTNER, "RoleSessionName": "q-1", "DurationSeconds": "900",
        "Tags.member.1.Key": "team", "Tags.member.1.Value": "blue", "Tags.member.2.Key": "cost",
        "Tags.member.2.Value": "", "TransitiveTagKeys.member.1": "team", "SourceIdentity": "alice"})
    assert response.status_code == 200, response.text
    name, body = tree(response)
    result = body["AssumeRoleResult"]
    assert name == "AssumeRoleResponse" and list(body) == ["AssumeRoleResult", "ResponseMetadata"]
    assert list(result) == ["Credentials", "AssumedRoleUser", "PackedPolicySize", "SourceIdentity"]
    credentials_shape(result["Credentials"])
    assert result["Credentials"]["Expiration"] == "2026-01-15T12:15:00Z"
    role = iam.snapshot.role(PARTNER)
    assert role is not None
    assert result["AssumedRoleUser"] == {"Arn": f"arn:app:sts::{ACCOUNT}:assumed-role/partner/q-1",
                                         "AssumedRoleId": f"{role.id}:q-1"}
    assert result["SourceIdentity"] == "alice" and 0 < int(result["PackedPolicySize"]) <= 100
    record = iam.credentials.temporary.lookup(result["Credentials"]["AccessKeyId"])
    assert record is not None and dict(record.tags) == {"team": "blue", "cost": ""}
    assert record.transitive_tag_keys == ("team",)
    # An empty list is sent as "Tags=" by botocore.
    plain = query(client, {"Action": "AssumeRole", **VERSION, "RoleArn": PARTNER, "RoleSessionName": "q-2",
                           "Tags": "", "TransitiveTagKeys": ""})
    assert list(tree(plain)[1]["AssumeRoleResult"]) == ["Credentials", "AssumedRoleUser"]


def test_get_session_token_takes_the_serial_number_of_the_users_device(client: Client, iam: IAM,
                                                                        clock: Clock) -> None:
    response = query(client, {"Action": "GetSessionToken", **VERSION, "SerialNumber": ALICE_MFA,
                              "TokenCode": code(iam, "alice", clock.now), "DurationSeconds": "900"})
    assert response.status_code == 200, response.text
    name, body = tree(response)
    assert name == "GetSessionTokenResponse" and list(body["GetSessionTokenResult"]) == ["Credentials"]
    credentials_shape(body["GetSessionTokenResult"]["Credentials"])
    clock.tick(30)
    wrong = query(client, {"Action": "GetSessionToken", **VERSION, "SerialNumber": f"{ALICE_MFA}-2",
                           "TokenCode": code(iam, "alice", clock.now)})
    assert error_of(wrong) == (403, "AccessDenied")
    assert error_of(query(client, {"Action": "GetSessionToken", **VERSION, "SerialNumber": ALICE_MFA,
                                   "TokenCode": "000000"})) == (403, "AccessDenied")
    missing = query(client, {"Action": "GetSessionToken", **VERSION})
    assert error_of(missing) == (400, "MissingParameter") and "TokenCode" in missing.text


def test_assume_role_with_web_identity_is_unsigned_aws_xml(client: Client) -> None:
    parameters = {"Action": "AssumeRoleWithWebIdentity", **VERSION, "RoleArn": PARTNER,
                  "RoleSessionName": "botocore-session-1", "WebIdentityToken": idp_token(START)}
    response = query(client, parameters, key=None)
    assert response.status_code == 200, response.text
    result = tree(response)[1]["AssumeRoleWithWebIdentityResult"]
    assert list(result) == ["Credentials", "AssumedRoleUser", "Provider", "SubjectFromWebIdentityToken", "Audience"]
    # The session is named by the provider's claim (the subject), not by the caller's RoleSessionName.
    assert result["AssumedRoleUser"]["Arn"] == f"arn:app:sts::{ACCOUNT}:assumed-role/partner/partner-42"
    assert (result["Provider"], result["SubjectFromWebIdentityToken"], result["Audience"]) == (
        "idp.example", "partner-42", "orders-api")
    expired = query(client, {**parameters, "WebIdentityToken": idp_token(START - 7200, exp=int(START) - 3600)},
                    key=None)
    assert error_of(expired) == (400, "ExpiredTokenException")
    assert error_of(query(client, {**parameters, "WebIdentityToken": "not.a.token"}, key=None)) == (
        400, "InvalidIdentityToken")


@pytest.mark.parametrize(("parameters", "expected"), [
    ({}, (400, "MissingAction")),
    ({"Action": "GetFederationToken", **VERSION}, (400, "InvalidAction")),
    ({"Action": "GetCallerIdentity"}, (400, "MissingParameter")),
    ({"Action": "GetCallerIdentity", "Version": "2012-01-01"}, (400, "ValidationError")),
    ({"Action": "GetCallerIdentity", **VERSION, "Extra": "1"}, (400, "ValidationError")),
    ({"Action": "AssumeRole", **VERSION, "RoleArn": PARTNER}, (400, "MissingParameter")),
    ({"Action": "AssumeRole", **VERSION, "RoleArn": PARTNER, "RoleSessionName": "qq", "DurationSeconds": "1e3"},
     (400, "ValidationError")),
    ({"Action": "AssumeRole", **VERSION, "RoleArn": PARTNER, "RoleSessionName": "qq", "Tags.member.2.Key": "a",
      "Tags.member.2.Value": "b"}, (400, "ValidationError")),  # members numbered from 1
    ({"Action": "AssumeRole", **VERSION, "RoleArn": PARTNER, "RoleSessionName": "qq", "Tags.member.1": "a"},
     (400, "ValidationError")),
    ({"Action": "AssumeRole", **VERSION, "RoleArn": PARTNER, "RoleSessionName": "qq", "Tags": "team=blue"},
     (400, "ValidationError")),
    ({"Action": "AssumeRole", **VERSION, "RoleArn": PARTNER, "RoleSessionName": "qq", "PolicyArns.member.1.arn": "x"},
     (400, "ValidationError")),  # managed session policies are not taken
    ({"Action": "AssumeRole", **VERSION, "RoleArn": PARTNER, "RoleSessionName": "qq", "Policy": "{"},
     (400, "MalformedPolicyDocument")),
    ({"Action": "AssumeRole", **VERSION, "RoleArn": f"arn:app:iam::{ACCOUNT}:role/none", "RoleSessionName": "qq"},
     (403, "AccessDenied")),
])
def test_refusals_are_aws_error_responses(client: Client, parameters: dict[str, str],
                                          expected: tuple[int, str]) -> None:
    assert error_of(query(client, parameters)) == expected


def test_only_a_sigv4_signature_for_sts_authenticates(client: Client) -> None:
    who = {"Action": "GetCallerIdentity", **VERSION}
    assert error_of(query(client, who, key=None)) == (403, "MissingAuthenticationToken")
    assert error_of(query(client, who, key=(ALICE_KEY[0], "wrong-secret"))) == (403, "SignatureDoesNotMatch")
    # A signature made for the API's own service name is not one for STS, and the other way round.
    assert error_of(query(client, who, service="orders")) == (403, "InvalidCredentialScope")
    sts_signed = client.signed("/GetCallerIdentity", {}, service="sts")
    assert (sts_signed.status_code, sts_signed.json()["error"]) == (401, "InvalidCredentialScope")
    # A bearer token or the session cookie never counts: any page can post a form cross-site.
    token = client.token("bob")
    for headers in ({"authorization": f"Bearer {token}"}, {"cookie": f"iam_session={token}"}):
        assert error_of(query(client, who, key=None, headers=headers)) == (403, "MissingAuthenticationToken")
    assert error_of(query(client, {"Action": "AssumeRole", **VERSION, "RoleArn": PARTNER, "RoleSessionName": "cc"},
                          key=CAROL_KEY)) == (403, "AccessDenied")


def test_the_form_is_read_strictly(client: Client) -> None:
    signed = botocore_request("POST", f"{BASE}/sts/", body=b"Action=GetCallerIdentity&Version=2011-06-15",
                              headers={"content-type": "application/json"}, service="sts")
    assert error_of(client.request("POST", "/", content=signed.body, headers=dict(signed.headers.items()))) == (
        415, "UnsupportedMediaType")
    for body in (b"Action=GetCallerIdentity&Action=GetCallerIdentity&Version=2011-06-15",
                 b"Action=GetCallerIdentity&Version=2011-06-15&broken", b"Action=Get\xffCallerIdentity",
                 b"&".join(b"p%d=1" % n for n in range(300))):
        assert error_of(client.request("POST", "/", content=body, headers={"content-type": FORM})) == (
            400, "MalformedQueryString"), body[:40]
    with_query = client.request("POST", "/?Action=GetCallerIdentity", content=b"Version=2011-06-15",
                                headers={"content-type": FORM})
    assert error_of(with_query) == (400, "MalformedQueryString")
    assert error_of(client.request("POST", "/", content=b"x" * 70_000, headers={"content-type": FORM})) == (
        413, "EntityTooLarge")
    put = client.request("PUT", "/", content=b"", headers={"content-type": FORM})
    assert error_of(put) == (405, "MethodNotAllowed") and put.headers["allow"] == "GET, POST"


def test_a_presigned_get_caller_identity_url_works_and_get_issues_nothing(client: Client) -> None:
    sts = boto3.client("sts", endpoint_url=f"{BASE}/sts/", region_name="local", aws_access_key_id=ALICE_KEY[0],
                       aws_secret_access_key=ALICE_KEY[1])
    url = urlsplit(sts.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET"))
    response = client.request("GET", f"/?{url.query}")
    assert response.status_code == 200, response.text
    assert tree(response)[1]["GetCallerIdentityResult"]["Arn"] == ALICE
    signed = botocore_request("GET", f"{BASE}/sts/?Action=AssumeRole&Version=2011-06-15&RoleArn={PARTNER}"
                              "&RoleSessionName=g", service="sts")
    refused = client.request("GET", signed.url.removeprefix(f"{BASE}/sts"), headers=dict(signed.headers.items()))
    assert error_of(refused) == (405, "MethodNotAllowed") and refused.headers["allow"] == "POST"


def test_every_value_is_escaped(client: Client) -> None:
    response = query(client, {"Action": "GetCallerIdentity", **VERSION, "<Error>&amp;]]>": "1"})
    assert error_of(response) == (400, "ValidationError")
    assert "'<Error>&amp;]]>' is not a parameter" in tree(response)[1]["Error"]["Message"]  # the text as it was
    document = error_document(400, "ValidationError", "a\x01b\ud800c", "r-1")
    assert b"a\xef\xbf\xbdb\xef\xbf\xbdc" in document  # characters XML cannot carry, replaced
    with pytest.raises(ValueError, match="not an XML element name"):
        response_document("GetCallerIdentity", {"<x>": "1"}, "r-1")


def wsgi_query(app: Any, parameters: Mapping[str, str], key: tuple[str, ...] = ALICE_KEY) -> httpx.Response:
    body = urlencode(parameters).encode()
    signed = botocore_request("POST", "http://testserver/sts/", body=body, headers={"content-type": FORM}, key=key,
                              service="sts")
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver") as http:
        return http.post("/sts/", content=signed.body, headers=dict(signed.headers.items()))


def asgi_query(app: Any, parameters: Mapping[str, str], key: tuple[str, ...] = ALICE_KEY) -> httpx.Response:
    body = urlencode(parameters).encode()
    signed = botocore_request("POST", "http://testserver/sts/", body=body, headers={"content-type": FORM}, key=key,
                              service="sts")

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            return await http.post("/sts/", content=signed.body, headers=dict(signed.headers.items()))

    return asyncio.run(send())


@pytest.mark.parametrize("shell", ["starlette", "fastapi", "flask", "django-wsgi", "django-asgi"])
def test_every_shell_serves_the_query_api(shell: str, iam: IAM) -> None:
    apps = {"starlette": lambda: _apps.starlette_app(iam), "fastapi": lambda: _apps.fastapi_app(iam, middleware=True),
            "flask": lambda: _apps.flask_app(iam), "django-wsgi": lambda: _apps.django_app(iam, asgi=False),
            "django-asgi": lambda: _apps.django_app(iam, asgi=True)}
    app = apps[shell]()
    send = wsgi_query if shell in ("flask", "django-wsgi") else asgi_query
    who = send(app, {"Action": "GetCallerIdentity", **VERSION})
    assert who.status_code == 200, who.text
    assert tree(who)[1]["GetCallerIdentityResult"]["Arn"] == ALICE
    refused = send(app, {"Action": "AssumeRole", **VERSION, "RoleArn": PARTNER, "RoleSessionName": "ss"},
                   key=CAROL_KEY)
    assert error_of(refused) == (403, "AccessDenied")


parameter_names = st.sampled_from(["Action", "Version", "RoleArn", "RoleSessionName", "DurationSeconds", "Policy",
                                   "Tags", "Tags.member.1.Key", "Tags.member.1.Value", "Tags.member.2.Key",
                                   "TransitiveTagKeys.member.1", "SourceIdentity", "SerialNumber", "TokenCode",
                                   "ExternalId", "WebIdentityToken", "PolicyArns.member.1.arn"])
parameter_values = st.sampled_from(["AssumeRole", "GetSessionToken", "GetCallerIdentity",
                                    "AssumeRoleWithWebIdentity", "2011-06-15", PARTNER, "team", "900"]) | st.text(
    max_size=12)


@settings(deadline=None, max_examples=60)
@given(parameters=st.dictionaries(parameter_names, parameter_values, max_size=7), signed=st.booleans())
def test_arbitrary_parameters_never_get_a_500_nor_credentials_without_a_signature(parameters: dict[str, str],
                                                                                  signed: bool) -> None:
    clock = Clock()
    with patch.object(botocore.auth, "get_current_datetime", clock.datetime):
        response = query(Client(make_iam(clock)), parameters, key=ALICE_KEY if signed else None)
    if response.status_code == 200:
        assert signed or parameters.get("Action") == "AssumeRoleWithWebIdentity"
        return
    assert error_of(response)[0] in (400, 403, 405)
