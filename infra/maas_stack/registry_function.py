"""`RegistryService`: the function behind `/registry/...`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from maas.registry.dynamodb import MODELS_INDEX
from maas_stack.lambda_model import function_role, handler_function
from maas_stack.nag import acknowledge, logical_id

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
        reserved_concurrency: int | None = None,
        max_upload_mb: int = 400,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention)
        role = function_role(self, self.log_group, "maas registry API")
        # Item-level actions only: transactions and conditional writes are authorized per item action.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:ConditionCheckItem",
                    "dynamodb:Query",
                    "dynamodb:BatchWriteItem",
                ],
                resources=[table.table_arn, f"{table.table_arn}/index/{MODELS_INDEX}"],
            )
        )
        # Listing tells whether an artifact is stored already and an upload's size; held to the
        # registry's own prefixes, so that the role cannot enumerate batch data or captures.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": ["uploads/*", "artifacts/*"]}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                resources=[bucket.arn_for_objects("uploads/*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"], resources=[bucket.arn_for_objects("artifacts/*")]
            )
        )
        bucket_id = logical_id(bucket)
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/uploads/*]",
            "Uploads land under random keys below uploads/ (presigned URLs); the registry reads and removes them.",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/artifacts/*]",
            "The registry stores every model's artifacts, under artifacts/<model>/<sha256>/.",
        )
        self.function = handler_function(
            self,
            "Function",
            description="maas: model registry API",
            code=code,
            layer=layer,
            python_runtime=python_runtime,
            architecture=architecture,
            # Registration downloads the upload to /tmp and loads it in a child process to read
            # its signature: both must hold the largest upload the API accepts. A SageMaker
            # version's Triton package is written beside it, from it: a second copy on /tmp.
            memory_mb=min(10_240, max(1024, 3 * max_upload_mb)),
            tmp_mb=min(10_240, max(512, 2 * max_upload_mb + 256)),
            timeout=Duration.seconds(29),
            reserved_concurrency=reserved_concurrency,
            role=role,
            log_group=self.log_group,
            environment={
                "MAAS_REGISTRY_TABLE": table.table_name,
                "MAAS_ARTIFACT_BUCKET": bucket.bucket_name,
                "MAAS_MAX_UPLOAD_MB": str(max_upload_mb),
                "POWERTOOLS_SERVICE_NAME": "maas-registry",
                "POWERTOOLS_METRICS_NAMESPACE": "MaaS",
            },
        )
