"""Observers: what the request pipeline and its parts report, for metrics and traces (docs/metrics.md).

Each ``IAM`` has one ``Observers`` hub (``observers_of(iam)``). The parts that see something report it there:

- the gate, once per decision it takes (``Gate.log``: every shell, the token service and the gateways included),
  with the finished ``RequestContext``;
- a shell's cache of recent decisions, once per lookup (a hit answers an exact repeat without deciding again);
- the directory reloader, once per reload; the login throttle, once per lockout it imposes; a Redis store, once
  per operation that failed.

Observers are called synchronously, on the request's thread, so they must be cheap; one that raises is logged
(the first time) and otherwise ignored: an observer never changes an answer. Nothing here imports a metrics or
tracing library.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .._exceptions import AccessDeniedError, AuthenticationError, MissingCredentialError

if TYPE_CHECKING:
    from .._iam import IAM
    from .._request import RequestView
    from ..gate import RequestContext
    from ..recent import Recent

__all__ = ["Observer", "Observers", "authentication_failure", "label_value", "observers_of", "outcome_of"]

logger = logging.getLogger("iam_middleware.metrics")

#: What a label value (or an attribute naming a code) may look like: the library's codes are CamelCase words. A
#: code shaped otherwise (a custom authenticator's) is reported as ``Other``: never free text, never a credential.
_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
#: Reasons a public route's caller stayed anonymous that are not failed credentials: the credential was not checked.
_NOT_CHECKED = frozenset({"SignedPayloadNotRead", "SingleUseSignatureNotSpent"})


class Observer:
    """Receives what one ``IAM``'s pipeline reports. Subclass it and override the methods you need; add an instance
    with ``observers_of(iam).add(observer)``. ``PrometheusMetrics`` and ``OpenTelemetryTracing`` are observers."""

    def decided(self, context: RequestContext) -> None:
        """Once per decision the gate takes, with the finished context: ``outcome`` and ``error`` say what was
        answered, ``principal``, ``action`` and ``request_id`` to whom and what."""

    def looked_up(self, recent: Recent | None) -> None:
        """Once per lookup in a shell's cache of recent decisions: the entry that answers this exact repeat of an
        allowed request (it is allowed again without a decision, and ``decided`` is not called), or None (a
        miss: the request is decided the full way)."""

    def reloaded(self, ok: bool, version: int) -> None:
        """Once per reload of the directory file: ``ok`` with the version now in force, or refused (the last good
        version stays in force)."""

    def locked_out(self, subject: str) -> None:
        """Once per lockout the login throttle imposes: ``subject`` is what is locked, ``"user"`` (a user of the
        directory), ``"name"`` (a user name as typed at login, known or not: a failed login counts against both) or
        ``"address"`` (a source address, when ``max_failures_per_ip`` is set)."""

    def store_failed(self, operation: str) -> None:
        """Once per operation on the shared state store that failed (Redis down, slow or short of replicas):
        ``operation`` is the store's method (``get``, ``incr``, ``claim``...)."""


def _overrides(observer: Observer, name: str) -> bool:
    return getattr(type(observer), name) is not getattr(Observer, name)


class _Guarded:
    """One observer's method, called so that its failure never reaches the request: logged once, then ignored."""

    __slots__ = ("_failed", "_method")

    def __init__(self, method: Callable[..., None]) -> None:
        self._method = method
        self._failed = False

    def __call__(self, *args: Any) -> None:
        try:
            self._method(*args)
        except Exception:  # noqa: BLE001 - an observer must never turn an answer into a 500
            if not self._failed:
                self._failed = True
                logger.exception("observer %r failed; its later failures are not logged", self._method)


