"""The gate: the one request pipeline every shell translates into.

A shell (the ASGI middleware, the Flask extension, the FastAPI dependency, the token service, a gateway endpoint)
turns its framework's request into a ``RequestView`` and asks the gate::

    token = gate.enter()                      # a reload due now applies; the request is pinned to one snapshot
    context = gate.begin(view)                # request id, clock, caller address: read ONCE, here
    target = ...                              # what the framework's own router matched (a Target)
    if gate.needs_body(context, target):      # SigV4 signs the payload: the shell reads it, bounded
        context.request = context.request.with_body(body)  # read up to gate.max_body_bytes
    gate.decide(context, target)              # authenticate, render the permission, decide, log; never raises
    if context.error is not None:
        status, headers, body = gate.render(context)   # the one JSON refusal
    ...
    gate.exit(token)

Nothing here imports a web framework, reads a socket or the clock outside ``begin``. The decision rules (what is
public, what a preflight is, which credential wins, how a resource is rendered, what a refusal says) live only
here; a shell that needs a line twice is a shell that should ask the gate.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from contextvars import Token
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl

from ._exceptions import (
    AccessDeniedError,
    AuthenticationError,
    BadRequestError,
    BodyTooLargeError,
    ConfigurationError,
    IAMError,
    MissingCredentialError,
    ServiceUnavailableError,
)
from ._principal import Principal
from ._request import RequestView, resolve_source_ip
from .authenticators import FetchDeferred, FetchMode, fetching
from .directory import Snapshot
from .metrics._observe import observers_of
from .policy import Decision
from .routing import (
    PUBLIC,
    MissingValueError,
    Permission,
    Requirement,
    canonical_path,
    render,
    render_template,
    request_values,
)
from .state import StateUnavailableError

if TYPE_CHECKING:
    from ._iam import IAM

__all__ = [
    "ErrorHandler",
    "Gate",
    "Reply",
    "RequestContext",
    "Target",
    "log_decision",
    "new_request_id",
    "render_error",
    "render_permission",
]

logger = logging.getLogger("iam_middleware")
decision_log = logging.getLogger("iam_middleware.decisions")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_ID_PREFIX = secrets.token_hex(10)
_ID_COUNTER = itertools.count(1)
_ID_FORMAT = _ID_PREFIX + "%012x"
_REALM = "iam-middleware"
# Characters RFC 6750 allows inside error_description.
_DESCRIPTION_UNSAFE = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')
# A method token as RFC 9110 section 9 writes the registered ones. Methods are case-sensitive, and servers differ
# on a lower-case one (uvicorn passes ``delete`` as sent, Werkzeug and Django upper-case it), so a request whose
# method is not upper case would be authorized as one method and dispatched as another: it is refused first.
_METHOD = re.compile(r"[A-Z][A-Z0-9_-]{0,31}")
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


class Reply(NamedTuple):
    """An answer as every shell sends it (a refusal, or a token service's JSON answer): status, lower-cased header
    fields, body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Target:
    """What the framework's router matched for a request.

    ``requirement`` is the route's declaration (None: undeclared, or no route matched); ``path_params`` the
    parameters the router extracted; ``template`` the route's path template (for messages); ``handles_method``
    whether the route (or rule) itself answers this very method, so an OPTIONS handler is never taken for a CORS
    preflight the framework answers.
    """

    requirement: Requirement | None
    path_params: Mapping[str, Any] = field(default_factory=dict)
    template: str = ""
    handles_method: bool = False


#: A request that matched no route: it is refused (401 without a credential, 403 with one).
NO_ROUTE = Target(None)


@dataclass(slots=True)
class RequestContext:
    """One request on its way through the gate: built once by ``Gate.begin``, read by every later step.

    ``now``, ``source_ip`` (the caller's address through the trusted proxies) and ``request_id`` are fixed at the
    start; authentication and the decision fill ``principal``, ``action``, ``resource``, ``decision`` and
    ``outcome`` (Public, Preflight, Allowed, ImplicitlyDenied, ExplicitlyDenied); ``error`` is what to answer when
    the request is refused. ``anonymous_reason`` says why a credential on a public route was not accepted.
    ``pending_io`` is a blocking load a deferred decision is waiting for (see ``Gate.decide``).
    """

    request: RequestView
    request_id: str
    now: float
    source_ip: str | None
    websocket: bool
    path: str
    snapshot: Snapshot
    error: IAMError | None = None
    principal: Principal | None = None
    action: str | None = None
    resource: str | None = None
    decision: Decision | None = None
    outcome: str | None = None
    anonymous_reason: str | None = None
    resource_pattern: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    pending_io: Callable[[], None] | None = None

    @property
    def allowed(self) -> bool:
        """Whether the request may go on to the app (allowed, public or a preflight)."""
        return self.error is None and self.outcome is not None

    @property
    def method(self) -> str:
        """The method the route is looked up by: ``WEBSOCKET`` for a handshake."""
        return "WEBSOCKET" if self.websocket else self.request.method


#: Shapes a refusal: called with the request's context and the error, returns the reply (None: the standard one).
ErrorHandler = Callable[[RequestContext, IAMError], "Reply | None"]


class Gate:
    """The request pipeline over one ``IAM``: the same decision, refusal and record for every shell.

    ``cors_preflight`` lets real CORS preflights (OPTIONS + Origin + Access-Control-Request-Method) through to the
    app's CORS handling, except where the route itself handles OPTIONS. ``explain`` adds a denial's explanation to
    the 403 body when the request carries ``X-IAM-Explain: 1``. ``max_body_bytes`` bounds the body a shell reads to
    verify a signed payload. ``on_error`` shapes refusals: called with the context and the error, it returns a
    ``Reply`` (or None for the standard one).
    """

    def __init__(
        self,
        iam: IAM,
        *,
        cors_preflight: bool = False,
        explain: bool = False,
        max_body_bytes: int = 10 * 1024 * 1024,
        on_error: ErrorHandler | None = None,
    ) -> None:
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 1:
            raise ConfigurationError(f"max_body_bytes must be a positive int, got {max_body_bytes!r}")
        self.iam = iam
        self.cors_preflight = cors_preflight
        self.explain = explain
        self.max_body_bytes = max_body_bytes
        self.on_error = on_error
        self.observers = observers_of(iam)  # metrics and traces (docs/metrics.md)

    def __repr__(self) -> str:
        return f"Gate(iam={self.iam!r}, cors_preflight={self.cors_preflight!r}, explain={self.explain!r})"

    # The request's lifetime ------------------------------------------------------------------------------------
    def enter(self) -> Token[Any]:
        """Apply a reload that is due, then pin the snapshot in force for the whole request (the app included).
        Give the token to ``exit`` when the request is over."""
        snapshots = self.iam.snapshots
        if snapshots.refresh_hooks:
            try:
                snapshots.refresh()
            except Exception:  # noqa: BLE001 - met again, and answered, when the request is decided
                pass
        return snapshots.pin_request()

    def exit(self, token: Token[Any]) -> None:
        """End the pin of ``enter`` (or of ``snapshots.pin_request``)."""
        try:
            self.iam.snapshots.unpin(token)
        except ValueError:  # torn down in another context (a copied context): nothing left to reset
            pass

    def begin(self, request: RequestView, *, websocket: bool = False, root_path: str = "") -> RequestContext:
        """The context of one request: its id, the time, the caller's address and the canonical path, read once.
        A request that cannot be decided as sent (a method that is not upper case, an ambiguous path) carries its
        refusal in ``error`` already."""
        iam = self.iam
        context = RequestContext(
            request=request,
            request_id=new_request_id(request.header("x-request-id")),
            now=iam.clock(),
            source_ip=resolve_source_ip(request, iam.settings.trusted_proxies),
            websocket=websocket,
            path="",
            snapshot=iam.snapshots.current,
        )
        if not websocket and not _METHOD.fullmatch(request.method):
            context.error = BadRequestError("The request method must be an upper-case token, as HTTP methods are "
                                            "registered (GET, POST, DELETE, ...).", code="InvalidMethod")
            return context
        try:
            # An ambiguous path is refused whoever routes it: the app, a proxy or a backend behind a public route
            # may read it differently than the router consulted (docs/security.md, "Paths").
            context.path = _below(canonical_path(request.raw_path), root_path)
        except BadRequestError as error:
            context.error = error
        return context

    def needs_body(self, context: RequestContext, target: Target) -> bool:
        """Whether the shell must read the body before ``decide``: a SigV4 signature covers the payload hash."""
        if context.error is not None or context.websocket or context.request.body is not None:
            return False
        if target.requirement is PUBLIC or self._preflight(context, target):
            return False
        return self.iam.credentials.sigv4.needs_body(context.request)

    def body_too_large(self) -> BodyTooLargeError:
        """The one refusal of a body past ``max_body_bytes`` (413)."""
        return BodyTooLargeError(f"The request body is larger than {self.max_body_bytes} bytes.")

    # The decision ----------------------------------------------------------------------------------------------
    def decide(self, context: RequestContext, target: Target, *, io: FetchMode = "inline") -> RequestContext:
        """Authenticate, render the route's permission and decide; record the outcome. Never raises: every
        failure is a refusal in ``context.error`` (fail closed).

        ``io="defer"`` is for shells on an event loop: a blocking load that falls due (an identity provider's key
        set) is not done here but left in ``context.pending_io``, with nothing decided or recorded; the shell runs
        it off the loop and decides again with ``io="skip"`` (``decide_async`` in ``iam_middleware.asgi``)."""
        context.pending_io = None
        try:
            with fetching(io):
                self._decide(context, target)
        except FetchDeferred as pending:
            context.pending_io = pending.run
            return context
        except IAMError as error:
            context.error = error
        except StateUnavailableError as exc:  # transient: the shared state a safe decision needs did not answer
            logger.warning("authorization refused, shared state unavailable (request %s): %s", context.request_id,
                           exc)
            context.error = ServiceUnavailableError("Shared state needed to check this request is unavailable; "
                                                    "try again shortly.")
        except Exception:  # noqa: BLE001 - fail closed, never a 500 from the authorization path
            logger.exception("authorization failed closed (request %s)", context.request_id)
            context.error = AccessDeniedError("The request could not be authorized.", code="AuthorizationFailed")
        self.log(context)
        return context

    def refuse(self, context: RequestContext, error: IAMError) -> RequestContext:
        """Refuse a request for a reason found by the shell (a body too large, a client that went away); recorded
        like any other refusal."""
        context.error = error
        self.log(context)
        return context

    def _decide(self, context: RequestContext, target: Target) -> None:
        if context.error is not None:
            raise context.error
        requirement = target.requirement
        if requirement is PUBLIC:
            context.outcome = "Public"
            self._optional_principal(context)
            return
        if self._preflight(context, target):
            context.outcome = "Preflight"
            return
        iam = self.iam
        request = context.request
        if context.websocket:
            # A handshake is a GET, which the CSRF guard lets pass; but a page on any site can open a websocket
            # that carries our session cookie (cross-site websocket hijacking), so it is checked as unsafe.
            http_scheme = {"ws": "http", "wss": "https"}.get(request.scheme, request.scheme)
            iam.credentials.csrf.check(replace(request, method="WEBSOCKET", scheme=http_scheme))
        principal = iam.authenticators.authenticate(request, now=context.now)
        if principal is None:
            raise MissingCredentialError("This resource requires authentication.")
        context.principal = principal
        if not isinstance(requirement, Permission):
            what = target.template or context.path
            raise AccessDeniedError(f"User: {principal.arn} is not authorized to perform: {context.method} {what} "
                                    "because no permission is declared for this route")
        context.action = requirement.action
        context.resource_pattern = requirement.resource
        resource, extra = render_permission(iam, request, requirement, target.path_params, principal)
        context.resource = resource
        context.decision = iam.decisions.require(principal, requirement.action, resource, extra, now=context.now,
                                                 request=request, source_ip=context.source_ip)
        context.outcome = context.decision.kind.value

    def _preflight(self, context: RequestContext, target: Target) -> bool:
        request = context.request
        return (self.cors_preflight and not context.websocket and request.method == "OPTIONS"
                and not target.handles_method and request.header("origin") is not None
                and request.header("access-control-request-method") is not None)

    def _optional_principal(self, context: RequestContext) -> None:
        """A public route still knows its caller when the credential is good (as Starlette's
        AuthenticationMiddleware gives every request its user); a bad one leaves the caller anonymous on this
        route, and the reason is recorded. A signature over a body not read is not checked (anonymous)."""
        request = context.request
        iam = self.iam
        sigv4 = iam.credentials.sigv4
        if sigv4.recognizes(request):
            if request.body is None and not context.websocket and sigv4.needs_body(request):
                context.anonymous_reason = "SignedPayloadNotRead"
                return
            if iam.settings.sigv4_replay_protection and request.method not in _IDEMPOTENT:
                # Checking would spend the single use the route's own handler may need (a token service call).
                context.anonymous_reason = "SingleUseSignatureNotSpent"
                return
        try:
            context.principal = iam.authenticators.authenticate(request, now=context.now)
        except IAMError as error:
            context.anonymous_reason = error.code
        except StateUnavailableError:
            context.anonymous_reason = "ServiceUnavailable"

    # The answer ------------------------------------------------------------------------------------------------
    def render(self, context: RequestContext) -> Reply:
        """The refusal of a refused request, the same from every shell (``on_error`` may shape it)."""
        error = context.error
        if error is None:  # pragma: no cover - shells render refused contexts only
            raise ValueError("the request was not refused")
        if self.on_error is not None:
            try:
                shaped = self.on_error(context, error)
            except Exception:  # noqa: BLE001 - a failing hook must not turn a refusal into a 500 or a pass
                logger.exception("on_error hook failed (request %s)", context.request_id)
                shaped = None
            if shaped is not None:
                return shaped
        explain = self.explain and context.request.header("x-iam-explain") == "1"
        return render_error(error, context.request_id, explanation=explain)

    def log(self, context: RequestContext) -> None:
        """The decision record of a request (see ``log_decision``), and the report to its observers."""
        for observe in self.observers.on_decision:
            observe(context)
        if not decision_log.isEnabledFor(logging.INFO):
            return
        request = context.request
        log_decision(request_id=context.request_id, method=context.method, path=context.path or None,
                     principal=context.principal, source_ip=context.source_ip, decision=context.decision,
                     error=context.error, action=context.action, resource=context.resource, outcome=context.outcome,
                     anonymous_reason=context.anonymous_reason, scheme=request.scheme, now=context.now,
                     resource_pattern=context.resource_pattern)


def _below(path: str, root_path: str) -> str:
    """The path below the app's ``root_path``, as Starlette's router computes it (servers may include it or not)."""
    if root_path and (path == root_path or path.startswith(root_path + "/")):
        return path[len(root_path):] or "/"
    return path


def log_decision(*, request_id: str, method: str, path: str | None, principal: Principal | None,
                 source_ip: str | None, decision: Decision | None, error: IAMError | None, action: str | None = None,
                 resource: str | None = None, outcome: str | None = None, anonymous_reason: str | None = None,
                 scheme: str | None = None, now: float | None = None, resource_pattern: str | None = None) -> None:
    """One record per decision on ``iam_middleware.decisions`` (from every shell): who, what, on which resource, the
    outcome and the statements that decided it. Never a credential: no header, query or body is logged.

    ``time`` (ISO 8601, UTC; the request's clock, else now), ``access_key_id`` (the key a SigV4 request was signed
    with) and ``resource_pattern`` (the route's declared resource, placeholders unfilled) let ``policy generate``
    and ``access unused`` read a window of the log and generalize ids (docs/access.md)."""
    if not decision_log.isEnabledFor(logging.INFO):
        return
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    record: dict[str, Any] = {
        "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
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
    if principal is not None and principal.access_key_id is not None:
        record["access_key_id"] = principal.access_key_id  # an identifier, as CloudTrail logs it; never the secret
    if principal is not None and "aws:sourceidentity" in principal.extra_context:
        # Whom a role session acts for (AssumeRole's SourceIdentity), as CloudTrail logs it: links a chain of calls.
        record["source_identity"] = principal.extra_context["aws:sourceidentity"]
    if resource_pattern is not None:
        record["resource_pattern"] = resource_pattern
    if anonymous_reason is not None:
        record["anonymous_reason"] = anonymous_reason
    if error is not None:
        record.update(decision="Denied" if isinstance(error, AccessDeniedError) else "Refused",
                      status=error.status_code, code=error.code)
        if isinstance(error, AccessDeniedError) and error.decision is not None:
            record["decision"] = error.decision.kind.value
    if decision is not None:
        record.update(action=decision.action, resource=decision.resource,
                      statements=[m.as_dict() for m in decision.matched], denied_by=decision.denied_by)
    decision_log.info(json.dumps(record, default=str), extra={"iam": record})


def new_request_id(given: str | None) -> str:
    """The caller's ``X-Request-ID`` when it is a plain token (so logs correlate), else a fresh random id."""
    if given is not None and _REQUEST_ID.fullmatch(given):
        return given
    # A random per-process prefix and a counter: unique across processes, and far cheaper than uuid4 per request.
    return _ID_FORMAT % next(_ID_COUNTER)


def render_permission(iam: IAM, request: RequestView, requirement: Permission, path_params: Mapping[str, Any],
                      principal: Principal) -> tuple[str, dict[str, Any]]:
    """(resource, extra context) of a route's permission for one request. A query parameter or header the
    permission names must be there (else 400 MissingParameter) and only once (else 400 AmbiguousParameter):
    frameworks disagree on which of repeated values the app reads, so none is guessed."""
    settings = iam.settings
    template = requirement.resource
    if not requirement.context and "{query." not in template and "{header." not in template:
        # The common declaration: a resource of path parameters and fixed values only (what ``render`` does with
        # no request value and no context, without building them).
        plain: dict[str, Any] = {"account": principal.account, "partition": settings.partition,
                                 "region": settings.regions[0]}
        plain.update(path_params)
        return render_template(template, plain), {}
    named = [name for name in requirement.placeholders() if name.startswith(("query.", "header."))]
    query: dict[str, str] = {}
    headers: dict[str, str] = {}
    if named:
        pairs = parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True)
        for name in named:
            kind, _, key = name.partition(".")
            values = ([v for k, v in pairs if k == key] if kind == "query" else request.header_values(key))
            if len(values) > 1:
                noun = "query parameter" if kind == "query" else "header"
                raise BadRequestError(f"The {noun} {key!r} appears more than once; send it once.",
                                      code="AmbiguousParameter")
            if values:
                (query if kind == "query" else headers)[key] = values[0]
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


def render_error(error: IAMError, request_id: str, *, explanation: bool = False) -> Reply:
    """The JSON answer to a refused request (status, lower-cased headers, body), the same from every shell.
    ``explanation`` adds a denial's matched statements to the body (only when the operator opted in)."""
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
    return Reply(error.status_code, headers, payload)


def _challenge(error: AuthenticationError) -> str:
    """``WWW-Authenticate``: RFC 6750 section 3 for bearer credentials (no error code when none was sent), the
    SigV4 scheme for signature failures."""
    if isinstance(error, MissingCredentialError):
        return f'Bearer realm="{_REALM}", AWS4-HMAC-SHA256'
    if error.scheme == "AWS4-HMAC-SHA256":
        return "AWS4-HMAC-SHA256"
    if error.scheme != "Bearer":  # a password + one-time-code login (Session)
        return f'{error.scheme} realm="{_REALM}"'
    given = next((v for k, v in error.headers.items() if k.lower() == "www-authenticate"), "")
    code = "invalid_request" if 'error="invalid_request"' in given else "invalid_token"
    description = _DESCRIPTION_UNSAFE.sub("?", error.message.replace('"', "'").replace("\\", "/"))
    return f'Bearer realm="{_REALM}", error="{code}", error_description="{description}"'
