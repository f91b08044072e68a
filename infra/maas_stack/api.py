"""`InferenceApi`: the HTTPS API, OIP routes to each model's function and registry routes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aws_cdk import Stack, Token
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from maas_stack.nag import acknowledge, logical_id

if TYPE_CHECKING:
    from aws_cdk import aws_lambda as lambda_

    from maas.config import ApiConfig

GET, POST = apigw.HttpMethod.GET, apigw.HttpMethod.POST
REGISTRY_ROUTE = "/registry/{proxy+}"
STAGE = "$default"
REGISTRY_WRITES = (
    apigw.HttpMethod.POST,
    apigw.HttpMethod.PUT,
    apigw.HttpMethod.PATCH,
    apigw.HttpMethod.DELETE,
)
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
        self._scopes = config.jwt.scopes if config.auth == "jwt" and config.jwt is not None else None
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
            stage_name=STAGE,
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(
                rate_limit=config.throttling.rate_limit, burst_limit=config.throttling.burst_limit
            ),
        )
        cfn_stage = self.stage.node.default_child
        cfn_stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(  # type: ignore[union-attr]
            destination_arn=self.access_logs.log_group_arn, format=json.dumps(ACCESS_LOG_FORMAT)
        )

        first = next(iter(model_functions.values()))
        server = integrations.HttpLambdaIntegration("Server", first)
        infer = self._scope_of("infer")
        for path in ("/v2", "/v2/health/live", "/v2/health/ready"):
            self.api.add_routes(path=path, methods=[GET], integration=server, authorization_scopes=infer)
        for name, function in model_functions.items():
            model = integrations.HttpLambdaIntegration(f"Model-{name}", function)
            self.api.add_routes(
                path=f"/v2/models/{name}", methods=[GET], integration=model, authorization_scopes=infer
            )
            self.api.add_routes(
                path=f"/v2/models/{name}/{{proxy+}}",
                methods=[GET, POST],
                integration=model,
                authorization_scopes=infer,
            )
        registry = integrations.HttpLambdaIntegration("Registry", registry_function)
        routes = self.api.add_routes(
            path=REGISTRY_ROUTE,
            methods=[GET],
            integration=registry,
            authorization_scopes=self._scope_of("registry_read"),
        )
        routes += self.api.add_routes(
            path=REGISTRY_ROUTE,
            methods=list(REGISTRY_WRITES),
            integration=registry,
            authorization_scopes=self._scope_of("registry_write"),
        )
        # The registry routes have a throttle of their own, below the API's. Route settings
        # name a route by its key, so the stage must come after the routes.
        throttle = {
            "ThrottlingRateLimit": config.throttling.registry.rate_limit,
            "ThrottlingBurstLimit": config.throttling.registry.burst_limit,
        }
        cfn_stage.route_settings = {  # type: ignore[union-attr]
            f"{method.value} {REGISTRY_ROUTE}": throttle for method in (GET, *REGISTRY_WRITES)
        }
        for route in routes:
            self.stage.node.add_dependency(route)
        self.policies = self._caller_policies()

    def add_metrics_route(self, function: lambda_.IFunction) -> None:
        """`GET /metrics` for Prometheus, behind the same authorizer as every other route."""
        self.api.add_routes(
            path="/metrics",
            methods=[GET],
            integration=integrations.HttpLambdaIntegration("Metrics", function),
            authorization_scopes=self._scope_of("metrics"),
        )

    def _scope_of(self, kind: str) -> list[str] | None:
        """The JWT scope routes of `kind` require (None with IAM auth: policies decide)."""
        return [getattr(self._scopes, kind)] if self._scopes is not None else None

    def _caller_policies(self) -> dict[str, iam.ManagedPolicy]:
        """Managed policies to attach to callers with IAM auth: invoke models only; read the
        registry and scrape /metrics; administer the registry."""

        def policy(policy_id: str, description: str, routes: list[tuple[str, str]]) -> iam.ManagedPolicy:
            managed = iam.ManagedPolicy(
                self,
                policy_id,
                description=description,
                statements=[
                    iam.PolicyStatement(
                        actions=["execute-api:Invoke"],
                        resources=[
                            self.api.arn_for_execute_api(method, path, STAGE) for method, path in routes
                        ],
                    )
                ],
            )
            for method, path in routes:
                if "*" in method + path:
                    acknowledge(
                        managed,
                        f"AwsSolutions-IAM5[Resource::{self._execute_api_finding(method, path)}]",
                        "execute-api ARNs name a route by method and path; the wildcard stands for the "
                        "model names or registry paths below this one route of this API.",
                    )
            return managed

        return {
            "invoke": policy(
                "InvokePolicy",
                "maas: invoke models over OIP v2 (health, metadata, infer), nothing else",
                [("GET", "/v2"), ("GET", "/v2/*"), ("POST", "/v2/models/*")],
            ),
            "registry_read": policy(
                "RegistryReadPolicy",
                "maas: read the model registry and scrape /metrics",
                [("GET", "/registry/*"), ("GET", "/metrics")],
            ),
            "registry_admin": policy(
                "RegistryAdminPolicy",
                "maas: administer the model registry (register, promote, canary, rollback, retire, delete)",
                [("ANY", "/registry/*"), ("GET", "/metrics")],
            ),
        }

    def _execute_api_finding(self, method: str, path: str) -> str:
        """An execute-api ARN as cdk-nag writes it in a finding (tokens as `<...>`)."""
        stack = Stack.of(self)
        region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
        account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
        verb = "*" if method == "ANY" else method
        return f"arn:<AWS::Partition>:execute-api:{region}:{account}:<{logical_id(self.api)}>/{STAGE}/{verb}{path}"