class Observers:
    """The observers of one ``IAM``, and what its parts call to report to them.

    The per-request hooks are tuples the reporting parts loop over (empty, they cost a loop over nothing):
    ``on_decision`` (the gate) and ``on_lookup`` (the recent-decision caches) hold only the observers that override
    ``decided`` and ``looked_up``; the rare events are reported through methods. Adding or removing an observer
    replaces the tuples whole: thread-safe, and requests in flight keep the tuple they started with.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._observers: tuple[Observer, ...] = ()
        self.on_decision: tuple[Callable[[RequestContext], None], ...] = ()
        self.on_lookup: tuple[Callable[[Recent | None], None], ...] = ()
        self._on_reload: tuple[Callable[[bool, int], None], ...] = ()
        self._on_lockout: tuple[Callable[[str], None], ...] = ()
        self._on_store_failure: tuple[Callable[[str], None], ...] = ()

    def __repr__(self) -> str:
        return f"Observers({len(self._observers)})"

    def __iter__(self) -> Iterator[Observer]:
        return iter(self._observers)

    def __len__(self) -> int:
        return len(self._observers)

    def add(self, observer: Observer) -> None:
        """Start reporting to ``observer`` (once, however often it is added)."""
        with self._lock:
            if observer not in self._observers:
                self._set((*self._observers, observer))

    def remove(self, observer: Observer) -> None:
        """Stop reporting to ``observer`` (nothing happens if it was not added)."""
        with self._lock:
            self._set(tuple(o for o in self._observers if o is not observer))

    def _set(self, observers: tuple[Observer, ...]) -> None:
        def hooks(name: str) -> tuple[_Guarded, ...]:
            return tuple(_Guarded(getattr(o, name)) for o in observers if _overrides(o, name))

        self._observers = observers
        self.on_decision, self.on_lookup = hooks("decided"), hooks("looked_up")
        self._on_reload, self._on_lockout, self._on_store_failure = (hooks("reloaded"), hooks("locked_out"),
                                                                     hooks("store_failed"))

    # The rare events: reported by the reloader, the login throttle and the store --------------------------------
    def reloaded(self, ok: bool, version: int) -> None:
        """Report a reload of the directory file (see ``Observer.reloaded``)."""
        for hook in self._on_reload:
            hook(ok, version)

    def locked_out(self, subject: str) -> None:
        """Report a lockout the login throttle imposed (see ``Observer.locked_out``)."""
        for hook in self._on_lockout:
            hook(subject)

    def store_failed(self, operation: str) -> None:
        """Report a failed operation of the shared state store (see ``Observer.store_failed``)."""
        for hook in self._on_store_failure:
            hook(operation)


# One hub per IAM, for as long as the IAM lives (weakly keyed: a hub must not keep its IAM alive).
_HUBS: weakref.WeakKeyDictionary[IAM, Observers] = weakref.WeakKeyDictionary()
_HUBS_LOCK = threading.Lock()


def observers_of(iam: IAM) -> Observers:
    """The observers of ``iam``: ``observers_of(iam).add(observer)`` starts reporting to ``observer``.

    The first call wires the hub to ``iam``'s login throttle and, if it reports failures (``RedisStore``), its
    state store. An observer that holds ``iam`` keeps it alive as long as the hub is reachable from elsewhere (the
    store, when shared with a longer-lived IAM); the built-in ones hold it weakly."""
    hub = _HUBS.get(iam)
    if hub is not None:
        return hub
    with _HUBS_LOCK:
        hub = _HUBS.get(iam)
        if hub is None:
            hub = _HUBS[iam] = Observers()
            iam.logins.throttle.on_lockout.append(hub.locked_out)
            store_hooks = getattr(iam.store, "on_failure", None)
            if isinstance(store_hooks, list):
                store_hooks.append(hub.store_failed)
    return hub


# What observers report: the same words from every observer ---------------------------------------------------
def label_value(code: str) -> str:
    """``code`` if it has the shape of an error code (a word of letters, digits, ``_.-``), else ``Other``: a label
    or attribute never carries free text that could hold a credential."""
    return code if _LABEL.fullmatch(code) else "Other"


def outcome_of(context: RequestContext) -> str:
    """The decision log's word for what was answered: ``Allowed``, ``Public``, ``Preflight``, ``ImplicitlyDenied``,
    ``ExplicitlyDenied``, ``Denied`` (refused by a rule of the gate, no policy evaluated) or ``Refused`` (not
    authenticated, malformed, or the state store unavailable)."""
    error = context.error
    if error is None:
        return context.outcome or "Refused"
    if isinstance(error, AccessDeniedError):
        return error.decision.kind.value if error.decision is not None else "Denied"
    return "Refused"


def authentication_failure(context: RequestContext) -> tuple[str, str] | None:
    """(credential kind, code) when the request's credential failed, else None: a refusal with 401, or a bad
    credential on a public route (which then runs anonymously). The kind is ``none`` (no credential where one is
    needed), ``sigv4``, ``bearer``, ``cookie``, ``login`` (password and one-time code) or ``other``."""
    error = context.error
    if isinstance(error, AuthenticationError):
        if isinstance(error, MissingCredentialError):
            kind = "none"
        elif error.scheme == "AWS4-HMAC-SHA256":
            kind = "sigv4"
        elif error.scheme == "Session":
            kind = "login"
        else:
            kind = _presented(context.request)
        return kind, label_value(error.code)
    reason = context.anonymous_reason
    if error is None and reason is not None and reason not in _NOT_CHECKED:
        return _presented(context.request), label_value(reason)
    return None


def _presented(request: RequestView) -> str:
    """The kind of credential a request carries, from its headers and query alone (never their values)."""
    authorization = request.header("authorization")
    if authorization is not None:
        scheme = authorization.lstrip().partition(" ")[0].lower()
        return {"aws4-hmac-sha256": "sigv4", "bearer": "bearer"}.get(scheme, "other")
    if b"x-amz-signature=" in request.query_string.lower():
        return "sigv4"
    if request.header("cookie") is not None:
        return "cookie"
    return "other"
