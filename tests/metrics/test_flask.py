"""The same metrics through Flask (IAMFlask, a WSGI shell over the same gate), and the metrics served to Prometheus
by the WSGI app in front of Flask."""

from __future__ import annotations

from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

from iam_middleware import IAM
from iam_middleware.metrics import PrometheusMetrics
from iam_middleware.testing import session_token

from ._support import bad_signature, flask_app, sample


def test_flask_decisions_repeats_and_failures_are_counted(iam: IAM) -> None:
    metrics = PrometheusMetrics(iam)
    http = flask_app(iam).test_client()
    alice = {"Authorization": "Bearer " + session_token(iam, "alice")}
    for _ in range(3):
        assert http.get("/orders/1", headers=alice).status_code == 200
    assert http.delete("/orders/1", headers=alice).status_code == 403
    assert http.get("/orders/1", headers=bad_signature(iam)).status_code == 401
    assert http.get("/health").status_code == 200
    registry = metrics.registry
    # The first request is decided before the audit (no cache key yet), the second decided and remembered, the
    # third answered from the cache.
    assert sample(registry, "iam_decisions_total", outcome="Allowed", code="") == 3
    assert sample(registry, "iam_decision_cache_lookups_total", result="hit") == 1
    assert sample(registry, "iam_decisions_total", outcome="ImplicitlyDenied", code="AccessDenied") == 1
    assert sample(registry, "iam_decisions_total", outcome="Refused", code="SignatureDoesNotMatch") == 1
    assert sample(registry, "iam_decisions_total", outcome="Public", code="") == 1
    assert sample(registry, "iam_authentication_failures_total", credential="sigv4",
                  code="SignatureDoesNotMatch") == 1


def test_the_wsgi_app_serves_the_metrics_in_front_of_flask(iam: IAM) -> None:
    metrics = PrometheusMetrics(iam)
    app = flask_app(iam)
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/metrics": metrics.wsgi_app()})  # type: ignore[method-assign]
    http = Client(app)
    assert http.get("/orders/1").status_code == 401
    scraped = http.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["Content-Type"].startswith("text/plain")
    assert 'iam_decisions_total{code="MissingAuthenticationToken",outcome="Refused"} 1.0' in scraped.text
    open_metrics = http.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert open_metrics.text.endswith("# EOF\n")
    assert http.post("/metrics").status_code == 405
    assert http.head("/metrics").data == b""
