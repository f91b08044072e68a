"""`GET /metrics` on the API: the exporter's Prometheus text over HTTPS, behind the API's auth."""

from __future__ import annotations

import json
import os
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry

from maas.http.resolver import install_error_handlers
from maas.metrics.exporter import CloudWatchCollector


def collector_from_environment(client: Any) -> CloudWatchCollector:
    """The collector the CDK app configures through `MAAS_EXPORTER_*` variables."""
    return CloudWatchCollector(
        client,
        namespaces=tuple(json.loads(os.environ.get("MAAS_EXPORTER_NAMESPACES", '["MaaS"]'))),
        stats=tuple(
            json.loads(os.environ.get("MAAS_EXPORTER_STATS", '["Sum", "Average", "Maximum", "p99"]'))
        ),
        period=int(os.environ.get("MAAS_EXPORTER_PERIOD", "60")),
        delay=int(os.environ.get("MAAS_EXPORTER_DELAY", "60")),
        interval=float(os.environ.get("MAAS_EXPORTER_INTERVAL", "60")),
        dimension_filters=json.loads(os.environ.get("MAAS_EXPORTER_FILTERS", "{}")),
    )


def build_metrics_app(collector: CloudWatchCollector) -> APIGatewayHttpResolver:
    registry = CollectorRegistry()
    registry.register(collector)
    app = APIGatewayHttpResolver()

    @app.get("/metrics")
    def metrics() -> Response[str]:
        return Response(
            status_code=HTTPStatus.OK,
            content_type=CONTENT_TYPE_LATEST,
            body=generate_latest(registry).decode(),
        )

    install_error_handlers(app, "metrics")
    return app
