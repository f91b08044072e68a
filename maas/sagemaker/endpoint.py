"""SageMaker endpoints that follow a registry alias, updated blue/green.

`cdk deploy` creates each endpoint (instance type, count, data capture, encryption,
autoscaling) serving a first version. From then on the registry decides what it
serves: when the alias it follows changes, `EndpointDeployer.sync` creates a SageMaker
model per version, an endpoint config with one variant `v<N>` per version weighted as
the alias is, and updates the endpoint to it. SageMaker's update is blue/green: the
new fleet takes traffic only once healthy. Configs are named by what they hold, so a
rollback re-uses the config it rolls back to, which is never deleted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from maas.errors import MaasError, ModelNotFound
from maas.registry.models import Target
from maas.runtimes.sagemaker_names import (
    ALIAS_TAG,
    MAX_NAME,
    MODEL_TAG,
    endpoint_name,
    variant_name,
    version_of_variant,
)
from maas.sagemaker.package import require_package

if TYPE_CHECKING:
    from collections.abc import Callable

    from maas.registry.models import Alias
    from maas.registry.service import Registry

_VARIANT_SETTINGS = (
    "InstanceType",
    "InitialInstanceCount",
    "ServerlessConfig",
    "VolumeSizeInGB",
    "ModelDataDownloadTimeoutInSeconds",
    "ContainerStartupHealthCheckTimeoutInSeconds",
)


def model_name(endpoint: str, version: int) -> str:
    suffix = f"-v{version}"
    return endpoint[: MAX_NAME - len(suffix)] + suffix


@dataclass(frozen=True)
class VariantStatus:
    name: str
    version: int | None
    weight: float
    instances: int | None


@dataclass(frozen=True)
class EndpointStatus:
    endpoint: str
    status: str
    config: str
    alias: str
    variants: list[VariantStatus] = field(default_factory=list)
    failure: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "status": self.status,
            "config": self.config,
            "alias": self.alias,
            "failure": self.failure,
            "variants": [vars(variant) for variant in self.variants],
        }


@dataclass(frozen=True)
class EndpointPlan:
    """An endpoint, what it runs now, and the config that serves what its alias says."""

    endpoint: str
    config: str
    weights: dict[int, int]
    variants: list[str]
    current_config: str
    current_variants: list[str]
    status: str
    failure: str | None = None
    new_config: bool = False

    @property
    def done(self) -> bool:
        return self.config == self.current_config and self.status == "InService"


class NoEndpoint(MaasError):
    """A SageMaker model whose endpoint `cdk deploy` has not created yet."""

    status = 409

    def __init__(self, model: str, endpoint: str) -> None:
        super().__init__(f"model '{model}' has no endpoint '{endpoint}' yet; `cdk deploy` creates it")


class EndpointDeployer:
    """Keeps the endpoint of each SageMaker model serving what its alias points at."""

    def __init__(
        self,
        registry: Registry,
        *,
        prefix: str,
        sagemaker: Any = None,
        autoscaling: Any = None,
        say: Callable[[str], None] = lambda line: None,
        wait_seconds: int = 3600,
    ) -> None:
        import boto3

        self.registry = registry
        self.prefix = prefix
        self.sagemaker = sagemaker or boto3.client("sagemaker")
        self.autoscaling = autoscaling or boto3.client("application-autoscaling")
        self.say = say
        self.wait_seconds = wait_seconds

    def status(self, model: str) -> EndpointStatus:
        """What the endpoint of `model` runs now; raises ModelNotFound if it has none."""
        endpoint = endpoint_name(self.prefix, model)
        described = self._describe_endpoint(endpoint)
        if described is None:
            raise ModelNotFound(model, why=f"has no SageMaker endpoint '{endpoint}' (deploy the stack first)")
        return self._status(described)

    def plan(self, alias: Alias) -> EndpointPlan | None:
        """What the endpoint of `alias.name` must serve for `alias`, its models and config made.

        Returns None when the alias is not the endpoint's business: no version of it targets
        SageMaker, or the endpoint follows another alias. Raises NoEndpoint when the model has
        no endpoint yet (`cdk deploy` creates it).
        """
        weights = {
            version: weight
            for version, weight in alias.weights.items()
            if self.registry.get(alias.name, version).target is Target.SAGEMAKER
        }
        if not weights:
            return None
        endpoint = endpoint_name(self.prefix, alias.name)
        described = self._describe_endpoint(endpoint)
        if described is None:
            raise NoEndpoint(alias.name, endpoint)
        if self._followed_alias(described["EndpointArn"]) != alias.alias:
            return None
        current = self.sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        template = current["ProductionVariants"][0]
        container = self.sagemaker.describe_model(ModelName=template["ModelName"])
        variants = [
            {
                "VariantName": variant_name(version),
                "ModelName": self._ensure_model(endpoint, alias.name, version, container),
                "InitialVariantWeight": float(weight),
                **{key: template[key] for key in _VARIANT_SETTINGS if key in template},
            }
            for version, weight in sorted(weights.items())
        ]
        config, created = self._ensure_config(endpoint, alias.name, current, variants)
        return EndpointPlan(
            endpoint=endpoint,
            config=config,
            new_config=created,
            weights=weights,
            variants=[variant["VariantName"] for variant in variants],
            current_config=described["EndpointConfigName"],
            current_variants=[variant["VariantName"] for variant in current["ProductionVariants"]],
            status=described["EndpointStatus"],
            failure=described.get("FailureReason"),
        )

    def scaling_of(self, plan: EndpointPlan) -> dict[str, Any] | None:
        """The autoscaling of the endpoint's current variants (limits and target-tracking
        policies), as JSON, to be put back on the new variants once an update is done."""
        resources = [f"endpoint/{plan.endpoint}/variant/{variant}" for variant in plan.current_variants]
        targets = self.autoscaling.describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=resources
        )["ScalableTargets"]
        if not targets:
            return None
        policies = [
            {
                "PolicyName": policy["PolicyName"],
                "PolicyType": policy["PolicyType"],
                "TargetTrackingScalingPolicyConfiguration": policy[
                    "TargetTrackingScalingPolicyConfiguration"
                ],
            }
            for policy in self.autoscaling.describe_scaling_policies(
                ServiceNamespace="sagemaker", ResourceId=targets[0]["ResourceId"]
            )["ScalingPolicies"]
            # The stack sets target tracking only; step policies are not carried over.
            if policy["PolicyType"] == "TargetTrackingScaling"
        ]
        first = targets[0]
        return {
            "dimension": first["ScalableDimension"],
            "min": first["MinCapacity"],
            "max": first["MaxCapacity"],
            "policies": policies,
        }

    def start_update(self, plan: EndpointPlan) -> None:
        """Start the blue/green update of the endpoint to `plan.config`; returns at once.

        SageMaker refuses to remove a variant that still has a scalable target, so the
        targets of the variants that go away are deregistered first (see `scaling_of`).
        """
        self._release_scaling(plan.endpoint, plan.current_variants, set(plan.variants))
        self.sagemaker.update_endpoint(EndpointName=plan.endpoint, EndpointConfigName=plan.config)
        self.say(
            f"endpoint {plan.endpoint}: updating to {plan.config} ({describe_weights(plan.weights)}), blue/green"
        )

    def sync(self, alias: Alias) -> EndpointStatus | None:
        """Point the endpoint of `alias.name` at the SageMaker versions of `alias`, if it follows
        it, and wait for the update to finish (`wait_seconds` at most). The control plane's
        reconciler does the same without waiting; this is for scripts that want it done now.

        Returns None when there is nothing to do: no version of the alias targets
        SageMaker, or the model has no endpoint, or its endpoint follows another alias.
        """
        try:
            plan = self.plan(alias)
        except NoEndpoint as missing:
            self.say(missing.message)
            return None
        if plan is None:
            return None
        if plan.config == plan.current_config:
            self.say(f"endpoint {plan.endpoint} already serves {describe_weights(plan.weights)}")
            return self.status(alias.name)
        scaling = self.scaling_of(plan)
        self.start_update(plan)
        self.sagemaker.get_waiter("endpoint_in_service").wait(
            EndpointName=plan.endpoint,
            WaiterConfig={"Delay": 30, "MaxAttempts": max(1, self.wait_seconds // 30)},
        )
        if scaling is not None:
            self.restore_scaling(plan.endpoint, plan.variants, scaling)
        status = self.status(alias.name)
        self.say(f"endpoint {plan.endpoint}: {status.status} on {plan.config}")
        return status

    # Endpoints and configs

    def _describe_endpoint(self, endpoint: str) -> dict[str, Any] | None:
        try:
            described: dict[str, Any] = self.sagemaker.describe_endpoint(EndpointName=endpoint)
        except ClientError as error:
            if "Could not find" in str(error):
                return None
            raise
        return described

    def _followed_alias(self, arn: str) -> str:
        tags = self.sagemaker.list_tags(ResourceArn=arn).get("Tags", [])
        return next((tag["Value"] for tag in tags if tag["Key"] == ALIAS_TAG), "prod")

    def _ensure_model(self, endpoint: str, name: str, version: int, template: dict[str, Any]) -> str:
        """The SageMaker model of one version: the endpoint's container and role, this version's package."""
        model = model_name(endpoint, version)
        try:
            self.sagemaker.describe_model(ModelName=model)
            return model
        except ClientError as error:
            if "Could not find" not in str(error):
                raise
        container = template["PrimaryContainer"]
        try:
            self._create_model(model, name, version, template, container)
        except ClientError as error:
            if "already exist" not in str(error):
                raise  # else another reconciler made it meanwhile: the same model, by its name
        return model

    def _create_model(
        self, model: str, name: str, version: int, template: dict[str, Any], container: dict[str, Any]
    ) -> None:
        self.sagemaker.create_model(
            ModelName=model,
            ExecutionRoleArn=template["ExecutionRoleArn"],
            PrimaryContainer={
                "Image": container["Image"],
                "ModelDataUrl": require_package(self.registry, name, version),
                "Environment": {
                    **container.get("Environment", {}),
                    "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": name,
                },
            },
            Tags=[{"Key": MODEL_TAG, "Value": name}, {"Key": "maas:version", "Value": str(version)}],
        )
        self.say(f"created SageMaker model {model}")

    def _ensure_config(
        self, endpoint: str, name: str, current: dict[str, Any], variants: list[dict[str, Any]]
    ) -> tuple[str, bool]:
        """The config that holds `variants` (and the endpoint's capture and encryption settings),
        and whether it was created now; one that exists already is re-used."""
        settings = {key: current[key] for key in ("DataCaptureConfig", "KmsKeyId") if current.get(key)}
        digest = hashlib.sha256(json.dumps([variants, settings], sort_keys=True).encode()).hexdigest()[:12]
        config = f"{endpoint[: MAX_NAME - 13]}-{digest}"
        try:
            self.sagemaker.describe_endpoint_config(EndpointConfigName=config)
            self.say(f"re-using endpoint config {config}")
            return config, False
        except ClientError as error:
            if "Could not find" not in str(error):
                raise
        try:
            self.sagemaker.create_endpoint_config(
                EndpointConfigName=config,
                ProductionVariants=variants,
                Tags=[{"Key": MODEL_TAG, "Value": name}],
                **settings,
            )
        except ClientError as error:
            if "already exist" not in str(error):
                raise
            return config, False  # another reconciler made it meanwhile; its name says what it holds
        self.say(f"created endpoint config {config}")
        return config, True

    def _status(self, described: dict[str, Any]) -> EndpointStatus:
        variants = [
            VariantStatus(
                name=variant["VariantName"],
                version=version_of_variant(variant["VariantName"]),
                weight=float(variant.get("CurrentWeight", variant.get("DesiredWeight", 0.0))),
                instances=variant.get("CurrentInstanceCount"),
            )
            for variant in described.get("ProductionVariants", [])
        ]
        return EndpointStatus(
            endpoint=described["EndpointName"],
            status=described["EndpointStatus"],
            config=described["EndpointConfigName"],
            alias=self._followed_alias(described["EndpointArn"]),
            variants=variants,
            failure=described.get("FailureReason"),
        )

    # Autoscaling moves with the variants: a variant that goes away takes its scalable
    # target with it, and the variants that replace it get the same limits and policies.

    def _release_scaling(self, endpoint: str, old: list[str], new: set[str]) -> None:
        resources = [f"endpoint/{endpoint}/variant/{variant}" for variant in old]
        targets = self.autoscaling.describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=resources
        )["ScalableTargets"]
        for target in targets:
            if target["ResourceId"].rsplit("/", 1)[-1] not in new:
                self.autoscaling.deregister_scalable_target(
                    ServiceNamespace="sagemaker",
                    ResourceId=target["ResourceId"],
                    ScalableDimension=target["ScalableDimension"],
                )

    def restore_scaling(self, endpoint: str, variants: list[str], scaling: dict[str, Any]) -> None:
        """Put the autoscaling `scaling_of` saved on `variants` of `endpoint`: the new ones once
        an update is done, or the old ones again after SageMaker rolled one back."""
        for variant in variants:
            resource = f"endpoint/{endpoint}/variant/{variant}"
            self.autoscaling.register_scalable_target(
                ServiceNamespace="sagemaker",
                ResourceId=resource,
                ScalableDimension=scaling["dimension"],
                MinCapacity=scaling["min"],
                MaxCapacity=scaling["max"],
            )
            for policy in scaling["policies"]:
                self.autoscaling.put_scaling_policy(
                    ServiceNamespace="sagemaker",
                    ResourceId=resource,
                    ScalableDimension=scaling["dimension"],
                    **policy,
                )
        self.say(f"autoscaling {scaling['min']}-{scaling['max']} instances on {', '.join(variants)}")


def describe_weights(weights: dict[int, int]) -> str:
    """`v1 90%, v2 10%`: what an alias's weights send where, in a line."""
    return ", ".join(f"v{version} {weight}%" for version, weight in sorted(weights.items()))


__all__ = [
    "ALIAS_TAG",
    "MODEL_TAG",
    "EndpointDeployer",
    "EndpointPlan",
    "EndpointStatus",
    "NoEndpoint",
    "describe_weights",
    "endpoint_name",
    "model_name",
    "variant_name",
    "version_of_variant",
]
