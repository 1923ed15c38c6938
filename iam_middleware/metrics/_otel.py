"""OpenTelemetryTracing: one span per decision, and who and what on the request's own span (docs/metrics.md).

Through ``opentelemetry-api`` only: the application chooses the SDK, the exporter and the server instrumentation.
The decision is a span of its own, ``iam.decide`` (INTERNAL, a child of whatever span is current: the HTTP server
span of an instrumented app), so the time authentication and evaluation take shows in the trace; the same
``iam.*`` attributes go on the current span too, so the request's own span says who was decided about. An exact
repeat answered from a shell's cache of recent decisions takes no decision and gets no span of its own (that
would cost more than the answer): it annotates the current span only.
"""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import __version__
from ._observe import Observer, authentication_failure, label_value, observers_of, outcome_of

if TYPE_CHECKING:
    from .._iam import IAM
    from ..gate import RequestContext
    from ..recent import Recent

__all__ = ["OpenTelemetryTracing", "SPAN_NAME", "decision_attributes"]

#: The name of the span of one decision (authentication, the route's permission, the evaluation).
SPAN_NAME = "iam.decide"


class OpenTelemetryTracing(Observer):
    """Trace ``iam``'s decisions through ``tracer_provider`` (default: the global one OpenTelemetry's SDK sets).

    ``spans``: one ``iam.decide`` span per decision; ``annotate``: the ``iam.*`` attributes on the current span as
    well (the warm path's repeats included). Attributes: ``iam.request_id``, ``iam.outcome``, ``iam.principal.arn``,
    ``iam.action``, ``iam.credential`` (the kind, never the credential), ``iam.error_code``, ``iam.cache`` (``hit``
    on a repeat); a decision that failed closed (503, ``AuthorizationFailed``) also sets ``error.type`` and the
    span's status to ERROR. A denial is a decision taken, not an error. Created, it observes ``iam`` at once;
    ``close()`` stops it.
    """

    def __init__(self, iam: IAM, *, tracer_provider: trace.TracerProvider | None = None, spans: bool = True,
                 annotate: bool = True) -> None:
        self._tracer = trace.get_tracer("iam_middleware", __version__, tracer_provider=tracer_provider)
        self._clock = iam.clock
        self._spans = spans
        self._annotate = annotate
        self._iam = weakref.ref(iam)  # the IAM's observer hub holds this observer: never the other way round
        observers_of(iam).add(self)

    def __repr__(self) -> str:
        return f"OpenTelemetryTracing(spans={self._spans!r}, annotate={self._annotate!r})"

    def close(self) -> None:
        """Stop observing."""
        iam = self._iam()
        if iam is not None:
            observers_of(iam).remove(self)

    def decided(self, context: RequestContext) -> None:
        attributes = decision_attributes(context)
        if self._annotate:
            current = trace.get_current_span()
            if current.is_recording():
                current.set_attributes(attributes)
        if not self._spans:
            return
        # Reported when the decision is taken: the span is laid over the time it took, by the IAM's clock.
        end = time.time_ns()
        start = end - int(max(0.0, self._clock() - context.now) * 1e9)
        span = self._tracer.start_span(SPAN_NAME, kind=SpanKind.INTERNAL, attributes=attributes, start_time=start)
        error = context.error
        if error is not None and (error.status_code >= 500 or error.code == "AuthorizationFailed"):
            span.set_attribute("error.type", label_value(error.code))
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end)

    def looked_up(self, recent: Recent | None) -> None:
        if recent is None or not self._annotate:
            return
        current = trace.get_current_span()
        if current.is_recording():
            current.set_attributes({"iam.outcome": "Allowed", "iam.cache": "hit",
                                    "iam.principal.arn": recent.principal.arn,
                                    "iam.action": recent.decision.action,
                                    "iam.credential": recent.principal.credential_kind.value})


def decision_attributes(context: RequestContext) -> dict[str, str]:
    """The ``iam.*`` attributes of a decision: identifiers, outcomes and codes only, never a credential."""
    attributes = {"iam.request_id": context.request_id, "iam.outcome": outcome_of(context)}
    principal = context.principal
    if principal is not None:
        attributes["iam.principal.arn"] = principal.arn
        attributes["iam.credential"] = principal.credential_kind.value
    if context.action is not None:
        attributes["iam.action"] = context.action
    if context.error is not None:
        attributes["iam.error_code"] = label_value(context.error.code)
    failure = authentication_failure(context)
    if failure is not None:
        attributes["iam.credential"], attributes["iam.error_code"] = failure
    return attributes
