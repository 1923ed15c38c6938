"""``iam_bearer_cache_lookups_total``: how often a bearer token (a session token, an outside JWT) is found in the
process's cache of verified tokens rather than verified again, counted by the credential resolver itself and read
when Prometheus scrapes; requests answered from the cache of recent decisions look nothing up."""

from __future__ import annotations

import jwt
import pytest
from prometheus_client import CollectorRegistry

from iam_middleware import IAM
from iam_middleware.metrics import PrometheusMetrics
from iam_middleware.testing import session_token

from ._support import Clock, client, sample, starlette_app

pytestmark = pytest.mark.anyio
IDP_SECRET = "demo-idp-hmac-secret-0123456789abcdef0123"  # examples/iam.toml's outside provider


def outside_token(now: float) -> str:
    claims = {"iss": "https://idp.example", "aud": "orders-api", "sub": "partner-42", "iat": int(now),
              "exp": int(now) + 3600}
    return jwt.encode(claims, IDP_SECRET, algorithm="HS256")


def lookups(metrics: PrometheusMetrics) -> tuple[float, float]:
    registry = metrics.registry
    return (sample(registry, "iam_bearer_cache_lookups_total", result="hit"),
            sample(registry, "iam_bearer_cache_lookups_total", result="miss"))


async def test_hits_and_misses_of_the_bearer_cache_are_counted(iam: IAM, clock: Clock) -> None:
    metrics = PrometheusMetrics(iam)
    assert lookups(metrics) == (0, 0)  # both series exist from the start
    alice = {"Authorization": "Bearer " + session_token(iam, "alice")}
    partner = {"Authorization": "Bearer " + outside_token(clock.now)}
    async with client(starlette_app(iam)) as http:
        for headers in (alice, partner):
            assert (await http.get("/orders/1", headers=headers)).status_code == 200  # verified: a miss
            assert (await http.get("/orders/2", headers=headers)).status_code == 200  # cached: a hit
            assert (await http.get("/orders/1", headers=headers)).status_code == 200  # a repeat: no lookup
        assert lookups(metrics) == (2, 2)
        # A session is verified against the shared state again after settings.session_cache_seconds.
        clock.tick(iam.settings.session_cache_seconds)
        assert (await http.get("/orders/3", headers=alice)).status_code == 200
        assert (await http.get("/orders/4", headers=partner)).status_code == 200  # the JWT is still cached
    assert lookups(metrics) == (3, 3)


async def test_the_counts_start_with_the_iam_and_are_in_the_exposition(iam: IAM) -> None:
    alice = {"Authorization": "Bearer " + session_token(iam, "alice")}
    async with client(starlette_app(iam)) as http:
        for path in ("/orders/1", "/orders/2", "/orders/3"):
            assert (await http.get(path, headers=alice)).status_code == 200
    metrics = PrometheusMetrics(iam, registry=CollectorRegistry(), namespace="app")
    body, _ = metrics.exposition()
    assert b'app_bearer_cache_lookups_total{result="hit"} 2.0' in body
    assert b'app_bearer_cache_lookups_total{result="miss"} 1.0' in body
    assert b"Bearer " not in body and alice["Authorization"][7:].encode() not in body
