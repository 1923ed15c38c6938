"""The gate, driven directly (sans-IO): one RequestContext per request, and the rules every shell gets from it.

Each test here was a bug in one shell before the pipeline existed once: the token service and the outside-token
trust policy read the wrong caller address or none, a ``*`` rule let anonymous preflights through, and there was
no way to add a credential kind or shape a refusal.
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from iam_middleware import (
    IAM,
    PUBLIC,
    AuthenticationError,
    IAMMiddleware,
    Permission,
    Principal,
    RequestView,
    Rule,
    RuleTable,
)
from iam_middleware.gate import Gate, Reply, RequestContext, Target
from iam_middleware.sts import OPERATIONS, handle
from iam_middleware.testing import principal_for, session_token, sign_request, web_identity_token

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOW = 1_780_000_000.0
PROXY = "10.0.0.5"
BLOCKED = "203.0.113.50"
OUTSIDE_OK = "198.51.100.7"
BLOCKLIST = {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}
ORDER = Permission("orders:GetOrder", "arn:app:orders::{account}:order/{order_id}")
PARTNER = "arn:app:iam::111122223333:role/partner"


def demo(**changes: Any) -> dict[str, Any]:
    data = tomllib.loads((EXAMPLES / "iam.toml").read_text())
    data = copy.deepcopy(data)
    data["settings"]["trusted_proxies"] = ["10.0.0.0/8"]
    data.update(changes)
    return data


def make_iam(data: dict[str, Any]) -> IAM:
    return IAM.from_dict(data, base_dir=EXAMPLES, clock=lambda: NOW)


def via_proxy(client: str, *headers: tuple[str, str], method: str = "GET", path: bytes = b"/orders/42",
              body: bytes | None = None) -> RequestView:
    return RequestView(method, path, headers=(("x-forwarded-for", client), *headers), client_host=PROXY, body=body)


def blocked_guardrail(data: dict[str, Any]) -> None:
    data["policies"]["AcmeGuardrail"] = {"document": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "NoBlockedNetworks", "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": BLOCKLIST},
    ]}}


GET_ORDER_42 = Target(ORDER, {"order_id": "42"})


def decide(gate: Gate, view: RequestView, target: Target = GET_ORDER_42) -> RequestContext:
    return gate.decide(gate.begin(view), target)


# The caller's address, resolved once through the trusted proxies ---------------------------------------------------


def test_the_context_resolves_the_caller_behind_a_trusted_proxy_once() -> None:
    gate = Gate(make_iam(demo()))
    context = gate.begin(via_proxy(BLOCKED))
    assert context.source_ip == BLOCKED and context.now == NOW
    untrusted = gate.begin(RequestView("GET", b"/", headers=(("x-forwarded-for", BLOCKED),), client_host=OUTSIDE_OK))
    assert untrusted.source_ip == OUTSIDE_OK


def test_the_token_service_authorizes_the_caller_behind_the_proxy_not_the_proxy() -> None:
    data = demo()
    blocked_guardrail(data)
    iam = make_iam(data)
    gate = Gate(iam)
    body = json.dumps({"RoleArn": PARTNER, "RoleSessionName": "s1"}).encode()
    token = session_token(iam, "alice")
    for client, status in ((BLOCKED, 403), (OUTSIDE_OK, 200)):
        view = via_proxy(client, ("authorization", f"Bearer {token}"), ("content-type", "application/json"),
                         method="POST", path=b"/sts/AssumeRole", body=body)
        reply = handle(gate, gate.begin(view), OPERATIONS["/AssumeRole"], body, "application/json")
        assert reply.status == status, reply.body


def test_iam_authorize_with_a_request_reads_the_address_through_the_proxies() -> None:
    data = demo()
    blocked_guardrail(data)
    iam = make_iam(data)
    alice = principal_for(iam, "alice")
    resource = "arn:app:orders::111122223333:order/1"
    assert not iam.authorize(alice, "orders:GetOrder", resource, request=via_proxy(BLOCKED)).allowed
    assert iam.authorize(alice, "orders:GetOrder", resource, request=via_proxy(OUTSIDE_OK)).allowed


# Outside tokens: the trust policy sees the request's global keys ----------------------------------------------------


def _trust_with_blocklist(data: dict[str, Any]) -> None:
    trust = json.loads(data["roles"]["partner"]["trust_policy"]["document"])
    trust["Statement"].append({"Effect": "Deny", "Principal": {"Federated": "idp.example"},
                               "Action": "sts:AssumeRoleWithWebIdentity", "Condition": BLOCKLIST})
    data["roles"]["partner"]["trust_policy"] = {"document": json.dumps(trust)}


def test_a_trust_policy_deny_on_the_caller_address_applies_to_bearer_tokens_every_time() -> None:
    data = demo()
    _trust_with_blocklist(data)
    iam = make_iam(data)
    gate = Gate(iam)
    token = web_identity_token(iam, subject="p-1")
    bearer = ("authorization", f"Bearer {token}")
    # In either order: a principal mapped for one address is never reused for another.
    for client, allowed in ((OUTSIDE_OK, True), (BLOCKED, False), (OUTSIDE_OK, True), (BLOCKED, False)):
        context = decide(gate, via_proxy(client, bearer))
        assert context.allowed is allowed, context.error
        if not allowed:
            assert context.error is not None and context.error.status_code == 401


def test_assume_role_with_web_identity_applies_the_same_deny() -> None:
    data = demo()
    _trust_with_blocklist(data)
    iam = make_iam(data)
    gate = Gate(iam)
    body = json.dumps({"WebIdentityToken": web_identity_token(iam, subject="p-1")}).encode()
    for client, status in ((BLOCKED, 403), (OUTSIDE_OK, 200)):
        view = via_proxy(client, ("content-type", "application/json"), method="POST",
                         path=b"/sts/AssumeRoleWithWebIdentity", body=body)
        reply = handle(gate, gate.begin(view), OPERATIONS["/AssumeRoleWithWebIdentity"], body, "application/json")
        assert reply.status == status, reply.body


# Preflights ---------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(("rule_method", "passes"), [("*", False), ("OPTIONS", False), ("GET", True)])
async def test_a_rule_for_every_method_handles_options_so_no_preflight_skips_it(rule_method: str,
                                                                                passes: bool) -> None:
    iam = make_iam(demo())
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["method"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    rules = RuleTable([Rule(rule_method, "/admin", Permission("orders:PurgeOrders", "*"))])
    guarded = IAMMiddleware(app, iam=iam, rules=rules, cors_preflight=True)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "OPTIONS", "path": "/admin", "raw_path": b"/admin", "query_string": b"",
             "headers": [(b"origin", b"https://app.example"), (b"access-control-request-method", b"DELETE")],
             "client": ("127.0.0.1", 1), "scheme": "http", "root_path": ""}
    await guarded(scope, receive, send)
    assert sent[0]["status"] == (204 if passes else 401)
    assert reached == (["OPTIONS"] if passes else [])


# Authenticators and refusals ----------------------------------------------------------------------------------------


class APIKeys:
    """A custom authenticator: ``X-API-Key`` maps to a user of the directory."""

    def __init__(self, iam: IAM, keys: dict[str, str]) -> None:
        self.iam = iam
        self.keys = keys

    def authenticate(self, request: RequestView, *, now: float) -> Principal | None:
        given = request.header("x-api-key")
        if given is None:
            return None
        user = self.keys.get(given)
        if user is None:
            raise AuthenticationError("The API key is not known.", code="InvalidAPIKey")
        return principal_for(self.iam, user)


def test_a_custom_authenticator_joins_the_chain_and_a_bad_key_is_401_not_the_next_kind() -> None:
    iam = make_iam(demo())
    iam.authenticators.insert(0, APIKeys(iam, {"k-alice": "alice"}))
    gate = Gate(iam)
    allowed = decide(gate, RequestView("GET", b"/orders/42", headers=(("x-api-key", "k-alice"),)))
    assert allowed.allowed and allowed.principal is not None and allowed.principal.name == "alice"
    token = session_token(iam, "alice")
    bad = decide(gate, RequestView("GET", b"/orders/42", headers=(("x-api-key", "nope"),
                                                                   ("authorization", f"Bearer {token}"))))
    assert bad.error is not None and bad.error.code == "InvalidAPIKey" and bad.error.status_code == 401


def test_an_authenticator_that_fails_fails_closed() -> None:
    iam = make_iam(demo())

    class Broken:
        def authenticate(self, request: RequestView, *, now: float) -> Principal | None:
            raise RuntimeError("backend down")

    iam.authenticators.insert(0, Broken())
    context = decide(Gate(iam), RequestView("GET", b"/orders/42"))
    assert context.error is not None and context.error.status_code == 403
    assert context.error.code == "AuthorizationFailed"


def test_on_error_shapes_refusals_and_a_failing_hook_falls_back_to_the_standard_one() -> None:
    iam = make_iam(demo())
    shaped = Gate(iam, on_error=lambda context, error: Reply(418, [("x-why", error.code)], b"teapot"))
    reply = shaped.render(decide(shaped, RequestView("GET", b"/orders/42")))
    assert reply == Reply(418, [("x-why", "MissingAuthenticationToken")], b"teapot")

    def broken(context: RequestContext, error: Exception) -> Reply:
        raise ValueError("bug in the hook")

    fallback = Gate(iam, on_error=broken)
    reply = fallback.render(decide(fallback, RequestView("GET", b"/orders/42")))
    assert reply.status == 401 and json.loads(reply.body)["error"] == "MissingAuthenticationToken"


def test_a_public_route_never_spends_a_single_use_signature() -> None:
    data = demo()
    data["settings"]["sigv4_replay_protection"] = True
    iam = make_iam(data)
    gate = Gate(iam)
    signed = sign_request(iam, "POST", "http://testserver/health", user="carol", body=b"")
    headers = {"host": "testserver", **{k.lower(): v for k, v in signed.headers.items()}}
    view = RequestView("POST", b"/health", headers=tuple(headers.items()), client_host=OUTSIDE_OK, body=b"")
    public = decide(gate, view, Target(PUBLIC))
    assert public.allowed and public.principal is None and public.anonymous_reason == "SingleUseSignatureNotSpent"
    # The signature is still unspent: the first real use is accepted, the second refused.
    assert iam.authenticate(view) is not None
    with pytest.raises(AuthenticationError):
        iam.authenticate(view)
