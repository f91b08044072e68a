"""`Monitoring`: a CloudWatch dashboard, alarms on what hurts users, an SNS topic for them,
and the `/metrics` exporter function for Prometheus."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from maas_stack.lambda_model import function_role, handler_function
from maas_stack.nag import acknowledge

if TYPE_CHECKING:
    from aws_cdk import aws_apigatewayv2 as apigw

    from maas.config import MonitoringConfig

NAMESPACE = "MaaS"
# The Powertools service of functions/predict/handler.py: the predict function's request
# figures are published per (model, service), and CloudWatch matches dimension sets exactly.
PREDICT_SERVICE = "predict"


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: MonitoringConfig,
        api: apigw.HttpApi,
        model_functions: dict[str, lambda_.Function],
        extra_alarms: list[cloudwatch.Alarm],
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        python_runtime: lambda_.Runtime,
        architecture: str,
        log_retention: logs.RetentionDays,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Alarms",
            enforce_ssl=True,
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        notify = actions.SnsAction(self.topic)
        api_id = {"ApiId": api.api_id}
        requests = cloudwatch.Metric(
            namespace="AWS/ApiGateway", metric_name="Count", dimensions_map=api_id, statistic="Sum"
        )
        errors = cloudwatch.Metric(
            namespace="AWS/ApiGateway", metric_name="5xx", dimensions_map=api_id, statistic="Sum"
        )
        error_rate = cloudwatch.MathExpression(
            expression="100 * errors / MAX([requests, 1])",
            using_metrics={"errors": errors, "requests": requests},
            label="5xx %",
            period=Duration.minutes(5),
        )
        self.alarms = [
            cloudwatch.Alarm(
                self,
                "Api5xxRate",
                alarm_description=f"maas: more than {config.error_rate_percent}% of API requests answered 5xx",
                metric=error_rate,
                threshold=config.error_rate_percent,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        ]
        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(title="API requests and 5xx", left=[requests, errors], width=12),
            cloudwatch.GraphWidget(title="API 5xx %", left=[error_rate], width=12),
        ]
        for name, function in model_functions.items():
            model = {"model": name, "service": PREDICT_SERVICE}
            latency = cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name="InferenceLatency",
                dimensions_map=model,
                statistic="p99",
                period=Duration.minutes(5),
            )
            self.alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"LatencyP99-{name}",
                    alarm_description=f"maas: p99 inference latency of {name} above {config.latency_p99_ms} ms",
                    metric=latency,
                    threshold=config.latency_p99_ms,
                    evaluation_periods=3,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
            throttles = function.metric_throttles(period=Duration.minutes(5), statistic="Sum")
            self.alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"Throttles-{name}",
                    alarm_description=f"maas: the function of {name} was throttled",
                    metric=throttles,
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
            widgets += [
                cloudwatch.GraphWidget(
                    title=f"{name}: requests and errors",
                    left=[
                        cloudwatch.Metric(
                            namespace=NAMESPACE, metric_name=metric, dimensions_map=model, statistic="Sum"
                        )
                        for metric in ("Requests", "Errors4xx", "Errors5xx")
                    ],
                    width=8,
                ),
                cloudwatch.GraphWidget(
                    title=f"{name}: inference latency",
                    left=[
                        cloudwatch.Metric(
                            namespace=NAMESPACE,
                            metric_name="InferenceLatency",
                            dimensions_map=model,
                            statistic=stat,
                        )
                        for stat in ("p50", "p90", "p99")
                    ],
                    width=8,
                ),
                cloudwatch.GraphWidget(
                    title=f"{name}: Lambda",
                    left=[function.metric_duration(statistic="p99"), throttles, function.metric_errors()],
                    width=8,
                ),
            ]
        for alarm in [*self.alarms, *extra_alarms]:
            alarm.add_alarm_action(notify)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", widgets=[widgets])

        self.log_group = logs.LogGroup(self, "ExporterLogs", retention=log_retention)
        role = function_role(self, self.log_group, "maas metrics exporter")
        # GetMetricData and ListMetrics take no resource-level permissions: '*' is the only resource.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:GetMetricData", "cloudwatch:ListMetrics"], resources=["*"]
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "cloudwatch:GetMetricData and cloudwatch:ListMetrics support no resource-level permissions; the role is read-only.",
        )
        self.exporter = handler_function(
            self,
            "Exporter",
            description="maas: CloudWatch metrics as Prometheus text at /metrics",
            code=code,
            layer=layer,
            python_runtime=python_runtime,
            architecture=architecture,
            memory_mb=512,
            timeout=Duration.seconds(29),
            reserved_concurrency=reserved_concurrency,
            role=role,
            log_group=self.log_group,
            environment={
                "MAAS_EXPORTER_NAMESPACES": json.dumps([NAMESPACE, "AWS/Lambda", "AWS/ApiGateway"]),
                "MAAS_EXPORTER_FILTERS": json.dumps(
                    {
                        "AWS/Lambda": {"FunctionName": [f.function_name for f in model_functions.values()]},
                        "AWS/ApiGateway": {"ApiId": [api.api_id]},
                    }
                ),
                "POWERTOOLS_SERVICE_NAME": "maas-metrics",
            },
        )
