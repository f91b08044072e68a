"""`RegistryService`: the function behind `/registry/...`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from maas_stack.lambda_model import ARCHITECTURES, function_role

if TYPE_CHECKING:
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_s3 as s3


class RegistryService(Construct):
    """Registers versions (reads uploads, writes artifacts and items) and moves aliases.
    It loads each uploaded file with its runtime to read the signature, so its layer
    carries both runtimes."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: dynamodb.TableV2,
        bucket: s3.Bucket,
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        python_runtime: lambda_.Runtime,
        architecture: str,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention)
        role = function_role(self, self.log_group, "maas registry API")
        table.grant_read_write_data(role)
        bucket.grant_read_write(role, "uploads/*")
        bucket.grant_delete(role, "uploads/*")
        bucket.grant_read_write(role, "artifacts/*")
        NagSuppressions.add_resource_suppressions(
            role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason=(
                        "The registry writes any model's artifacts (artifacts/*) and reads uploads (uploads/*) "
                        "by design; table access includes its own index; CDK's grant adds the object-level actions."
                    ),
                )
            ],
            apply_to_children=True,
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description="maas: model registry API",
            runtime=python_runtime,
            architecture=ARCHITECTURES[architecture],
            handler="handler.handler",
            code=code,
            layers=[layer],
            memory_size=1024,
            timeout=Duration.seconds(29),
            role=role,
            log_group=self.log_group,
            environment={
                "MAAS_REGISTRY_TABLE": table.table_name,
                "MAAS_ARTIFACT_BUCKET": bucket.bucket_name,
                "POWERTOOLS_SERVICE_NAME": "maas-registry",
                "POWERTOOLS_METRICS_NAMESPACE": "MaaS",
            },
        )
        NagSuppressions.add_resource_suppressions(
            self.function,
            [NagPackSuppression(id="AwsSolutions-L1", reason="Python 3.12 matches the registry layer's wheels.")],
        )
