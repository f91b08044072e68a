"""What `cdk synth` makes of the control plane's reconciler: the registry table's stream,
filtered to alias changes, retried and then dead-lettered; SageMaker's state changes and a
schedule as its other triggers; a role held to this stack's endpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import synth
from tests.infra.test_sagemaker_template import role_statements

pytestmark = pytest.mark.infra


def reconciler(template: Template) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical, function["Properties"])
        for logical, function in template.find_resources("AWS::Lambda::Function").items()
        if "reconciler" in json.dumps(function["Properties"].get("Description", ""))
        or "moves SageMaker endpoints" in function["Properties"].get("Description", "")
    ]
    return found


def test_the_registry_table_streams_its_changes(template: Template) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::GlobalTable", {"StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"}}
    )


def test_alias_changes_on_the_stream_trigger_the_reconciler_with_retries_and_a_dead_letter_queue(
    template: Template,
) -> None:
    logical, function = reconciler(template)
    assert function["Environment"]["Variables"]["MAAS_SAGEMAKER_ENDPOINT_PREFIX"] == "maas"
    (mapping,) = [
        m["Properties"]
        for m in template.find_resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": logical}
    ]
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["MaximumRetryAttempts"] == 5
    assert "DestinationConfig" in mapping and "OnFailure" in mapping["DestinationConfig"]
    (pattern,) = [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]]
    assert pattern == {"dynamodb": {"Keys": {"sk": {"S": [{"prefix": "A#"}]}}}}
    assert "GetAtt" in json.dumps(mapping["EventSourceArn"]) and "StreamArn" in json.dumps(
        mapping["EventSourceArn"]
    )


def test_endpoint_state_changes_and_a_schedule_also_reach_the_reconciler(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Endpoint State Change"],
                "detail": {"EndpointName": [{"prefix": "maas-"}]},
            },
            "Targets": Match.any_value(),
        },
    )
    template.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(5 minutes)"})
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"AlarmDescription": "alias changes the reconciler could not apply after its retries"},
    )


def test_the_reconciler_may_pass_only_the_endpoint_role_and_only_to_sagemaker(template: Template) -> None:
    passing = [s for s in role_statements(template, "lambda.amazonaws.com") if s["Action"] == "iam:PassRole"]
    (statement,) = passing
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert statement["Resource"] != "*"
    writes = [
        s
        for s in role_statements(template, "lambda.amazonaws.com")
        if isinstance(s["Action"], list) and "sagemaker:UpdateEndpoint" in s["Action"]
    ]
    (update,) = writes
    assert all("maas-*" in json.dumps(resource) for resource in update["Resource"])


def test_a_stack_without_sagemaker_models_has_no_reconciler(tmp_path: Path) -> None:
    config = tmp_path / "maas.yaml"
    config.write_text("stack_name: small\nregion: us-east-1\nmodels:\n  - {name: digits, runtime: onnx}\n")
    template = Template.from_stack(synth(config, tmp_path / "out"))
    descriptions = [
        f["Properties"].get("Description", "")
        for f in template.find_resources("AWS::Lambda::Function").values()
    ]
    assert not any("moves SageMaker endpoints" in d for d in descriptions)
    template.resource_count_is("AWS::Lambda::EventSourceMapping", 0)  # no batch: no queue either
