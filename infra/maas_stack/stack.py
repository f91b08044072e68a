"""`MaasStack`: the whole service for one `maas.yaml`, composed from the constructs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_lambda as lambda_

from maas.config import Target
from maas_stack.api import InferenceApi
from maas_stack.batch_trigger import BatchTrigger
from maas_stack.bucket import ArtifactBucket
from maas_stack.bundling import function_code, layer_code
from maas_stack.lambda_model import LambdaModel, retention
from maas_stack.monitoring import Monitoring
from maas_stack.reconciler import EndpointReconciler
from maas_stack.registry import ModelRegistry
from maas_stack.registry_function import RegistryService
from maas_stack.sagemaker_model import SageMakerModel

if TYPE_CHECKING:
    from constructs import Construct

    from maas.config import MaasConfig

REGISTRY_ARCHITECTURE = "arm64"


class MaasStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: MaasConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        registry = ModelRegistry(
            self,
            "ModelRegistry",
            deletion_protection=config.registry.deletion_protection,
            replica_regions=config.registry.replica_regions,
        )
        artifacts = ArtifactBucket(self, "ArtifactBucket", storage=config.storage)
        log_retention = retention(config.log_retention_days)

        layers: dict[tuple[str, str], tuple[lambda_.LayerVersion, lambda_.Runtime]] = {}

        def layer_for(runtime: str, architecture: str) -> tuple[lambda_.LayerVersion, lambda_.Runtime]:
            if (runtime, architecture) not in layers:
                code, python = layer_code(runtime, architecture)
                layer = lambda_.LayerVersion(
                    self,
                    f"Layer-{runtime}-{architecture}",
                    code=code,
                    compatible_runtimes=[python],
                    compatible_architectures=[
                        lambda_.Architecture.ARM_64
                        if architecture == "arm64"
                        else lambda_.Architecture.X86_64
                    ],
                    description=f"maas {runtime} runtime for {architecture} ({python.name})",
                )
                layers[(runtime, architecture)] = (layer, python)
            return layers[(runtime, architecture)]

        predict_code = function_code("predict")
        model_functions: dict[str, lambda_.IFunction] = {}
        functions: dict[str, lambda_.Function] = {}
        batch_alarms = []
        endpoints: list[SageMakerModel] = []
        for deployment in config.models:
            layer, python = layer_for(deployment.runtime.value, deployment.architecture.value)
            endpoint = None
            if deployment.target is Target.SAGEMAKER:
                endpoint = SageMakerModel(
                    self,
                    f"SageMaker-{deployment.name}",
                    deployment=deployment,
                    prefix=config.stack_name,
                    bucket=artifacts.bucket,
                    log_retention=log_retention,
                )
                endpoints.append(endpoint)
                CfnOutput(
                    self,
                    f"Endpoint{''.join(part.title() for part in endpoint.endpoint_name.split('-'))}",
                    value=endpoint.endpoint_name,
                    description=f"SageMaker endpoint of model {deployment.name}",
                )
            model = LambdaModel(
                self,
                f"Model-{deployment.name}",
                deployment=deployment,
                table=registry.table,
                bucket=artifacts.bucket,
                code=predict_code,
                layer=layer,
                python_runtime=python,
                log_retention_days=config.log_retention_days,
                endpoint_prefix=config.stack_name,
                reserved_concurrency=config.reserved_concurrency(deployment),
                batch_concurrency=config.concurrency.batch,
                endpoint_arn=endpoint.endpoint_arn if endpoint else None,
            )
            model_functions[deployment.name] = model.alias
            functions[deployment.name] = model.function
            if model.batch_function is not None:
                trigger = BatchTrigger(
                    self,
                    f"Batch-{deployment.name}",
                    model=deployment.name,
                    function=model.batch_function,
                    bucket=artifacts.bucket,
                    timeout=Duration.seconds(deployment.batch_timeout_seconds),
                )
                batch_alarms.append(trigger.alarm)

        registry_layer, registry_python = layer_for("registry", REGISTRY_ARCHITECTURE)
        registry_service = RegistryService(
            self,
            "RegistryService",
            table=registry.table,
            bucket=artifacts.bucket,
            code=function_code("registry"),
            layer=registry_layer,
            python_runtime=registry_python,
            architecture=REGISTRY_ARCHITECTURE,
            log_retention=log_retention,
            reserved_concurrency=config.concurrency.registry,
            max_upload_mb=config.registry.max_upload_mb,
        )
        if endpoints:
            reconciler = EndpointReconciler(
                self,
                "EndpointReconciler",
                table=registry.table,
                bucket=artifacts.bucket,
                prefix=config.stack_name,
                endpoints=endpoints,
                code=function_code("reconciler"),
                layer=registry_layer,
                python_runtime=registry_python,
                architecture=REGISTRY_ARCHITECTURE,
                log_retention=log_retention,
            )
            batch_alarms.append(reconciler.alarm)
        api = InferenceApi(
            self,
            "InferenceApi",
            config=config.api,
            model_functions=model_functions,
            registry_function=registry_service.function,
            log_retention=log_retention,
        )
        monitoring = Monitoring(
            self,
            "Monitoring",
            config=config.monitoring,
            api=api.api,
            model_functions=functions,
            extra_alarms=batch_alarms,
            code=function_code("metrics"),
            layer=registry_layer,
            python_runtime=registry_python,
            architecture=REGISTRY_ARCHITECTURE,
            log_retention=log_retention,
            reserved_concurrency=config.concurrency.exporter,
        )
        api.add_metrics_route(monitoring.exporter)
        CfnOutput(self, "AlarmTopic", value=monitoring.topic.topic_arn, description="SNS topic of the alarms")
        CfnOutput(self, "ApiUrl", value=api.api.api_endpoint, description="OIP v2 and registry API")
        for kind, policy in api.policies.items():
            CfnOutput(
                self,
                f"{''.join(part.title() for part in kind.split('_'))}PolicyArn",
                value=policy.managed_policy_arn,
                description=f"managed policy for callers: {policy.description}",
            )
        CfnOutput(self, "RegistryTable", value=registry.table.table_name, description="MAAS_REGISTRY_TABLE")
        CfnOutput(
            self, "ArtifactBucketName", value=artifacts.bucket.bucket_name, description="MAAS_ARTIFACT_BUCKET"
        )
