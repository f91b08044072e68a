"""SnapStart and Lambda's JSON logs on the prediction functions, as `maas.yaml` asks for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.infra.conftest import synth

pytestmark = pytest.mark.infra


def prediction_functions(template: Template) -> list[dict[str, Any]]:
    functions = template.find_resources("AWS::Lambda::Function").values()
    return [
        f["Properties"] for f in functions if "OIP v2 prediction" in f["Properties"].get("Description", "")
    ]


def test_every_prediction_function_snap_starts_its_published_versions_and_logs_json(
    template: Template,
) -> None:
    functions = prediction_functions(template)
    assert len(functions) == 3  # digits, digits-tflite and digits-large (its SageMaker proxy)
    for function in functions:
        assert function["Runtime"] == "python3.12"
        assert function["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        assert function["LoggingConfig"]["LogFormat"] == "JSON"
    # The `live` alias API Gateway invokes points at a published version, which SnapStart serves.
    for alias in template.find_resources("AWS::Lambda::Alias").values():
        assert "ProvisionedConcurrencyConfig" not in alias["Properties"]


def test_snapstart_false_turns_it_off_and_allows_provisioned_concurrency(tmp_path: Path) -> None:
    config = tmp_path / "maas.yaml"
    config.write_text(
        "models:\n"
        "  - {name: digits, runtime: onnx, snapstart: false, provisioned_concurrency: 2}\n"
        "  - {name: other, runtime: tflite, architecture: x86_64}\n"
    )
    template = Template.from_stack(synth(config, tmp_path / "out"))
    by_model = {f["Description"].rsplit(" ", 1)[-1]: f for f in prediction_functions(template)}
    assert "SnapStart" not in by_model["digits"]
    assert by_model["other"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}  # the x86_64 TFLite layer
    assert [
        a["Properties"]["ProvisionedConcurrencyConfig"]
        for a in template.find_resources("AWS::Lambda::Alias").values()
        if "ProvisionedConcurrencyConfig" in a["Properties"]
    ] == [{"ProvisionedConcurrentExecutions": 2}]
