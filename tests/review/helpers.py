"""Review helpers: a SageMaker model on the embedded AWS whose endpoint updates only when told to
finish (MAAS_SAGEMAKER_UPDATE_SECONDS large), driven step by step through the Reconciler."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maas.control import ControlPlane, Reconciler
from maas.registry import Registry
from maas.sagemaker.endpoint import EndpointDeployer
from tests.functional.conftest import aws_client, make_registry
from tests.sagemaker_stack import deploy_like_the_stack, scaled_variants


def backend() -> Any:
    from moto.backends import get_backend

    return get_backend("sagemaker")["123456789012"]["us-east-1"]


@dataclass
class World:
    url: str
    name: str
    endpoint: str
    registry: Registry
    control: ControlPlane
    reconciler: Reconciler
    deployer: EndpointDeployer

    @property
    def sagemaker(self) -> Any:
        return aws_client("sagemaker", self.url)

    def finish_update(self) -> None:
        """The embedded SageMaker's update under way completes now."""
        backend().endpoints[self.endpoint].maas_in_service_at = 0

    def roll_back_update(self, reason: str = "health check failed for variant") -> None:
        """SageMaker gives up the update under way and keeps the old config (as AWS does)."""
        ep = backend().endpoints[self.endpoint]
        ep.maas_pending_config = None
        ep.endpoint_status = "InService"
        ep.failure_reason = reason

    def described(self) -> dict[str, Any]:
        return self.sagemaker.describe_endpoint(EndpointName=self.endpoint)

    def variants(self) -> list[str]:
        return [v["VariantName"] for v in self.described()["ProductionVariants"]]

    def scaled(self) -> dict[str, tuple[int, int]]:
        return scaled_variants(self.url, self.endpoint)

    def settle(self, alias: str = "prod") -> Any:
        """Reconcile, finish the update, reconcile again: the state once the endpoint got there."""
        self.reconciler.reconcile(self.name, alias)
        self.finish_update()
        return self.reconciler.reconcile(self.name, alias)


def make_world(
    url: str, artifact: Path, *, versions: int = 3, endpoint: bool = True, scaling: bool = True
) -> World:
    registry = make_registry("dynamodb", url)
    control = ControlPlane(registry)
    name = f"rv{uuid.uuid4().hex[:8]}"
    for _ in range(versions):
        control.register(name, artifact, target="sagemaker")
    ep = deploy_like_the_stack(url, "bucket", name, 1, scaling=scaling) if endpoint else f"maas-{name}"
    deployer = EndpointDeployer(
        registry,
        prefix="maas",
        sagemaker=aws_client("sagemaker", url),
        autoscaling=aws_client("application-autoscaling", url),
    )
    return World(url, name, ep, registry, control, Reconciler(registry, deployer), deployer)
