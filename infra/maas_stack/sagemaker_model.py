"""`SageMakerModel`: a model too large for Lambda, on a SageMaker endpoint running Triton.

The stack creates the endpoint serving `sagemaker.version` from `maas.yaml`; after that,
`maas models promote` moves it between versions (blue/green, see maas.sagemaker.endpoint),
copying what this construct set: instances, data capture, encryption, autoscaling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Aws, CfnTag, RemovalPolicy, Stack
from aws_cdk import aws_applicationautoscaling as scaling
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from maas.runtimes.sagemaker_names import ALIAS_TAG, MODEL_TAG, endpoint_name, variant_name
from maas.sagemaker.package import package_key
from maas.sagemaker.triton import triton_image
from maas_stack.nag import acknowledge, logical_id

if TYPE_CHECKING:
    from aws_cdk import aws_s3 as s3

    from maas.config import ModelDeployment, SageMakerDeployment

# Instance families with local NVMe storage: SageMaker encrypts it with a hardware key and
# refuses a KmsKeyId for them, so only EBS-backed instances get the stack's key.
LOCAL_STORAGE_FAMILIES = (
    "c5d", "c6id", "g4dn", "g5", "g6", "g6e", "m5d", "m6id", "p4d", "p4de", "p5", "p5e", "r5d", "r6id",
    "trn1", "trn1n",
)  # fmt: skip


def has_local_storage(instance_type: str) -> bool:
    return instance_type.split(".")[1] in LOCAL_STORAGE_FAMILIES


class SageMakerModel(Construct):
    """Model(s), endpoint config, endpoint, execution role and autoscaling for one deployment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: ModelDeployment,
        prefix: str,
        bucket: s3.Bucket,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = deployment.sagemaker
        assert settings is not None  # the config fills it in for target sagemaker
        name = deployment.name
        self.endpoint_name = endpoint_name(prefix, name)
        stack = Stack.of(self)
        image = settings.image_uri or triton_image(stack.region)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/sagemaker/Endpoints/{self.endpoint_name}",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = self._execution_role(name, image, bucket, settings)

        weights = {settings.version: 100 - (settings.canary.weight if settings.canary else 0)}
        if settings.canary is not None:
            weights[settings.canary.version] = settings.canary.weight
        variants = []
        self.models: list[sagemaker.CfnModel] = []
        for version, weight in weights.items():
            model = sagemaker.CfnModel(
                self,
                f"ModelV{version}",
                execution_role_arn=self.role.role_arn,
                # The container needs no network: SageMaker fetches the package for it.
                enable_network_isolation=True,
                primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                    image=image,
                    model_data_url=bucket.s3_url_for_object(package_key(name, version)),
                    environment={"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": name},
                ),
            )
            model.node.add_dependency(self.role)
            self.models.append(model)
            acknowledge(
                model, "AwsSolutions-SM1", "maas runs no VPC; the model runs with network isolation on."
            )
            variants.append(self._variant(version, weight, model, settings))

        volume_key = None
        if settings.serverless is None and not has_local_storage(settings.instance_type):
            volume_key = kms.Key(
                self, "VolumeKey", enable_key_rotation=True, description=f"{self.endpoint_name} ML volumes"
            )
            volume_key.grant_encrypt_decrypt(self.role)
            for action in ("kms:ReEncrypt*", "kms:GenerateDataKey*"):
                acknowledge(
                    self.role,
                    f"AwsSolutions-IAM5[Action::{action}]",
                    "CDK's grant on the endpoint's own volume key, which encrypts nothing else.",
                )
        self.volume_key = volume_key
        self.config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=variants,
            kms_key_id=volume_key.key_arn if volume_key else None,
            data_capture_config=self._data_capture(name, bucket, settings),
        )
        if volume_key is None:
            acknowledge(
                self.config,
                "AwsSolutions-SM2",
                f"{settings.instance_type if settings.serverless is None else 'a serverless endpoint'} has no "
                "EBS ML volume for a customer key: local NVMe storage is encrypted by the instance's hardware "
                "key, and SageMaker refuses a KmsKeyId for it.",
            )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.config.attr_endpoint_config_name,
            tags=[CfnTag(key=MODEL_TAG, value=name), CfnTag(key=ALIAS_TAG, value=deployment.alias)],
        )
        self.endpoint.node.add_dependency(self.log_group)
        self.endpoint_arn = stack.format_arn(
            service="sagemaker", resource="endpoint", resource_name=self.endpoint_name.lower()
        )
        if settings.serverless is None:
            for version in weights:
                self._autoscaling(version, settings)

    def _variant(
        self, version: int, weight: int, model: sagemaker.CfnModel, settings: SageMakerDeployment
    ) -> sagemaker.CfnEndpointConfig.ProductionVariantProperty:
        common = {
            "variant_name": variant_name(version),
            "model_name": model.attr_model_name,
            "initial_variant_weight": weight,
        }
        if settings.serverless is not None:
            return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                **common,
                serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                    memory_size_in_mb=settings.serverless.memory_mb,
                    max_concurrency=settings.serverless.max_concurrency,
                ),
            )
        return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            **common,
            instance_type=settings.instance_type,
            initial_instance_count=settings.initial_instance_count,
        )

    def _data_capture(
        self, name: str, bucket: s3.Bucket, settings: SageMakerDeployment
    ) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty | None:
        if not settings.data_capture.enabled:
            return None
        return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
            enable_capture=True,
            initial_sampling_percentage=settings.data_capture.sampling_percent,
            destination_s3_uri=bucket.s3_url_for_object(f"datacapture/{name}"),
            capture_options=[
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
            ],
        )

    def _autoscaling(self, version: int, settings: SageMakerDeployment) -> None:
        target = scaling.ScalableTarget(
            self,
            f"ScalingV{version}",
            service_namespace=scaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint_name}/variant/{variant_name(version)}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=settings.autoscaling.min_instances,
            max_capacity=settings.autoscaling.max_instances,
        )
        target.node.add_dependency(self.endpoint)
        target.scale_to_track_metric(
            "Invocations",
            target_value=settings.autoscaling.target_invocations_per_instance,
            predefined_metric=scaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
        )

    def _execution_role(
        self, name: str, image: str, bucket: s3.Bucket, settings: SageMakerDeployment
    ) -> iam.Role:
        """May read this model's artifacts, write its own log group and data capture, pull Triton."""
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"maas SageMaker endpoint of model {name}",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"artifacts/{name}/*")]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[f"{self.log_group.log_group_arn}"],
            )
        )
        registry, _, repository = image.partition("/")
        image_account, region = registry.split(".")[0], registry.split(".")[3]
        repository_name = repository.split(":")[0].split("@")[0]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=[f"arn:{Aws.PARTITION}:ecr:{region}:{image_account}:repository/{repository_name}"],
            )
        )
        # ECR's token call has no resource to scope it to.
        role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        reasons = [
            ("Action::ecr:GetAuthorizationToken", "ECR's GetAuthorizationToken has no resource-level scope."),
            (
                "Resource::*",
                "ecr:GetAuthorizationToken takes no resource; PutMetricData is limited by namespace.",
            ),
            (
                f"Resource::<{logical_id(bucket)}.Arn>/artifacts/{name}/*",
                "Only this model's artifacts and Triton packages.",
            ),
        ]
        if settings.data_capture.enabled:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"datacapture/{name}/*")]
                )
            )
            reasons.append(
                (
                    f"Resource::<{logical_id(bucket)}.Arn>/datacapture/{name}/*",
                    "Only this model's captured data.",
                )
            )
        for finding, reason in reasons:
            acknowledge(role, f"AwsSolutions-IAM5[{finding}]", reason)
        return role
