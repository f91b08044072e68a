"""What the functions publish as CloudWatch Embedded Metric Format, under namespace `MaaS`.

Dimensions are bounded: `model` is the name of a model that exists (any request for a real
model counts under it, whatever its status; any other name is `unknown`, so random paths
cannot mint series, even on routes that succeed for any name), `version`
one of its versions, and `service` the function's Powertools service (`predict`, `registry`),
which keeps the registry API's requests apart from inference requests.

Each figure is filed under each of its dimension sets once, so summing one set over its
series gives the true total: the per-version figures go in a record of their own, as
CloudWatch applies every dimension set of a record to every metric in it.

| metric | unit | dimensions |
|---|---|---|
| Requests, Errors4xx, Errors5xx | Count | model, service |
| EndToEndLatency | Milliseconds | model, service |
| InferenceLatency, Served (the canary arm that answered) | Milliseconds, Count | model, service; model, version, service |
| ModelLoadTime | Milliseconds | model, version |
| BatchRows, BatchRowsFailed | Count | model |
| ColdStart | Count | function_name, service (Powertools) |

ModelLoadTime and the batch rows (Powertools' `single_metric`) also carry `service` where
POWERTOOLS_SERVICE_NAME is set, as it is in the deployed functions.
"""

from __future__ import annotations

import logging
import time
import warnings
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit, single_metric

from maas.errors import MaasError
from maas.metrics.records import NAMESPACE, UNKNOWN, model_label

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

logger = logging.getLogger(__name__)

__all__ = ["NAMESPACE", "UNKNOWN", "batch_done", "install_request_metrics", "model_loaded", "served"]


def install_request_metrics(
    app: APIGatewayHttpResolver, metrics: Metrics, *, known: Callable[[str], bool] | None = None
) -> None:
    """Count every request and its error class, and time it end to end, per model.

    With `known`, the `model` dimension is the path's model name when `known(name)` says,
    after the request, that the model exists, whatever the status (a 404 for a missing
    version of a real model, a 400 for a bad body, a 201 for a registration that created
    it); otherwise `unknown`: a route that succeeds for any name (the registry's uploads)
    must not mint a series per name. Without `known`, a request names the path's model
    unless it is a 404.
    """
    label = model_label(known)

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
            metrics.add_dimension("model", label(app.context.get("_route_args", {}).get("name"), status))
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
    """The runtime's time and the answer, per model in the request's record and per version
    (the canary arm that answered) in one record of their own: a second dimension set on the
    request's record would file Requests and EndToEndLatency per version too."""
    metrics.add_metric("InferenceLatency", MetricUnit.Milliseconds, inference_ms)
    metrics.add_metric("Served", MetricUnit.Count, 1)
    # The request's service, so that its figures and their per-version split share it.
    arm = EphemeralMetrics(namespace=NAMESPACE, service=metrics.provider.service)
    arm.add_dimension("model", model)
    arm.add_dimension("version", version)
    arm.add_metric("InferenceLatency", MetricUnit.Milliseconds, inference_ms)
    arm.add_metric("Served", MetricUnit.Count, 1)
    arm.flush_metrics()


def model_loaded(model: str, version: str, seconds: float) -> None:
    per_version("ModelLoadTime", seconds * 1000, MetricUnit.Milliseconds, model=model, version=version)


def batch_done(model: str, rows_in: int, rows_failed: int) -> None:
    for name, value in (("BatchRows", rows_in), ("BatchRowsFailed", rows_failed)):
        with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as metric:
            metric.add_dimension("model", model)


def quiet_empty_flushes() -> None:
    """Powertools warns on every invocation that publishes no metric; a health probe or a
    metadata read publishes none by design, so the warning would only bury real log lines."""
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
