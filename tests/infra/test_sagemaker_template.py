"""What `cdk synth` makes of a model with target sagemaker: the endpoint, its config and
scaling, and the limits on its role, asserted by properties, never by logical IDs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import synth

pytestmark = pytest.mark.infra

ENDPOINT = "maas-digits-large"  # <stack_name>-<model>, as the example maas.yaml names it


def only(template: Template, kind: str) -> dict[str, Any]:
    (resource,) = template.find_resources(kind).values()
    return resource["Properties"]


def role_statements(template: Template, assumed_by: str) -> list[dict[str, Any]]:
    roles = {
        logical
        for logical, role in template.find_resources("AWS::IAM::Role").items()
        if assumed_by in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    }
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {ref["Ref"] for ref in policy["Properties"]["Roles"]} & roles:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


@pytest.fixture(scope="module")
def canary_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """An EBS-backed instance type, a canary variant, and no data capture."""
    folder = tmp_path_factory.mktemp("canary")
    config = folder / "maas.yaml"
    config.write_text(
        "stack_name: team\nregion: eu-west-1\nmodels:\n"
        "  - {name: ranker, runtime: onnx, target: sagemaker, sagemaker: {version: 3, instance_type: ml.p3.2xlarge,"
        " initial_instance_count: 2, canary: {version: 4, weight: 10},"
        " autoscaling: {min_instances: 2, max_instances: 8, target_invocations_per_instance: 250}}}\n"
    )
    return Template.from_stack(synth(config, folder / "out"))


def test_the_example_deploys_one_endpoint_on_a_gpu_instance_running_triton(template: Template) -> None:
    endpoint = only(template, "AWS::SageMaker::Endpoint")
    assert endpoint["EndpointName"] == ENDPOINT
    assert {"Key": "maas:alias", "Value": "prod"} in endpoint["Tags"]
    config = only(template, "AWS::SageMaker::EndpointConfig")
    (variant,) = config["ProductionVariants"]
    assert variant["VariantName"] == "v1"
    assert variant["InstanceType"] == "ml.g5.xlarge"
    assert variant["InitialInstanceCount"] == 1
    assert variant["InitialVariantWeight"] == 100
    model = only(template, "AWS::SageMaker::Model")
    container = model["PrimaryContainer"]
    assert (
        container["Image"] == "763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3"
    )
    assert container["Environment"] == {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": "digits-large"}
    assert "/artifacts/digits-large/v1/model.tar.gz" in json.dumps(container["ModelDataUrl"])
    assert model["EnableNetworkIsolation"] is True


def test_the_endpoint_scales_on_invocations_per_instance(template: Template) -> None:
    target = only(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["ResourceId"] == f"endpoint/{ENDPOINT}/variant/v1"
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    policy = only(template, "AWS::ApplicationAutoScaling::ScalingPolicy")
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 100
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }


def test_data_capture_writes_inputs_and_outputs_to_the_artifact_bucket(template: Template) -> None:
    capture = only(template, "AWS::SageMaker::EndpointConfig")["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == 10
    assert {option["CaptureMode"] for option in capture["CaptureOptions"]} == {"Input", "Output"}
    assert "/datacapture/digits-large" in json.dumps(capture["DestinationS3Uri"])


def test_the_endpoint_role_reaches_only_its_artifacts_log_group_capture_and_image(template: Template) -> None:
    found = role_statements(template, "sagemaker.amazonaws.com")
    by_action = {json.dumps(s["Action"]): s for s in found}
    reads = by_action['"s3:GetObject"']
    assert "/artifacts/digits-large/*" in json.dumps(reads["Resource"])
    writes = by_action['"s3:PutObject"']
    assert "/datacapture/digits-large/*" in json.dumps(writes["Resource"])
    logs = next(s for s in found if "logs:PutLogEvents" in s["Action"])
    assert "LogGroup" in json.dumps(logs["Resource"]) or "Logs" in json.dumps(logs["Resource"])
    pulls = next(s for s in found if "ecr:BatchGetImage" in s["Action"])
    assert "repository/sagemaker-tritonserver" in json.dumps(pulls["Resource"])
    for statement in found:
        assert "s3:*" not in json.dumps(statement["Action"]) and "sagemaker:*" not in json.dumps(statement)
        if statement["Resource"] == "*":
            assert statement["Action"] in ("ecr:GetAuthorizationToken", "cloudwatch:PutMetricData")
    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"LogGroupName": f"/aws/sagemaker/Endpoints/{ENDPOINT}", "RetentionInDays": 30}
    )


def test_the_predict_function_may_invoke_only_its_endpoint(template: Template) -> None:
    found = role_statements(template, "lambda.amazonaws.com")
    invokes = [s for s in found if s["Action"] == "sagemaker:InvokeEndpoint"]
    assert len(invokes) == 1
    assert f":endpoint/{ENDPOINT}" in json.dumps(invokes[0]["Resource"])
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({"MAAS_SAGEMAKER_ENDPOINT_PREFIX": "maas"})}},
    )


def test_a_gpu_instance_with_local_nvme_gets_no_kms_key_which_sagemaker_refuses(template: Template) -> None:
    config = only(template, "AWS::SageMaker::EndpointConfig")
    assert "KmsKeyId" not in config


def test_an_ebs_backed_instance_encrypts_its_volume_with_a_rotated_key(canary_template: Template) -> None:
    config = only(canary_template, "AWS::SageMaker::EndpointConfig")
    assert "VolumeKey" in json.dumps(config["KmsKeyId"])
    canary_template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_a_canary_gets_a_second_variant_with_its_weight_and_its_own_scaling(
    canary_template: Template,
) -> None:
    config = only(canary_template, "AWS::SageMaker::EndpointConfig")
    weights = {v["VariantName"]: v["InitialVariantWeight"] for v in config["ProductionVariants"]}
    assert weights == {"v3": 90, "v4": 10}
    assert {v["InstanceType"] for v in config["ProductionVariants"]} == {"ml.p3.2xlarge"}
    assert {v["InitialInstanceCount"] for v in config["ProductionVariants"]} == {2}
    assert "DataCaptureConfig" not in config
    models = canary_template.find_resources("AWS::SageMaker::Model").values()
    images = {m["Properties"]["PrimaryContainer"]["Image"] for m in models}
    assert images == {"763104351884.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-tritonserver:24.09-py3"}
    targets = canary_template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert {t["Properties"]["ResourceId"] for t in targets} == {
        "endpoint/team-ranker/variant/v3",
        "endpoint/team-ranker/variant/v4",
    }
    assert {(t["Properties"]["MinCapacity"], t["Properties"]["MaxCapacity"]) for t in targets} == {(2, 8)}
    policies = canary_template.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    assert {p["Properties"]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] for p in policies} == {
        250
    }


def test_the_serverless_option_runs_on_cpu_without_instances_or_scaling(tmp_path: Path) -> None:
    config = tmp_path / "maas.yaml"
    config.write_text(
        "stack_name: mid\nmodels:\n"
        "  - {name: tagger, runtime: onnx, target: sagemaker, sagemaker: {serverless: {memory_mb: 6144, max_concurrency: 20}}}\n"
    )
    template = Template.from_stack(synth(config, tmp_path / "out"))
    (variant,) = only(template, "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 6144, "MaxConcurrency": 20}
    assert "InstanceType" not in variant
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)
