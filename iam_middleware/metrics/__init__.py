"""Metrics and traces of the request pipeline (docs/metrics.md).

    from iam_middleware.metrics import OpenTelemetryTracing, PrometheusMetrics

    metrics = PrometheusMetrics(iam)            # pip install 'iam-middleware[prometheus]'
    tracing = OpenTelemetryTracing(iam)         # pip install 'iam-middleware[opentelemetry]'

Both are observers of one ``IAM`` (``Observer``, ``observers_of``): the gate reports each decision, the shells'
caches each lookup, the reloader each reload, the login throttle each lockout, a Redis store each failed
operation. prometheus-client and opentelemetry-api are imported only when ``PrometheusMetrics`` or
``OpenTelemetryTracing`` is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._observe import Observer, Observers, observers_of

if TYPE_CHECKING:
    from ._otel import OpenTelemetryTracing
    from ._prometheus import PrometheusMetrics

__all__ = ["Observer", "Observers", "OpenTelemetryTracing", "PrometheusMetrics", "observers_of"]

# name -> (module, extra, the library the extra installs)
_OPTIONAL = {"PrometheusMetrics": ("._prometheus", "prometheus", "prometheus_client"),
             "OpenTelemetryTracing": ("._otel", "opentelemetry", "opentelemetry")}


def __getattr__(name: str) -> Any:
    # The libraries are optional extras: imported only when their observer is asked for.
    if name in _OPTIONAL:
        module, extra, library = _OPTIONAL[name]
        from importlib import import_module

        try:
            return getattr(import_module(module, __name__), name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").partition(".")[0] != library:
                raise
            raise ModuleNotFoundError(f"{name} needs the {extra} extra: pip install 'iam-middleware[{extra}]' "
                                      f"({exc.name} is not installed)", name=exc.name) from None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
