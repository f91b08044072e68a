"""What `cdk synth` of the example maas.yaml deploys: security properties and wiring,
asserted by properties and counts, never by logical IDs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import REPO_ROOT, synth

pytestmark = pytest.mark.infra

MODELS = {"digits": "onnx", "digits-tflite": "tflite", "digits-large": "onnx"}
SAGEMAKER_MODELS = {"digits-large"}


def resources(template: Template, kind: str) -> list[dict[str, Any]]:
    return list(template.find_resources(kind).values())


def statements(template: Template) -> list[dict[str, Any]]:
    found = []
    for policy in resources(template, "AWS::IAM::Policy"):
        found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def test_no_route_is_anonymous(template: Template) -> None:
    routes = resources(template, "AWS::ApiGatewayV2::Route")
    # Server routes; per model GET metadata, GET and POST below it; the registry's GET and
    # its four writing methods; /metrics.
    assert len(routes) == 3 + 3 * len(MODELS) + 5 + 1
    assert {route["Properties"]["AuthorizationType"] for route in routes} == {"AWS_IAM"}
    keys = {route["Properties"]["RouteKey"] for route in routes}
    assert "POST /v2/models/digits/{proxy+}" in keys
    assert {"GET /registry/{proxy+}", "POST /registry/{proxy+}", "DELETE /registry/{proxy+}"} <= keys
    assert "GET /metrics" in keys
    assert not any(key.startswith("$default") for key in keys)


def test_the_api_is_throttled_and_access_logged(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "$default",
            "DefaultRouteSettings": {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200},
            "AccessLogSettings": {
                "DestinationArn": Match.any_value(),
                "Format": Match.string_like_regexp("requestId"),
            },
        },
    )
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Api", {"ProtocolType": "HTTP", "CorsConfiguration": Match.absent()}
    )


def test_buckets_deny_plain_http_block_public_access_and_encrypt(template: Template) -> None:
    policies = resources(template, "AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies:
        denials = [
            s
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert denials, policy
    for bucket in resources(template, "AWS::S3::Bucket"):
        properties = bucket["Properties"]
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {"VersioningConfiguration": {"Status": "Enabled"}, "LoggingConfiguration": Match.object_like({})},
    )


def artifact_bucket_rules(template: Template) -> dict[str, dict[str, Any]]:
    (bucket,) = [
        b for b in resources(template, "AWS::S3::Bucket") if "VersioningConfiguration" in b["Properties"]
    ]
    return {rule["Id"]: rule for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}


def test_old_versions_unfinished_uploads_and_batch_files_expire_but_artifacts_stay(
    template: Template,
) -> None:
    rules = artifact_bucket_rules(template)
    assert rules["noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert rules["noncurrent-versions"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert (
        "Prefix" not in rules["noncurrent-versions"]
        and "ExpirationInDays" not in rules["noncurrent-versions"]
    )
    expiring = {rule["Prefix"]: rule["ExpirationInDays"] for rule in rules.values() if "Prefix" in rule}
    # Outputs and inputs are kept unless maas.yaml says otherwise; artifacts/ never expires.
    assert expiring == {"uploads/": 7, "errors/": 90, "datacapture/": 90}
    assert all(rule["Status"] == "Enabled" for rule in rules.values())


def test_storage_retention_comes_from_maas_yaml(tmp_path: Path) -> None:
    config = tmp_path / "maas.yaml"
    config.write_text(
        "models: [{name: digits, runtime: onnx}]\n"
        "storage: {noncurrent_version_days: 3, outputs_days: 14, errors_days: null, incomplete_upload_days: 2}\n"
    )
    rules = artifact_bucket_rules(Template.from_stack(synth(config, tmp_path / "out")))
    assert rules["noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 3}
    assert rules["noncurrent-versions"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}
    expiring = {rule["Prefix"]: rule["ExpirationInDays"] for rule in rules.values() if "Prefix" in rule}
    assert expiring == {"uploads/": 7, "outputs/": 14, "datacapture/": 90}


def test_jwt_scope_names_come_from_maas_yaml(tmp_path: Path) -> None:
    config = tmp_path / "maas.yaml"
    config.write_text(
        "api:\n  auth: jwt\n  jwt: {issuer: 'https://issuer.example.com', audience: [maas],"
        " scopes: {infer: 'models/use', registry_write: 'models/admin'}}\n"
        "models: [{name: digits, runtime: onnx}]\n"
    )
    routes = resources(Template.from_stack(synth(config, tmp_path / "out")), "AWS::ApiGatewayV2::Route")
    scopes = {route["Properties"]["RouteKey"]: route["Properties"]["AuthorizationScopes"] for route in routes}
    assert scopes["POST /v2/models/digits/{proxy+}"] == ["models/use"]
    assert scopes["DELETE /registry/{proxy+}"] == ["models/admin"]
    assert scopes["GET /registry/{proxy+}"] == ["maas/registry.read"]


def caller_policies(template: Template) -> dict[str, list[str]]:
    """Each managed policy's description and the execute-api routes (`METHOD/path`) it allows."""
    found = {}
    for policy in resources(template, "AWS::IAM::ManagedPolicy"):
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Action"] == "execute-api:Invoke" and statement["Effect"] == "Allow"
        routes = []
        for resource in statement["Resource"]:
            parts = resource["Fn::Join"][1]
            routes.append(str(parts[-1]).split("/", 2)[-1])  # "/$default/GET/v2/*" -> "GET/v2/*"
        found[policy["Properties"]["Description"]] = routes
    return found


