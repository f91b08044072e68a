"""Lambda entry point `handler.handler`: the control plane's reconciler, which moves each
SageMaker endpoint to what its alias says. Triggered by the registry table's stream, by
SageMaker's endpoint state changes (EventBridge), and by a schedule."""

from __future__ import annotations

import logging
from typing import Any

from maas.control import Reconciler
from maas.control.events import handle
from maas.control.settings import ReconcilerSettings
from maas.registry import ArtifactStore, DynamoDBStore, Registry
from maas.sagemaker.endpoint import EndpointDeployer

logging.getLogger().setLevel(logging.INFO)

settings = ReconcilerSettings.from_environment()
registry = Registry(
    DynamoDBStore(settings.registry_table), ArtifactStore(settings.artifact_bucket), user="maas-reconciler"
)
reconciler = Reconciler(
    registry, EndpointDeployer(registry, prefix=settings.sagemaker_endpoint_prefix, say=logging.info)
)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(reconciler, event)
