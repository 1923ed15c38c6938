"""PrometheusMetrics, read back through prometheus-client's own registry: every metric the operator relies on, from
the requests that cause it, through the ASGI middleware (Starlette) and the token service."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from starlette.routing import Route

from iam_middleware import IAM, DirectoryReloader, LockedOutError, OTPError, ServiceUnavailableError, permission
from iam_middleware.gate import RequestContext
from iam_middleware.metrics import Observer, PrometheusMetrics, observers_of
from iam_middleware.state import RedisStore
from iam_middleware.testing import session_token, sign_request

from ._support import BASE, PASSWORD, Clock, bad_signature, client, make_iam, sample, starlette_app

pytestmark = pytest.mark.anyio


async def test_decisions_are_counted_by_outcome_and_error_code(iam: IAM) -> None:
    metrics = PrometheusMetrics(iam)
    alice = {"Authorization": "Bearer " + session_token(iam, "alice")}
    async with client(starlette_app(iam)) as http:
        assert (await http.get("/orders/1", headers=alice)).status_code == 200
        assert (await http.delete("/orders/1", headers=alice)).status_code == 403
        assert (await http.get("/orders/1")).status_code == 401
        assert (await http.get("/health")).status_code == 200
        assert (await http.get("/nowhere", headers=alice)).status_code == 403
    registry = metrics.registry
    assert sample(registry, "iam_decisions_total", outcome="Allowed", code="") == 1
    assert sample(registry, "iam_decisions_total", outcome="ImplicitlyDenied", code="AccessDenied") == 1
    assert sample(registry, "iam_decisions_total", outcome="Refused", code="MissingAuthenticationToken") == 1
    assert sample(registry, "iam_decisions_total", outcome="Public", code="") == 1
    assert sample(registry, "iam_decisions_total", outcome="Denied", code="AccessDenied") == 1  # no route
    assert sample(registry, "iam_decision_duration_seconds_count") == 5


class Slow(Observer):
    """Makes each decision take 3 ms by the IAM's clock, as seen by the observers after it."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def decided(self, context: RequestContext) -> None:
        self.clock.tick(0.003)


async def test_the_time_each_decision_took_is_a_histogram(clock: Clock, iam: IAM) -> None:
    observers_of(iam).add(Slow(clock))  # first: PrometheusMetrics reads the clock after it
    metrics = PrometheusMetrics(iam, buckets=(0.001, 0.0025, 0.005))
    async with client(starlette_app(iam)) as http:
        assert (await http.get("/orders/1")).status_code == 401
        assert (await http.get("/health")).status_code == 200
    registry = metrics.registry
    assert sample(registry, "iam_decision_duration_seconds_bucket", le="0.0025") == 0
    assert sample(registry, "iam_decision_duration_seconds_bucket", le="0.005") == 2
    assert sample(registry, "iam_decision_duration_seconds_bucket", le="+Inf") == 2
    assert sample(registry, "iam_decision_duration_seconds_count") == 2
    # Two clock readings 3 ms apart near 1.8e9 s: exact to a microsecond.
    assert sample(registry, "iam_decision_duration_seconds_sum") == pytest.approx(0.006, abs=1e-6)


async def test_repeats_answered_from_the_cache_count_as_allowed_decisions_and_cache_hits(iam: IAM) -> None:
    metrics = PrometheusMetrics(iam)
    alice = {"Authorization": "Bearer " + session_token(iam, "alice")}
    async with client(starlette_app(iam)) as http:
        for _ in range(4):
            assert (await http.get("/orders/1", headers=alice)).status_code == 200
        assert (await http.get("/orders/2", headers=alice)).status_code == 200
    registry = metrics.registry
    # The first request of each path is decided (and remembered); the three repeats of /orders/1 are not.
    assert sample(registry, "iam_decision_cache_lookups_total", result="hit") == 3
    assert sample(registry, "iam_decision_cache_lookups_total", result="miss") == 2
    assert sample(registry, "iam_decisions_total", outcome="Allowed", code="") == 5
    assert sample(registry, "iam_decision_duration_seconds_count") == 2  # only the full decisions take time


