"""IAMMiddleware: the pure-ASGI shell over the gate, for ``http`` and ``websocket`` scopes.

Per request it translates the scope into a ``RequestView``, finds the route the app's own router will dispatch to
(or, for apps without a Starlette router, the rules table's), reads the body when the gate asks for it, and turns
the gate's outcome into ASGI: the app runs with the principal in ``request.user`` and the credentials in
``request.auth``, or the gate's refusal is sent. The decision itself is the gate's (``iam_middleware.gate``).
Lifespan and other scopes pass through untouched.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
from starlette.authentication import AuthCredentials, UnauthenticatedUser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._exceptions import AccessDeniedError, BadRequestError, ConfigurationError, IAMError
from ._iam import IAM
from ._principal import Principal
from .asgi_routing import all_routes, methods_of, requirement_of, resolve, routes_of
from .gate import (
    NO_ROUTE,
    ErrorHandler,
    Gate,
    Reply,
    RequestContext,
    Target,
    decision_log,
    log_decision,
    new_request_id,
)
from .interfaces import from_asgi_scope as request_view
from .policy import Decision
from .recent import Recent, RecentDecisions, digest, header_placeholders
from .routing import Permission, Requirement, RuleTable, unknown_placeholders
from .state import MemoryStore

__all__ = ["IAMCredentials", "IAMMiddleware", "decide_async", "read_body", "request_digest", "request_view",
           "serve_replies"]

logger = logging.getLogger("iam_middleware")

# Headers some frameworks and proxies honour to run another method than the one sent. The action is always the
# method the server received, so they are taken out before the app could act on them (docs/security.md).
_METHOD_OVERRIDES = frozenset({b"x-http-method-override", b"x-http-method", b"x-method-override"})
# The longest a websocket waits between looks at the clock, so an injected clock that jumps is noticed.
_EXPIRY_POLL_SECONDS = 30.0
# Path templates as Starlette writes them: ``{name}`` or ``{name:convertor}``.
_ROUTE_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[A-Za-z_][A-Za-z0-9_]*)?\}")


async def decide_async(gate: Gate, context: RequestContext, target: Target, *, offload: bool | None = None) -> None:
    """``gate.decide`` from an event loop, without ever blocking it.

    With shared state over the network or users read from a database on demand (``offload``; by default, any store
    but ``MemoryStore``, or a snapshot with a user loader: ``users="lazy"``) the whole decision runs in a worker
    thread. Otherwise it runs on the loop, and the one blocking step it may meet, loading an identity provider's key
    set, is deferred to a worker thread before the decision is taken again.
    """
    if offload is None:
        offload = not isinstance(gate.iam.store, MemoryStore) or gate.iam.snapshots.in_force.loader is not None
    if offload:
        await anyio.to_thread.run_sync(gate.decide, context, target)
        return
    gate.decide(context, target, io="defer")
    if context.pending_io is not None:
        await anyio.to_thread.run_sync(context.pending_io)
        gate.decide(context, target, io="skip")


class IAMCredentials(AuthCredentials):
    """``request.auth``: Starlette's credentials (scope ``authenticated``) plus the principal and the decision."""

    def __init__(self, principal: Principal, decision: Decision | None) -> None:
        super().__init__(["authenticated"])
        self.principal = principal
        self.decision = decision
        self.kind = principal.credential_kind


def request_digest(scope: Scope, headers: frozenset[bytes] | None) -> tuple[bytes, str | None]:
    """A digest of every input of a request's decision (never the raw credential as a key: docs/security.md section
    6): the request line, the peer and the ``headers`` a decision can read (None: every header); and the caller's
    ``X-Request-ID``, read in the same pass over the headers."""
    client = scope.get("client")
    # One list, joined once: the request line's fields, then the header names and values (built in one pass).
    parts = ["\0".join((scope.get("method", ""), scope.get("root_path", ""), scope.get("scheme", ""),
                        client[0] if client else "")).encode("utf-8", "surrogateescape"),
             scope.get("raw_path") or scope.get("path", "").encode(), scope.get("query_string", b"")]
    given: bytes | None = None
    if headers is None:
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                given = value
            parts += (name, value)
    else:
        for name, value in scope.get("headers", ()):
            if name in headers:  # (a permission may name X-Request-ID itself: then it is an input too)
                parts += (name, value)
                if name == b"x-request-id":
                    given = value
            elif name == b"x-request-id":
                given = value
    return digest(parts), given.decode("latin-1") if given is not None else None


