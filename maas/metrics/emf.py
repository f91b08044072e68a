"""What the functions publish as CloudWatch Embedded Metric Format, under namespace `MaaS`.

Dimensions are bounded: `model` (only names that resolved; anything else is `unknown`,
so random paths cannot mint series) and `model` + `version` for the per-version figures.

| metric | unit | dimensions |
|---|---|---|
| Requests, Errors4xx, Errors5xx | Count | model |
| EndToEndLatency | Milliseconds | model |
| InferenceLatency, Served (the canary arm that answered) | Milliseconds, Count | model; model, version |
| ModelLoadTime | Milliseconds | model, version |
| BatchRows, BatchRowsFailed | Count | model |
| ColdStart | Count | function_name, service (Powertools) |
"""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from maas.errors import MaasError

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

NAMESPACE = "MaaS"
UNKNOWN = "unknown"


def install_request_metrics(app: APIGatewayHttpResolver, metrics: Metrics) -> None:
    """Count every request and its error class, and time it end to end, per model."""

    def record(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
        # Flushing clears the set in Lambda; with POWERTOOLS_METRICS_DISABLED (maas dev) nothing
        # flushes, and the set would grow with every request.
        metrics.clear_metrics()
        started = time.perf_counter()
        status = HTTPStatus.INTERNAL_SERVER_ERROR.value
        try:
            response = next_middleware(app)
            status = response.status_code
            return response
        except MaasError as error:
            status = error.status
            raise
        finally:
            model = app.context.get("_route_args", {}).get("name")
            metrics.add_dimension("model", model if model and status != HTTPStatus.NOT_FOUND else UNKNOWN)
            metrics.add_metric("Requests", MetricUnit.Count, 1)
            if 400 <= status < 500:
                metrics.add_metric("Errors4xx", MetricUnit.Count, 1)
            elif status >= 500:
                metrics.add_metric("Errors5xx", MetricUnit.Count, 1)
            metrics.add_metric(
                "EndToEndLatency", MetricUnit.Milliseconds, (time.perf_counter() - started) * 1000
            )

    app.use(middlewares=[record])


def per_version(name: str, value: float, unit: MetricUnit, *, model: str, version: str) -> None:
    """One figure with the (model, version) dimensions, in its own EMF record."""
    with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension("model", model)
        metric.add_dimension("version", version)


def served(metrics: Metrics, model: str, version: str, inference_ms: float) -> None:
    """The version that answered and its runtime time, in the request's own EMF record: a
    second dimension set (model, version) rather than an extra record per request."""
    metrics.add_dimensions(model=model, version=version)
    metrics.add_metric("InferenceLatency", MetricUnit.Milliseconds, inference_ms)
    metrics.add_metric("Served", MetricUnit.Count, 1)


def model_loaded(model: str, version: str, seconds: float) -> None:
    per_version("ModelLoadTime", seconds * 1000, MetricUnit.Milliseconds, model=model, version=version)


def batch_done(model: str, rows_in: int, rows_failed: int) -> None:
    for name, value in (("BatchRows", rows_in), ("BatchRowsFailed", rows_failed)):
        with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as metric:
            metric.add_dimension("model", model)