async def test_authentication_failures_are_counted_by_the_kind_of_credential(iam: IAM) -> None:
    metrics = PrometheusMetrics(iam)
    cookie = {"Cookie": f"{iam.settings.cookie_name}=not-a-session"}
    async with client(starlette_app(iam)) as http:
        assert (await http.get("/orders/1", headers=bad_signature(iam))).status_code == 401
        assert (await http.get("/orders/1", headers={"Authorization": "Bearer not.a.token"})).status_code == 401
        assert (await http.get("/orders/1", headers=cookie)).status_code == 401
        assert (await http.get("/orders/1")).status_code == 401
        # A bad credential on a public route: the route runs anonymously, the failure is counted all the same.
        assert (await http.get("/health", headers={"Authorization": "Bearer not.a.token"})).status_code == 200
        login = await http.post("/sts/login", json={"username": "bob", "password": "wrong", "code": "123456"})
        assert login.status_code == 401
    registry = metrics.registry

    def failures(credential: str) -> float:
        return sum(s.value for family in registry.collect() if family.name == "iam_authentication_failures"
                   for s in family.samples if s.labels["credential"] == credential)

    assert failures("sigv4") == 1
    assert failures("bearer") == 2
    assert failures("cookie") == 1
    assert failures("login") == 1
    assert sample(registry, "iam_authentication_failures_total", credential="none",
                  code="MissingAuthenticationToken") == 1
    assert sample(registry, "iam_authentication_failures_total", credential="sigv4",
                  code="SignatureDoesNotMatch") == 1
    assert sample(registry, "iam_authentication_failures_total", credential="login", code="InvalidLogin") == 1


async def test_a_good_credential_is_no_authentication_failure(iam: IAM) -> None:
    metrics = PrometheusMetrics(iam)
    signed = sign_request(iam, "GET", BASE + "/orders/1", user="alice").headers
    async with client(starlette_app(iam)) as http:
        assert (await http.get("/orders/1", headers=signed)).status_code == 200
        assert (await http.delete("/orders/1", headers={"Authorization": "Bearer " + session_token(iam, "alice")})
                ).status_code == 403
    assert not any(family.samples for family in metrics.registry.collect()
                   if family.name == "iam_authentication_failures")


def test_login_lockouts_are_counted(clock: Clock) -> None:
    iam = make_iam(clock)
    metrics = PrometheusMetrics(iam)
    for _ in range(iam.settings.login_max_failures):
        clock.tick(60)  # past the delay each failure earns: the next try is counted, not refused unread
        with pytest.raises(OTPError) as refused:
            iam.login("bob", "wrong password", "123456")
        assert not isinstance(refused.value, LockedOutError)
    with pytest.raises(LockedOutError):
        iam.login("bob", PASSWORD, "123456")
    # A failed login counts against the user and against the name as typed: both are locked.
    assert sample(metrics.registry, "iam_login_lockouts_total", subject="user") == 1
    assert sample(metrics.registry, "iam_login_lockouts_total", subject="name") == 1
    assert sample(metrics.registry, "iam_login_lockouts_total", subject="address") == 0
    for _ in range(iam.settings.login_max_failures):  # an unknown name: only the name is locked
        clock.tick(60)
        with pytest.raises(OTPError):
            iam.login("mallory", "guess", "123456")
    assert sample(metrics.registry, "iam_login_lockouts_total", subject="name") == 2
    assert sample(metrics.registry, "iam_login_lockouts_total", subject="user") == 1


async def test_store_errors_are_counted_by_operation_and_the_refusal_by_its_code(clock: Clock) -> None:
    # Port 1 on loopback refuses connections at once: a Redis that is down.
    iam = make_iam(clock, store=RedisStore("redis://127.0.0.1:1/0"))
    metrics = PrometheusMetrics(iam)
    token = session_token(make_iam(clock), "alice")  # issued where the store answers: same directory, same secret
    async with client(starlette_app(iam)) as http:
        assert (await http.get("/orders/1", headers={"Authorization": "Bearer " + token})).status_code == 503
    registry = metrics.registry
    assert sample(registry, "iam_store_errors_total", operation="get") == 1  # the session's record, not read
    assert sample(registry, "iam_decisions_total", outcome="Refused", code=ServiceUnavailableError.code) == 1


