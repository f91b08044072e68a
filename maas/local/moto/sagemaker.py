"""moto's SageMaker: UpdateEndpoint as AWS runs it, current instance types, names from templates."""

from __future__ import annotations

import os
import time
from typing import Any

from maas.local.moto.patching import replace

# Real-time inference families newer than moto 5.2.5's list (which ends at g4dn and c6i).
CURRENT_INSTANCE_FAMILIES = (
    "g5",
    "g6",
    "g6e",
    "p4d",
    "p4de",
    "p5",
    "p5e",
    "inf2",
    "trn1",
    "c7i",
    "m7i",
    "r7i",
)


def _sagemaker_update_endpoint() -> None:
    """Gap: moto 5.2.5 implements no SageMaker UpdateEndpoint, which a promotion of a SageMaker
    model calls. This one behaves as AWS's blue/green update does, seen from outside: the
    endpoint is `Updating` (on its old config, refusing another update) for
    MAAS_SAGEMAKER_UPDATE_SECONDS (default 0), then `InService` on the new config and variants."""
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    if hasattr(SageMakerModelBackend, "update_endpoint"):
        return

    def finish(self: SageMakerModelBackend, endpoint: Any) -> None:
        config_name = getattr(endpoint, "maas_pending_config", None)
        if config_name is None or time.monotonic() < endpoint.maas_in_service_at:
            return
        config = self.describe_endpoint_config(config_name)
        endpoint.endpoint_config_name = config_name
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        endpoint.data_capture_config = config.get("DataCaptureConfig") or {}
        endpoint.endpoint_status = "InService"
        endpoint.last_modified_time = utcnow()
        endpoint.maas_pending_config = None

    def update_endpoint(self: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str) -> str:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        finish(self, endpoint)
        if endpoint.endpoint_status != "InService":
            raise ValidationError(message=f"Cannot update in-progress endpoint '{endpoint.arn}'.")
        self.describe_endpoint_config(endpoint_config_name)  # refuses a config that does not exist
        endpoint.endpoint_status = "Updating"
        endpoint.maas_pending_config = endpoint_config_name  # type: ignore[attr-defined]
        endpoint.maas_in_service_at = time.monotonic() + float(  # type: ignore[attr-defined]
            os.environ.get("MAAS_SAGEMAKER_UPDATE_SECONDS", "0")
        )
        finish(self, endpoint)
        return str(endpoint.arn)

    describe_endpoint = SageMakerModelBackend.describe_endpoint

    def describe_finished(self: SageMakerModelBackend, endpoint_name: str) -> Any:
        if endpoint_name in self.endpoints:
            finish(self, self.endpoints[endpoint_name])
        return describe_endpoint(self, endpoint_name)

    def respond(self: Any) -> ActionResult:
        arn = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
        )
        return ActionResult({"EndpointArn": arn})

    SageMakerModelBackend.update_endpoint = update_endpoint  # type: ignore[attr-defined]
    SageMakerModelBackend.describe_endpoint = describe_finished  # type: ignore[method-assign]
    SageMakerResponse.update_endpoint = respond  # type: ignore[attr-defined]


def _sagemaker_current_instance_types() -> None:
    """Gap: moto's endpoint configs refuse instance types newer than its list, among them
    ml.g5.xlarge, the default GPU of a maas SageMaker model."""
    from moto.sagemaker.models import FakeEndpointConfig

    original = FakeEndpointConfig.validate_instance_type

    def validate_instance_type(self: Any, instance_type: str) -> None:
        parts = instance_type.split(".")
        if len(parts) == 3 and parts[0] == "ml" and parts[1] in CURRENT_INSTANCE_FAMILIES:
            return
        original(self, instance_type)

    replace(FakeEndpointConfig, "validate_instance_type", validate_instance_type)


def _sagemaker_names_from_templates() -> None:
    """Gap: moto names a SageMaker endpoint (config, model) made by CloudFormation after its
    logical ID, ignoring `EndpointName`; maas finds an endpoint by that name."""
    from moto.cloudformation import parsing
    from moto.sagemaker.models import FakeEndpoint

    if FakeEndpoint.cloudformation_name_type() == "EndpointName":
        return
    FakeEndpoint.cloudformation_name_type = staticmethod(lambda: "EndpointName")  # type: ignore[method-assign]
    parsing.get_name_type_map.cache_clear()


def install() -> None:
    """Every extension of this service (idempotent)."""
    _sagemaker_update_endpoint()
    _sagemaker_current_instance_types()
    _sagemaker_names_from_templates()