def test_iam_callers_get_an_invoke_only_and_a_registry_admin_policy_scoped_to_the_apis_routes(
    template: Template,
) -> None:
    policies = caller_policies(template)
    invoke = next(routes for text, routes in policies.items() if text.startswith("maas: invoke models"))
    admin = next(routes for text, routes in policies.items() if text.startswith("maas: administer"))
    read = next(
        routes for text, routes in policies.items() if text.startswith("maas: read the model registry")
    )
    assert sorted(invoke) == ["GET/v2", "GET/v2/*", "POST/v2/models/*"]
    assert not any("registry" in route for route in invoke)
    assert sorted(admin) == ["*/registry/*", "GET/metrics"]
    assert not any(route.endswith("/v2/*") or "/v2/" in route for route in admin)
    assert sorted(read) == ["GET/metrics", "GET/registry/*"]
    # Every resource is a route of this API's stage, never another API's.
    (api_id,) = template.find_resources("AWS::ApiGatewayV2::Api")
    for policy in resources(template, "AWS::IAM::ManagedPolicy"):
        for resource in policy["Properties"]["PolicyDocument"]["Statement"][0]["Resource"]:
            assert {"Ref": api_id} in resource["Fn::Join"][1]
            assert str(resource["Fn::Join"][1][-1]).startswith("/$default/")
    outputs = template.find_outputs("*")
    assert {"InvokePolicyArn", "RegistryReadPolicyArn", "RegistryAdminPolicyArn"} <= set(outputs)


def test_the_registry_table_has_pitr_encryption_and_deletion_protection(template: Template) -> None:
    template.resource_count_is("AWS::DynamoDB::GlobalTable", 1)
    template.has_resource_properties(
        "AWS::DynamoDB::GlobalTable",
        {
            "SSESpecification": {"SSEEnabled": True},
            "Replicas": [
                Match.object_like(
                    {
                        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                        "DeletionProtectionEnabled": True,
                    }
                )
            ],
            "GlobalSecondaryIndexes": [Match.object_like({"IndexName": "models"})],
        },
    )


# CloudWatch's read APIs accept no resource-level permissions; nothing else may use '*'.
# Actions AWS offers no resource scope for; PutMetricData is held to a namespace by a condition.
UNSCOPABLE = {
    "cloudwatch:GetMetricData",
    "cloudwatch:ListMetrics",
    "cloudwatch:PutMetricData",
    "ecr:GetAuthorizationToken",
    # The reconciler's: listing endpoints takes no resource, and scalable targets are named by
    # random ids, not by the endpoint they scale.
    "sagemaker:ListEndpoints",
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:DescribeScalingPolicies",
    "application-autoscaling:RegisterScalableTarget",
    "application-autoscaling:DeregisterScalableTarget",
    "application-autoscaling:PutScalingPolicy",
}


def test_iam_statements_name_their_resources(template: Template) -> None:
    for statement in statements(template):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement["Resource"] == "*":
            assert set(actions) <= UNSCOPABLE, statement
            if "cloudwatch:PutMetricData" in actions:
                assert "cloudwatch:namespace" in json.dumps(statement["Condition"]), statement
        assert "*" not in statement["Action"] and statement["Action"] != "*", statement


