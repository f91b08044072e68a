"""`LambdaModel`: one prediction function per deployed model, limited to that model."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aws_cdk import Duration, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from maas_stack.nag import acknowledge, logical_id

if TYPE_CHECKING:
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_s3 as s3

    from maas.config import ModelDeployment

ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}
_R = logs.RetentionDays
# The retention periods CloudWatch Logs accepts, in days.
RETENTION_DAYS = {
    1: _R.ONE_DAY, 3: _R.THREE_DAYS, 5: _R.FIVE_DAYS, 7: _R.ONE_WEEK, 14: _R.TWO_WEEKS,
    30: _R.ONE_MONTH, 60: _R.TWO_MONTHS, 90: _R.THREE_MONTHS, 120: _R.FOUR_MONTHS,
    150: _R.FIVE_MONTHS, 180: _R.SIX_MONTHS, 365: _R.ONE_YEAR, 400: _R.THIRTEEN_MONTHS,
    545: _R.EIGHTEEN_MONTHS, 731: _R.TWO_YEARS, 1827: _R.FIVE_YEARS, 3653: _R.TEN_YEARS,
}  # fmt: skip


def retention(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch retention that keeps logs at least `days` (at most ten years)."""
    return RETENTION_DAYS[next((allowed for allowed in sorted(RETENTION_DAYS) if allowed >= days), 3653)]


def function_role(scope: Construct, log_group: logs.LogGroup, description: str) -> iam.Role:
    """A role that may write only to its own log group (no managed policy with logs:* on '*')."""
    role = iam.Role(
        scope, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=description
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
        )
    )
    return role


def handler_function(
    scope: Construct,
    construct_id: str,
    *,
    description: str,
    code: lambda_.Code,
    layer: lambda_.ILayerVersion,
    python_runtime: lambda_.Runtime,
    architecture: str,
    memory_mb: int,
    timeout: Duration,
    role: iam.IRole,
    log_group: logs.ILogGroup,
    environment: dict[str, str],
    reserved_concurrency: int | None = None,
    tmp_mb: int | None = None,
    snapstart: bool = False,
    json_logs: bool = False,
) -> lambda_.Function:
    """A maas function: `handler.handler` of `code` on one layer, with its own role and log group
    (and `tmp_mb` of /tmp, Lambda's 512 MB when None). `snapstart`: SnapStart on its published
    versions, where its Python can (3.12+). `json_logs`: Lambda's native JSON log format, which
    structures `logging` records itself, so a function needs no logging framework at import."""
    snap_start = (
        lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS
        if snapstart and python_runtime.supports_snap_start
        else None
    )
    function = lambda_.Function(
        scope,
        construct_id,
        description=description,
        runtime=python_runtime,
        architecture=ARCHITECTURES[architecture],
        handler="handler.handler",
        code=code,
        layers=[layer],
        memory_size=memory_mb,
        timeout=timeout,
        reserved_concurrent_executions=reserved_concurrency,
        ephemeral_storage_size=Size.mebibytes(tmp_mb) if tmp_mb is not None else None,
        role=role,
        log_group=log_group,
        snap_start=snap_start,
        logging_format=lambda_.LoggingFormat.JSON if json_logs else None,
        application_log_level_v2=lambda_.ApplicationLogLevel.INFO if json_logs else None,
        # pydantic otherwise scans every installed distribution for plugins at import.
        environment={"PYDANTIC_DISABLE_PLUGINS": "__all__", **environment},
    )
    acknowledge(
        function,
        "AwsSolutions-L1",
        "The Python version follows the layers' wheels: every layer is built for Python 3.12 "
        "(onnxruntime and ai-edge-litert for Amazon Linux 2023), which SnapStart serves.",
    )
    return function


