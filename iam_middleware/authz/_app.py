"""The external authorizer as an ASGI app: one more shell over the gate, for gateways instead of frameworks.

``/nginx`` answers nginx ``auth_request`` subrequests; ``/envoy/...`` answers Envoy ``ext_authz`` check requests
(``path_prefix: /envoy``). Per request it translates the subrequest into the original request (``_forms``), finds
the rule of the rules table that governs its method and canonical path, decides through the gate (the same
authenticators, decision and decision log as the middleware) and translates the outcome into the gateway's answer
(``_answers``); an exact repeat of a recently allowed subrequest gets the same answer (``_warm``). The AuthZEN
endpoints (``iam_middleware.authzen``, docs/authzen.md) are served beside them. Nothing is decided here. Anything
unexpected is a refusal, never a 500 (which Envoy may be told to let through, and which nginx turns into an error
page of its own).
"""

from __future__ import annotations

import logging

from starlette.types import Receive, Scope, Send

from .._exceptions import AccessDeniedError, IAMError
from .._iam import IAM
from .._request import RequestView
from ..asgi import decide_async, read_body, serve_replies
from ..authenticators._sigv4 import route_allows_unsigned_payload
from ..authzen import AuthZEN
from ..gate import NO_ROUTE, ErrorHandler, Gate, Reply, RequestContext, Target, new_request_id, render_error
from ..interfaces import from_asgi_scope
from ..routing import RuleTable
from ._answers import allowed, nginx_refusal
from ._errors import NotAGatewayPathError, PayloadNotForwardedError
from ._forms import from_envoy, from_nginx
from ._warm import WarmAnswers

__all__ = ["ENVOY_PREFIX", "NGINX_PATH", "Authorizer"]

logger = logging.getLogger("iam_middleware")

#: The path nginx's ``auth_request`` location proxies to, below where the app is mounted.
NGINX_PATH = "/nginx"
#: Envoy's ``http_service.path_prefix``, below where the app is mounted.
ENVOY_PREFIX = "/envoy"
_NGINX = NGINX_PATH.encode()
_ENVOY = ENVOY_PREFIX.encode() + b"/"


