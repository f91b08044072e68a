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
    assert {"model": "digits", "version": "1", "service": "predict"} in published(records)["Served"]
    assert all(record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MaaS" for record in records)


def published(records: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """Each metric's datapoints as CloudWatch files them: one per dimension set of its directive."""
    found: dict[str, list[dict[str, str]]] = {}
    for record in records:
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                for dimension_set in directive["Dimensions"]:
                    found.setdefault(metric["Name"], []).append(
                        {name: record[name] for name in dimension_set}
                    )
    return found


def test_an_inference_is_one_request_of_its_model_and_its_version_figures_are_filed_apart(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    monkeypatch.setenv("MAAS_MODEL_DIR", str(model_dir))
    module = load_handler_module(PREDICT_HANDLER)
    body = json.dumps(
        {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}]}
    ).encode()
    capsys.readouterr()
    event = http_api_event(method="POST", target="/v2/models/digits/versions/1/infer", headers={}, body=body)
    assert module.handler(event, LocalLambdaContext())["statusCode"] == 200
    records = emitted(capsys.readouterr().out)
    for record in records:
        assert_valid_emf(record)
    figures = published(records)
    per_model = {"model": "digits", "service": "predict"}
    per_version = {"model": "digits", "version": "1", "service": "predict"}
    # Summing a figure over one dimension set must give the true count: one series per set.
    assert figures["Requests"] == [per_model]
    assert figures["EndToEndLatency"] == [per_model]
    for name in ("InferenceLatency", "Served"):
        assert sorted(figures[name], key=len) == [per_model, per_version], name


@pytest.mark.parametrize(
    "case",
    [
        ("POST", "/v2/models/digits/infer", b"{}", 400, "digits"),
        ("POST", "/v2/models/digits/infer", b"{not json", 400, "digits"),
        ("POST", "/v2/models/digits/versions/99/infer", b"{}", 404, "digits"),
        ("GET", "/v2/models/digits/versions/99", b"", 404, "digits"),
        ("GET", "/v2/models/digits/versions/a..b/ready", b"", 400, "digits"),
        ("GET", "/v2/models/random-1234", b"", 404, "unknown"),
        ("POST", "/v2/models/random-1234/infer", b"{}", 404, "unknown"),
        ("GET", "/v2/models/random..1234", b"", 400, "unknown"),
        ("GET", "/v2/models/random-5678/versions/a..b", b"", 400, "unknown"),
    ],
)
def test_a_4xx_for_a_real_model_is_counted_under_it_and_unknown_names_stay_unknown(
    model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str, str, bytes, int, str],
) -> None:
    method, target, body, status, model = case
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    monkeypatch.setenv("MAAS_MODEL_DIR", str(model_dir))
    module = load_handler_module(PREDICT_HANDLER)
    capsys.readouterr()
    event = http_api_event(method=method, target=target, headers={}, body=body)
    assert module.handler(event, LocalLambdaContext())["statusCode"] == status
    figures = published(emitted(capsys.readouterr().out))
    assert figures["Errors4xx"] == [{"model": model, "service": "predict"}]
    assert figures["Requests"] == [{"model": model, "service": "predict"}]
    assert "Errors5xx" not in figures


def test_on_maas_dev_each_second_of_records_becomes_the_true_figures_in_cloudwatch(aws_endpoint: str) -> None:
    import io
    from datetime import UTC, datetime, timedelta

    import boto3

    from maas.local.emf_logs import EmfToCloudWatch

    cloudwatch = boto3.client("cloudwatch", endpoint_url=aws_endpoint, region_name="us-east-1")
    sink = EmfToCloudWatch(cloudwatch)
    sink.stream = io.StringIO()
    for latency in range(1, 101):  # a hundred requests, as the predict function prints them
        record = {
            "_aws": {
                "Timestamp": 1,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "MaaS",
                        "Dimensions": [["model", "service"]],
                        "Metrics": [{"Name": "Requests", "Unit": "Count"}, {"Name": "EndToEndLatency"}],
                    }
                ],
            },
            "model": "summed-per-second",
            "service": "predict",
            "Requests": [1.0],
            "EndToEndLatency": float(latency),
        }
        print(json.dumps(record), file=sink)
    print("a log line, not a record", file=sink)
    print('{"_aws": half a record', file=sink)
    sink.send()
    assert sink.stream.getvalue() == 'a log line, not a record\n{"_aws": half a record\n'

    dimensions = [{"Name": "model", "Value": "summed-per-second"}, {"Name": "service", "Value": "predict"}]
    now = datetime.now(UTC)
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": f"q{index}",
                "MetricStat": {
                    "Metric": {"Namespace": "MaaS", "MetricName": metric, "Dimensions": dimensions},
                    "Period": 60,
                    "Stat": stat,
                },
            }
            for index, (metric, stat) in enumerate(
                [("Requests", "Sum"), ("EndToEndLatency", "Average"), ("EndToEndLatency", "Maximum"),
                 ("EndToEndLatency", "SampleCount")]
            )
        ],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
    )  # fmt: skip
    figures = {result["Id"]: sum(result["Values"]) for result in answer["MetricDataResults"]}
    assert figures == {"q0": 100.0, "q1": 50.5, "q2": 100.0, "q3": 100.0}


def test_a_registry_that_cannot_answer_leaves_a_4xx_unknown_and_the_answer_unchanged(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aws_lambda_powertools import Metrics

    from maas.dataplane import DataPlane
    from maas.http.resolver import build_predict_app
    from maas.sources import DirectorySource

    class Unreachable(DirectorySource):
        def versions(self, name: str) -> list[str]:
            raise ConnectionError("the registry table cannot be reached")

    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    metrics = Metrics(namespace="MaaS", service="predict")
    app = build_predict_app(DataPlane(Unreachable(model_dir)), metrics)
    capsys.readouterr()
    event = http_api_event(method="GET", target="/v2/models/digits/versions/99", headers={}, body=b"")
    answer = app.resolve(event, LocalLambdaContext())
    metrics.flush_metrics()
    assert answer["statusCode"] == 404
    assert "version '99' not found" in answer["body"]
    assert published(emitted(capsys.readouterr().out))["Errors4xx"] == [
        {"model": "unknown", "service": "predict"}
    ]
