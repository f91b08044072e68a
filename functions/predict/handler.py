"""Lambda entry point `handler.handler`: every OIP v2 route behind API Gateway HTTP API, and
S3 upload notifications arriving through SQS (batch inference).

The data plane is built once per container (module scope runs at cold start);
models load once and stay cached for every later invocation.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from maas.dataplane import DataPlane
from maas.metrics import emf
from maas.rest import build_predict_app
from maas.settings import PredictSettings
from maas.sources import source_from_settings

logger = Logger(service="maas-predict")
metrics = Metrics(namespace="MaaS", service="predict")
emf.quiet_empty_flushes()

settings = PredictSettings.from_environment()
dataplane = DataPlane(
    source_from_settings(settings),
    server_name=settings.server_name,
    retry_after=settings.load_retry_seconds,
    limits=settings.request_limits(),
    cache_bytes=settings.cache_memory_bytes(),
    max_response_bytes=settings.max_response_bytes(),
    on_load=lambda ref, seconds: emf.model_loaded(ref.name, ref.version, seconds),
)
dataplane.preload(settings.preload)
app = build_predict_app(dataplane, metrics)


@cache
def batch_handler() -> Any:
    # Built on the first SQS event only: API-only functions never import the batch code.
    from maas.batch.wiring import sqs_handler

    return sqs_handler(dataplane, settings)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return batch_handler()(event, context)  # type: ignore[no-any-return]
    return app.resolve(event, context)
