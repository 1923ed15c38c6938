"""PrometheusMetrics: one IAM's decisions, failures, cache, reloads, lockouts and store errors, for Prometheus.

Per-request counts (decisions, authentication failures, lookups in the recent-decision caches) are kept in plain
in-process tallies, one ``itertools.count`` per label set (``next`` on one is a single C call: exact under the GIL,
no lock), and read by a custom collector when Prometheus scrapes; the bearer-token cache keeps such tallies itself
(``CredentialResolver.bearer_cache_hits``), read the same way. prometheus-client's own ``Counter.inc`` takes a
lock per call, which costs several times the whole budget of a warm request's metrics (docs/metrics.md,
"Cost"). The rare events (reloads, lockouts, store errors) and the duration histogram use prometheus-client's
own metrics.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .._exceptions import ConfigurationError
from ..routing import public as declare_public
from ._observe import Observer, authentication_failure, label_value, observers_of, outcome_of

if TYPE_CHECKING:
    from .._iam import IAM
    from ..directory import Snapshot
    from ..gate import RequestContext
    from ..recent import Recent

__all__ = ["DURATION_BUCKETS", "MetricsASGIApp", "MetricsWSGIApp", "PrometheusMetrics"]

#: Buckets of the decision-duration histogram, in seconds: a decision takes tens of microseconds, a first sight of
#: a credential (a password hash, a key set to load, a Redis round trip) milliseconds.
DURATION_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


def _read(tally: itertools.count[int]) -> int:
    """The next value a tally would give, i.e. how many times it was advanced. ``repr`` is ``count(N)``, the one
    way to read a count without advancing it (pickling it is deprecated)."""
    return int(repr(tally)[6:-1])


def _advance(tallies: dict[Any, itertools.count[int]], key: Any) -> None:
    tally = tallies.get(key)
    if tally is None:
        tally = tallies.setdefault(key, itertools.count())  # setdefault: two threads creating it keep one
    next(tally)


class PrometheusMetrics(Observer):
    """Counters, gauges and a histogram of ``iam``'s pipeline in a Prometheus registry (``registry``, or a new one:
    ``metrics.registry``), named ``<namespace>_...`` (docs/metrics.md lists them with their labels).

    Created, it observes ``iam`` at once (every shell over it, the warm path included); ``close()`` stops it and
    unregisters its metrics. Expose them with ``asgi_app()`` (Starlette, FastAPI), ``wsgi_app()`` (Flask, any WSGI
    server) or ``exposition()`` (a view of your own), on any path you mount them at. No label or value ever holds a
    credential: labels are outcomes, error codes, kinds and operation names from fixed sets.
    """

    def __init__(self, iam: IAM, *, registry: CollectorRegistry | None = None, namespace: str = "iam",
                 buckets: Sequence[float] = DURATION_BUCKETS) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.namespace = namespace
        self._iam = weakref.ref(iam)  # the IAM's observer hub holds this observer: never the other way round
        self._clock = iam.clock
        self._decisions: dict[tuple[str, str], itertools.count[int]] = {}
        self._failures: dict[tuple[str, str], itertools.count[int]] = {}
        self._hits = itertools.count()
        self._misses = itertools.count()
        self._snapshot: Snapshot = iam.snapshots.in_force
        self._loaded_at = self._clock()
        self._bounds = sorted(float(bound) for bound in buckets)
        if not self._bounds or self._bounds[0] <= 0:
            raise ConfigurationError("PrometheusMetrics: buckets must be positive numbers of seconds")
        self._durations = [itertools.count() for _ in range(len(self._bounds) + 1)]  # the last one: +Inf
        self._duration_sum = 0.0
        self._sum_lock = threading.Lock()
        self._reloads = Counter("directory_reloads", "Reloads of the directory file, by result (ok: the new "
                                "version is in force; error: refused, the last good one stays)", ["result"],
                                namespace=namespace, registry=None)
        self._lockouts = Counter("login_lockouts", "Lockouts the login throttle imposed, by what is locked (user, "
                                 "name as typed, address)", ["subject"], namespace=namespace, registry=None)
        self._store_errors = Counter("store_errors", "Operations on the shared state store that failed (down, "
                                     "slow, short of replicas), by operation", ["operation"], namespace=namespace,
                                     registry=None)
        for result in ("ok", "error"):
            self._reloads.labels(result)
        for subject in ("user", "name", "address"):
            self._lockouts.labels(subject)
        self._collectors: list[Collector] = [_Tallies(self), self._reloads, self._lockouts, self._store_errors]
        registered: list[Collector] = []
        try:
            for collector in self._collectors:
                self.registry.register(collector)
                registered.append(collector)
        except ValueError as exc:  # a name already in the registry: another PrometheusMetrics, or the user's own
            for collector in registered:
                self.registry.unregister(collector)
            raise ConfigurationError(f"PrometheusMetrics: {exc}; give another namespace or registry") from None
        observers_of(iam).add(self)

    def __repr__(self) -> str:
        return f"PrometheusMetrics(namespace={self.namespace!r})"

    def close(self) -> None:
        """Stop observing and unregister every metric from the registry."""
        iam = self._iam()
        if iam is not None:
            observers_of(iam).remove(self)
        for collector in self._collectors:
            try:
                self.registry.unregister(collector)
            except KeyError:  # already unregistered
                pass

    # Observer --------------------------------------------------------------------------------------------------
    def decided(self, context: RequestContext) -> None:
        error = context.error
        _advance(self._decisions, (outcome_of(context), "" if error is None else label_value(error.code)))
        if error is not None or context.anonymous_reason is not None:
            failure = authentication_failure(context)
            if failure is not None:
                _advance(self._failures, failure)
        elapsed = max(0.0, self._clock() - context.now)
        next(self._durations[bisect.bisect_left(self._bounds, elapsed)])  # le: a bound counts what equals it
        with self._sum_lock:
            self._duration_sum += elapsed

    def looked_up(self, recent: Recent | None) -> None:
        next(self._misses if recent is None else self._hits)

    def reloaded(self, ok: bool, version: int) -> None:
        self._reloads.labels("ok" if ok else "error").inc()
        iam = self._iam()
        if ok and iam is not None:
            self._snapshot = iam.snapshots.in_force
            self._loaded_at = self._clock()

    def locked_out(self, subject: str) -> None:
        self._lockouts.labels(label_value(subject)).inc()

    def store_failed(self, operation: str) -> None:
        self._store_errors.labels(label_value(operation)).inc()

    # Exposition ------------------------------------------------------------------------------------------------
    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """(body, content type) of the registry's metrics, in the format ``accept`` asks for (OpenMetrics or
        Prometheus text): for a view of your own."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def asgi_app(self, *, public: bool = True) -> MetricsASGIApp:
        """An ASGI app answering GET and HEAD with the metrics wherever it is mounted (``Mount("/metrics", ...)``).
        Declared public, so ``IAMMiddleware``'s audit passes it; ``public=False`` leaves it undeclared, to declare
        a permission on it yourself (``permission("iam:GetMetrics", ...)(metrics.asgi_app(public=False))``)."""
        app = MetricsASGIApp(self)
        return declare_public(app) if public else app

    def wsgi_app(self) -> MetricsWSGIApp:
        """A WSGI app answering GET and HEAD with the metrics: mount it with Werkzeug's ``DispatcherMiddleware`` in
        front of a Flask app (outside ``IAMFlask``), or serve it on a port of its own."""
        return MetricsWSGIApp(self)

    def reply(self, method: str, accept: str | None) -> tuple[int, list[tuple[str, str]], bytes]:
        """(status, headers, body) of a request for the metrics: 200 for GET and HEAD, 405 for other methods."""
        if method not in ("GET", "HEAD"):
            body = b"Only GET and HEAD read the metrics.\n"
            headers = [("allow", "GET, HEAD"), ("content-type", "text/plain; charset=utf-8")]
            return 405, [*headers, ("content-length", str(len(body)))], body
        body, content_type = self.exposition(accept)
        return 200, [("content-type", content_type), ("cache-control", "no-store"),
                     ("content-length", str(len(body)))], body