@pytest.mark.directory_file
def test_reloads_the_directory_version_and_its_age(tmp_path: Path, clock: Clock) -> None:
    iam = make_iam(clock, tmp_path / "ex")
    metrics = PrometheusMetrics(iam)
    registry = metrics.registry
    reloader = DirectoryReloader(iam)
    clock.tick(30)
    assert sample(registry, "iam_directory_age_seconds") == 30
    assert sample(registry, "iam_directory_version") == 1
    assert reloader.reload().ok
    assert sample(registry, "iam_directory_reloads_total", result="ok") == 1
    assert sample(registry, "iam_directory_version") == 2
    assert sample(registry, "iam_directory_age_seconds") == 0
    clock.tick(5)
    (tmp_path / "ex" / "iam.toml").write_text("[users.broken\n")
    assert not reloader.reload().ok
    assert sample(registry, "iam_directory_reloads_total", result="error") == 1
    assert sample(registry, "iam_directory_version") == 2  # the last good version stays in force
    assert sample(registry, "iam_directory_age_seconds") == 5


async def test_the_metrics_endpoint_is_public_in_the_route_audit_and_serves_both_formats(iam: IAM) -> None:
    metrics = PrometheusMetrics(iam)
    app = starlette_app(iam, Route("/metrics", metrics.asgi_app()))  # undeclared="error": the audit passes
    async with client(app) as http:
        text = await http.get("/metrics")
        assert text.status_code == 200
        assert text.headers["content-type"].startswith("text/plain")
        assert 'iam_decisions_total{code="",outcome="Public"}' in text.text
        open_metrics = await http.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
        assert open_metrics.text.endswith("# EOF\n")
        head = await http.head("/metrics")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) > 0
        assert (await http.post("/metrics")).status_code == 405


async def test_the_metrics_endpoint_can_require_a_permission(iam: IAM) -> None:
    metrics = PrometheusMetrics(iam)
    endpoint = permission("iam:GetMetrics", resource="arn:app:iam::{account}:metrics")(metrics.asgi_app(public=False))
    app = starlette_app(iam, Route("/metrics", endpoint))
    async with client(app) as http:
        assert (await http.get("/metrics")).status_code == 401
        alice = {"Authorization": "Bearer " + session_token(iam, "alice")}
        assert (await http.get("/metrics", headers=alice)).status_code == 403  # no policy grants iam:GetMetrics
    assert "GET /metrics" not in ",".join(starlette_app(iam, Route("/metrics", endpoint)).audit())
    undeclared = starlette_app(iam, Route("/metrics", metrics.asgi_app(public=False)), undeclared="warn").audit()
    assert any(entry.endswith(" /metrics") for entry in undeclared)


def test_the_users_registry_is_used_and_a_second_instance_on_it_is_refused(iam: IAM) -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(iam, registry=registry)
    assert metrics.registry is registry
    with pytest.raises(ValueError, match="namespace"):
        PrometheusMetrics(iam, registry=registry)
    other = PrometheusMetrics(iam, registry=registry, namespace="orders_iam")
    assert registry.get_sample_value("orders_iam_directory_version") == 1
    other.close()
    assert registry.get_sample_value("orders_iam_directory_version") is None
    assert registry.get_sample_value("iam_directory_version") == 1


async def test_closed_metrics_stop_counting_and_free_their_names(iam: IAM) -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(iam, registry=registry)
    missing = {"outcome": "Refused", "code": "MissingAuthenticationToken"}
    async with client(starlette_app(iam)) as http:
        assert (await http.get("/orders/1")).status_code == 401
        metrics.close()
        assert metrics not in list(observers_of(iam))
        assert list(registry.collect()) == []
        again = PrometheusMetrics(iam, registry=registry)  # the names are free again
        assert (await http.get("/orders/1")).status_code == 401
    assert registry.get_sample_value("iam_decisions_total", missing) == 1
    assert metrics._decisions != again._decisions