def test_each_model_reads_only_its_own_registry_items_and_artifacts(template: Template) -> None:
    found = statements(template)
    for name in MODELS:
        registry_reads = [
            s
            for s in found
            if s.get("Condition", {}).get("ForAllValues:StringEquals", {}).get("dynamodb:LeadingKeys")
            == [f"M#{name}"]
        ]
        assert len(registry_reads) == 1
        assert sorted(registry_reads[0]["Action"]) == ["dynamodb:GetItem", "dynamodb:Query"]
        artifact_reads = [
            s
            for s in found
            if s["Action"] == "s3:GetObject" and f"/artifacts/{name}/*" in json.dumps(s["Resource"])
        ]
        # A SageMaker model's endpoint role reads its packages too.
        assert len(artifact_reads) == (2 if name in SAGEMAKER_MODELS else 1)


def test_each_model_function_has_its_layer_alias_memory_and_environment(template: Template) -> None:
    functions = [f["Properties"] for f in resources(template, "AWS::Lambda::Function")]
    # plus the registry, metrics and reconciler functions (the example has a SageMaker model)
    assert len(functions) == len(MODELS) + 3
    for name in MODELS:
        (function,) = [
            f for f in functions if f["Environment"]["Variables"].get("MAAS_PRELOAD") == json.dumps([name])
        ]
        assert function["MemorySize"] == 1024
        assert function["Architectures"] == ["arm64"]
        assert function["Handler"] == "handler.handler"
        assert function["Runtime"] == "python3.12"
        assert len(function["Layers"]) == 1
        assert function["Environment"]["Variables"]["MAAS_DEFAULT_ALIAS"] == "prod"
        assert set(function["Environment"]["Variables"]) >= {"MAAS_REGISTRY_TABLE", "MAAS_ARTIFACT_BUCKET"}
    template.resource_count_is("AWS::Lambda::Alias", len(MODELS))
    template.has_resource_properties("AWS::Lambda::Alias", {"Name": "live"})
    # One layer per runtime and architecture in use, plus the registry's.
    template.resource_count_is("AWS::Lambda::LayerVersion", 3)
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})


def test_alarms_notify_an_encrypted_topic_and_a_dashboard_shows_each_model(template: Template) -> None:
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    # The API's 5xx rate, per model its p99 latency and its throttles, and the reconciler's
    # dead letters (the example has a SageMaker model).
    assert len(alarms) == 1 + 2 * len(MODELS) + 1
    assert all(alarm["Properties"]["AlarmActions"] for alarm in alarms)
    p99 = [a for a in alarms if a["Properties"].get("ExtendedStatistic") == "p99"]
    assert {a["Properties"]["Dimensions"][0]["Value"] for a in p99} == set(MODELS)
    assert all(a["Properties"]["Threshold"] == 1000 for a in p99)
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {"MAAS_EXPORTER_NAMESPACES": '["MaaS", "AWS/Lambda", "AWS/ApiGateway"]'}
                )
            }
        },
    )


def test_cdk_nag_ran_and_reports_nothing_unacknowledged(stack: Stack, cdk_out: Path) -> None:
    report_file = cdk_out / "validation-report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {"pluginReports": []}
    violations = [v for plugin in report["pluginReports"] for v in plugin["violations"]]
    assert violations == []
    # The acknowledgments are recorded, each with its reason.
    acknowledged = [
        entry.data
        for construct in stack.node.find_all()
        for entry in construct.node.metadata
        if "acknowledg" in entry.type.lower()
    ]
    assert acknowledged, "expected the documented cdk-nag acknowledgments in construct metadata"


