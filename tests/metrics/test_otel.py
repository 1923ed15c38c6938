"""OpenTelemetryTracing, read back through the OpenTelemetry SDK's in-memory exporter: the ``iam.decide`` span of
each decision, its attributes and status, and the attributes on the request's own span, through the ASGI
middleware and Flask."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from iam_middleware import IAM
from iam_middleware.metrics import OpenTelemetryTracing
from iam_middleware.state import RedisStore
from iam_middleware.testing import session_token

from ._support import ALICE, Clock, client, flask_app, make_iam, starlette_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


async def test_each_decision_is_a_span_with_who_what_and_the_outcome(
        iam: IAM, spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = spans
    OpenTelemetryTracing(iam, tracer_provider=provider)
    alice = {"Authorization": "Bearer " + session_token(iam, "alice"), "X-Request-ID": "req-1"}
    async with client(starlette_app(iam)) as http:
        assert (await http.get("/orders/1", headers=alice)).status_code == 200
        assert (await http.delete("/orders/1", headers={**alice, "X-Request-ID": "req-2"})).status_code == 403
        assert (await http.get("/orders/1", headers={"X-Request-ID": "req-3"})).status_code == 401
    allowed, denied, refused = named(exporter, "iam.decide")
    assert dict(allowed.attributes or {}) == {
        "iam.request_id": "req-1", "iam.outcome": "Allowed", "iam.principal.arn": ALICE, "iam.credential": "session",
        "iam.action": "orders:GetOrder"}
    assert denied.attributes is not None and denied.attributes["iam.outcome"] == "ImplicitlyDenied"
    assert denied.attributes["iam.error_code"] == "AccessDenied"
    assert denied.attributes["iam.action"] == "orders:DeleteOrder"
    assert refused.attributes is not None and refused.attributes["iam.outcome"] == "Refused"
    assert refused.attributes["iam.credential"] == "none"
    assert refused.attributes["iam.error_code"] == "MissingAuthenticationToken"
    assert "iam.principal.arn" not in refused.attributes
    # A denial is a decision taken, not an error of the pipeline.
    assert {span.status.status_code for span in (allowed, denied, refused)} == {StatusCode.UNSET}


async def test_the_request_span_is_the_parent_and_carries_the_attributes_repeats_included(
        iam: IAM, spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = spans
    OpenTelemetryTracing(iam, tracer_provider=provider)
    tracer = provider.get_tracer("test")
    alice = {"Authorization": "Bearer " + session_token(iam, "alice")}
    async with client(starlette_app(iam)) as http:
        for n in range(3):
            with tracer.start_as_current_span(f"GET /orders/1 #{n}"):
                assert (await http.get("/orders/1", headers=alice)).status_code == 200
    requests = sorted((s for s in exporter.get_finished_spans() if s.name.startswith("GET")), key=lambda s: s.name)
    decisions = named(exporter, "iam.decide")
    # One full decision (remembered), then two exact repeats answered from the cache: no span of their own.
    (decision,) = decisions
    assert decision.parent is not None and requests[0].context is not None
    assert decision.parent.span_id == requests[0].context.span_id
    for request in requests:
        assert request.attributes is not None
        assert request.attributes["iam.principal.arn"] == ALICE
        assert request.attributes["iam.action"] == "orders:GetOrder"
        assert request.attributes["iam.outcome"] == "Allowed"
    assert "iam.cache" not in (requests[0].attributes or {})
    assert [(r.attributes or {}).get("iam.cache") for r in requests[1:]] == ["hit", "hit"]


async def test_a_decision_that_failed_closed_is_an_error_span(
        clock: Clock, spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = spans
    iam = make_iam(clock, store=RedisStore("redis://127.0.0.1:1/0"))  # a Redis that is down
    OpenTelemetryTracing(iam, tracer_provider=provider)
    token = session_token(make_iam(clock), "alice")
    async with client(starlette_app(iam)) as http:
        assert (await http.get("/orders/1", headers={"Authorization": "Bearer " + token})).status_code == 503
    (span,) = named(exporter, "iam.decide")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "ServiceUnavailable"


async def test_spans_can_be_turned_off_leaving_the_attributes(
        iam: IAM, spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = spans
    OpenTelemetryTracing(iam, tracer_provider=provider, spans=False)
    async with client(starlette_app(iam)) as http:
        with provider.get_tracer("test").start_as_current_span("request"):
            assert (await http.get("/orders/1")).status_code == 401
    (request,) = exporter.get_finished_spans()
    assert request.attributes is not None and request.attributes["iam.error_code"] == "MissingAuthenticationToken"


def test_flask_decisions_are_spans_under_the_request_span(
        iam: IAM, spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = spans
    tracing = OpenTelemetryTracing(iam, tracer_provider=provider)
    http = flask_app(iam).test_client()
    alice = {"Authorization": "Bearer " + session_token(iam, "alice")}
    with provider.get_tracer("test").start_as_current_span("flask request") as request:
        assert http.delete("/orders/1", headers=alice).status_code == 403
    (decision,) = named(exporter, "iam.decide")
    assert decision.parent is not None and decision.parent.span_id == request.get_span_context().span_id
    assert decision.attributes is not None and decision.attributes["iam.outcome"] == "ImplicitlyDenied"
    tracing.close()
    assert http.delete("/orders/1", headers=alice).status_code == 403
    assert len(named(exporter, "iam.decide")) == 1  # closed: no more spans
