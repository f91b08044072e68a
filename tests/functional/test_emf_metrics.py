"""What the predict function prints for CloudWatch is valid Embedded Metric Format, with the
metrics and bounded dimensions maas documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maas.local.context import LocalLambdaContext
from maas.local.events import http_api_event
from maas.local.gateway import load_handler_module
from tests.conftest import PREDICT_HANDLER

ROW = [0.0] * 64


def assert_valid_emf(record: dict[str, Any]) -> None:
    """The EMF specification's rules for the `_aws` metadata and its members."""
    metadata = record["_aws"]
    assert isinstance(metadata["Timestamp"], int) and metadata["Timestamp"] > 1_600_000_000_000
    directives = metadata["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for directive in directives:
        assert isinstance(directive["Namespace"], str) and 1 <= len(directive["Namespace"]) <= 255
        assert isinstance(directive["Dimensions"], list)
        for dimension_set in directive["Dimensions"]:
            assert isinstance(dimension_set, list) and len(dimension_set) <= 30
            for name in dimension_set:
                assert isinstance(record[name], str), f"dimension {name} must be a string member"
        assert 1 <= len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert isinstance(metric["Name"], str) and metric["Name"]
            value = record[metric["Name"]]
            values = value if isinstance(value, list) else [value]
            assert 1 <= len(values) <= 100 and all(isinstance(v, int | float) for v in values)
            assert metric.get("Unit", "None") in {"Count", "Milliseconds", "Seconds", "None"}


def emitted(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


def by_metric(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {}
    for record in records:
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                found[metric["Name"]] = {"record": record, "dimensions": directive["Dimensions"]}
    return found


def test_an_inference_publishes_valid_emf_with_bounded_dimensions(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    monkeypatch.setenv("MAAS_MODEL_DIR", str(model_dir))
    module = load_handler_module(PREDICT_HANDLER)
    body = json.dumps(
        {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}]}
    ).encode()
    event = http_api_event(method="POST", target="/v2/models/digits/infer", headers={}, body=body)
    assert module.handler(event, LocalLambdaContext())["statusCode"] == 200
    records = emitted(capsys.readouterr().out)
    for record in records:
        assert_valid_emf(record)
    metrics = by_metric(records)
    assert {"ColdStart", "Requests", "EndToEndLatency", "InferenceLatency", "Served", "ModelLoadTime"} <= set(
        metrics
    )
    assert metrics["Requests"]["record"]["model"] == "digits"
    assert metrics["Served"]["record"]["version"] == "1"
    assert ["model", "version"] in metrics["InferenceLatency"]["dimensions"]
    assert all(record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MaaS" for record in records)


def test_errors_are_counted_by_class_and_unknown_names_do_not_mint_series(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    monkeypatch.setenv("MAAS_MODEL_DIR", str(model_dir))
    module = load_handler_module(PREDICT_HANDLER)
    capsys.readouterr()
    bad = http_api_event(method="POST", target="/v2/models/digits/infer", headers={}, body=b"{}")
    assert module.handler(bad, LocalLambdaContext())["statusCode"] == 400
    unknown = http_api_event(method="GET", target="/v2/models/random-1234", headers={}, body=b"")
    assert module.handler(unknown, LocalLambdaContext())["statusCode"] == 404
    records = emitted(capsys.readouterr().out)
    errors = [r for r in records if "Errors4xx" in r]
    assert [r["model"] for r in errors] == ["digits", "unknown"]
    assert not any("Errors5xx" in r for r in records)
