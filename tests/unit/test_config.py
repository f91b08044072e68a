"""maas.yaml: the example loads, and mistakes are named by field."""

from __future__ import annotations

from pathlib import Path

import pytest

from maas.cli import main
from maas.config import EXAMPLE, load_config
from maas.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_repository_example_serves_both_demo_models_and_one_on_sagemaker() -> None:
    config = load_config(REPO_ROOT / "maas.yaml")
    assert [(m.name, m.runtime.value, m.target.value) for m in config.models] == [
        ("digits", "onnx", "lambda"),
        ("digits-tflite", "tflite", "lambda"),
        ("digits-large", "onnx", "sagemaker"),
    ]
    large = config.models[2].sagemaker
    assert large is not None
    assert (large.version, large.instance_type, large.autoscaling.max_instances) == (1, "ml.g5.xlarge", 4)
    assert config.api.auth == "iam"


def test_maas_init_writes_the_commented_example_and_will_not_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "maas.yaml"
    assert main(["init", str(tmp_path)]) == 0
    assert target.read_text() == EXAMPLE
    assert load_config(target).models[0].name == "digits"
    assert main(["init", str(tmp_path)]) == 2
    assert "not overwriting" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: []", "models: List should have at least 1 item"),
        (
            "models:\n  - name: a\n    runtime: pytorch",
            "models.0.runtime: Input should be 'onnx' or 'tflite'",
        ),
        (
            "models:\n  - name: a\n    runtime: onnx\n    memory_mb: 64",
            "models.0.memory_mb: Input should be greater than or equal to 128",
        ),
        (
            "models:\n  - name: a\n    runtime: onnx\n    memroy_mb: 512",
            "models.0.memroy_mb: Extra inputs are not permitted",
        ),
        ("models:\n  - name: ../a\n    runtime: onnx", "models.0.name"),
        ("models:\n  - {name: a, runtime: onnx}\n  - {name: a, runtime: tflite}", "repeated: a"),
        ("api: {auth: jwt}\nmodels: [{name: a, runtime: onnx}]", "auth 'jwt' needs a jwt section"),
        (
            "models: [{name: a, runtime: onnx, reserved_concurrency: 1, provisioned_concurrency: 2}]",
            "provisioned_concurrency cannot exceed reserved_concurrency",
        ),
        (
            "models: [{name: a, runtime: tflite, target: sagemaker}]",
            "target 'sagemaker' serves ONNX models",
        ),
        (
            "models: [{name: a, runtime: onnx, sagemaker: {version: 2}}]",
            "a sagemaker section needs target: sagemaker",
        ),
        (
            "models: [{name: a, runtime: onnx, target: sagemaker, sagemaker: {canary: {version: 1, weight: 5}}}]",
            "canary.version must differ from version (1)",
        ),
        (
            "models: [{name: a, runtime: onnx, target: sagemaker, sagemaker: {instance_type: g5.xlarge}}]",
            "models.0.sagemaker.instance_type: String should match pattern",
        ),
        (
            "models: [{name: a, runtime: onnx, target: sagemaker,"
            " sagemaker: {autoscaling: {min_instances: 3, max_instances: 2}}}]",
            "min_instances cannot exceed max_instances",
        ),
        ("models: [", "is not valid YAML"),
        ("- just a list", "must hold a mapping"),
    ],
)
def test_a_bad_file_is_refused_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "maas.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in caught.value.message
    assert str(path) in caught.value.message


def test_a_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="maas init"):
        load_config(tmp_path / "nope.yaml")


def test_maas_deploy_checks_the_config_before_starting_cdk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "maas.yaml"
    bad.write_text("models: [{name: digits, runtime: caffe}]\n")
    assert main(["deploy", "--config", str(bad)]) == 2
    assert "models.0.runtime" in capsys.readouterr().err
