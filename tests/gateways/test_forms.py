"""The sans-IO halves of the authorizer: a gateway's subrequest to the original request, and the gate's outcome to
the gateway's answer. Subrequests are shaped as the gateways send them: nginx with the configuration of
docs/gateways.md, ingress-nginx as its controller's template writes its ``auth-url`` location (Host replaced by the
authorizer's, ``X-Original-URL``, ``X-Sent-From``, ``X-Auth-Request-Redirect``, no ``X-Forwarded-Proto``)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from iam_middleware import AccessDeniedError, BadRequestError, IAMError, MissingCredentialError, RequestView
from iam_middleware._principal import CredentialKind, Principal, PrincipalType
from iam_middleware.authz import BODY_DECLARATION, InvalidSubrequestError
from iam_middleware.authz._answers import allowed, nginx_refusal, principal_headers
from iam_middleware.authz._forms import from_envoy, from_nginx
from iam_middleware.directory import Snapshot
from iam_middleware.gate import Reply, RequestContext, render_error

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"),)
GATEWAY = "10.1.2.3"
STRANGER = "198.51.100.7"


def sub(*headers: tuple[str, str], peer: str = GATEWAY, path: bytes = b"/nginx", body: bytes | None = None,
        method: str = "GET", query: bytes = b"") -> RequestView:
    return RequestView(method=method, raw_path=path, query_string=query, headers=headers, client_host=peer,
                       body=body)


NGINX = (("host", "api.example"), ("x-original-method", "DELETE"), ("x-original-uri", "/orders/%34%32?b=2&a=1"),
         ("x-original-framing", "HTTP/1.1 length= encoding="), ("x-real-ip", "203.0.113.9"),
         ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https"), ("authorization", "Bearer t"))

INGRESS = (("host", "iam-authz.default.svc.cluster.local"), ("x-request-id", "4f1e0c8d2b7a9e6f"),
           ("x-original-url", "https://orders.example.com/orders/42?view=full"), ("x-original-method", "GET"),
           ("x-sent-from", "nginx-ingress-controller"), ("x-real-ip", "203.0.113.9"),
           ("x-forwarded-for", "203.0.113.9"), ("x-auth-request-redirect", "/orders/42?view=full"),
           ("authorization", "Bearer t"))


def test_nginx_gives_the_original_method_target_headers_and_scheme() -> None:
    view = from_nginx(sub(*NGINX), TRUSTED)
    assert (view.method, view.raw_path, view.query_string) == ("DELETE", b"/orders/%34%32", b"b=2&a=1")
    assert view.scheme == "https" and view.client_host == GATEWAY and view.body == b""
    assert view.header("host") == "api.example" and view.header("authorization") == "Bearer t"
    assert not any(name.startswith("x-original-") for name, _ in view.headers)


def test_ingress_nginx_gives_the_clients_host_and_scheme_from_the_url() -> None:
    view = from_nginx(sub(*INGRESS), TRUSTED)
    assert (view.method, view.raw_path, view.query_string) == ("GET", b"/orders/42", b"view=full")
    assert view.header_values("host") == ["orders.example.com"] and view.scheme == "https"
    assert view.body is None  # no X-Original-Framing: whether a body came is unknown


def test_a_gateway_that_is_not_trusted_never_sets_the_scheme() -> None:
    assert from_nginx(sub(*NGINX, peer=STRANGER), TRUSTED).scheme == "http"
    assert from_nginx(sub(*INGRESS, peer=STRANGER), TRUSTED).scheme == "http"
    assert from_nginx(sub(*NGINX), ()).scheme == "http"


def test_x_real_ip_is_one_forwarded_hop_when_no_list_is_sent() -> None:
    without_list = tuple(h for h in NGINX if h[0] != "x-forwarded-for")
    assert from_nginx(sub(*without_list), TRUSTED).header_values("x-forwarded-for") == ["203.0.113.9"]
    both = tuple(("x-real-ip", "192.0.2.1") if name == "x-real-ip" else (name, value) for name, value in NGINX)
    assert from_nginx(sub(*both), TRUSTED).header_values("x-forwarded-for") == ["203.0.113.9"]  # the list wins


@pytest.mark.parametrize(("headers", "why"), [
    ((("x-original-uri", "/orders/42"),), "X-Original-Method"),
    ((("x-original-method", "GET"),), "neither"),
    ((("x-original-method", "GET"), ("x-original-method", "POST"), ("x-original-uri", "/")), "more than once"),
    ((("x-original-method", "GET"), ("x-original-uri", "*")), "starting with '/'"),
    ((("x-original-method", "GET"), ("x-original-url", "https://a.example/x"), ("x-original-uri", "/y")),
     "different requests"),
    ((("x-original-method", "GET"), ("x-original-url", "ftp://a.example/x")), "absolute http"),
    ((("x-original-method", "GET"), ("x-original-url", "https://a.example")), "absolute http"),
])
def test_a_subrequest_without_what_the_configuration_sets_is_refused(headers: Any, why: str) -> None:
    with pytest.raises(InvalidSubrequestError, match=why) as raised:
        from_nginx(sub(*headers), TRUSTED)
    assert raised.value.status_code == 400 and raised.value.code == "InvalidSubrequest"


@pytest.mark.parametrize(("framing", "body", "restored"), [
    ("HTTP/1.1 length= encoding=", b"", []),
    ("HTTP/1.0 length= encoding=", b"", []),
    ("HTTP/1.1 length=0 encoding=", b"", [("content-length", "0")]),
    ("HTTP/2.0 length=0 encoding=", b"", [("content-length", "0")]),
    ("HTTP/1.1 length=5 encoding=", None, [("content-length", "5")]),
    ("HTTP/1.1 length= encoding=chunked", None, [("transfer-encoding", "chunked")]),
    ("HTTP/2.0 length= encoding=", None, []),  # HTTP/2 may carry a body with neither header
    ("HTTP/3.0 length= encoding=", None, []),
    ("HTTP/1.1 length=0", None, []),  # not the configuration's format: nothing is assumed
    ("anything", None, []),
])
def test_the_framing_says_when_the_body_is_known_to_be_empty(framing: str, body: bytes | None,
                                                              restored: list[tuple[str, str]]) -> None:
    headers = (("x-original-method", "POST"), ("x-original-uri", "/orders"), ("x-original-framing", framing))
    view = from_nginx(sub(*headers), TRUSTED)
    assert view.body == body
    assert [h for h in view.headers if h[0] in ("content-length", "transfer-encoding")] == restored


ENVOY = (("host", "api.example"), ("authorization", "Bearer t"), ("content-length", "6"),
         ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https"), ("x-envoy-expected-rq-timeout-ms", "500"))


@pytest.mark.parametrize(("extra", "body", "expected"), [
    (((BODY_DECLARATION, "forwarded"), ("x-envoy-auth-partial-body", "false")), b"note 1", b"note 1"),
    (((BODY_DECLARATION, "forwarded"), ("x-envoy-auth-partial-body", "true")), b"note", None),
    (((BODY_DECLARATION, "forwarded"),), b"", b""),  # no body to buffer: Envoy adds no partial-body header
    (((BODY_DECLARATION, "forwarded"),), b"note 1", None),
    ((("x-envoy-auth-partial-body", "false"),), b"", None),  # not declared: a client's header proves nothing
    ((), b"", None),
])
def test_envoy_forwards_the_body_only_where_declared_and_whole(extra: Any, body: bytes,
                                                               expected: bytes | None) -> None:
    view = from_envoy(sub(*ENVOY, *extra, method="POST", body=body, query=b"a=1"), b"/orders/42/notes", TRUSTED)
    assert view.body == expected
    assert (view.method, view.raw_path, view.query_string, view.scheme) == ("POST", b"/orders/42/notes", b"a=1",
                                                                           "https")
    assert not {BODY_DECLARATION, "x-envoy-auth-partial-body"} & {name for name, _ in view.headers}
    assert bool(view.header_values("content-length")) == (expected is not None)


def test_envoy_needs_the_original_path_below_the_prefix() -> None:
    with pytest.raises(InvalidSubrequestError):
        from_envoy(sub(*ENVOY), b"orders", TRUSTED)


# Answers --------------------------------------------------------------------------------------------------------


def principal(**changes: Any) -> Principal:
    fields: dict[str, Any] = {"arn": "arn:app:sts::111122223333:assumed-role/partner/p-1",
                              "type": PrincipalType.ASSUMED_ROLE, "account": "111122223333", "name": "partner",
                              "id": "AROA1:p-1", "credential_kind": CredentialKind.WEB_IDENTITY, "session_name": "p-1"}
    fields.update(changes)
    return Principal(**fields)


def context(error: IAMError | None = None, who: Principal | None = None) -> RequestContext:
    snapshot = Snapshot(partition="app", accounts=(), users=(), groups=(), roles=(), version=0, source="t")
    return RequestContext(request=sub(), request_id="req-1", now=0.0, source_ip=None, websocket=False, path="/x",
                          snapshot=snapshot, error=error, principal=who, outcome="Allowed")


def test_principal_headers_are_header_safe() -> None:
    assert principal_headers(principal(session_name="zoë%\r\nx")) == [
        ("x-iam-principal-arn", "arn:app:sts::111122223333:assumed-role/partner/p-1"),
        ("x-iam-principal-account", "111122223333"), ("x-iam-principal-type", "AssumedRole"),
        ("x-iam-session-name", "zo%C3%AB%25%0D%0Ax")]
    assert principal_headers(None) == []


def test_envoy_is_told_to_remove_the_principal_headers_an_answer_does_not_set() -> None:
    user = principal(type=PrincipalType.USER, session_name=None)
    headers = dict(allowed(context(who=user), envoy=True).headers)
    assert headers["x-envoy-auth-headers-to-remove"] == "x-iam-session-name"
    anonymous = dict(allowed(context(), envoy=True).headers)
    assert anonymous["x-envoy-auth-headers-to-remove"] == ("x-iam-principal-arn, x-iam-principal-account, "
                                                           "x-iam-principal-type, x-iam-session-name")
    assert "x-envoy-auth-headers-to-remove" not in dict(allowed(context(), envoy=False).headers)


@pytest.mark.parametrize(("error", "status"), [
    (MissingCredentialError("no"), 401), (AccessDeniedError("no"), 403),
    (BadRequestError("no", code="InvalidPath"), 403),
])
def test_nginx_gets_401_or_403_with_the_gates_status_and_body_in_headers(error: Any, status: int) -> None:
    refusal = render_error(error, "req-1")
    answer = nginx_refusal(refusal, context(error))
    headers = dict(answer.headers)
    assert answer.status == status and answer.body == refusal.body
    assert headers["x-iam-status"] == str(error.status_code) and headers["x-iam-refusal"] == refusal.body.decode()
    assert ("www-authenticate" in headers) == (status == 401)


def test_a_refusal_body_that_cannot_ride_in_a_header_is_replaced_by_the_standard_one() -> None:
    error = AccessDeniedError("no")
    shaped = Reply(418, [("content-type", "text/plain")], b"line one\r\nline two")
    headers = dict(nginx_refusal(shaped, context(error)).headers)
    assert headers["x-iam-refusal"] == render_error(error, "req-1").body.decode() and headers["x-iam-status"] == "418"
    huge = AccessDeniedError("x" * 5000)
    headers = dict(nginx_refusal(render_error(huge, "req-1"), context(huge)).headers)
    assert headers["x-iam-refusal"] == '{"error": "Refused", "request_id": "req-1"}'
