"""Where moto's server lacks what maas needs: small extensions, each naming the gap it fills.

They are installed into moto's classes when the embedded AWS starts, and each has its
own test in tests/functional/test_moto_gaps.py.
"""

from __future__ import annotations

from typing import Any


def install() -> None:
    """Install every extension (idempotent; an extension steps aside once moto has the call)."""
    _sagemaker_update_endpoint()


def _sagemaker_update_endpoint() -> None:
    """Gap: moto 5.2.5 implements no SageMaker UpdateEndpoint, which a promotion of a SageMaker
    model calls. This one re-points the endpoint at another config and its variants, which is
    what AWS shows once its blue/green update has completed."""
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    if hasattr(SageMakerModelBackend, "update_endpoint"):
        return

    def update_endpoint(self: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str) -> str:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        config = self.describe_endpoint_config(endpoint_config_name)
        endpoint.endpoint_config_name = endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        endpoint.data_capture_config = config.get("DataCaptureConfig") or {}
        endpoint.last_modified_time = utcnow()
        return str(endpoint.arn)

    def respond(self: Any) -> ActionResult:
        arn = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
        )
        return ActionResult({"EndpointArn": arn})

    SageMakerModelBackend.update_endpoint = update_endpoint  # type: ignore[attr-defined]
    SageMakerResponse.update_endpoint = respond  # type: ignore[attr-defined]