class Authorizer:
    """An ASGI app that decides, for nginx ``auth_request`` and Envoy ``ext_authz``, whether a request may reach the
    upstream behind them, with ``iam``'s authenticators and policies over the rules table (``rules``, by default
    the directory file's ``[[routes]]``). Mount it where you like (``Mount("/authz", app=Authorizer(iam))``).

    ``explain``, ``max_body_bytes`` (the most of a forwarded body read to verify a signed payload) and ``on_error``
    are the gate's (``iam_middleware.gate``). Request paths no rule governs are refused, as in every shell. A GET
    that asks for an upgrade is decided as a websocket handshake; a rule's ``unsigned_payload`` lets a request
    signed ``UNSIGNED-PAYLOAD`` over HTTPS through without its body (docs/gateways.md).

    It also answers AuthZEN evaluation requests (``AuthZEN``, docs/authzen.md) at ``/access/v1/evaluation`` and
    ``/access/v1/evaluations``, and with ``pdp_url`` (its own https URL) publishes their metadata document.
    """

    def __init__(self, iam: IAM, *, rules: RuleTable | None = None, explain: bool = False,
                 max_body_bytes: int = 10 * 1024 * 1024, on_error: ErrorHandler | None = None,
                 pdp_url: str | None = None) -> None:
        self.iam = iam
        self.gate = Gate(iam, explain=explain, max_body_bytes=max_body_bytes, on_error=on_error)
        self.authzen = AuthZEN(iam, pdp_url=pdp_url, explain=explain, on_error=on_error)
        self.rules = rules if rules is not None else iam.rules
        self._warm = WarmAnswers(iam, self.rules)
        if not self.rules:
            logger.warning("the authorizer has no rules table ([[routes]]): every request is refused")

    def __repr__(self) -> str:
        return f"Authorizer(iam={self.iam!r}, rules={len(self.rules.rules)})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_replies(scope, receive, send, self._reply)

    async def _reply(self, scope: Scope, receive: Receive) -> Reply:
        if self.authzen.handles(scope):
            return await self.authzen.reply(scope, receive)
        return await self._gateway(scope, receive)

    async def _gateway(self, scope: Scope, receive: Receive) -> Reply:
        gate = self.gate
        token = gate.enter()  # a reload due now applies; the decision is taken on one snapshot
        try:
            key, given_id = self._warm.key(scope)
            reply = self._warm.answer(key, new_request_id(given_id))
            return reply if reply is not None else await self._answer(scope, receive, key)
        finally:
            gate.exit(token)

    async def _answer(self, scope: Scope, receive: Receive, key: bytes) -> Reply:
        gate = self.gate
        sub = from_asgi_scope(scope)
        form, below = _form(scope, sub.raw_path)
        if form is None:
            return render_error(NotAGatewayPathError(), new_request_id(sub.header("x-request-id")))
        envoy = form == "envoy"
        trusted = self.iam.settings.trusted_proxies
        context: RequestContext | None = None
        try:
            if envoy:
                body = await read_body(receive, gate)
                original = from_envoy(sub.with_body(body), below, trusted)
            else:
                original = from_nginx(sub, trusted)
            context = gate.begin(original, websocket=_handshake(original))
            target, unsigned = self._target(context) if context.error is None else (NO_ROUTE, False)
            # The route's unsigned_payload lets UNSIGNED-PAYLOAD (over HTTPS) stand in for the body, for this
            # request only; a signature over the payload hash still needs the body.
            allowance = route_allows_unsigned_payload.set(unsigned)
            try:
                if gate.needs_body(context, target):  # a signed payload the gateway did not forward
                    gate.refuse(context, PayloadNotForwardedError())
                else:
                    await decide_async(gate, context, target)
            finally:
                route_allows_unsigned_payload.reset(allowance)
        except IAMError as error:
            context = gate.refuse(context or gate.begin(sub), error)
        except Exception:  # noqa: BLE001 - fail closed: a refusal, never a 500
            logger.exception("authorization failed closed")
            context = gate.refuse(context or gate.begin(sub),
                                  AccessDeniedError("The request could not be authorized.", code="AuthorizationFailed"))
        if context.error is None:
            answer = allowed(context, envoy=envoy)
            self._warm.keep(key, context, answer)
            return answer
        refusal = gate.render(context)
        return refusal if envoy else nginx_refusal(refusal, context)

    def _target(self, context: RequestContext) -> tuple[Target, bool]:
        """(the rule governing the original method and canonical path, as the middleware finds it for an app
        without a router of its own; whether that rule accepts ``UNSIGNED-PAYLOAD``). A websocket handshake is
        governed by the rule for ``WEBSOCKET`` (as in the middleware) or, when the path has none, for ``GET``."""
        found = self.rules.lookup(context.method, context.path)
        if found is None and context.websocket:
            found = self.rules.lookup("GET", context.path)
        if found is None:
            return NO_ROUTE, False
        rule, params = found
        return Target(rule.requirement, params, rule.path, rule.handles(context.method)), rule.unsigned_payload


def _handshake(original: RequestView) -> bool:
    """Whether the original request asks to upgrade its connection (a websocket handshake): a GET with an
    ``Upgrade`` header. It is then decided as the middleware decides a handshake, the cross-site check of cookie
    sessions included, since a page on any site can open a websocket that carries the cookie. Any upgrade counts:
    the upstream, not the authorizer, chooses which it accepts."""
    return original.method == "GET" and bool(original.header_values("upgrade"))


def _form(scope: Scope, raw_path: bytes) -> tuple[str | None, bytes]:
    """("nginx" or "envoy" or None, the original raw path below Envoy's prefix), below the app's mount point."""
    root = str(scope.get("root_path", "")).encode("utf-8")
    if root and raw_path.startswith(root + b"/"):
        raw_path = raw_path[len(root):]
    if raw_path == _NGINX:
        return "nginx", b""
    if raw_path.startswith(_ENVOY):
        return "envoy", raw_path[len(_ENVOY) - 1:]
    return None, b""
