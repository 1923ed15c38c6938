"""IAMMiddleware: the pure-ASGI shell over the IAM core, for ``http`` and ``websocket`` scopes.

Per request: find the route the app's own router will dispatch to (or, for apps without a Starlette router, the
rules table over a canonical path), authenticate, render the route's permission, decide, then run the app with the
principal in ``request.user`` and the credentials in ``request.auth``, or answer 400/401/403/503 in JSON. Lifespan
and other scopes pass through untouched. Every error on the way is a deny: nothing in here answers 500.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import logging
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, quote

import anyio
import anyio.to_thread
from starlette.authentication import AuthCredentials, UnauthenticatedUser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._exceptions import (
    AccessDeniedError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    IAMError,
    MissingCredentialError,
    ServiceUnavailableError,
)
from ._iam import IAM
from ._principal import Principal
from ._recent import Recent, RecentDecisions, digest
from ._request import RequestView
from ._resolve import all_routes, methods_of, requirement_of, resolve, routes_of
from ._routes import (
    PUBLIC,
    MissingValueError,
    Permission,
    Requirement,
    RuleTable,
    canonical_path,
    render,
    request_values,
    unknown_placeholders,
)
from .policy import Decision
from .state import MemoryStore, StateUnavailableError

__all__ = [
    "IAMCredentials",
    "IAMMiddleware",
    "error_response",
    "log_decision",
    "new_request_id",
    "render_permission",
    "request_view",
    "source_ip",
]

logger = logging.getLogger("iam_middleware")
decision_log = logging.getLogger("iam_middleware.decisions")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_ID_PREFIX = secrets.token_hex(10)
_ID_COUNTER = itertools.count(1)
_EXPLAIN_HEADER = "x-iam-explain"
_REALM = "iam-middleware"
# Headers some frameworks and proxies honour to run another method than the one sent. The action is always the
# method the server received, so they are taken out before the app could act on them (SECURITY.md R9).
_METHOD_OVERRIDES = frozenset({b"x-http-method-override", b"x-http-method", b"x-method-override"})
# Characters RFC 6750 allows inside error_description.
_DESCRIPTION_UNSAFE = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')
# The longest a websocket waits between looks at the clock, so an injected clock that jumps is noticed.
_EXPIRY_POLL_SECONDS = 30.0
# Path templates as Starlette writes them: ``{name}`` or ``{name:convertor}``.
_ROUTE_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[A-Za-z_][A-Za-z0-9_]*)?\}")


class IAMCredentials(AuthCredentials):
    """``request.auth``: Starlette's credentials (scope ``authenticated``) plus the principal and the decision."""

    def __init__(self, principal: Principal, decision: Decision | None) -> None:
        super().__init__(["authenticated"])
        self.principal = principal
        self.decision = decision
        self.kind = principal.credential_kind


