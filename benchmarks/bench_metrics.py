"""What metrics and traces cost per request, in process, all in the same run: the warm path (an exact repeat of an
allowed request, answered from the middleware's cache of recent decisions) and the full path (a new token each
request), each without observers, with ``PrometheusMetrics``, with the naive alternative (prometheus-client's
``Counter.labels(...).inc()`` per request, which takes a lock each call) and with ``OpenTelemetryTracing`` over the
API alone (no SDK installed as the tracer provider: what tracing costs an app that has not turned it on).

Run on demand: ``python benchmarks/bench_metrics.py [--requests N] [--rounds R]``.
Target (issue "Metrics and traces"): metrics cost at most 0.5 µs per request on the warm path. Two figures say it:
the end-to-end difference (IAMMiddleware over Starlette, one event loop; a difference of two ~20 µs figures, so
it carries their noise) and the cost of the one step metrics add to a warm request, the cache lookup that reports
its hit, timed alone (``RecentDecisions.lookup`` with and without the observers; precise). Last, what counting the
bearer-token cache's hits and misses (``iam_bearer_cache_lookups_total``) adds to a lookup in it: target 0.1 µs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
from prometheus_client import CollectorRegistry, Counter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from _common import best_per_call, best_per_item, print_table, ratio  # noqa: E402

from iam_middleware import IAM, IAMMiddleware, permission  # noqa: E402
from iam_middleware.gate import RequestContext  # noqa: E402
from iam_middleware.metrics import Observer, OpenTelemetryTracing, PrometheusMetrics, observers_of  # noqa: E402
from iam_middleware.metrics._observe import outcome_of  # noqa: E402
from iam_middleware.recent import Recent, RecentDecisions  # noqa: E402

SECRET = "demo-idp-hmac-secret-0123456789abcdef0123"  # examples/iam.toml's outside provider
ISSUER = "https://idp.example"
TARGET_US = 0.5
BEARER_TARGET_US = 0.1  # what counting the bearer-token cache's hits and misses may add to a lookup in it


class LockingCounters(Observer):
    """The naive way: prometheus-client's own counters, incremented (under their lock) on every request."""

    def __init__(self) -> None:
        registry = CollectorRegistry()
        self.decisions = Counter("decisions", "", ["outcome", "code"], registry=registry)
        self.lookups = Counter("lookups", "", ["result"], registry=registry)

    def decided(self, context: RequestContext) -> None:
        self.decisions.labels(outcome_of(context), context.error.code if context.error else "").inc()

    def looked_up(self, recent: Recent | None) -> None:
        self.lookups.labels("miss" if recent is None else "hit").inc()
        if recent is not None:
            self.decisions.labels("Allowed", "").inc()


def token(now: float, n: int = 0) -> str:
    claims = {"iss": ISSUER, "aud": "orders-api", "sub": "partner-42", "exp": int(now) + 3600, "iat": int(now),
              "jti": f"token-{n}"}
    return jwt.encode(claims, SECRET, algorithm="HS256")


@permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")
async def get_order(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def scope_for(auth: str) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": "/orders/42", "raw_path": b"/orders/42", "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", auth.encode())],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}


def variants() -> dict[str, tuple[IAM, Callable[[IAM], object]]]:
    """One IAM per variant, so no observer of one is seen by another."""
    def fresh() -> IAM:
        return IAM.from_file(ROOT / "examples" / "iam.toml")

    return {
        "no observers": (fresh(), lambda iam: None),
        "PrometheusMetrics": (fresh(), lambda iam: PrometheusMetrics(iam)),
        "Counter.inc() per request (naive)": (fresh(), lambda iam: observers_of(iam).add(LockingCounters())),
        "OpenTelemetryTracing, API only": (fresh(), lambda iam: OpenTelemetryTracing(iam)),
    }


def runner(app: Any, scopes: list[dict[str, Any]], loop: asyncio.AbstractEventLoop) -> Callable[[], int]:
    """Sends each scope once per call (copies), checks every answer is a 200, returns how many were sent."""
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def batch() -> None:
        for scope in scopes:
            await app(dict(scope), receive, send)

    def run() -> int:
        statuses.clear()
        loop.run_until_complete(batch())
        if set(statuses) != {200}:
            raise SystemExit(f"unexpected statuses {sorted(set(statuses))}")
        return len(scopes)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=25)
    args = parser.parse_args()
    now = time.time()
    loop = asyncio.new_event_loop()
    warm_scopes = [scope_for("Bearer " + token(now))] * args.requests
    fresh_count = args.requests // 10  # a full decision is ~10x a repeat: batches of similar length
    warm: dict[str, Callable[[], int]] = {}
    full: dict[str, Callable[[], int]] = {}
    lookups: dict[str, str] = {}
    namespace: dict[str, Any] = {}
    serial = iter(range(1, 1 << 30))
    for name, (iam, attach) in variants().items():
        attach(iam)
        app = IAMMiddleware(Starlette(routes=[Route("/orders/{order_id}", get_order)]), iam=iam)
        app.audit()
        warm[name] = runner(app, warm_scopes, loop)

        def new_tokens(app: Any = app) -> int:
            scopes = [scope_for("Bearer " + token(now, next(serial))) for _ in range(fresh_count)]
            return runner(app, scopes, loop)()

        full[name] = new_tokens
        # The step metrics add to a warm request, alone: a lookup that hits (and reports it).
        recent = RecentDecisions(iam)
        principal = iam.credentials.from_token(token(now))
        decision = iam.authorize(principal, "orders:GetOrder", "arn:app:orders::111122223333:order/42")
        recent.remember(b"key", principal, decision, None)
        assert recent.lookup(b"key") is not None
        key = f"r{len(lookups)}"
        namespace[key] = recent
        lookups[name] = f"{key}.lookup(b'key')"
    print(f"{args.requests} warm requests per batch, {fresh_count} with new tokens; best of {args.rounds} "
          "interleaved rounds (µs per request)\n")
    results = {"warm request (exact repeat, from the cache)": best_per_item(warm, rounds=args.rounds),
               "full decision (a new HS256 token each request)": best_per_item(full, rounds=max(3, args.rounds // 3)),
               "the cache lookup alone (RecentDecisions.lookup, a hit)": best_per_call(lookups, namespace,
                                                                                       rounds=args.rounds)}
    rows = []
    for figure, timings in results.items():
        base = timings["no observers"]
        for name, seconds in timings.items():
            cost = (seconds - base) * 1e6
            rows.append([figure if name == "no observers" else "", name, f"{seconds * 1e6:.2f}",
                         "" if name == "no observers" else f"{cost:+.2f}", ratio(seconds, base)])
    print_table(["figure", "observers", "µs", "cost µs", "x none"], rows)
    warm_cost = (results["warm request (exact repeat, from the cache)"]["PrometheusMetrics"]
                 - results["warm request (exact repeat, from the cache)"]["no observers"]) * 1e6
    step = results["the cache lookup alone (RecentDecisions.lookup, a hit)"]
    step_cost = (step["PrometheusMetrics"] - step["no observers"]) * 1e6
    verdict = "PASS" if step_cost <= TARGET_US else "MISS"
    print(f"\nPrometheusMetrics on the warm path: {step_cost:.2f} µs per request measured on the lookup alone, "
          f"{warm_cost:+.2f} µs end to end; target <= {TARGET_US} µs: {verdict}")
    bearer_cache(now, args.rounds)


def bearer_cache(now: float, rounds: int) -> None:
    """What the bearer-token cache's tallies (``iam_bearer_cache_lookups_total``) cost: the one statement a lookup
    runs for them, timed alone, next to the lookup it is part of (``from_token`` of a cached token)."""
    credentials = IAM.from_file(ROOT / "examples" / "iam.toml").credentials
    bearer = token(now)
    credentials.from_token(bearer, now=now)
    timings = best_per_call({"from_token, a hit": "credentials.from_token(bearer, now=now)",
                             "its tally alone": "next(credentials.bearer_cache_hits)"},
                            {"credentials": credentials, "bearer": bearer, "now": now}, rounds=rounds)
    tally = timings["its tally alone"] * 1e6
    verdict = "PASS" if tally <= BEARER_TARGET_US else "MISS"
    print(f"\nBearer-token cache: a hit takes {timings['from_token, a hit'] * 1e6:.2f} µs, of which counting it "
          f"{tally:.3f} µs; target <= {BEARER_TARGET_US} µs: {verdict}")


if __name__ == "__main__":
    main()
