"""IAMMiddleware: the pure-ASGI shell over the IAM core, for ``http`` and ``websocket`` scopes.

Per request: find the route the app's own router will dispatch to (or, for apps without a Starlette router, the
rules table over a canonical path), authenticate, render the route's permission, decide, then run the app with the
principal in ``request.user`` and the credentials in ``request.auth``, or answer 400/401/403/503 in JSON. Lifespan
and other scopes pass through untouched. Every error on the way is a deny: nothing in here answers 500.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.authentication import AuthCredentials, UnauthenticatedUser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._exceptions import (
    AccessDeniedError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    IAMError,
    MissingCredentialError,
)
from ._iam import IAM
from ._principal import Principal
from ._request import RequestView
from ._resolve import Resolved, all_routes, requirement_of, resolve, routes_of
from ._routes import PUBLIC, Permission, Requirement, RuleTable, canonical_path, render, request_values
from .policy import Decision
from .state import MemoryStore

__all__ = [
    "IAMCredentials",
    "IAMMiddleware",
    "error_response",
    "log_decision",
    "new_request_id",
    "request_view",
    "source_ip",
]

logger = logging.getLogger("iam_middleware")
decision_log = logging.getLogger("iam_middleware.decisions")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_EXPLAIN_HEADER = "x-iam-explain"


class IAMCredentials(AuthCredentials):
    """``request.auth``: Starlette's credentials (scope ``authenticated``) plus the principal and the decision."""

    def __init__(self, principal: Principal, decision: Decision | None) -> None:
        super().__init__(["authenticated"])
        self.principal = principal
        self.decision = decision
        self.kind = principal.credential_kind