def source_ip(request: RequestView, trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> str | None:
    """``aws:SourceIp``: the peer address; when the peer is a trusted proxy, the right-most ``X-Forwarded-For`` hop
    that is not itself a trusted proxy. Forwarded headers from anyone else are ignored. A forwarded chain that cannot
    be read gives None (the key is absent), never the proxy's own address, which IP conditions might allow."""
    peer = request.client_host
    if not trusted or peer is None or not _in(peer, trusted):
        return peer
    hops = [h.strip() for v in request.header_values("x-forwarded-for") for h in v.split(",")]
    if not hops:
        return peer
    for hop in reversed(hops):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return None
        if not any(address in network for network in trusted):
            return str(address)
    # Every hop is one of our proxies: the left-most is where the request came from.
    return str(ipaddress.ip_address(hops[0]))


def _in(address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def request_view(scope: Scope, body: bytes | None = None) -> RequestView:
    """The sans-IO view of an ASGI scope: raw path and query as received, headers lower-cased in order.

    ``raw_path`` is optional in ASGI; without it the decoded path is encoded again, so nothing downstream decodes
    it a second time (a decoded ``%41`` must not become ``A``). A websocket handshake has no body: ``b""``."""
    client = scope.get("client")
    if body is None and scope["type"] == "websocket":
        body = b""
    scheme = scope.get("scheme", "http")
    raw_path = scope.get("raw_path") or quote(scope.get("path", "/"), safe="/:@!$&'()*+,;=-._~").encode("ascii")
    return RequestView(
        method=scope.get("method", "GET") if scope["type"] == "http" else "GET",
        raw_path=raw_path,
        query_string=scope.get("query_string", b""),
        headers=tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", ())),
        client_host=client[0] if client else None,
        scheme=scheme,
        body=body,
    )


@dataclass(slots=True)
class _Trail:
    """What is known about a request so far, for its decision record (filled in as authorization proceeds)."""

    outcome: str | None = None
    principal: Principal | None = None
    ip: str | None = None
    action: str | None = None
    resource: str | None = None
    decision: Decision | None = None


def _request_digest(scope: Scope) -> tuple[bytes, str | None]:
    """A digest of every input of a request's decision (never the raw credential as a key: SECURITY.md section 6),
    and the caller's ``X-Request-ID`` (read in the same pass over the headers)."""
    client = scope.get("client")
    parts = [scope.get("method", "").encode(), scope.get("raw_path") or scope.get("path", "").encode(),
             scope.get("query_string", b""), scope.get("root_path", "").encode(), scope.get("scheme", "").encode(),
             (client[0] if client else "").encode()]
    given: str | None = None
    for name, value in scope.get("headers", ()):
        parts.append(name)
        parts.append(value)
        if name == b"x-request-id":
            given = value.decode("latin-1")
    return digest(parts), given


@dataclass(frozen=True, slots=True)
class _Target:
    """What the request hits: its requirement (None: undeclared), path parameters, the route template and the
    canonical path (for messages), and whether a route or rule answers this very method (so an OPTIONS handler is
    never exempt)."""

    requirement: Requirement | None
    path_params: Mapping[str, Any]
    template: str
    path: str
    found: bool


class IAMMiddleware:
    """Authenticate and authorize every request to ``app`` against ``iam``'s policies.

    ``rules`` is a rules table for routes declared outside the code (or for any ASGI app without a Starlette
    router); ``routes_from`` names the app whose router decides (given by ``install`` helpers when the middleware
    sits inside the app's own middleware stack). ``undeclared`` says what the start-up audit does with routes that
    declare nothing: ``"warn"`` (log them; they are denied at run time) or ``"error"`` (refuse to start).
    ``cors_preflight`` lets real CORS preflights (OPTIONS + Origin + Access-Control-Request-Method) through to the
    app's CORS handling, except where a route itself handles OPTIONS. ``explain`` adds a denied request's
    explanation to the 403 body when the request carries ``X-IAM-Explain: 1`` (off by default: it tells a caller
    which statements were consulted). Method-override headers are removed before the app sees the request, and a
    request whose raw path is ambiguous (see ``canonical_path``) is refused with 400 before anything else.
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
        self.rules = rules or iam.rules  # given here, or the directory file's [[routes]]
        self._routes_from = routes_from if routes_from is not None else app
        self.undeclared = undeclared
        self.cors_preflight = cors_preflight
        self.explain = explain
        self.max_body_bytes = max_body_bytes
        self._audited = False
        self._offload = not isinstance(iam.store, MemoryStore)
        self._recent = RecentDecisions(iam)

    # Start-up audit ----------------------------------------------------------------------------------------------
    def audit(self) -> list[str]:
        """Check every route: declared twice, or naming a path parameter the route lacks, is an error; undeclared
        ones are listed (``"METHOD /template"``), logged or refused according to ``undeclared``, and denied."""
        routes = routes_of(self._routes_from)
        undeclared: list[str] = []
        if routes is None and not self.rules:
            logger.warning("the app has no router to read and no rules table is given: every request is denied")
        for path, route in all_routes(routes or []):
            methods = methods_of(route)
            for method in methods:
                if method == "HEAD" and "GET" in methods:
                    continue  # authorized as the route's GET
                requirement = requirement_of(route, method)
                rule = self.rules.for_template(method, path)
                if requirement is not None and rule is not None:
                    raise ConfigurationError(f"{method} {path} is declared both next to the route and in the "
                                             "rules table; declare it once")
                found = requirement if requirement is not None else (rule.requirement if rule else None)
                if found is None:
                    undeclared.append(f"{method} {path}")
                elif isinstance(found, Permission):
                    _check_placeholders(found, path, method)
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
            await self._lifespan(scope, receive, send)
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        iam = self.iam
        if iam.refresh_hooks:
            try:
                iam.refresh()  # a reload due now applies to this request (errors are met again, and answered, below)
            except Exception:  # noqa: BLE001
                pass
        token = iam.pin_request()  # the request, the app included, is decided on the snapshot in force now
        try:
            await self._handle(scope, receive, send, kind)
        finally:
            iam.unpin(token)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, kind: str) -> None:
        if kind == "http" and self._audited:
            digest, given_id = _request_digest(scope)
            recent = self._recent.lookup(digest)
            if recent is not None:
                self._apply_recent(scope, recent, new_request_id(given_id))
                await self.app(scope, receive, send)
                return
        else:
            digest = None
        request_id = _request_id(scope)
        trail = _Trail()
        try:
            body = await self._authorize(scope, receive, trail)
        except IAMError as error:
            self._log(scope, request_id, trail, error)
            await self._deny(scope, send, error, request_id)
            return
        except StateUnavailableError as exc:  # transient: the shared state a safe decision needs did not answer
            logger.warning("authorization refused, shared state unavailable (request %s): %s", request_id, exc)
            unavailable = ServiceUnavailableError("Shared state needed to check this request is unavailable; "
                                                  "try again shortly.")
            self._log(scope, request_id, trail, unavailable)
            await self._deny(scope, send, unavailable, request_id)
            return
        except Exception:  # noqa: BLE001 - fail closed, never a 500 from the authorization path
            logger.exception("authorization failed closed (request %s)", request_id)
            failure = AccessDeniedError("The request could not be authorized.", code="AuthorizationFailed")
            self._log(scope, request_id, trail, failure)
            await self._deny(scope, send, failure, request_id)
            return
        self._log(scope, request_id, trail, None)
        principal = trail.principal
        if principal is not None:
            scope["user"] = principal
            scope["auth"] = IAMCredentials(principal, trail.decision)
        else:
            scope.setdefault("user", UnauthenticatedUser())
            scope.setdefault("auth", AuthCredentials())
        original = scope.get("headers", ())
        kept = [(k, v) for k, v in original if k.lower() not in _METHOD_OVERRIDES]
        scope["headers"] = kept
        if digest is not None and body is None:
            # None: nothing was removed, so a repeat can keep its own header list as it is.
            filtered = kept if len(kept) != len(original) else None
            self._recent.remember(digest, principal, trail.decision,
                                  (scope["auth"], filtered, trail.ip, trail.resource))
        state = scope.setdefault("state", {})
        state["iam_principal"] = principal
        state["iam_decision"] = trail.decision
        state["request_id"] = request_id
        if body is not None:
            receive = _replay(body, receive)
        if kind == "websocket" and principal is not None and principal.expires_at is not None:
            await self._run_until_expiry(scope, receive, send, principal.expires_at)
            return
        await self.app(scope, receive, send)

    def _apply_recent(self, scope: Scope, recent: Recent, request_id: str) -> None:
        """Prepare a repeat of a recently allowed request: the same principal, decision and scope additions."""
        credentials, headers, ip, resource = recent.extra
        scope["user"] = recent.principal
        scope["auth"] = credentials
        if headers is not None:  # the original carried method-override headers: the app gets them removed
            scope["headers"] = list(headers)
        state = scope.setdefault("state", {})
        state["iam_principal"] = recent.principal
        state["iam_decision"] = recent.decision
        state["request_id"] = request_id
        if decision_log.isEnabledFor(logging.INFO):
            self._log(scope, request_id, _Trail(recent.decision.kind.value, recent.principal, ip,
                                                recent.decision.action, resource, recent.decision), None)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Audit at start-up; a failed audit fails the start-up (the server then exits) rather than serving."""
        if not self._audited:
            try:
                self.audit()
            except ConfigurationError as exc:
                logger.error("start-up audit failed: %s", exc)
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
        await self.app(scope, receive, send)

    async def _authorize(self, scope: Scope, receive: Receive, trail: _Trail) -> bytes | None:
        """Decide the request, filling ``trail``; returns the body when it had to be read (to verify a signature),
        raises the IAMError to render otherwise."""
        if not self._audited:
            self.audit()
        method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
        view = request_view(scope)
        target = self._target(scope, view)
        if target.requirement is PUBLIC:
            trail.outcome = "Public"
            return None
        if (self.cors_preflight and method == "OPTIONS" and not target.found and view.header("origin") is not None
                and view.header("access-control-request-method") is not None):
            trail.outcome = "Preflight"
            return None
        body: bytes | None = None
        if scope["type"] == "http" and self.iam.sigv4.needs_body(view):
            body = await _read_body(receive, self.max_body_bytes)
            view = request_view(scope, body)
        settings = self.iam.settings
        trail.ip = source_ip(view, settings.trusted_proxies)
        if scope["type"] == "websocket":
            # A handshake is a GET, which the CSRF guard lets pass; but a page on any site can open a websocket
            # that carries our session cookie (cross-site websocket hijacking), so it is checked as unsafe.
            http_scheme = {"ws": "http", "wss": "https"}.get(view.scheme, view.scheme)
            self.iam.csrf.check(replace(view, method="WEBSOCKET", scheme=http_scheme))
        principal = await self._authenticate(view)
        if principal is None:
            raise MissingCredentialError("This resource requires authentication.")
        trail.principal = principal
        requirement = target.requirement
        if not isinstance(requirement, Permission):
            what = target.template or target.path
            raise AccessDeniedError(f"User: {principal.arn} is not authorized to perform: {method} {what} because "
                                    "no permission is declared for this route")
        trail.action = requirement.action
        resource, context = render_permission(self.iam, view, requirement, target.path_params, principal)
        trail.resource = resource
        _, trail.decision = self.iam.check(view, requirement.action, resource, context=context, principal=principal,
                                           source_ip=trail.ip)
        trail.outcome = trail.decision.kind.value
        return body

    def _target(self, scope: Scope, view: RequestView) -> _Target:
        # An ambiguous path is refused whoever routes it: the app, a proxy or a backend behind a public route may
        # read it differently than the router we consult (SECURITY.md section 4b).
        path = _route_path(canonical_path(view.raw_path), scope.get("root_path", ""))
        method = view.method if scope["type"] == "http" else "WEBSOCKET"
        routes = routes_of(self._routes_from)
        if routes is not None:
            resolved, _ = resolve(routes, scope)
            if resolved is None:
                return _Target(None, {}, "", path, False)
            requirement = resolved.requirement
            if requirement is None:
                rule = self.rules.for_template(method, resolved.template)
                requirement = rule.requirement if rule is not None else None
            return _Target(requirement, resolved.path_params, resolved.template, path, True)
        ruled = self.rules.lookup(method, path)
        if ruled is None:
            return _Target(None, {}, "", path, False)
        found, params = ruled
        return _Target(found.requirement, params, found.path, path, found.method == method)

    async def _authenticate(self, view: RequestView) -> Principal | None:
        if self._offload:
            # Shared state over the network (Redis): keep blocking I/O off the event loop.
            return await anyio.to_thread.run_sync(lambda: self.iam.authenticate(view))
        return self.iam.authenticate(view)

    # Responses ---------------------------------------------------------------------------------------------------
    async def _deny(self, scope: Scope, send: Send, error: IAMError, request_id: str) -> None:
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
        """Run a websocket app and close the connection (1008) when the credential expires, whether the app is
        waiting for a message or only sending. After that the app's receive gives a disconnect and its send raises
        OSError, as for a client that went away."""
        expired = anyio.Event()
        finished = False  # the app closed or refused the connection itself
        connected = False

        async def close() -> None:
            if not expired.is_set():
                expired.set()
                if not finished:
                    await send({"type": "websocket.close", "code": 1008, "reason": "CredentialExpired"})

        async def watchdog() -> None:
            while True:
                remaining = expires_at - self.iam.clock()
                if not remaining > 0 or not math.isfinite(remaining):
                    break
                await anyio.sleep(min(remaining, _EXPIRY_POLL_SECONDS))
            await close()

        async def guarded_send(message: Message) -> None:
            nonlocal finished
            if expired.is_set():
                if message["type"] == "websocket.close":
                    return
                raise _ConnectionExpiredError("the credential of this connection expired")
            if message["type"] == "websocket.close" or (
                    message["type"] == "websocket.http.response.body" and not message.get("more_body", False)):
                finished = True
            await send(message)

        async def guarded_receive() -> Message:
            nonlocal connected
            if not connected:
                # The first message is websocket.connect, already queued by the server.
                connected = True
                return await receive()
            if expired.is_set():
                return {"type": "websocket.disconnect", "code": 1008}
            received: Message | None = None
            async with anyio.create_task_group() as race:

                async def get() -> None:
                    nonlocal received
                    received = await receive()
                    race.cancel_scope.cancel()

                async def stop() -> None:
                    await expired.wait()
                    race.cancel_scope.cancel()

                race.start_soon(get)
                race.start_soon(stop)
            return received if received is not None else {"type": "websocket.disconnect", "code": 1008}

        async with anyio.create_task_group() as group:
            group.start_soon(watchdog)
            try:
                await self.app(scope, guarded_receive, guarded_send)
            finally:
                group.cancel_scope.cancel()

    def _log(self, scope: Scope, request_id: str, trail: _Trail, error: IAMError | None) -> None:
        log_decision(request_id=request_id, method=scope.get("method", "WEBSOCKET"), path=scope.get("path"),
                     principal=trail.principal,
                     source_ip=trail.ip if trail.ip is not None else (scope.get("client") or (None,))[0],
                     action=trail.action, resource=trail.resource, outcome=trail.outcome, decision=trail.decision,
                     error=error)


def log_decision(*, request_id: str, method: str, path: str | None, principal: Principal | None,
                 source_ip: str | None, decision: Decision | None, error: IAMError | None, action: str | None = None,
                 resource: str | None = None, outcome: str | None = None) -> None:
    """One record per decision on ``iam_middleware.decisions`` (from every shell): who, what, on which resource, the
    outcome and the statements that decided it. Never a credential: no header, query or body is logged."""
    if not decision_log.isEnabledFor(logging.INFO):
        return
    record: dict[str, Any] = {
        "request_id": request_id,
        "method": method,
        "path": path,
        "principal": principal.arn if principal is not None else None,
        "credential": principal.credential_kind.value if principal is not None else None,
        "source_ip": source_ip,
        "action": action,
        "resource": resource,
        "decision": outcome,
    }
    if error is not None:
        record.update(decision="Denied" if isinstance(error, AccessDeniedError) else "Refused",
                      status=error.status_code, code=error.code)
        if isinstance(error, AccessDeniedError) and error.decision is not None:
            decision = error.decision
            record["decision"] = decision.kind.value
    if decision is not None:
        record.update(action=decision.action, resource=decision.resource,
                      statements=[m.as_dict() for m in decision.matched], denied_by=decision.denied_by)
    decision_log.info(json.dumps(record, default=str), extra={"iam": record})


class _ConnectionExpiredError(OSError):
    """Raised by ``send`` on a websocket closed because its credential expired (servers raise OSError likewise)."""


def _route_path(path: str, root_path: str) -> str:
    """The path below the app's ``root_path``, as Starlette's router computes it (servers may include it or not)."""
    if root_path and (path == root_path or path.startswith(root_path + "/")):
        return path[len(root_path):] or "/"
    return path


def _check_placeholders(requirement: Permission, template: str, method: str) -> None:
    """A route's permission may name only the route's own path parameters (plus the fixed and request values)."""
    unknown = unknown_placeholders(requirement, _ROUTE_PARAM.findall(template))
    if unknown:
        raise ConfigurationError(f"{method} {template}: the permission for {requirement.action} names "
                                 f"{{{unknown[0]}}}, which is not a parameter of this route")


def render_permission(iam: IAM, view: RequestView, requirement: Permission, path_params: Mapping[str, Any],
                      principal: Principal) -> tuple[str, dict[str, Any]]:
    """(resource, extra context) of a route's permission for one request, as every shell renders it (this
    middleware, the Flask and FastAPI adapters). A missing query parameter or header the permission names is a
    BadRequestError."""
    settings = iam.settings
    query = dict(parse_qsl(view.query_string.decode("latin-1"), keep_blank_values=True))
    headers = {name: view.header(name) or "" for name, _ in view.headers}
    fixed = {"account": principal.account, "partition": settings.partition, "region": settings.regions[0]}
    try:
        resource, context = render(requirement, request_values(path_params, query, headers, fixed))
    except MissingValueError as exc:
        kind, _, name = exc.name.partition(".")
        if kind in ("query", "header") and name:
            noun = "query parameter" if kind == "query" else "header"
            raise BadRequestError(f"This request needs the {noun} {name!r}.", code="MissingParameter") from None
        raise
    # A key the credential itself sets (a web identity's claims) is never taken from the request.
    reserved = {key.lower() for key in principal.extra_context}
    return resource, {key: value for key, value in context.items() if key not in reserved}


def error_response(
    error: IAMError, request_id: str, *, explanation: bool = False
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The JSON answer to a refused request (status, lower-cased headers, body), the same from every shell (this
    middleware, the Flask and FastAPI adapters). ``explanation`` adds a denial's matched statements to the body
    (only when the operator opted in)."""
    body: dict[str, Any] = {"error": error.code, "message": error.message, "request_id": request_id}
    if explanation and isinstance(error, AccessDeniedError) and error.decision is not None:
        body["explanation"] = error.decision.as_dict()
    payload = json.dumps(body).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(payload))),
               ("x-request-id", request_id)]
    authentication = isinstance(error, AuthenticationError)
    for name, value in error.headers.items():
        if not (authentication and name.lower() == "www-authenticate"):
            headers.append((name.lower(), value))
    if isinstance(error, AuthenticationError):
        headers.append(("www-authenticate", _challenge(error)))
    return error.status_code, headers, payload


def _challenge(error: AuthenticationError) -> str:
    """``WWW-Authenticate``: RFC 6750 section 3 for bearer credentials (no error code when none was sent), the
    SigV4 scheme for signature failures."""
    if isinstance(error, MissingCredentialError):
        return f'Bearer realm="{_REALM}", AWS4-HMAC-SHA256'
    if error.scheme == "AWS4-HMAC-SHA256":
        return "AWS4-HMAC-SHA256"
    given = next((v for k, v in error.headers.items() if k.lower() == "www-authenticate"), "")
    code = "invalid_request" if 'error="invalid_request"' in given else "invalid_token"
    description = _DESCRIPTION_UNSAFE.sub("?", error.message.replace('"', "'").replace("\\", "/"))
    return f'Bearer realm="{_REALM}", error="{code}", error_description="{description}"'


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
    # A random per-process prefix and a counter: unique across processes, and far cheaper than uuid4 per request.
    return f"{_ID_PREFIX}{next(_ID_COUNTER):012x}"


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
            too_large = BadRequestError(f"The request body is larger than {limit} bytes.", code="EntityTooLarge")
            too_large.status_code = 413
            raise too_large
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
