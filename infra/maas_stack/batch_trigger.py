"""`BatchTrigger`: uploads under `inputs/<model>/` reach the model's function through SQS."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as notifications
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from maas_stack.nag import acknowledge, logical_id

if TYPE_CHECKING:
    from aws_cdk import aws_lambda as lambda_

MAX_RECEIVES = 3


class BatchTrigger(Construct):
    """A queue (with a dead-letter queue after 3 receives and an alarm on its depth) fed by
    S3 notifications of the model's uploads, consumed by the function with partial batch
    responses; the idempotency table that makes each object version processed once; and
    the grants to read the model's inputs and write its outputs and errors."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model: str,
        function: lambda_.Function,
        bucket: s3.Bucket,
        timeout: Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(self.dead_letters, "AwsSolutions-SQS3", "This queue is itself the dead-letter queue.")
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # AWS's advice for Lambda consumers: at least six times the function's timeout.
            visibility_timeout=Duration.seconds(timeout.to_seconds() * 6),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters, max_receive_count=MAX_RECEIVES),
        )
        bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            notifications.SqsDestination(self.queue),
            s3.NotificationKeyFilter(prefix=f"inputs/{model}/"),
        )
        _acknowledge_notifications_handler(self)
        function.add_event_source(
            sources.SqsEventSource(self.queue, batch_size=10, report_batch_item_failures=True)
        )
        self.idempotency = dynamodb.TableV2(
            self,
            "Idempotency",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expiration",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
        function.add_environment("MAAS_IDEMPOTENCY_TABLE", self.idempotency.table_name)
        # A file larger than one invocation gets through is split: its parts go on this queue.
        function.add_environment("MAAS_BATCH_QUEUE_URL", self.queue.queue_url)
        self.queue.grant_send_messages(function)
        assert function.role is not None
        function.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
                resources=[self.idempotency.table_arn],
            )
        )
        function.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"inputs/{model}/*")]
            )
        )
        function.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[
                    bucket.arn_for_objects(f"outputs/{model}/*"),
                    bucket.arn_for_objects(f"errors/{model}/*"),
                ],
            )
        )
        bucket_id = logical_id(bucket)
        for prefix in ("inputs", "outputs", "errors"):
            acknowledge(
                function.role,
                f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{prefix}/{model}/*]",
                f"Only this model's batch files, under {prefix}/{model}/.",
            )
        self.alarm = cloudwatch.Alarm(
            self,
            "DeadLettersAlarm",
            alarm_description=f"maas: batch files of model {model} failed {MAX_RECEIVES} times",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1)
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )


def _acknowledge_notifications_handler(scope: Construct) -> None:
    """CDK's own singleton function that applies S3 bucket notifications at deploy time."""
    stack = Stack.of(scope)
    for child in stack.node.children:
        if child.node.id.startswith("BucketNotificationsHandler"):
            acknowledge(
                child,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                "CDK's bucket-notifications custom resource, run only at deploy time, writes its logs "
                "with the basic execution role; maas's own functions have scoped inline policies.",
            )
