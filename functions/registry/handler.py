"""Lambda entry point `handler.handler`: the registry API (`/registry/...`) behind API Gateway HTTP API."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from maas.control import ControlPlane
from maas.control.settings import RegistrySettings
from maas.http.registry import build_registry_app
from maas.metrics.emf import quiet_empty_flushes
from maas.registry import ArtifactStore, DynamoDBStore, Registry

logger = Logger(service="maas-registry")
metrics = Metrics(namespace="MaaS", service="registry")
quiet_empty_flushes()

settings = RegistrySettings.from_environment()
registry = Registry(DynamoDBStore(settings.registry_table), ArtifactStore(settings.artifact_bucket))
app = build_registry_app(
    ControlPlane(registry), metrics, max_upload_bytes=settings.max_upload_mb * 1024 * 1024
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
