"""TokenServiceClient's session policies and MFA device end to end: ``policy_arns`` (and ``policy``) on
``assume_role`` and ``assume_role_with_web_identity`` reach the token service as ``PolicyArns`` and narrow the
session the provider signs with; ``serial_number`` on ``get_session_token`` names the device the code is from."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sts._support import ACCOUNT, ALICE_KEY, PARTNER, Clock, demo_data, idp_token, make_iam

from iam_middleware import IAM
from iam_middleware.authenticators._totp import TOTPDevice
from iam_middleware.client import Credentials, TokenServiceClient, TokenServiceError

from ._support import BASE, STS, Counting, wsgi_transport

POLICY = f"arn:app:iam::{ACCOUNT}:policy/"
ALICE = Credentials(*ALICE_KEY)
PHONE = "KRSXG5CTMVRXEZLUKN2XAZLSMVRXI5DF"


def directory() -> dict[str, Any]:
    """The demo with policies attached to nobody, to name as managed session policies (the partner role may
    orders:GetOrder and orders:ListOrders), and a second MFA device of alice's."""
    data = demo_data()
    for name, action in (("OnlyGetOrder", "orders:GetOrder"), ("OnlyListOrders", "orders:ListOrders")):
        data["policies"][name] = {"document": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": action, "Resource": "*"}]}}
    data["users"]["alice"]["mfa_devices"] = [{"name": "alice-phone", "secret": PHONE}]
    return data


class Sent(Counting):
    """Also keeps the JSON body of each token service call."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        super().__init__(inner)
        self.bodies: list[dict[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/sts/"):
            self.bodies.append(json.loads(request.read()))
        return super().handle_request(request)


@pytest.fixture
def iam(clock: Clock) -> IAM:
    return make_iam(clock, directory())


def service(iam: IAM, clock: Clock) -> tuple[TokenServiceClient, Sent]:
    transport = Sent(wsgi_transport(iam))
    return TokenServiceClient(STS, service="orders", region="local", client=httpx.Client(transport=transport),
                              clock=clock), transport


def get_order(sts: TokenServiceClient, transport: httpx.BaseTransport, provider: Any) -> int:
    with httpx.Client(transport=transport, base_url=BASE, auth=sts.signer(provider)) as client:
        return client.get("/orders/42").status_code


def test_assume_role_policy_arns_narrow_the_session(iam: IAM, clock: Clock) -> None:
    sts, transport = service(iam, clock)
    narrowed = sts.assume_role(ALICE, PARTNER, "list-only", policy_arns=[POLICY + "OnlyListOrders"])
    kept = sts.assume_role(ALICE, PARTNER, "get-only", policy_arns=[POLICY + "OnlyGetOrder"])
    assert get_order(sts, transport, narrowed) == 403  # orders:GetOrder is the role's, but not the session's
    assert get_order(sts, transport, kept) == 200
    assert transport.bodies[0]["PolicyArns"] == [{"arn": POLICY + "OnlyListOrders"}]
    record = iam.credentials.temporary.lookup(kept.credentials().access_key_id)
    assert record is not None and record.session_policy is not None and "orders:GetOrder" in record.session_policy


def test_assume_role_with_web_identity_takes_policy_arns_and_an_inline_policy(iam: IAM, clock: Clock) -> None:
    sts, transport = service(iam, clock)
    narrowed = sts.assume_role_with_web_identity(lambda: idp_token(clock.now), policy_arns=[POLICY + "OnlyListOrders"])
    assert get_order(sts, transport, narrowed) == 403
    inline = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:*", "Resource": "*"}]}
    both = sts.assume_role_with_web_identity(lambda: idp_token(clock.now), policy=inline,
                                             policy_arns=[POLICY + "OnlyListOrders"])
    assert get_order(sts, transport, both) == 200  # any Allow among the session policies counts
    assert transport.bodies[-1]["Policy"] == inline
    assert transport.bodies[-1]["PolicyArns"] == [{"arn": POLICY + "OnlyListOrders"}]


def test_a_policy_the_directory_does_not_have_is_the_services_validation_error(iam: IAM, clock: Clock) -> None:
    sts, _ = service(iam, clock)
    with pytest.raises(TokenServiceError) as refused:
        sts.assume_role(ALICE, PARTNER, "nope", policy_arns=[POLICY + "NoSuchPolicy"]).credentials()
    assert (refused.value.status_code, refused.value.code) == (400, "ValidationError")


def test_policy_arns_must_be_a_sequence_of_strings(iam: IAM, clock: Clock) -> None:
    sts, transport = service(iam, clock)
    with pytest.raises(TypeError):
        sts.assume_role(ALICE, PARTNER, "one-string", policy_arns=POLICY + "OnlyGetOrder")
    with pytest.raises(TypeError):
        sts.assume_role_with_web_identity(lambda: "token", policy_arns=[{"arn": POLICY}])  # type: ignore[list-item]
    # None and an empty list send no PolicyArns at all.
    sts.assume_role(ALICE, PARTNER, "plain", policy_arns=[]).credentials()
    assert "PolicyArns" not in transport.bodies[-1]


def test_get_session_token_names_the_mfa_device(iam: IAM, clock: Clock) -> None:
    sts, transport = service(iam, clock)
    phone = sts.get_session_token(ALICE, code=lambda: TOTPDevice(PHONE).code_at(clock.now),
                                  serial_number=f"arn:app:iam::{ACCOUNT}:mfa/alice-phone")
    assert phone.credentials().access_key_id.startswith("ASIA")
    assert transport.bodies[-1]["SerialNumber"] == f"arn:app:iam::{ACCOUNT}:mfa/alice-phone"
    clock.tick(30)
    wrong = sts.get_session_token(ALICE, code=lambda: TOTPDevice(PHONE).code_at(clock.now),
                                  serial_number=f"arn:app:iam::{ACCOUNT}:mfa/alice")  # the other device
    with pytest.raises(TokenServiceError) as refused:
        wrong.credentials()
    assert refused.value.code == "InvalidOTP"
