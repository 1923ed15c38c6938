"""Managed session policies (``PolicyArns``) on AssumeRole and AssumeRoleWithWebIdentity: with the inline ``Policy``
they narrow the session, as a set (any Allow among them counts, any Deny wins), never widen it past the role's
policies; AWS's limits (10 ARNs, 2,048 characters with the inline policy, the packed size); the JSON operations
and the Query API through the real boto3 ``sts`` client; and, for any documents, the one policy a session keeps
decides exactly as the documents it was made from."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.auth
import botocore.config
import httpx
import pytest
from adapters._support import uvicorn_server
from botocore import UNSIGNED
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from iam_middleware import IAM, IAMMiddleware, permission
from iam_middleware.policy import Caller, PolicyKind, PolicySet, evaluate, parse_policy
from iam_middleware.sts import token_service
from iam_middleware.sts._tags import session_policy_text

from ._support import ACCOUNT, ALICE_KEY, PARTNER, Clock, demo_data, idp_token, make_iam

POLICY = f"arn:app:iam::{ACCOUNT}:policy/"
ORDER = "arn:app:orders::{account}:order/{order_id}"


def directory() -> dict[str, Any]:
    """The demo, with named policies attached to nobody, to be used as managed session policies (partner's own
    policy allows orders:GetOrder and orders:ListOrders)."""
    data = demo_data()
    data["policies"]["OnlyGetOrder"] = {"document": {"Version": "2012-10-17", "Statement": [
        {"Sid": "Get", "Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"}]}}
    data["policies"]["OnlyListOrders"] = {"document": {"Version": "2012-10-17", "Statement": [
        {"Sid": "Get", "Effect": "Allow", "Action": "orders:ListOrders", "Resource": "*"}]}}
    data["policies"]["Everything"] = {"document": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "orders:*", "Resource": "*"}]}}
    data["policies"]["NotOrder7"] = {"document": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "orders:*", "Resource": f"arn:app:orders::{ACCOUNT}:order/7"}]}}
    return data


def arns(*names: str) -> list[dict[str, str]]:
    return [{"arn": POLICY + name} for name in names]


@permission("orders:GetOrder", resource=ORDER)
async def get_order(request: Request) -> JSONResponse:
    return JSONResponse({"caller": request.user.arn})


@permission("orders:DeleteOrder", resource=ORDER)
async def delete_order(request: Request) -> JSONResponse:
    return JSONResponse({"deleted": request.path_params["order_id"]})


@permission("orders:ListOrders", resource="arn:app:orders::{account}:order/*")
async def list_orders(request: Request) -> JSONResponse:
    return JSONResponse({"orders": []})


def app(iam: IAM) -> IAMMiddleware:
    return IAMMiddleware(Starlette(routes=[
        Route("/orders/{order_id}", get_order, methods=["GET"]),
        Route("/orders/{order_id}", delete_order, methods=["DELETE"]), Route("/orders", list_orders),
        Mount("/sts", app=token_service(iam))]), iam=iam)


@pytest.fixture(scope="module")
def live() -> Iterator[str]:
    """The API and the token service on a loopback port, at the real time (botocore signs with it)."""
    iam = make_iam(Clock(time.time()), directory())
    with uvicorn_server(app(iam)) as port:
        yield f"http://127.0.0.1:{port}"


def signed(base: str, method: str, path: str, key: tuple[str, ...], body: dict[str, Any] | None = None
           ) -> httpx.Response:
    content = json.dumps(body).encode() if body is not None else b""
    headers = {"content-type": "application/json"} if body is not None else {}
    request = AWSRequest(method=method, url=base + path, data=content, headers=headers)
    botocore.auth.SigV4Auth(BotocoreCredentials(*key), "orders", "local").add_auth(request)
    return httpx.request(method, base + path, content=content, headers=dict(request.headers.items()), timeout=10)


def assume(base: str, **body: Any) -> httpx.Response:
    return signed(base, "POST", "/sts/AssumeRole", ALICE_KEY,
                  {"RoleArn": PARTNER, "RoleSessionName": "narrowed", **body})


def key_of(answer: httpx.Response) -> tuple[str, str, str]:
    assert answer.status_code == 200, answer.text
    credentials = answer.json()["Credentials"]
    return credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]


def can(base: str, key: tuple[str, ...]) -> dict[str, int]:
    """What a session may do at the API: the status of each call."""
    return {"get": signed(base, "GET", "/orders/42", key).status_code,
            "get 7": signed(base, "GET", "/orders/7", key).status_code,
            "list": signed(base, "GET", "/orders", key).status_code,
            "delete": signed(base, "DELETE", "/orders/42", key).status_code}


# The JSON operations -----------------------------------------------------------------------------------------------


def test_a_managed_session_policy_narrows_the_session(live: str) -> None:
    assert can(live, key_of(assume(live))) == {"get": 200, "get 7": 200, "list": 200, "delete": 403}
    answer = assume(live, PolicyArns=arns("OnlyGetOrder"))
    assert answer.json()["PackedPolicySize"] >= 1
    assert can(live, key_of(answer)) == {"get": 200, "get 7": 200, "list": 403, "delete": 403}


def test_session_policies_count_as_a_set_and_never_widen_the_role(live: str) -> None:
    inline = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Get", "Effect": "Allow", "Action": "orders:ListOrders", "Resource": "*"}]})  # Sid clashes
    both = key_of(assume(live, Policy=inline, PolicyArns=arns("OnlyGetOrder", "Everything")))
    assert can(live, both) == {"get": 200, "get 7": 200, "list": 200, "delete": 403}  # the role has no delete
    denied = key_of(assume(live, PolicyArns=arns("Everything", "NotOrder7")))
    assert can(live, denied) == {"get": 200, "get 7": 403, "list": 200, "delete": 403}


@pytest.mark.parametrize(("policy_arns", "why"), [
    (arns(*["OnlyGetOrder"] * 11), "at most 10"),
    (arns("NoSuchPolicy"), "does not exist"),
    ([{"arn": "arn:app:iam::444455556666:policy/OnlyGetOrder"}], "does not exist"),  # another account
    ([{"arn": f"arn:aws:iam::{ACCOUNT}:policy/OnlyGetOrder"}], "does not exist"),  # another partition
    ([{"arn": POLICY + "team/OnlyGetOrder"}], "does not exist"),  # a path: the directory's policies have none
    ([{"Arn": POLICY + "OnlyGetOrder"}], "exactly arn"),
    ([{"arn": "arn:p"}], "20 to 2048"),
    ({"arn": POLICY + "OnlyGetOrder"}, "a list"),
])
def test_policy_arns_are_checked(live: str, policy_arns: Any, why: str) -> None:
    answer = assume(live, PolicyArns=policy_arns)
    assert answer.status_code == 400 and answer.json()["error"] == "ValidationError", answer.text
    assert why in answer.json()["message"]


def test_the_inline_and_managed_policies_share_one_plaintext_limit(live: str) -> None:
    statement = {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "arn:app:orders::111122223333:order/x"}
    inline = json.dumps({"Version": "2012-10-17", "Statement": [statement] * 20}, separators=(",", ":"))
    assert 1950 < len(inline) <= 2048, len(inline)
    alone = assume(live, Policy=inline)
    assert alone.status_code == 200, alone.text
    together = assume(live, Policy=inline, PolicyArns=arns("OnlyGetOrder", "OnlyListOrders"))
    assert together.status_code == 400 and "2048" in together.json()["message"]


def test_arns_count_in_the_packed_size(live: str) -> None:
    inline = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"}]})
    without = assume(live, Policy=inline).json()["PackedPolicySize"]
    with_arns = assume(live, Policy=inline, PolicyArns=arns("OnlyGetOrder", "OnlyListOrders", "NotOrder7"))
    assert with_arns.json()["PackedPolicySize"] > without


def test_web_identity_sessions_take_session_policies(live: str) -> None:
    body = {"WebIdentityToken": idp_token(time.time()), "PolicyArns": arns("OnlyListOrders")}
    answer = httpx.post(f"{live}/sts/AssumeRoleWithWebIdentity", json=body, timeout=10)
    assert answer.json()["PackedPolicySize"] >= 1
    assert can(live, key_of(answer)) == {"get": 403, "get 7": 403, "list": 200, "delete": 403}


# The Query API, with the real boto3 -------------------------------------------------------------------------------


def sts(base: str) -> Any:
    return boto3.client("sts", endpoint_url=f"{base}/sts/", region_name="local", aws_access_key_id=ALICE_KEY[0],
                        aws_secret_access_key=ALICE_KEY[1])


def boto_key(answer: dict[str, Any]) -> tuple[str, str, str]:
    credentials = answer["Credentials"]
    return credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]


def test_boto3_assume_role_with_policy_arns(live: str) -> None:
    answer = sts(live).assume_role(RoleArn=PARTNER, RoleSessionName="boto3-narrowed",
                                   PolicyArns=arns("OnlyGetOrder", "NotOrder7"))
    assert answer["PackedPolicySize"] >= 1
    assert can(live, boto_key(answer)) == {"get": 200, "get 7": 403, "list": 403, "delete": 403}
    with pytest.raises(ClientError) as refused:
        sts(live).assume_role(RoleArn=PARTNER, RoleSessionName="boto3-narrowed", PolicyArns=arns("NoSuchPolicy"))
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_boto3_assume_role_with_web_identity_and_session_policies(live: str) -> None:
    client = boto3.client("sts", endpoint_url=f"{live}/sts/", region_name="local",
                          config=botocore.config.Config(signature_version=UNSIGNED))
    inline = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"}]})
    answer = client.assume_role_with_web_identity(RoleArn=PARTNER, RoleSessionName="web",
                                                  WebIdentityToken=idp_token(time.time()), Policy=inline,
                                                  PolicyArns=arns("OnlyListOrders"))
    assert answer["PackedPolicySize"] >= 1
    assert can(live, boto_key(answer)) == {"get": 200, "get 7": 200, "list": 200, "delete": 403}


# One kept policy decides as its documents ------------------------------------------------------------------------

USERNAME = "alice"
RESOURCES = ["arn:app:orders::1:order/alice", "arn:app:orders::1:order/${aws:username}", "arn:app:orders::1:order/b"]
ACTIONS = ["orders:GetOrder", "orders:ListOrders"]

statements = st.fixed_dictionaries({
    "Effect": st.sampled_from(["Allow", "Deny"]),
    "Action": st.sampled_from(["orders:GetOrder", "orders:*", ["orders:ListOrders", "orders:GetOrder"]]),
    "Resource": st.sampled_from(["*", "arn:app:orders::1:order/${aws:username}", RESOURCES[2]]),
}, optional={
    "Sid": st.sampled_from(["A", "B"]),
    "Condition": st.sampled_from([{"StringEquals": {"aws:PrincipalTag/team": "${aws:username}"}},
                                  {"StringLike": {"aws:PrincipalTag/team": ["blue", "${aws:username}"]}}]),
})


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    listed = draw(st.lists(statements, min_size=1, max_size=3))
    sids = [s["Sid"] for s in listed if "Sid" in s]
    if len(sids) != len(set(sids)):  # a document of its own never repeats a Sid
        listed = [{k: v for k, v in s.items() if k != "Sid"} for s in listed]
    document: dict[str, Any] = {"Statement": listed}
    version = draw(st.sampled_from(["2012-10-17", "2008-10-17", None]))
    if version is not None:
        document["Version"] = version
    return document


@given(inline=st.none() | documents(), managed=st.lists(documents(), min_size=1, max_size=3),
       team=st.sampled_from(["alice", "blue", "${aws:username}"]))
def test_the_kept_session_policy_decides_as_its_documents(inline: dict[str, Any] | None,
                                                         managed: list[dict[str, Any]], team: str) -> None:
    parsed = [parse_policy(json.dumps(doc), kind=PolicyKind.SESSION, policy_id=f"p{n}")
              for n, doc in enumerate(managed)]
    inline_text = json.dumps(inline) if inline is not None else None
    kept = session_policy_text(inline_text, [(f"arn-{n}", policy) for n, policy in enumerate(parsed)])
    assert kept is not None
    separate = PolicySet(([parse_policy(inline_text, kind=PolicyKind.SESSION, policy_id="inline")]
                          if inline_text is not None else []) + parsed)
    together = PolicySet([parse_policy(kept, kind=PolicyKind.SESSION, policy_id="kept")])
    identity = PolicySet([parse_policy(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]}), kind=PolicyKind.IDENTITY, policy_id="all")])
    caller = Caller.from_arn(f"arn:app:sts::{ACCOUNT}:assumed-role/partner/s")
    context = {"aws:username": USERNAME, "aws:PrincipalTag/team": team}
    for action in ACTIONS:
        for resource in RESOURCES:
            expected = evaluate(caller, action, resource, context, identity=identity, session=separate)
            found = evaluate(caller, action, resource, context, identity=identity, session=together)
            assert found.kind is expected.kind, (action, resource, kept)
