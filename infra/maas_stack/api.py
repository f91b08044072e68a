"""`InferenceApi`: the HTTPS API, OIP routes to each model's function and registry routes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_logs as logs
from constructs import Construct

if TYPE_CHECKING:
    from aws_cdk import aws_lambda as lambda_

    from maas.config import ApiConfig

GET, POST = apigw.HttpMethod.GET, apigw.HttpMethod.POST
REGISTRY_ROUTE = "/registry/{proxy+}"
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "requestTime": "$context.requestTime",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integrationLatency",
    "error": "$context.error.message",
}


class InferenceApi(Construct):
    """An HTTP API where every route needs IAM (SigV4) or JWT auth: no anonymous route.

    `/v2/models/<name>/...` goes to that model's function; server-level OIP routes go
    to the first model's function (any of them answers the same); `/registry/...`
    goes to the registry function. Throttled, access-logged, CORS off unless origins
    are configured.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ApiConfig,
        model_functions: dict[str, lambda_.IFunction],
        registry_function: lambda_.IFunction,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        if config.auth == "jwt" and config.jwt is not None:
            authorizer: apigw.IHttpRouteAuthorizer = authorizers.HttpJwtAuthorizer(
                "Jwt", config.jwt.issuer, jwt_audience=config.jwt.audience
            )
        else:
            authorizer = authorizers.HttpIamAuthorizer()
        cors = (
            apigw.CorsPreflightOptions(
                allow_origins=config.cors_origins, allow_methods=[apigw.CorsHttpMethod.ANY]
            )
            if config.cors_origins
            else None
        )
        self.api = apigw.HttpApi(
            self, "Api", create_default_stage=False, default_authorizer=authorizer, cors_preflight=cors
        )
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention)
        self.stage = apigw.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(
                rate_limit=config.throttling.rate_limit, burst_limit=config.throttling.burst_limit
            ),
        )
        cfn_stage = self.stage.node.default_child
        cfn_stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(  # type: ignore[union-attr]
            destination_arn=self.access_logs.log_group_arn, format=json.dumps(ACCESS_LOG_FORMAT)
        )
        # The registry routes have a throttle of their own, below the API's.
        cfn_stage.route_settings = {  # type: ignore[union-attr]
            f"ANY {REGISTRY_ROUTE}": {
                "ThrottlingRateLimit": config.throttling.registry.rate_limit,
                "ThrottlingBurstLimit": config.throttling.registry.burst_limit,
            }
        }

        first = next(iter(model_functions.values()))
        server = integrations.HttpLambdaIntegration("Server", first)
        for path in ("/v2", "/v2/health/live", "/v2/health/ready"):
            self.api.add_routes(path=path, methods=[GET], integration=server)
        for name, function in model_functions.items():
            model = integrations.HttpLambdaIntegration(f"Model-{name}", function)
            self.api.add_routes(path=f"/v2/models/{name}", methods=[GET], integration=model)
            self.api.add_routes(path=f"/v2/models/{name}/{{proxy+}}", methods=[GET, POST], integration=model)
        registry = integrations.HttpLambdaIntegration("Registry", registry_function)
        (route,) = self.api.add_routes(
            path=REGISTRY_ROUTE, methods=[apigw.HttpMethod.ANY], integration=registry
        )
        # Route settings name the route by its key: the stage must come after it.
        self.stage.node.add_dependency(route)

    def add_metrics_route(self, function: lambda_.IFunction) -> None:
        """`GET /metrics` for Prometheus, behind the same authorizer as every other route."""
        self.api.add_routes(
            path="/metrics",
            methods=[GET],
            integration=integrations.HttpLambdaIntegration("Metrics", function),
        )