def test_cfn_lint_finds_no_errors(stack: Stack, tmp_path: Path) -> None:
    template_file = tmp_path / "template.json"
    template_file.write_text(json.dumps(Template.from_stack(stack).to_json()))
    lint = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "parseable", str(template_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    # cfn-lint's exit code is a bit set: 2 means errors (4 warnings, 8 informational).
    assert lint.returncode & 2 == 0, lint.stdout


def test_jwt_auth_puts_a_jwt_authorizer_on_every_route(tmp_path: Path) -> None:
    config = tmp_path / "maas.yaml"
    config.write_text(
        "stack_name: maas-jwt\n"
        "api:\n  auth: jwt\n  jwt: {issuer: 'https://issuer.example.com', audience: [maas]}\n"
        "models: [{name: digits, runtime: onnx, architecture: x86_64, memory_mb: 2048}]\n"
    )
    template = Template.from_stack(synth(config, tmp_path / "out"))
    routes = resources(template, "AWS::ApiGatewayV2::Route")
    assert {route["Properties"]["AuthorizationType"] for route in routes} == {"JWT"}
    # Invoking and administering are separate grants: each route asks for its own scope.
    scopes = {route["Properties"]["RouteKey"]: route["Properties"]["AuthorizationScopes"] for route in routes}
    assert scopes["POST /v2/models/digits/{proxy+}"] == ["maas/infer"]
    assert scopes["GET /v2/health/ready"] == ["maas/infer"]
    assert scopes["GET /registry/{proxy+}"] == ["maas/registry.read"]
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert scopes[f"{method} /registry/{{proxy+}}"] == ["maas/registry.write"]
    assert scopes["GET /metrics"] == ["maas/metrics.read"]
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Authorizer",
        {
            "AuthorizerType": "JWT",
            "JwtConfiguration": {"Issuer": "https://issuer.example.com", "Audience": ["maas"]},
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function", {"MemorySize": 2048, "Architectures": ["x86_64"]}
    )


def test_batch_models_get_a_queue_with_dead_letters_an_alarm_and_idempotency(tmp_path: Path) -> None:
    config = tmp_path / "maas.yaml"
    config.write_text(
        "stack_name: maas-batch\nmodels: [{name: digits, runtime: onnx, batch: true, timeout_seconds: 60,"
        " batch_timeout_seconds: 600, batch_memory_mb: 3008}]\n"
    )
    template = Template.from_stack(synth(config, tmp_path / "out"))
    template.resource_count_is("AWS::SQS::Queue", 2)
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "VisibilityTimeout": 3600,  # six times the batch function's timeout
            "RedrivePolicy": {"deadLetterTargetArn": Match.any_value(), "maxReceiveCount": 3},
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"BatchSize": 10, "FunctionResponseTypes": ["ReportBatchItemFailures"]},
    )
    template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "NotificationConfiguration": {
                "QueueConfigurations": [
                    Match.object_like(
                        {
                            "Events": ["s3:ObjectCreated:*"],
                            "Filter": {
                                "Key": {"FilterRules": [{"Name": "prefix", "Value": "inputs/digits/"}]}
                            },
                        }
                    )
                ]
            }
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({"MAAS_IDEMPOTENCY_TABLE": Match.any_value()})}},
    )
    writes = [s for s in statements(template) if s["Action"] == "s3:PutObject"]
    assert any("/outputs/digits/*" in json.dumps(s["Resource"]) for s in writes)


def test_batch_files_run_in_a_function_of_their_own_off_the_apis_path(tmp_path: Path) -> None:
    config = tmp_path / "maas.yaml"
    config.write_text(
        "stack_name: maas-batch\nmodels: [{name: digits, runtime: onnx, batch: true, timeout_seconds: 30,"
        " batch_timeout_seconds: 900}]\nconcurrency: {batch: 3}\n"
    )
    template = Template.from_stack(synth(config, tmp_path / "out"))
    by_id = {key: f["Properties"] for key, f in template.find_resources("AWS::Lambda::Function").items()}
    (mapping,) = resources(template, "AWS::Lambda::EventSourceMapping")
    batch = by_id[mapping["Properties"]["FunctionName"]["Ref"]]
    assert (batch["Timeout"], batch["ReservedConcurrentExecutions"]) == (900, 3)
    assert "MAAS_IDEMPOTENCY_TABLE" in batch["Environment"]["Variables"]
    # The API's function keeps its 30 s and gets no batch grants.
    api_functions = [
        p for p in by_id.values() if p.get("Description") == "maas: OIP v2 prediction for model digits"
    ]
    assert [p["Timeout"] for p in api_functions] == [30]
    assert "MAAS_IDEMPOTENCY_TABLE" not in api_functions[0]["Environment"]["Variables"]
    # One prediction's deadline sits under its function's timeout (and API Gateway's 30 s).
    assert api_functions[0]["Environment"]["Variables"]["MAAS_REQUEST_TIMEOUT_SECONDS"] == "28"
    assert batch["Environment"]["Variables"]["MAAS_REQUEST_TIMEOUT_SECONDS"] == "898"


