"""Lambda entry point `handler.handler`: every OIP v2 route behind API Gateway HTTP API, and
S3 upload notifications arriving through SQS (batch inference).

The composition root: module scope runs once per container (at cold start, or before the
SnapStart snapshot), building the data plane from the settings and loading the models.
Before the first answer it imports only numpy, the runtime and the OIP path (msgspec): logs
go through `logging` in Lambda's JSON log format, metrics are EMF lines, and the batch side
(Powertools batch and idempotency, boto3) is imported on the first SQS event only.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from maas import snapstart
from maas.composition import predict_dataplane
from maas.http.oip import build_predict_app, serves_model
from maas.metrics.records import RequestMetrics
from maas.settings import PredictSettings

settings = PredictSettings.from_environment()
dataplane = predict_dataplane(settings)
dataplane.preload(settings.preload)
metrics = RequestMetrics(known=lambda name: serves_model(dataplane, name))
app = build_predict_app(dataplane, metrics)
snapstart.register(dataplane, settings.preload)


@cache
def batch_handler() -> Any:
    from maas.batch.wiring import sqs_handler

    return sqs_handler(dataplane, settings)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    metrics.cold_start(context.function_name)
    if "Records" in event:
        return batch_handler()(event, context)  # type: ignore[no-any-return]
    return app.resolve(event, context)
