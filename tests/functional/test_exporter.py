"""CloudWatch metrics come out of /metrics with YACE's names and labels, using GetMetricData
only, ceil(queries / 500) calls per read, and at most one read per interval."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from maas.metrics.exporter import CloudWatchCollector, snake


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cloudwatch(aws_endpoint: str) -> tuple[Any, Counter[str]]:
    client = boto3.client("cloudwatch", endpoint_url=aws_endpoint, region_name="us-east-1")
    calls: Counter[str] = Counter()
    client.meta.events.register(
        "before-call.cloudwatch.*", lambda event_name, **_: calls.update([event_name.split(".")[-1]])
    )
    return client, calls


# Every test writes its own label values: moto's GetMetricData matches a metric by name and
# dimensions in any namespace, so shared labels would mix tests' datapoints.
# The tests read datapoints written a moment ago: an end time in the future includes them
# (a deployed exporter waits `delay` seconds for CloudWatch to settle instead).


def put(client: Any, namespace: str, name: str, dimensions: dict[str, str], values: list[float]) -> None:
    now = datetime.now(UTC)
    client.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                "Value": v,
                "Timestamp": now,
            }
            for v in values
        ],
    )


def scrape(collector: CloudWatchCollector) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    registry = CollectorRegistry()
    registry.register(collector)
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_come_out_with_yace_names_labels_and_values(cloudwatch: tuple[Any, Counter[str]]) -> None:
    client, calls = cloudwatch
    namespace = "MaaS/Test1"
    put(client, namespace, "InferenceLatency", {"model": "first", "version": "2"}, [1.0, 2.0, 9.0])
    put(client, namespace, "Requests", {"model": "first"}, [1.0, 1.0, 1.0, 1.0])
    collector = CloudWatchCollector(client, namespaces=(namespace,), delay=-60, clock=Clock())
    series = scrape(collector)
    labels = (("model", "first"), ("version", "2"))
    assert series["maas_test1_inference_latency_average"][labels] == pytest.approx(4.0)
    assert series["maas_test1_inference_latency_maximum"][labels] == 9.0
    assert series["maas_test1_requests_sum"][(("model", "first"),)] == 4.0
    assert calls["GetMetricStatistics"] == 0
    assert calls["GetMetricData"] == 1
    assert series["maas_exporter_cloudwatch_requests_total"][(("api", "GetMetricData"),)] == 1
    assert series["maas_exporter_metrics_requested_total"][()] == 6  # 2 metrics x 3 statistics


def test_get_metric_data_is_called_once_per_500_queries_and_once_per_interval(
    cloudwatch: tuple[Any, Counter[str]],
) -> None:
    client, calls = cloudwatch
    namespace = "MaaS/Test2"
    for index in range(210):
        put(client, namespace, "Requests", {"model": f"m{index}"}, [1.0])
    clock = Clock()
    collector = CloudWatchCollector(
        client,
        namespaces=(namespace,),
        stats=("Sum", "Average", "Maximum"),
        delay=-60,
        interval=60,
        clock=clock,
    )
    series = scrape(collector)
    assert len(series["maas_test2_requests_sum"]) == 210
    assert calls["GetMetricData"] == math.ceil(210 * 3 / 500) == 2
    clock.now += 30
    scrape(collector)  # within the interval: served from the cache
    assert calls["GetMetricData"] == 2
    clock.now += 31
    scrape(collector)
    assert calls["GetMetricData"] == 4
    assert calls["GetMetricStatistics"] == 0


def test_throttling_serves_the_last_values_and_backs_off(cloudwatch: tuple[Any, Counter[str]]) -> None:
    client, _ = cloudwatch
    namespace = "MaaS/Test3"
    put(client, namespace, "Requests", {"model": "third"}, [5.0])
    clock = Clock()
    collector = CloudWatchCollector(client, namespaces=(namespace,), delay=-60, interval=60, clock=clock)
    assert scrape(collector)["maas_test3_requests_sum"][(("model", "third"),)] == 5.0

    def throttled(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "GetMetricData")

    collector.client = type(
        "Throttled", (), {"get_paginator": client.get_paginator, "get_metric_data": staticmethod(throttled)}
    )()
    clock.now += 61
    series = scrape(collector)
    assert series["maas_test3_requests_sum"][(("model", "third"),)] == 5.0
    assert series["maas_exporter_throttled_total"][()] == 1
    clock.now += 61  # backing off: no second attempt yet
    assert scrape(collector)["maas_exporter_throttled_total"][()] == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [("InferenceLatency", "inference_latency"), ("AWS/Lambda", "aws_lambda"), ("4XXError", "4xx_error")],
)
def test_names_are_snake_cased_like_yace(name: str, expected: str) -> None:
    assert snake(name.replace("/", "_")) == expected


def test_the_metrics_route_serves_prometheus_text_through_the_lambda_handler(
    cloudwatch: tuple[Any, Counter[str]], aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maas.local.context import LocalLambdaContext
    from maas.local.events import http_api_event, http_response
    from maas.local.gateway import load_handler_module
    from tests.conftest import REPO_ROOT

    client, _ = cloudwatch
    # A label no other test writes: moto's GetMetricData matches metrics across namespaces.
    put(client, "MaaS/Route", "Requests", {"model": "routed"}, [2.0])
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("MAAS_EXPORTER_NAMESPACES", '["MaaS/Route"]')
    monkeypatch.setenv("MAAS_EXPORTER_DELAY", "-60")
    monkeypatch.setenv("MAAS_EXPORTER_STATS", '["Sum"]')  # moto cannot compute percentiles
    module = load_handler_module(REPO_ROOT / "functions" / "metrics" / "handler.py")
    event = http_api_event(method="GET", target="/metrics", headers={}, body=b"")
    response = http_response(module.handler(event, LocalLambdaContext()))
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.body.decode())}
    (sample,) = families["maas_route_requests_sum"].samples
    assert (sample.labels, sample.value) == ({"model": "routed"}, 2.0)
