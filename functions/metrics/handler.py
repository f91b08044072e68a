"""Lambda entry point `handler.handler`: `GET /metrics`, CloudWatch as Prometheus text.

The collector lives as long as the container, so its cache spares CloudWatch reads
between scrapes that land on the same warm function.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from maas.http.metrics import build_metrics_app, collector_from_environment

logger = Logger(service="maas-metrics")
app = build_metrics_app(collector_from_environment(boto3.client("cloudwatch")))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