def test_the_batch_function_may_send_the_parts_of_a_large_file_to_its_own_queue_only(tmp_path: Path) -> None:
    config = tmp_path / "maas.yaml"
    config.write_text(
        "stack_name: maas-batch\nmodels: [{name: digits, runtime: onnx, batch: true, batch_timeout_seconds: 900}]\n"
    )
    template = Template.from_stack(synth(config, tmp_path / "out"))
    (mapping,) = resources(template, "AWS::Lambda::EventSourceMapping")
    by_id = {key: f["Properties"] for key, f in template.find_resources("AWS::Lambda::Function").items()}
    batch = by_id[mapping["Properties"]["FunctionName"]["Ref"]]
    queue_arn = mapping["Properties"]["EventSourceArn"]
    queue_id = queue_arn["Fn::GetAtt"][0]
    assert batch["Environment"]["Variables"]["MAAS_BATCH_QUEUE_URL"] == {"Ref": queue_id}
    sends = [s for s in statements(template) if "sqs:SendMessage" in json.dumps(s["Action"])]
    assert sends and all(s["Resource"] == queue_arn for s in sends)
    api = [p for p in by_id.values() if p.get("Description") == "maas: OIP v2 prediction for model digits"]
    assert "MAAS_BATCH_QUEUE_URL" not in api[0]["Environment"]["Variables"]


def test_no_function_is_without_reserved_concurrency(template: Template) -> None:
    for function in resources(template, "AWS::Lambda::Function"):
        if function["Properties"].get("Description", "").startswith("maas"):
            assert function["Properties"].get("ReservedConcurrentExecutions", 0) >= 1, function["Properties"][
                "Description"
            ]


def test_the_registry_routes_have_their_own_throttle(template: Template) -> None:
    (stage,) = resources(template, "AWS::ApiGatewayV2::Stage")
    throttle = {"ThrottlingRateLimit": 10, "ThrottlingBurstLimit": 20}
    assert stage["Properties"]["RouteSettings"] == {
        f"{method} /registry/{{proxy+}}": throttle for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    }
    registry_routes = {
        r["Properties"]["RouteKey"]
        for r in resources(template, "AWS::ApiGatewayV2::Route")
        if "/registry/" in r["Properties"]["RouteKey"]
    }
    assert registry_routes == set(stage["Properties"]["RouteSettings"])
    assert stage["Properties"]["DefaultRouteSettings"]["ThrottlingRateLimit"] == 100


def test_npx_cdk_synth_works_offline_from_the_repository(tmp_path: Path) -> None:
    if not (REPO_ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.fail(
            "node_modules/.bin/cdk is missing: the README's set-up (make setup) installs it with npm ci"
        )
    import os

    done = subprocess.run(
        ["npx", "--no-install", "cdk", "synth", "--no-notices", "-q", "-o", str(tmp_path)],
        cwd=REPO_ROOT,
        env={**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "true", "AWS_EC2_METADATA_DISABLED": "true"},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "maas.template.json").is_file()


def test_a_construct_that_breaks_an_aws_solutions_rule_fails_the_synth(tmp_path: Path) -> None:
    # Proves the checks run: with the cdk-nag plugin left out, this synth would succeed.
    from app import build_app
    from aws_cdk import aws_sqs as sqs

    app = build_app(REPO_ROOT / "maas.yaml", outdir=str(tmp_path / "cdk.out"))
    (stack,) = [child for child in app.node.children if isinstance(child, Stack)]
    sqs.Queue(stack, "QueueWithoutDeadLettersOrTls")
    with pytest.raises(Exception, match=r"AwsSolutions-SQS[34]") as failure:
        app.synth()
    assert "QueueWithoutDeadLettersOrTls" in str(failure.value)


def test_no_role_may_list_the_whole_bucket(template: Template) -> None:
    """The registry lists its own prefixes (is an artifact stored? how big is an upload?),
    never batch inputs, outputs or captured payloads."""
    listing = [s for s in statements(template) if "s3:ListBucket" in json.dumps(s["Action"])]
    assert listing, "the registry's role lists its prefixes"
    for statement in listing:
        # The registry's (uploads and artifacts), or the reconciler's (artifacts alone).
        prefixes = statement["Condition"]["StringLike"]["s3:prefix"]
        assert set(statement["Condition"]) == {"StringLike"}
        assert prefixes in (["uploads/*", "artifacts/*"], ["artifacts/*"]), statement


def test_the_registry_function_fits_the_largest_upload_it_accepts(template: Template) -> None:
    (registry,) = [
        f["Properties"]
        for f in resources(template, "AWS::Lambda::Function")
        if f["Properties"]["Environment"]["Variables"].get("POWERTOOLS_SERVICE_NAME") == "maas-registry"
    ]
    assert registry["Environment"]["Variables"]["MAAS_MAX_UPLOAD_MB"] == "400"
    # /tmp holds the upload while it is loaded, and a SageMaker version's Triton package made
    # from it (about as large); memory holds the probe's load of it.
    assert registry["EphemeralStorage"] == {"Size": 2 * 400 + 256}
    assert registry["MemorySize"] == 1200