class _Tallies(Collector):
    """The per-request tallies and the directory's version and age, read at scrape time."""

    def __init__(self, metrics: PrometheusMetrics) -> None:
        self._metrics = weakref.ref(metrics)
        self._namespace = metrics.namespace

    def describe(self) -> Iterable[Metric]:
        return self._families(None)

    def collect(self) -> Iterable[Metric]:
        return self._families(self._metrics())

    def _families(self, metrics: PrometheusMetrics | None) -> Iterator[Metric]:
        ns = self._namespace
        decisions = CounterMetricFamily(f"{ns}_decisions", "Requests decided, by outcome and error code (empty "
                                        "when allowed); exact repeats answered from the cache are Allowed",
                                        labels=["outcome", "code"])
        failures = CounterMetricFamily(f"{ns}_authentication_failures", "Credentials that failed, by the kind the "
                                       "request carried (none, sigv4, bearer, cookie, login, other) and error code",
                                       labels=["credential", "code"])
        lookups = CounterMetricFamily(f"{ns}_decision_cache_lookups", "Lookups in the shells' caches of recent "
                                      "decisions, by result (hit: answered without deciding again)",
                                      labels=["result"])
        bearer = CounterMetricFamily(f"{ns}_bearer_cache_lookups", "Lookups of bearer tokens (session tokens, "
                                     "outside JWTs) in the cache of verified tokens, by result (hit: not verified "
                                     "again)", labels=["result"])
        duration = HistogramMetricFamily(f"{ns}_decision_duration_seconds", "Time from a request reaching the gate "
                                         "to its decision (full decisions: repeats answered from the cache take none)")
        version = GaugeMetricFamily(f"{ns}_directory_version", "Version of the directory snapshot in force")
        age = GaugeMetricFamily(f"{ns}_directory_age_seconds", "Seconds since the directory in force was loaded "
                                "(its last successful reload, or since these metrics were created)")
        if metrics is not None:
            hits = _read(metrics._hits)
            counted = {key: _read(tally) for key, tally in list(metrics._decisions.items())}
            counted[("Allowed", "")] = counted.get(("Allowed", ""), 0) + hits
            for (outcome, code), value in sorted(counted.items()):
                decisions.add_metric([outcome, code], value)
            for (kind, code), tally in sorted(list(metrics._failures.items())):
                failures.add_metric([kind, code], _read(tally))
            lookups.add_metric(["hit"], hits)
            lookups.add_metric(["miss"], _read(metrics._misses))
            with metrics._sum_lock:  # the sum and the counts of one moment (a count is never behind the sum)
                counts = [_read(tally) for tally in metrics._durations]
                total = metrics._duration_sum
            cumulative = list(itertools.accumulate(counts))
            bounds = [floatToGoString(bound) for bound in metrics._bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
            duration.add_metric([], list(zip(bounds, cumulative, strict=True)), total)
            iam = metrics._iam()
            if iam is not None:
                # The resolver's own tallies (the bearer cache is looked up below the observers' reach, and a
                # tally costs less than a report would); they count from the IAM's start.
                bearer.add_metric(["hit"], _read(iam.credentials.bearer_cache_hits))
                bearer.add_metric(["miss"], _read(iam.credentials.bearer_cache_misses))
                snapshot = iam.snapshots.in_force
                now = metrics._clock()
                if snapshot is not metrics._snapshot:  # swapped without a reload report (a live directory)
                    metrics._snapshot, metrics._loaded_at = snapshot, now
                version.add_metric([], snapshot.version)
                age.add_metric([], max(0.0, now - metrics._loaded_at))
        yield from (decisions, failures, lookups, bearer, duration, version, age)


class MetricsASGIApp:
    """The metrics as an ASGI app: GET and HEAD answer them, any other method 405; a websocket is closed."""

    def __init__(self, metrics: PrometheusMetrics) -> None:
        self._metrics = metrics

    def __repr__(self) -> str:
        return f"MetricsASGIApp({self._metrics!r})"

    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        kind = scope.get("type")
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if kind != "http":  # lifespan: nothing to start or stop
            return
        accept = ",".join(value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"accept")
        method = scope.get("method", "GET")
        status, headers, body = self._metrics.reply(method, accept or None)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


class MetricsWSGIApp:
    """The metrics as a WSGI app: GET and HEAD answer them, any other method 405."""

    def __init__(self, metrics: PrometheusMetrics) -> None:
        self._metrics = metrics

    def __repr__(self) -> str:
        return f"MetricsWSGIApp({self._metrics!r})"

    def __call__(self, environ: Mapping[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        status, headers, body = self._metrics.reply(method, environ.get("HTTP_ACCEPT"))
        start_response("200 OK" if status == 200 else "405 Method Not Allowed", headers)
        return [b"" if method == "HEAD" else body]
