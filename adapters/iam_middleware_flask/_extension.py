"""IAMFlask: the Flask extension, a WSGI shell over the gate. Authorizes every request after Flask's routing,
before any view runs.

The hook translates the WSGI request into a ``RequestView`` and the route Flask matched (``request.url_rule``,
``request.view_args``, the endpoint's view function) into the gate's ``Target``, so the path that is authorized is
the path that is dispatched. The decision and the refusal are the gate's, the same as every other shell's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.routing import Rule

from iam_middleware import (
    IAM,
    AccessDeniedError,
    ConfigurationError,
    Permission,
    RequestView,
    RuleTable,
    permission,
    public,
)
from iam_middleware.gate import NO_ROUTE, ErrorHandler, Gate, Target, decision_log, log_decision, new_request_id
from iam_middleware.interfaces import from_wsgi_environ
from iam_middleware.recent import Recent, RecentDecisions, digest, header_placeholders
from iam_middleware.routing import PUBLIC, Requirement, declared

__all__ = ["IAMFlask"]

logger = logging.getLogger("iam_middleware")

F = TypeVar("F", bound=Callable[..., Any])

_EXTENSION = "iam_middleware"
# Flask rule syntax to the rules table's: <int:id> -> {id}, <path:p> -> {p:path}.
_FLASK_PARAM = re.compile(r"<(?:([A-Za-z_]\w*)(?:\([^)]*\))?:)?([A-Za-z_]\w*)>")
_METHOD_OVERRIDES = ("HTTP_X_HTTP_METHOD_OVERRIDE", "HTTP_X_HTTP_METHOD", "HTTP_X_METHOD_OVERRIDE")


_PIN_KEY = "iam_middleware.pin"
_DIGESTED = ("REQUEST_METHOD", "RAW_URI", "REQUEST_URI", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING",
             "wsgi.url_scheme", "REMOTE_ADDR", "CONTENT_TYPE", "CONTENT_LENGTH")


def _environ_digest(environ: Mapping[str, Any], headers: frozenset[str] | None) -> bytes:
    """A digest of every input of a WSGI request's decision: the request line, the peer and the ``headers`` a
    decision can read (environ keys; None: every header)."""
    get = environ.get
    parts = [get(name, "") for name in _DIGESTED]
    if headers is None:
        for name, value in environ.items():
            if name[:5] == "HTTP_":
                parts += (name, value)
    else:
        for name in headers:
            value = get(name)
            if value is not None:
                parts += (name, value)
    try:
        joined = "\0".join(parts)
    except TypeError:  # a server that put a value other than a str in the environ: its text form is digested
        joined = "\0".join(map(str, parts))
    # WSGI strings are latin-1-decoded bytes (PEP 3333); surrogateescape keeps any other str exact too.
    return digest([joined.encode("utf-8", "surrogateescape")])


class _AppState:
    """What one app needs at request time: its IAM and gate, and whether its routes were audited."""

    def __init__(self, iam: IAM, gate: Gate, guard: IAMFlask) -> None:
        self.iam = iam
        self.gate = gate
        self.guard = guard
        self.audited = False
        self.recent = RecentDecisions(iam)


class IAMFlask:
    """Protect a Flask app with IAM policies: ``IAMFlask(app, iam)``, or ``guard = IAMFlask()`` then
    ``guard.init_app(app, iam)`` (``iam`` defaults to ``IAM.from_file(app.config["IAM_FILE"])``).

    Every endpoint must declare what it requires (``@guard.permission`` / ``@guard.public``, the core's
    ``@permission`` / ``@public``, or a line in ``rules``); the principal is then ``g.principal`` and the decision
    ``g.iam_decision``. Undeclared endpoints are denied to everyone, the static file endpoints included unless
    ``public_static``. ``cors_preflight`` lets real CORS preflights through to the app's CORS handling; ``explain``
    adds a denial's explanation to the 403 body for requests carrying ``X-IAM-Explain: 1``. ``undeclared`` is what
    the audit of the first request does with undeclared endpoints: ``"warn"`` (log them) or ``"error"`` (refuse).
    """

    def __init__(
        self,
        app: Flask | None = None,
        iam: IAM | None = None,
        *,
        rules: RuleTable | None = None,
        public_static: bool = False,
        cors_preflight: bool = False,
        explain: bool = False,
        undeclared: str = "warn",
        max_body_bytes: int = 10 * 1024 * 1024,
        on_error: ErrorHandler | None = None,
    ) -> None:
        if undeclared not in ("warn", "error"):
            raise ConfigurationError("undeclared must be 'warn' or 'error'")
        self.on_error = on_error
        self.iam = iam
        self.rules = rules or RuleTable()
        self.public_static = public_static
        self.cors_preflight = cors_preflight
        self.explain = explain
        self.undeclared = undeclared
        self.max_body_bytes = max_body_bytes
        if app is not None:
            self.init_app(app, iam)

    def __repr__(self) -> str:
        return f"IAMFlask(rules={len(self.rules.rules)}, public_static={self.public_static!r})"

    def init_app(self, app: Flask, iam: IAM | None = None) -> None:
        """Register the authorization hook on ``app`` (first among its ``before_request`` functions)."""
        if _EXTENSION in app.extensions:
            raise ConfigurationError(f"IAMFlask is already set up on app {app.name!r}")
        iam = iam or self.iam
        if iam is None:
            file = app.config.get("IAM_FILE")
            if not file:
                raise ConfigurationError("IAMFlask needs an IAM: pass one, or set app.config['IAM_FILE']")
            iam = IAM.from_file(file)
        gate = Gate(iam, cors_preflight=self.cors_preflight, explain=self.explain,
                    max_body_bytes=self.max_body_bytes, on_error=self.on_error)
        app.extensions[_EXTENSION] = _AppState(iam, gate, self)
        # First, so no other before_request function (loading a user, opening a transaction) runs unauthorized.
        app.before_request_funcs.setdefault(None, []).insert(0, self._before_request)
        app.teardown_request(self._unpin)

    # Declarations --------------------------------------------------------------------------------------------
    def permission(
        self, action: str, resource: str = "*", *, context: Mapping[str, str] | None = None
    ) -> Callable[[F], F]:
        """Declare what a view requires (the core's ``@permission``); place it under ``@app.route``."""
        return permission(action, resource, context=context)

    def public(self, fn: F) -> F:
        """Declare a view public: no credential needed, no policy consulted."""
        return public(fn)

    def requirement(self, app: Flask, url_rule: Rule | None, method: str) -> Requirement | None:
        """What the view of ``url_rule`` requires for ``method``: declared on the view (or its view class), or
        in the rules table for the rule's template. Declared in both is a ConfigurationError."""
        if url_rule is None:
            return None
        endpoint = url_rule.endpoint
        if self.public_static and (endpoint == "static" or endpoint.endswith(".static")):
            return PUBLIC
        view = app.view_functions.get(endpoint)
        found: Requirement | None = None
        view_class = getattr(view, "view_class", None)
        if view_class is not None:
            found = declared(view_class, method)
        if found is None and view is not None:
            found = declared(view, method)
        template = _FLASK_PARAM.sub(lambda m: f"{{{m.group(2)}:path}}" if m.group(1) == "path" else f"{{{m.group(2)}}}",
                                    url_rule.rule)
        state = app.extensions.get(_EXTENSION)
        # The rules given here, or else the directory file's [[routes]].
        rules = self.rules if self.rules or state is None else state.iam.rules
        rule = rules.for_template(method, template)
        if found is not None and rule is not None:
            raise ConfigurationError(f"{method} {url_rule.rule} is declared both on its view and in the rules table; "
                                     "declare it once")
        return found if found is not None else rule.requirement if rule is not None else None

    def routes(self, app: Flask) -> list[tuple[str, str, Requirement | None]]:
        """Every endpoint's methods as (method, rule, what it requires; None: nothing declared), read as the audit
        reads them: declared twice is a ConfigurationError."""
        found: list[tuple[str, str, Requirement | None]] = []
        for url_rule in app.url_map.iter_rules():
            methods = url_rule.methods or set()
            for method in sorted(methods):
                if method == "OPTIONS" and getattr(url_rule, "provide_automatic_options", False):
                    continue
                if method == "HEAD" and "GET" in methods:
                    continue  # authorized as the view's GET
                found.append((method, url_rule.rule, self.requirement(app, url_rule, method)))
        return found

    def audit(self, app: Flask | None = None) -> list[str]:
        """Check every endpoint: declared twice is an error; undeclared ones are returned (and denied at run time)."""
        app = app or current_app._get_current_object()  # type: ignore[attr-defined]
        state: _AppState | None = app.extensions.get(_EXTENSION)
        undeclared = []
        for method, rule, requirement in self.routes(app):
            if requirement is None:
                undeclared.append(f"{method} {rule}")
            elif isinstance(requirement, Permission) and state is not None:
                state.recent.name_headers(header_placeholders(requirement))
        if undeclared:
            message = "endpoints with no permission declared (denied to everyone): " + ", ".join(undeclared)
            if self.undeclared == "error":
                raise ConfigurationError(message)
            logger.warning(message)
        return undeclared

    # The hook ------------------------------------------------------------------------------------------------
    def _before_request(self) -> Response | None:
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        state: _AppState = app.extensions[_EXTENSION]
        gate = state.gate
        current = request._get_current_object()  # type: ignore[attr-defined]
        environ = current.environ
        routing = current.routing_exception
        key: bytes | None = None
        if state.audited and routing is None:
            key = _environ_digest(environ, state.recent.wsgi_headers())
            recent = state.recent.lookup(key)  # runs the reload checks; None unless its snapshot is current
            if recent is not None:
                # Pinned, the view included, to the snapshot the remembered answer was decided on, until teardown.
                environ[_PIN_KEY] = state.iam.snapshots.pin_request(recent.snapshot)
                self._replay(environ, recent)
                return None
        # The request, the view included, is decided on the snapshot in force now; _unpin ends it at teardown.
        environ[_PIN_KEY] = gate.enter()
        g.principal = None
        g.iam_decision = None
        context = gate.begin(request_view())
        g.request_id = context.request_id
        if context.error is None and routing is not None and not isinstance(routing, (NotFound, MethodNotAllowed)):
            return None  # a redirect Flask answers (merged slashes, a trailing slash): its target is authorized then
        body_read = False
        try:
            if not state.audited:
                self.audit(app)
                state.audited = True
            target = NO_ROUTE if routing is not None or context.error is not None else self._target(app)
            if gate.needs_body(context, target):
                body_read = True
                context.request = context.request.with_body(read_body(gate.max_body_bytes))
        except RequestEntityTooLarge:
            gate.refuse(context, gate.body_too_large())
        except Exception:  # noqa: BLE001 - fail closed: a failing audit is a refusal, never a 500
            logger.exception("authorization failed closed (request %s)", context.request_id)
            gate.refuse(context, AccessDeniedError("The request could not be authorized.", code="AuthorizationFailed"))
        else:
            gate.decide(context, target)
        if context.error is not None:
            status, headers, payload = gate.render(context)
            return Response(payload, status=status, headers=headers)
        # The action is the method the server received; the view must not act on an override (docs/security.md).
        # Removed only now: a SigV4 signature may cover these headers.
        for override in _METHOD_OVERRIDES:
            environ.pop(override, None)
        g.principal = context.principal
        g.iam_decision = context.decision
        if key is not None and not body_read:
            state.recent.remember(key, context.principal, context.decision, (context.source_ip, context.resource))
        return None

    def _target(self, app: Flask) -> Target:
        """The gate's view of the route Flask matched (an OPTIONS Flask answers itself is not the route's own)."""
        method = request.method
        rule = request.url_rule
        automatic = method == "OPTIONS" and getattr(rule, "provide_automatic_options", False)
        template = rule.rule if rule is not None else ""
        return Target(self.requirement(app, rule, method), request.view_args or {}, template, not automatic)

    @staticmethod
    def _unpin(exc: BaseException | None = None) -> None:
        token = request.environ.pop(_PIN_KEY, None)
        state = current_app.extensions.get(_EXTENSION)
        if token is not None and state is not None:
            state.gate.exit(token)

    def _replay(self, environ: dict[str, Any], recent: Recent) -> None:
        """A repeat of a recently allowed request: the same principal and decision, without deciding again."""
        request_id = new_request_id(environ.get("HTTP_X_REQUEST_ID"))
        for override in _METHOD_OVERRIDES:
            environ.pop(override, None)
        context = g._get_current_object()
        context.request_id = request_id
        context.principal = recent.principal
        context.iam_decision = recent.decision
        if decision_log.isEnabledFor(logging.INFO):
            ip, resource = recent.extra
            decision = recent.decision
            log_decision(request_id=request_id, method=request.method, path=request.path, principal=recent.principal,
                         source_ip=ip, decision=decision, error=None, action=decision.action, resource=resource,
                         outcome=decision.kind.value)



def request_view(body: bytes | None = None) -> RequestView:
    """The sans-IO view of the current WSGI request (``iam_middleware.interfaces.from_wsgi_environ``)."""
    return from_wsgi_environ(request.environ, scheme=request.scheme, body=body)


def read_body(limit: int) -> bytes:
    """The current request's body, refused (``RequestEntityTooLarge``) past ``limit`` by its Content-Length before
    reading and by Werkzeug's ``max_content_length`` while reading; kept for the view (``get_data`` caches it)."""
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()
    request.max_content_length = min(limit, request.max_content_length or limit)
    return request.get_data(cache=True)
