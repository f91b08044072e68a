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
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from maas.errors import ModelNotFound
from maas.registry.models import Target
from maas.sagemaker.package import require_package

if TYPE_CHECKING:
    from collections.abc import Callable

    from maas.registry.models import Alias
    from maas.registry.service import Registry

# The alias an endpoint follows is a tag on it, set by the stack.
ALIAS_TAG = "maas:alias"
MODEL_TAG = "maas:model"
# Settings of the first variant that every variant of a new config inherits.
_VARIANT_SETTINGS = (
    "InstanceType",
    "InitialInstanceCount",
    "ServerlessConfig",
    "VolumeSizeInGB",
    "ModelDataDownloadTimeoutInSeconds",
    "ContainerStartupHealthCheckTimeoutInSeconds",
)
_MAX_NAME = 63


def endpoint_name(prefix: str, model: str) -> str:
    """The endpoint of `model`: SageMaker names allow letters, digits and '-' only, 63 at most."""
    return re.sub(r"[^A-Za-z0-9]+", "-", f"{prefix}-{model}").strip("-")[:_MAX_NAME].rstrip("-")


def variant_name(version: int) -> str:
    return f"v{version}"


def version_of_variant(variant: str) -> int | None:
    return int(variant[1:]) if re.fullmatch(r"v\d+", variant) else None


def model_name(endpoint: str, version: int) -> str:
    suffix = f"-v{version}"
    return endpoint[: _MAX_NAME - len(suffix)] + suffix


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

    def sync(self, alias: Alias) -> EndpointStatus | None:
        """Point the endpoint of `alias.name` at the SageMaker versions of `alias`, if it follows it.

        Returns None when there is nothing to do: no version of the alias targets
        SageMaker, or the model has no endpoint, or its endpoint follows another alias.
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
            self.say(f"model '{alias.name}' has no endpoint '{endpoint}' yet; `cdk deploy` creates it")
            return None
        followed = self._followed_alias(described["EndpointArn"])
        if followed != alias.alias:
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
        config = self._ensure_config(endpoint, alias.name, current, variants)
        if config == described["EndpointConfigName"]:
            self.say(f"endpoint {endpoint} already serves {_describe(weights)}")
            return self._status(described)
        old = [variant["VariantName"] for variant in current["ProductionVariants"]]
        scaling = self._release_scaling(endpoint, old, {variant["VariantName"] for variant in variants})
        self.sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        self.say(f"endpoint {endpoint}: updating to {config} ({_describe(weights)}), blue/green")
        self.sagemaker.get_waiter("endpoint_in_service").wait(
            EndpointName=endpoint,
            WaiterConfig={"Delay": 30, "MaxAttempts": max(1, self.wait_seconds // 30)},
        )
        if scaling is not None:
            self._apply_scaling(endpoint, [variant["VariantName"] for variant in variants], *scaling)
        status = self.status(alias.name)
        self.say(f"endpoint {endpoint}: {status.status} on {config}")
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
        return model

    def _ensure_config(
        self, endpoint: str, name: str, current: dict[str, Any], variants: list[dict[str, Any]]
    ) -> str:
        settings = {key: current[key] for key in ("DataCaptureConfig", "KmsKeyId") if current.get(key)}
        digest = hashlib.sha256(json.dumps([variants, settings], sort_keys=True).encode()).hexdigest()[:12]
        config = f"{endpoint[: _MAX_NAME - 13]}-{digest}"
        try:
            self.sagemaker.describe_endpoint_config(EndpointConfigName=config)
            self.say(f"re-using endpoint config {config}")
            return config
        except ClientError as error:
            if "Could not find" not in str(error):
                raise
        self.sagemaker.create_endpoint_config(
            EndpointConfigName=config,
            ProductionVariants=variants,
            Tags=[{"Key": MODEL_TAG, "Value": name}],
            **settings,
        )
        self.say(f"created endpoint config {config}")
        return config

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

    def _release_scaling(
        self, endpoint: str, old: list[str], new: set[str]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        resources = [f"endpoint/{endpoint}/variant/{variant}" for variant in old]
        targets = self.autoscaling.describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=resources
        )["ScalableTargets"]
        if not targets:
            return None
        policies = [
            policy
            for policy in self.autoscaling.describe_scaling_policies(
                ServiceNamespace="sagemaker", ResourceId=targets[0]["ResourceId"]
            )["ScalingPolicies"]
            # The stack sets target tracking only; step policies are not carried over.
            if policy["PolicyType"] == "TargetTrackingScaling"
        ]
        for target in targets:
            if target["ResourceId"].rsplit("/", 1)[-1] not in new:
                self.autoscaling.deregister_scalable_target(
                    ServiceNamespace="sagemaker",
                    ResourceId=target["ResourceId"],
                    ScalableDimension=target["ScalableDimension"],
                )
        return targets[0], policies

    def _apply_scaling(
        self, endpoint: str, variants: list[str], target: dict[str, Any], policies: list[dict[str, Any]]
    ) -> None:
        for variant in variants:
            resource = f"endpoint/{endpoint}/variant/{variant}"
            self.autoscaling.register_scalable_target(
                ServiceNamespace="sagemaker",
                ResourceId=resource,
                ScalableDimension=target["ScalableDimension"],
                MinCapacity=target["MinCapacity"],
                MaxCapacity=target["MaxCapacity"],
            )
            for policy in policies:
                self.autoscaling.put_scaling_policy(
                    PolicyName=policy["PolicyName"],
                    ServiceNamespace="sagemaker",
                    ResourceId=resource,
                    ScalableDimension=target["ScalableDimension"],
                    PolicyType=policy["PolicyType"],
                    TargetTrackingScalingPolicyConfiguration=policy[
                        "TargetTrackingScalingPolicyConfiguration"
                    ],
                )
        self.say(
            f"autoscaling {target['MinCapacity']}-{target['MaxCapacity']} instances on {', '.join(variants)}"
        )


def _describe(weights: dict[int, int]) -> str:
    return ", ".join(f"v{version} {weight}%" for version, weight in sorted(weights.items()))
