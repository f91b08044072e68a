"""Adversarial checks of the synthesized reconciler (review of ac3c4b9..2b01b68)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from tests.conftest import REPO_ROOT
from tests.infra.conftest import synth

pytestmark = pytest.mark.infra


def test_a_global_registry_table_still_synthesizes(tmp_path: Path) -> None:
    """A TableV2 with replicas (a global table) must stream NEW_AND_OLD_IMAGES, and so it does."""
    text = (
        (REPO_ROOT / "maas.yaml").read_text().replace("replica_regions: []", "replica_regions: [eu-west-1]")
    )
    config = tmp_path / "maas.yaml"
    config.write_text(text)
    template = Template.from_stack(synth(config, tmp_path / "out"))
    template.resource_count_is("AWS::DynamoDB::GlobalTable", 1)
    template.has_resource_properties(
        "AWS::DynamoDB::GlobalTable", {"StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"}}
    )


def test_the_reconciler_may_read_the_stacks_own_model_and_config(tmp_path: Path) -> None:
    """The first reconcile after `cdk deploy` describes the config and model CloudFormation
    made; they carry no explicit name (CloudFormation generates one), so the reconciler's role
    must name them by reference, beside its `<prefix>-*` ones."""
    import json

    template = Template.from_stack(synth(REPO_ROOT / "maas.yaml", tmp_path / "out"))
    described = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == ["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"]
    ]
    (statement,) = described
    refs = {json.dumps(resource) for resource in statement["Resource"]}
    for kind in ("AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Model"):
        for logical in template.find_resources(kind):
            assert json.dumps({"Ref": logical}) in refs, f"{logical} cannot be described by the reconciler"