class LambdaModel(Construct):
    """The function serving `deployment` (its layer, memory, architecture, concurrency), the
    `live` alias API Gateway invokes, and a log group with retention. Its role reads only
    this model's registry items (DynamoDB leading key `M#<name>`) and its artifacts
    (`artifacts/<name>/`), and invokes only its own SageMaker endpoint if it has one.
    A batch model also gets `batch_function`: the same code with the batch timeout (up to
    15 minutes), memory and reserved concurrency, so that files never queue behind requests."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: ModelDeployment,
        table: dynamodb.TableV2,
        bucket: s3.Bucket,
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        python_runtime: lambda_.Runtime,
        log_retention_days: int,
        endpoint_prefix: str,
        reserved_concurrency: int | None,
        batch_concurrency: int | None = None,
        endpoint_arn: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        name = deployment.name
        self.log_group = logs.LogGroup(self, "Logs", retention=retention(log_retention_days))
        role = _model_role(self, self.log_group, name, table=table, bucket=bucket, what="prediction function")
        if endpoint_arn is not None:
            # Versions with target sagemaker are served by forwarding to this endpoint.
            role.add_to_policy(
                iam.PolicyStatement(actions=["sagemaker:InvokeEndpoint"], resources=[endpoint_arn])
            )
        environment = {
            "MAAS_REGISTRY_TABLE": table.table_name,
            "MAAS_ARTIFACT_BUCKET": bucket.bucket_name,
            "MAAS_DEFAULT_ALIAS": deployment.alias,
            "MAAS_PRELOAD": json.dumps([name]),
            "MAAS_ALIAS_TTL_SECONDS": "30",
            "MAAS_SAGEMAKER_ENDPOINT_PREFIX": endpoint_prefix,
            "POWERTOOLS_SERVICE_NAME": f"maas-predict-{name}",
            "POWERTOOLS_METRICS_NAMESPACE": "MaaS",
        }
        common = {
            "code": code,
            "layer": layer,
            "python_runtime": python_runtime,
            "architecture": deployment.architecture.value,
        }
        self.function = handler_function(
            self,
            "Function",
            description=f"maas: OIP v2 prediction for model {name}",
            memory_mb=deployment.memory_mb,
            timeout=Duration.seconds(deployment.timeout_seconds),
            role=role,
            log_group=self.log_group,
            reserved_concurrency=reserved_concurrency,
            snapstart=deployment.snapstart,
            json_logs=True,
            # One prediction stops before API Gateway's 30 s and the function's own timeout.
            environment={
                **environment,
                "MAAS_REQUEST_TIMEOUT_SECONDS": str(_deadline(deployment.timeout_seconds, 28)),
            },
            **common,  # type: ignore[arg-type]
        )
        self.alias = lambda_.Alias(
            self,
            "Live",
            alias_name="live",
            version=self.function.current_version,
            provisioned_concurrent_executions=deployment.provisioned_concurrency or None,
        )
        self.batch_function: lambda_.Function | None = None
        if deployment.batch:
            batch = Construct(self, "Batch")
            batch_logs = logs.LogGroup(batch, "Logs", retention=retention(log_retention_days))
            self.batch_function = handler_function(
                batch,
                "Function",
                description=f"maas: batch files of model {name}",
                memory_mb=deployment.batch_memory_mb or deployment.memory_mb,
                timeout=Duration.seconds(deployment.batch_timeout_seconds),
                role=_model_role(batch, batch_logs, name, table=table, bucket=bucket, what="batch function"),
                log_group=batch_logs,
                reserved_concurrency=batch_concurrency,
                json_logs=True,
                environment={
                    **environment,
                    "POWERTOOLS_SERVICE_NAME": f"maas-batch-{name}",
                    "MAAS_REQUEST_TIMEOUT_SECONDS": str(_deadline(deployment.batch_timeout_seconds, 900)),
                },
                **common,  # type: ignore[arg-type]
            )


def _deadline(function_timeout: int, ceiling: int) -> int:
    """Seconds one prediction may run: a margin under the function's timeout, at most `ceiling`."""
    return max(1, min(function_timeout - 2, ceiling))


def _model_role(
    scope: Construct,
    log_group: logs.LogGroup,
    name: str,
    *,
    table: dynamodb.TableV2,
    bucket: s3.Bucket,
    what: str,
) -> iam.Role:
    """A role that reads only model `name`'s registry items and artifacts."""
    role = function_role(scope, log_group, f"maas {what} of model {name}")
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:Query"],
            resources=[table.table_arn],
            conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [f"M#{name}"]}},
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"artifacts/{name}/*")]
        )
    )
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::<{logical_id(bucket)}.Arn>/artifacts/{name}/*]",
        "Only this model's artifacts, stored under artifacts/<model>/<sha256>/; the registry "
        "items it reads are limited by the dynamodb:LeadingKeys condition.",
    )
    return role