def source_ip(request: RequestView, trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> str | None:
    """``aws:SourceIp``: the peer address, or the right-most untrusted ``X-Forwarded-For`` hop when the peer is a
    trusted proxy. Forwarded headers from anyone else are ignored."""
    peer = request.client_host
    if not trusted or peer is None or not _in(peer, trusted):
        return peer
    hops = [h.strip() for v in request.header_values("x-forwarded-for") for h in v.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return peer


def _in(address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def request_view(scope: Scope, body: bytes | None = None) -> RequestView:
    """The sans-IO view of an ASGI scope: raw path and query as received, headers lower-cased in order."""
    client = scope.get("client")
    scheme = scope.get("scheme", "http")
    raw_path = scope.get("raw_path") or scope.get("path", "/").encode("utf-8")
    return RequestView(
        method=scope.get("method", "GET") if scope["type"] == "http" else "GET",
        raw_path=raw_path,
        query_string=scope.get("query_string", b""),
        headers=tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", ())),
        client_host=client[0] if client else None,
        scheme=scheme,
        body=body,
    )


class IAMMiddleware:
    """Authenticate and authorize every request to ``app`` against ``iam``'s policies.

    ``rules`` is a rules table for routes declared outside the code (or for any ASGI app without a Starlette
    router); ``routes_from`` names the app whose router decides (given by ``install`` helpers when the middleware
    sits inside the app's own middleware stack). ``undeclared`` says what the start-up audit does with routes that
    declare nothing: ``"warn"`` (log them; they are denied at run time) or ``"error"`` (refuse to start).
    ``cors_preflight`` lets real CORS preflights (OPTIONS + Origin + Access-Control-Request-Method) through to the
    app's CORS handling. ``explain`` adds a denied request's explanation to the 403 body when the request carries
    ``X-IAM-Explain: 1`` (off by default: it tells a caller which statements were consulted).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        iam: IAM,
        rules: RuleTable | None = None,
        routes_from: Any = None,
        undeclared: str = "warn",
        cors_preflight: bool = False,
        explain: bool = False,
        max_body_bytes: int = 10 * 1024 * 1024,
    ) -> None:
        if undeclared not in ("warn", "error"):
            raise ConfigurationError("undeclared must be 'warn' or 'error'")
        self.app = app
        self.iam = iam
        self.rules = rules or RuleTable()
        self._routes_from = routes_from if routes_from is not None else app
        self.undeclared = undeclared
        self.cors_preflight = cors_preflight
        self.explain = explain
        self.max_body_bytes = max_body_bytes
        self._audited = False
        self._offload = not isinstance(iam.store, MemoryStore)

    # Start-up audit ----------------------------------------------------------------------------------------------
    def audit(self) -> list[str]:
        """Check every route: a route declared twice is an error; undeclared ones are listed (and denied)."""
        routes = routes_of(self._routes_from)
        undeclared: list[str] = []
        if routes is not None:
            for path, route in all_routes(routes):
                methods = sorted(getattr(route, "methods", None) or {"GET"})
                for method in methods:
                    requirement = requirement_of(route, method)
                    ruled = self.rules.lookup(method, path)
                    if requirement is not None and ruled is not None and ruled[0].path == path:
                        raise ConfigurationError(f"{method} {path} is declared both next to the route and in the "
                                                 "rules table; declare it once")
                    if requirement is None and ruled is None:
                        undeclared.append(f"{method} {path}")
        if undeclared:
            message = "routes with no permission declared (denied to everyone): " + ", ".join(undeclared)
            if self.undeclared == "error":
                raise ConfigurationError(message)
            logger.warning(message)
        self._audited = True
        return undeclared

    # ASGI --------------------------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            if not self._audited:
                self.audit()
            await self.app(scope, receive, send)
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        try:
            outcome = await self._authorize(scope, receive, request_id)
        except IAMError as error:
            self._log(scope, request_id, None, None, error)
            await self._deny(scope, receive, send, error, request_id)
            return
        except Exception:  # noqa: BLE001 - fail closed, never a 500 from the authorization path
            logger.exception("authorization failed closed (request %s)", request_id)
            error = AccessDeniedError("The request could not be authorized.", code="AuthorizationFailed")
            await self._deny(scope, receive, send, error, request_id)
            return
        principal, decision, body = outcome
        if principal is not None:
            scope["user"] = principal
            scope["auth"] = IAMCredentials(principal, decision)
        else:
            scope.setdefault("user", UnauthenticatedUser())
            scope.setdefault("auth", AuthCredentials())
        state = scope.setdefault("state", {})
        state["iam_principal"] = principal
        state["iam_decision"] = decision
        state["request_id"] = request_id
        if body is not None:
            receive = _replay(body, receive)
        if kind == "websocket" and principal is not None and principal.expires_at is not None:
            await self._run_until_expiry(scope, receive, send, principal.expires_at)
            return
        await self.app(scope, receive, send)

    async def _authorize(
        self, scope: Scope, receive: Receive, request_id: str
    ) -> tuple[Principal | None, Decision | None, bytes | None]:
        if not self._audited:
            self.audit()
        method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
        view = request_view(scope)
        requirement, path_params, template = self._requirement(scope, view)
        if requirement is PUBLIC:
            return None, None, None
        if (self.cors_preflight and method == "OPTIONS" and view.header("origin") is not None
                and view.header("access-control-request-method") is not None):
            return None, None, None
        body: bytes | None = None
        if scope["type"] == "http" and self.iam.sigv4.needs_body(view):
            body = await _read_body(receive, self.max_body_bytes)
            view = request_view(scope, body)
        principal = await self._authenticate(view)
        if principal is None:
            raise MissingCredentialError(
                "This resource requires authentication.",
                headers={"WWW-Authenticate": 'Bearer realm="iam-middleware", AWS4-HMAC-SHA256'},
            )
        if requirement is None:
            raise AccessDeniedError(
                f"User: {principal.arn} is not authorized to perform: {method} on {template or view.raw_path!r} "
                "because no permission is declared for this route", code="AccessDenied",
            )
        if not isinstance(requirement, Permission):  # pragma: no cover - Requirement is Permission | Public
            raise AccessDeniedError("The route's requirement is not understood.", code="AuthorizationFailed")
        settings = self.iam.settings
        query = dict(parse_qsl(view.query_string.decode("latin-1"), keep_blank_values=True))
        headers = {k: v for k, v in view.headers}
        fixed = {"account": principal.account, "partition": settings.partition, "region": settings.regions[0]}
        resource, context = render(requirement, request_values(path_params, query, headers, fixed))
        ip = source_ip(view, settings.trusted_proxies)
        _, decision = self.iam.check(view, requirement.action, resource, context=context, principal=principal,
                                     source_ip=ip)
        self._log(scope, request_id, principal, decision, None, ip=ip)
        return principal, decision, body

    def _requirement(self, scope: Scope, view: RequestView) -> tuple[Requirement | None, Mapping[str, Any], str]:
        """The requirement for this request, its path parameters, and the route template (for messages)."""
        method = view.method if scope["type"] == "http" else "WEBSOCKET"
        routes = routes_of(self._routes_from)
        if routes is not None:
            resolved, _ = resolve(routes, scope)
            if resolved is not None:
                return self._with_rules(resolved, method)
            return None, {}, ""
        path = canonical_path(view.raw_path)
        ruled = self.rules.lookup(method, path)
        if ruled is None:
            return None, {}, ""
        rule, params = ruled
        return rule.requirement, params, rule.path

    def _with_rules(self, resolved: Resolved, method: str) -> tuple[Requirement | None, Mapping[str, Any], str]:
        if resolved.requirement is not None:
            return resolved.requirement, resolved.path_params, resolved.template
        for rule in self.rules.rules:
            if rule.path == resolved.template and rule.method in ("*", method, "GET" if method == "HEAD" else method):
                return rule.requirement, resolved.path_params, resolved.template
        return None, resolved.path_params, resolved.template

    async def _authenticate(self, view: RequestView) -> Principal | None:
        if self._offload:
            # Shared state over the network (Redis): keep blocking I/O off the event loop.
            import anyio.to_thread

            return await anyio.to_thread.run_sync(lambda: self.iam.authenticate(view))
        return self.iam.authenticate(view)

    # Responses ---------------------------------------------------------------------------------------------------
    async def _deny(self, scope: Scope, receive: Receive, send: Send, error: IAMError, request_id: str) -> None:
        explain = self.explain and _header(scope, _EXPLAIN_HEADER) == "1"
        status, fields, payload = error_response(error, request_id, explanation=explain)
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in fields]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": payload})
            return
        await send({"type": "websocket.close", "code": 1008, "reason": error.code})

    async def _run_until_expiry(self, scope: Scope, receive: Receive, send: Send, expires_at: float) -> None:
        """Run a websocket app, closing the connection (1008) when the credential expires."""
        closed = False

        async def guarded_send(message: Message) -> None:
            if closed:
                return
            await send(message)

        async def guarded_receive() -> Message:
            nonlocal closed
            remaining = expires_at - self.iam.clock()
            if remaining <= 0 or not math.isfinite(remaining):
                closed = True
                await send({"type": "websocket.close", "code": 1008, "reason": "CredentialExpired"})
                return {"type": "websocket.disconnect", "code": 1008}
            try:
                return await asyncio.wait_for(receive(), timeout=remaining)
            except TimeoutError:
                closed = True
                await send({"type": "websocket.close", "code": 1008, "reason": "CredentialExpired"})
                return {"type": "websocket.disconnect", "code": 1008}

        await self.app(scope, guarded_receive, guarded_send)

    def _log(self, scope: Scope, request_id: str, principal: Principal | None, decision: Decision | None,
             error: IAMError | None, ip: str | None = None) -> None:
        log_decision(request_id=request_id, method=scope.get("method", "WEBSOCKET"), path=scope.get("path"),
                     principal=principal, decision=decision, error=error,
                     source_ip=ip if ip is not None else (scope.get("client") or (None,))[0])


def log_decision(*, request_id: str, method: str, path: str | None, principal: Principal | None,
                 decision: Decision | None, error: IAMError | None, source_ip: str | None) -> None:
    """One JSON line on the ``iam_middleware.decisions`` logger per authorized or refused request (every shell)."""
    if not decision_log.isEnabledFor(logging.INFO):
        return
    record: dict[str, Any] = {
        "request_id": request_id,
        "method": method,
        "path": path,
        "principal": principal.arn if principal is not None else None,
        "source_ip": source_ip,
    }
    if decision is not None:
        record.update(action=decision.action, resource=decision.resource, decision=decision.kind.value,
                      statements=[m.as_dict() for m in decision.matched])
    if error is not None:
        record.update(decision="Denied" if isinstance(error, AccessDeniedError) else "Refused",
                      status=error.status_code, code=error.code)
        if isinstance(error, AccessDeniedError) and error.decision is not None:
            d = error.decision
            record.update(action=d.action, resource=d.resource, principal=d.principal_arn,
                          statements=[m.as_dict() for m in d.matched], denied_by=d.denied_by)
    decision_log.info(json.dumps(record, default=str), extra={"iam": record})


def error_response(
    error: IAMError, request_id: str, *, explanation: bool = False
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The JSON answer to a refused request (status, lower-cased headers, body), the same from every shell.
    ``explanation`` adds a denial's matched statements to the body (only when the operator opted in)."""
    body: dict[str, Any] = {"error": error.code, "message": error.message, "request_id": request_id}
    if explanation and isinstance(error, AccessDeniedError) and error.decision is not None:
        body["explanation"] = error.decision.as_dict()
    payload = json.dumps(body).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(payload))),
               ("x-request-id", request_id)]
    for name, value in error.headers.items():
        headers.append((name.lower(), value))
    if isinstance(error, AuthenticationError) and "WWW-Authenticate" not in error.headers:
        headers.append(("www-authenticate", _challenge(error)))
    return error.status_code, headers, payload


def _challenge(error: AuthenticationError) -> str:
    if error.scheme == "AWS4-HMAC-SHA256":
        return "AWS4-HMAC-SHA256"
    if isinstance(error, MissingCredentialError):
        return 'Bearer realm="iam-middleware"'
    description = error.message.replace('"', "'").replace("\\", "/")
    return f'Bearer error="invalid_token", error_description="{description}"'


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode("latin-1")
    for key, value in scope.get("headers", ()):
        if key.lower() == wanted:
            return str(value.decode("latin-1"))
    return None


def _request_id(scope: Scope) -> str:
    return new_request_id(_header(scope, "x-request-id"))


def new_request_id(given: str | None) -> str:
    """The caller's ``X-Request-ID`` when it is a plain token (so logs correlate), else a fresh random id."""
    if given is not None and _REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequestError("The client disconnected before sending the whole body.", code="IncompleteBody")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            error = BadRequestError(f"The request body is larger than {limit} bytes.", code="EntityTooLarge")
            error.status_code = 413
            raise error
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