class IAMMiddleware:
    """Authenticate and authorize every request to ``app`` against ``iam``'s policies.

    ``rules`` is a rules table for routes declared outside the code (or for any ASGI app without a Starlette
    router); ``routes_from`` names the app whose router decides (given by ``install`` helpers when the middleware
    sits inside the app's own middleware stack). ``undeclared`` says what the start-up audit does with routes that
    declare nothing: ``"warn"`` (log them; they are denied at run time) or ``"error"`` (refuse to start).
    ``cors_preflight``, ``explain``, ``max_body_bytes`` and ``on_error`` are the gate's (``iam_middleware.gate``).
    Method-override headers are removed before the app sees the request.
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
        on_error: ErrorHandler | None = None,
    ) -> None:
        if undeclared not in ("warn", "error"):
            raise ConfigurationError("undeclared must be 'warn' or 'error'")
        self.app = app
        self.iam = iam
        self.gate = Gate(iam, cors_preflight=cors_preflight, explain=explain, max_body_bytes=max_body_bytes,
                         on_error=on_error)
        self.rules = rules or iam.rules  # given here, or the directory file's [[routes]]
        self._routes_from = routes_from if routes_from is not None else app
        self.undeclared = undeclared
        self._audited = False
        self._recent = RecentDecisions(iam)
        self._snapshots = iam.snapshots

    # Start-up audit ----------------------------------------------------------------------------------------------
    def routes(self) -> list[tuple[str, str, Requirement | None]]:
        """Every route's methods as (method, path template, what it requires; None: nothing declared), read as the
        audit reads them: declared twice, or naming a path parameter the route lacks, is a ConfigurationError."""
        found: list[tuple[str, str, Requirement | None]] = []
        for path, route in all_routes(routes_of(self._routes_from) or []):
            methods = methods_of(route)
            for method in methods:
                if method == "HEAD" and "GET" in methods:
                    continue  # authorized as the route's GET
                requirement = requirement_of(route, method)
                rule = self.rules.for_template(method, path)
                if requirement is not None and rule is not None:
                    raise ConfigurationError(f"{method} {path} is declared both next to the route and in the "
                                             "rules table; declare it once")
                if requirement is None and rule is not None:
                    requirement = rule.requirement
                if isinstance(requirement, Permission):
                    _check_placeholders(requirement, path, method)
                found.append((method, path, requirement))
        return found

    def audit(self) -> list[str]:
        """Check every route: declared twice, or naming a path parameter the route lacks, is an error; undeclared
        ones are listed (``"METHOD /template"``), logged or refused according to ``undeclared``, and denied."""
        undeclared: list[str] = []
        if routes_of(self._routes_from) is None and not self.rules:
            logger.warning("the app has no router to read and no rules table is given: every request is denied")
        for entry in self.rules.rules:
            if isinstance(entry.requirement, Permission):
                self._recent.name_headers(header_placeholders(entry.requirement))
        for method, path, requirement in self.routes():
            if requirement is None:
                undeclared.append(f"{method} {path}")
            elif isinstance(requirement, Permission):
                self._recent.name_headers(header_placeholders(requirement))
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
        key: bytes | None = None
        if kind == "http":
            if self._audited:
                key, given_id = request_digest(scope, self._recent.asgi_headers())
                recent = self._recent.lookup(key)  # runs the reload checks; None unless its snapshot is current
                if recent is not None:  # the warm path: an exact repeat of a recently allowed request
                    # Pinned, the app included, to the snapshot the remembered answer was decided on.
                    token = self._snapshots.pin_request(recent.snapshot)
                    try:
                        self._apply_recent(scope, recent, given_id)
                        await self.app(scope, receive, send)
                    finally:
                        self.gate.exit(token)
                    return
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        elif kind != "websocket":
            await self.app(scope, receive, send)
            return
        token = self.gate.enter()  # the request, the app included, is decided on the snapshot in force now
        try:
            await self._handle(scope, receive, send, kind, key)
        finally:
            self.gate.exit(token)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, kind: str, key: bytes | None) -> None:
        gate = self.gate
        context = gate.begin(request_view(scope), websocket=kind == "websocket", root_path=scope.get("root_path", ""))
        body: bytes | None = None
        target = NO_ROUTE
        try:
            if not self._audited:
                self.audit()
            target = self._target(scope, context) if context.error is None else NO_ROUTE
            if gate.needs_body(context, target):
                body = await read_body(receive, gate)
                context.request = context.request.with_body(body)
        except IAMError as error:
            gate.refuse(context, error)
        except Exception:  # noqa: BLE001 - fail closed: a failing audit or router is a refusal, never a 500
            logger.exception("authorization failed closed (request %s)", context.request_id)
            gate.refuse(context, AccessDeniedError("The request could not be authorized.", code="AuthorizationFailed"))
        else:
            await decide_async(gate, context, target)
        if context.error is not None:
            await _send_refusal(scope, send, gate.render(context), context.error.code)
            return
        principal = context.principal
        if principal is not None:
            scope["user"] = principal
            scope["auth"] = IAMCredentials(principal, context.decision)
        else:
            scope.setdefault("user", UnauthenticatedUser())
            scope.setdefault("auth", AuthCredentials())
        original = scope.get("headers", ())
        kept = [(k, v) for k, v in original if k.lower() not in _METHOD_OVERRIDES]
        scope["headers"] = kept
        if key is not None and body is None:
            # None: nothing was removed, so a repeat can keep its own header list as it is.
            filtered = kept if len(kept) != len(original) else None
            # What a repeat puts in the scope and its state, ready to apply in one update each.
            self._recent.remember(key, principal, context.decision, (
                {"user": scope["user"], "auth": scope["auth"]},
                {"iam_principal": principal, "iam_decision": context.decision, "iam_permission": target.requirement},
                filtered, context.source_ip, context.resource))
        state = scope.setdefault("state", {})
        state["iam_principal"] = principal
        state["iam_decision"] = context.decision
        state["iam_permission"] = target.requirement  # what was decided: FastAPI's Authorize need not decide again
        state["request_id"] = context.request_id
        if body is not None:
            receive = _replay(body, receive)
        if kind == "websocket" and principal is not None and principal.expires_at is not None:
            await self._run_until_expiry(scope, receive, send, principal.expires_at)
            return
        await self.app(scope, receive, send)

    def _apply_recent(self, scope: Scope, recent: Recent, given_id: str | None) -> None:
        """Prepare a repeat of a recently allowed request: the same principal, decision and scope additions."""
        scope_items, state_items, headers, ip, resource = recent.extra
        scope.update(scope_items)
        if headers is not None:  # the original carried method-override headers: the app gets them removed
            scope["headers"] = list(headers)
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state.update(state_items)
        state["request_id"] = request_id = new_request_id(given_id)
        if decision_log.isEnabledFor(logging.INFO):
            decision = recent.decision
            log_decision(request_id=request_id, method=scope.get("method", "GET"), path=scope.get("path"),
                         principal=recent.principal, source_ip=ip, decision=decision, error=None,
                         action=decision.action, resource=resource, outcome=decision.kind.value)

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

    def _target(self, scope: Scope, context: RequestContext) -> Target:
        """The route the app's router dispatches this request to, or the rules table's for apps without one."""
        routes = routes_of(self._routes_from)
        method = context.method
        if routes is not None:
            resolved, _ = resolve(routes, scope)
            if resolved is None:
                return NO_ROUTE
            requirement = resolved.requirement
            if requirement is None:
                rule = self.rules.for_template(method, resolved.template)
                requirement = rule.requirement if rule is not None else None
            return Target(requirement, resolved.path_params, resolved.template, True)
        ruled = self.rules.lookup(method, context.path)
        if ruled is None:
            return NO_ROUTE
        found, params = ruled
        return Target(found.requirement, params, found.path, found.handles(method))

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


class _ConnectionExpiredError(OSError):
    """Raised by ``send`` on a websocket closed because its credential expired (servers raise OSError likewise)."""


def _check_placeholders(requirement: Permission, template: str, method: str) -> None:
    """A route's permission may name only the route's own path parameters (plus the fixed and request values)."""
    unknown = unknown_placeholders(requirement, _ROUTE_PARAM.findall(template))
    if unknown:
        raise ConfigurationError(f"{method} {template}: the permission for {requirement.action} names "
                                 f"{{{unknown[0]}}}, which is not a parameter of this route")


async def _send_refusal(scope: Scope, send: Send, refusal: Reply, code: str) -> None:
    """The gate's refusal as ASGI messages: a response, a websocket denial response where the server supports
    it, else a websocket close (1008) with the error code as the reason."""
    status, fields, payload = refusal
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in fields]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": payload})
        return
    await send({"type": "websocket.close", "code": 1008, "reason": code})


async def serve_replies(scope: Scope, receive: Receive, send: Send,
                        reply: Callable[[Scope, Receive], Awaitable[Reply]]) -> None:
    """Serve an app whose every ``http`` request is answered by one ``Reply`` (the external authorizer, the AuthZEN
    endpoints): lifespan is acknowledged, a websocket is closed (1008), a HEAD answer goes without its body."""
    kind = scope["type"]
    if kind == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if kind == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": "NotFound"})
        return
    if kind != "http":
        return
    status, headers, body = await reply(scope, receive)
    await send({"type": "http.response.start", "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]})
    await send({"type": "http.response.body", "body": body if scope.get("method") != "HEAD" else b""})


async def read_body(receive: Receive, gate: Gate) -> bytes:
    """The whole body of an ASGI request, refused past ``gate.max_body_bytes`` while reading (413), so an
    unbounded body is never buffered; a client that goes away mid-body is a 400."""
    limit = gate.max_body_bytes
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequestError("The client disconnected before sending the whole body.", code="IncompleteBody")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise gate.body_too_large()
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
