"""`EndpointReconciler`: the control plane's reconciler, which moves each SageMaker endpoint
to what its alias says. The registry table's stream (alias items only) triggers it, retried
and then kept in a dead-letter queue; SageMaker's endpoint state changes (EventBridge) tell
it when an update is done; a schedule sweeps the endpoints in case an event was lost."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from maas.control.events import ALIAS_ITEM
from maas_stack.lambda_model import function_role, handler_function
from maas_stack.nag import acknowledge

if TYPE_CHECKING:
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_s3 as s3

    from maas_stack.sagemaker_model import SageMakerModel

# How often the sweep looks at every endpoint; the events make it rarely needed.
SWEEP_MINUTES = 5


class EndpointReconciler(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: dynamodb.TableV2,
        bucket: s3.Bucket,
        prefix: str,
        endpoints: list[SageMakerModel],
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        python_runtime: lambda_.Runtime,
        architecture: str,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention)
        role = function_role(self, self.log_group, "maas endpoint reconciler")
        self._grant_registry(role, table, bucket)
        self._grant_endpoints(role, stack, prefix, endpoints)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letters,
            "AwsSolutions-SQS3",
            "This is the dead-letter queue (the on-failure destination of the stream mapping).",
        )
        self.function = handler_function(
            self,
            "Function",
            description="maas: moves SageMaker endpoints to what their aliases say",
            code=code,
            layer=layer,
            python_runtime=python_runtime,
            architecture=architecture,
            memory_mb=512,
            timeout=Duration.minutes(5),
            # One at a time: steps of one endpoint never race (they would be safe, only wasteful).
            reserved_concurrency=1,
            role=role,
            log_group=self.log_group,
            environment={
                "MAAS_REGISTRY_TABLE": table.table_name,
                "MAAS_ARTIFACT_BUCKET": bucket.bucket_name,
                "MAAS_SAGEMAKER_ENDPOINT_PREFIX": prefix,
            },
        )
        self.function.add_event_source(
            sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=10,
                retry_attempts=5,
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.dead_letters),
                filters=[
                    lambda_.FilterCriteria.filter(
                        {"dynamodb": {"Keys": {"sk": {"S": lambda_.FilterRule.begins_with(ALIAS_ITEM)}}}}
                    )
                ],
            )
        )
        events.Rule(
            self,
            "EndpointStateChanges",
            description="SageMaker endpoint updates that finished or failed reach the reconciler",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Endpoint State Change"],
                detail={"EndpointName": [{"prefix": f"{prefix}-"}]},
            ),
            targets=[targets.LambdaFunction(self.function, retry_attempts=4)],
        )
        events.Rule(
            self,
            "Sweep",
            description="the reconciler looks at every endpoint, in case an event was lost",
            schedule=events.Schedule.rate(Duration.minutes(SWEEP_MINUTES)),
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "DeadLettersAlarm",
            alarm_description="alias changes the reconciler could not apply after its retries",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5)
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _grant_registry(self, role: iam.Role, table: dynamodb.TableV2, bucket: s3.Bucket) -> None:
        # Reads the aliases and versions; writes only the target-state items (T#), in
        # transactions conditional on the alias.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:ConditionCheckItem",
                    "dynamodb:Query",
                ],
                resources=[table.table_arn],
            )
        )
        # Whether a version's Triton package exists: a listing of its exact key.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": ["artifacts/*"]}},
            )
        )

    def _grant_endpoints(
        self, role: iam.Role, stack: Stack, prefix: str, endpoints: list[SageMakerModel]
    ) -> None:
        named = [
            stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{prefix}-*")
            for kind in ("endpoint", "endpoint-config", "model")
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:DescribeModel",
                    "sagemaker:CreateModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:UpdateEndpoint",
                    "sagemaker:ListTags",
                    "sagemaker:AddTags",
                ],
                resources=named,
            )
        )
        # What `cdk deploy` made has names CloudFormation chose: the first config and models, whose
        # settings and container every new config and model copies.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
                resources=[
                    arn
                    for endpoint in endpoints
                    for arn in [endpoint.config.ref, *(m.ref for m in endpoint.models)]
                ],
            )
        )
        # A config that copies the stack's KMS key for the ML volume is created with it.
        keys = [endpoint.volume_key.key_arn for endpoint in endpoints if endpoint.volume_key is not None]
        if keys:
            role.add_to_policy(
                iam.PolicyStatement(actions=["kms:CreateGrant", "kms:DescribeKey"], resources=keys)
            )
        # Listing takes no resource; the reconciler keeps to its prefix itself.
        role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:ListEndpoints"], resources=["*"]))
        # Autoscaling moves with the variants; its actions take no resource ARNs.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "application-autoscaling:DescribeScalableTargets",
                    "application-autoscaling:DescribeScalingPolicies",
                    "application-autoscaling:RegisterScalableTarget",
                    "application-autoscaling:DeregisterScalableTarget",
                    "application-autoscaling:PutScalingPolicy",
                ],
                resources=["*"],
            )
        )
        # A new SageMaker model of a version runs as the endpoint's own execution role.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[endpoint.role.role_arn for endpoint in endpoints],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
        arn = f"Resource::arn:<AWS::Partition>:sagemaker:{region}:<AWS::AccountId>"
        for finding, reason in (
            (
                f"{arn}:endpoint/{prefix}-*",
                "It moves every endpoint of this stack, all named <stack>-<model>.",
            ),
            (
                f"{arn}:endpoint-config/{prefix}-*",
                "It creates an endpoint config per alias target, named by what it holds under the stack's prefix.",
            ),
            (
                f"{arn}:model/{prefix}-*",
                "It creates a SageMaker model per version served, named <endpoint>-v<N>.",
            ),
            ("Resource::*", "ListEndpoints and Application Auto Scaling's actions take no resource ARN."),
        ):
            acknowledge(role, f"AwsSolutions-IAM5[{finding}]", reason)
