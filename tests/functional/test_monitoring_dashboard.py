"""The Grafana dashboard answers its questions from what the functions really publish.

The predict and registry functions run as deployed (Powertools service names, EMF on) and
their EMF records become CloudWatch metrics as CloudWatch Logs makes them; Lambda and
SageMaker metrics are put with the dimension sets AWS publishes them under. The exporter
reads it all, and each dashboard query is evaluated on what it serves: its series must
exist with the labels it groups by, and its answer must be the true figure (a request
counted once, not once per dimension set or once per function).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.metrics.provider.cold_start import reset_cold_start_flag
from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from maas.local.context import LocalLambdaContext
from maas.local.demo import ensure_demo_models
from maas.local.events import http_api_event
from maas.local.gateway import load_handler_module
from maas.local.lambda_containers import put_emf_metrics
from maas.metrics.emf import batch_done
from maas.metrics.exporter import CloudWatchCollector
from tests.conftest import PREDICT_HANDLER, REPO_ROOT

DASHBOARD = REPO_ROOT / "examples" / "monitoring" / "grafana-dashboard.json"
REGISTRY_HANDLER = REPO_ROOT / "functions" / "registry" / "handler.py"
# moto's GetMetricData matches datapoints by name and dimensions in any namespace: a region of
# its own keeps other tests' digits figures out of this one.
REGION = "eu-west-3"
FUNCTION = "maas-predict-digits"  # the deployed function of model digits
ENDPOINT = "maas-large"
ROW = [0.0] * 64
Sample = tuple[str, dict[str, str], float]

# What each query (named by its series) must answer, from what the test did below.
POSITIVE = object()
INTENT: dict[str, dict[tuple[str, ...], object]] = {
    # 4 inferences, a bad body and a missing version for digits; an unknown model; the
    # registry API's own requests are not inference requests.
    "maas_requests_sum": {("digits",): 6.0, ("unknown",): 1.0},
    "maas_errors4xx_sum": {("digits",): 2.0, ("unknown",): 1.0},
    "maas_errors5xx_sum": {},
    "maas_inference_latency_p99": {("digits",): POSITIVE},
    "maas_end_to_end_latency_average": {("digits",): POSITIVE, ("unknown",): POSITIVE},
    "maas_end_to_end_latency_maximum": {("digits",): POSITIVE, ("unknown",): POSITIVE},
    "maas_served_sum": {("digits", "1"): 2.0, ("digits", "2"): 2.0},
    "maas_cold_start_sum": {("maas-predict",): 1.0, ("maas-registry",): 1.0},
    "maas_model_load_time_maximum": {("digits",): POSITIVE},
    "aws_lambda_duration_p99": {(FUNCTION,): 300.0},
    "aws_lambda_throttles_sum": {(FUNCTION,): 2.0},  # not 6: one per dimension set
    "maas_batch_rows_sum": {("digits",): 10.0},
    "maas_batch_rows_failed_sum": {("digits",): 3.0},
    "aws_sagemaker_endpoints_gpuutilization_average": {(ENDPOINT,): 50.0},
}
# moto computes no percentiles: a p99 query is evaluated on the Maximum of the same series
# (same labels), and the exporter must have asked CloudWatch for the p99 itself.
PERCENTILE_TWINS = {
    "maas_inference_latency_p99": ("maas_inference_latency_maximum", "InferenceLatency"),
    "aws_lambda_duration_p99": ("aws_lambda_duration_maximum", "Duration"),
}

QUERY = re.compile(r"^(sum|max|avg) by \(([\w, ]+)\) \(([a-z0-9_]+)(?:\{(.*)\})?\)$")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def promql(expression: str, samples: list[Sample]) -> tuple[str, list[str], dict[tuple[str, ...], float]]:
    """The dashboard's one query shape, `AGG by (labels) (name{matchers})`, as Prometheus
    evaluates it, with $model at All; returns the name, the labels and the answer."""
    shape = QUERY.match(expression)
    assert shape, f"the dashboard test cannot evaluate {expression!r}: give it the usual shape"
    aggregate, by, name, selector = shape.groups()
    labels = [label.strip() for label in by.split(",")]
    matchers = MATCHER.findall(selector or "")
    groups: dict[tuple[str, ...], list[float]] = {}
    for sample_name, sample_labels, value in samples:
        if sample_name == name and all(matches(sample_labels, *matcher) for matcher in matchers):
            groups.setdefault(tuple(sample_labels.get(label, "") for label in labels), []).append(value)
    combine: dict[str, Callable[[list[float]], float]] = {
        "sum": sum,
        "max": max,
        "avg": lambda values: sum(values) / len(values),
    }
    return name, labels, {group: combine[aggregate](values) for group, values in groups.items()}


def matches(sample: dict[str, str], label: str, operator: str, value: str) -> bool:
    actual = sample.get(label, "")  # in Prometheus a missing label is ""
    if operator in ("=~", "!~"):
        found = re.fullmatch(value.replace("$model", ".*"), actual) is not None
        return found if operator == "=~" else not found
    return (actual == value) if operator == "=" else (actual != value)


def emf_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


def put_as_aws_publishes(
    client: Any, namespace: str, name: str, dimension_sets: list[dict[str, str]], values: list[float]
) -> None:
    now = datetime.now(UTC)
    client.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {"MetricName": name, "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
             "Value": value, "Timestamp": now}
            for dimensions in dimension_sets
            for value in values
        ],
    )  # fmt: skip


@pytest.fixture
def deployed_like(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The environment of the deployed functions, on the embedded AWS in a region of its own;
    returns a model directory with digits versions 1 and 2."""
    for name, value in {
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": FUNCTION,
        "POWERTOOLS_METRICS_NAMESPACE": "MaaS",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    from maas.registry import table_definition

    boto3.client("dynamodb").create_table(**table_definition("dashboard-registry"))
    boto3.client("s3").create_bucket(
        Bucket="dashboard-artifacts", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    models = tmp_path / "models"
    ensure_demo_models(models)
    shutil.copytree(models / "digits" / "1", models / "digits" / "2")
    monkeypatch.setenv("MAAS_MODEL_DIR", str(models))
    return models


def test_every_dashboard_query_answers_the_true_figure_from_what_the_functions_publish(
    deployed_like: Path,
    aws_endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}]})
    reset_cold_start_flag()  # each function is its own container, with its own cold start
    predict = load_handler_module(PREDICT_HANDLER)
    for method, target, payload, status in [
        ("POST", "/v2/models/digits/versions/1/infer", body, 200),
        ("POST", "/v2/models/digits/versions/1/infer", body, 200),
        ("POST", "/v2/models/digits/infer", body, 200),  # the latest: version 2
        ("POST", "/v2/models/digits/infer", body, 200),
        ("POST", "/v2/models/digits/infer", "{}", 400),
        ("GET", "/v2/models/digits/versions/9", "", 404),
        ("GET", "/v2/models/nobody", "", 404),
    ]:
        event = http_api_event(method=method, target=target, headers={}, body=payload.encode())
        assert predict.handler(event, LocalLambdaContext())["statusCode"] == status
    monkeypatch.setenv("MAAS_REGISTRY_TABLE", "dashboard-registry")
    monkeypatch.setenv("MAAS_ARTIFACT_BUCKET", "dashboard-artifacts")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "maas-registry")
    reset_cold_start_flag()
    registry = load_handler_module(REGISTRY_HANDLER)
    for _ in range(2):
        event = http_api_event(method="GET", target="/registry/models", headers={}, body=b"")
        assert registry.handler(event, LocalLambdaContext(function_name="maas-registry"))["statusCode"] == 200
    batch_done("digits", 10, 3)  # what the batch handler publishes for a file of 10 rows, 3 failed
    records = emf_lines(capsys.readouterr().out)
    assert records, "the functions published no EMF"
    for record in records:
        put_emf_metrics(aws_endpoint, record)

    cloudwatch = boto3.client("cloudwatch", endpoint_url=aws_endpoint, region_name=REGION)
    # Lambda files a function invoked through an alias under three dimension sets.
    lambda_sets = [
        {"FunctionName": FUNCTION},
        {"FunctionName": FUNCTION, "Resource": f"{FUNCTION}:live"},
        {"FunctionName": FUNCTION, "ExecutedVersion": "3"},
    ]
    put_as_aws_publishes(cloudwatch, "AWS/Lambda", "Throttles", lambda_sets, [1.0, 1.0])
    put_as_aws_publishes(cloudwatch, "AWS/Lambda", "Duration", lambda_sets, [12.0, 300.0])
    put_as_aws_publishes(
        cloudwatch, "/aws/sagemaker/Endpoints", "GPUUtilization",
        [{"EndpointName": ENDPOINT, "VariantName": "v1"}], [40.0, 60.0],
    )  # fmt: skip

    collector = CloudWatchCollector(
        cloudwatch,
        namespaces=("MaaS", "AWS/Lambda", "/aws/sagemaker/Endpoints"),
        stats=("Sum", "Average", "Maximum", "p99"),
        dimension_filters={"AWS/Lambda": {"FunctionName": [FUNCTION]}},
        delay=-60,
    )
    registry_of_series = CollectorRegistry()
    registry_of_series.register(collector)
    samples: list[Sample] = [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(generate_latest(registry_of_series).decode())
        for sample in family.samples
    ]
    unanswered = {
        labels["metric"] for name, labels, _ in samples if name == "maas_exporter_query_errors_total"
    }

    dashboard = json.loads(DASHBOARD.read_text())
    problems = [
        problem
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for problem in wrong_answers(target["expr"], samples, unanswered)
    ]
    assert not problems, "\n".join(problems)
    queried = {QUERY.match(t["expr"]).group(3) for p in dashboard["panels"] for t in p["targets"]}  # type: ignore[union-attr]
    assert queried == INTENT.keys(), "a query the dashboard lost, or one without an intent"
    variable = dashboard["templating"]["list"][1]["query"]
    selector = re.fullmatch(r"label_values\((.+), model\)", variable)
    assert selector, variable
    _, _, models = promql(f"sum by (model) ({selector.group(1)})", samples)
    assert set(models) == {("digits",), ("unknown",)}, "the $model choices are the served models"


def wrong_answers(expression: str, samples: list[Sample], unanswered: set[str]) -> list[str]:
    """What is wrong with the answer of `expression` against its INTENT (nothing: [])."""
    shape = QUERY.match(expression)
    name = shape.group(3) if shape else expression
    if name not in INTENT:
        return [f"{expression}: no intent says what it must answer"]
    twin, metric = PERCENTILE_TWINS.get(name, (None, None))
    if metric is not None and metric not in unanswered:
        return [f"{expression}: the exporter never asked CloudWatch for the {metric} p99"]
    _, labels, answer = promql(expression.replace(name, twin) if twin else expression, samples)
    expected = INTENT[name]
    if answer.keys() != expected.keys():
        return [f"{expression}: answered {answer}, expected the groups {sorted(expected)}"]
    problems = []
    for group, value in answer.items():
        want = expected[group]
        if not all(group):
            problems.append(f"{expression}: a series lacks one of the labels {labels}: {group}")
        elif (want is POSITIVE and not value > 0) or (want is not POSITIVE and value != pytest.approx(want)):
            problems.append(f"{expression}: {group} is {value}, the true figure is {want}")
    return problems
