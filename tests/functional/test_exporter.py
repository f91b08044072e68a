"""CloudWatch metrics come out of /metrics with cloudwatch_exporter's names and labels, using
GetMetricData only, ceil(queries / 500) calls per read, and at most one read per interval; a
statistic CloudWatch refuses or throttling never fails the scrape."""

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

from maas.metrics.exporter import CloudWatchCollector, Series


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


def throttled_client(client: Any, attempts: list[float], clock: Clock) -> Any:
    """`client`, except that every GetMetricData is refused with Throttling (recording when)."""

    def get_metric_data(**_: Any) -> None:
        attempts.append(clock.now)
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "GetMetricData")

    return type(
        "Throttled",
        (),
        {"get_paginator": client.get_paginator, "get_metric_data": staticmethod(get_metric_data)},
    )()


def test_throttling_serves_the_last_values_and_backs_off_doubling_to_the_ten_minute_cap(
    cloudwatch: tuple[Any, Counter[str]],
) -> None:
    client, _ = cloudwatch
    namespace = "MaaS/Test3"
    put(client, namespace, "Requests", {"model": "third"}, [5.0])
    clock = Clock()
    collector = CloudWatchCollector(
        client, namespaces=(namespace,), delay=-60, interval=60, max_backoff=600, clock=clock
    )
    assert scrape(collector)["maas_test3_requests_sum"][(("model", "third"),)] == 5.0
    attempts: list[float] = []
    collector.client = throttled_client(client, attempts, clock)
    clock.now += 60
    scrape(collector)
    assert len(attempts) == 1
    # After the 1st throttle the exporter waits 60 s (the interval), then 120, 240, 480, and
    # from the 5th on the 10-minute cap, whatever Prometheus' scrape interval.
    for throttles, wait in enumerate([60, 120, 240, 480, 600, 600], start=1):
        clock.now += wait - 1
        series = scrape(collector)
        assert len(attempts) == throttles, f"read again before {wait} s after throttle {throttles}"
        assert series["maas_test3_requests_sum"][(("model", "third"),)] == 5.0  # the last values
        assert series["maas_exporter_throttled_total"][()] == throttles
        clock.now += 1
        scrape(collector)
        assert len(attempts) == throttles + 1, f"no read {wait} s after throttle {throttles}"
    collector.client = client  # CloudWatch answers again: back to one read per interval
    clock.now += 600
    scrape(collector)
    clock.now += 60
    calls_before = collector.calls["GetMetricData"]
    scrape(collector)
    assert collector.calls["GetMetricData"] == calls_before + 1


def test_each_dimension_set_of_a_metric_is_a_series_with_its_own_labels(
    cloudwatch: tuple[Any, Counter[str]],
) -> None:
    # What the predict function publishes for one metric: per model (with Powertools' service)
    # and per version. No series may borrow another's label names.
    client, _ = cloudwatch
    namespace = "MaaS/Test5"
    put(client, namespace, "Served", {"model": "fifth", "service": "predict"}, [1.0, 1.0, 1.0])
    put(client, namespace, "Served", {"model": "fifth", "version": "2"}, [1.0, 1.0])
    put(client, namespace, "Served", {"model": "fifth", "version": "3"}, [1.0])
    collector = CloudWatchCollector(client, namespaces=(namespace,), stats=("Sum",), delay=-60, clock=Clock())
    assert scrape(collector)["maas_test5_served_sum"] == {
        (("model", "fifth"), ("service", "predict")): 3.0,
        (("model", "fifth"), ("version", "2")): 2.0,
        (("model", "fifth"), ("version", "3")): 1.0,
    }


def test_a_statistic_cloudwatch_cannot_answer_is_counted_and_the_others_are_served(
    cloudwatch: tuple[Any, Counter[str]],
) -> None:
    client, _ = cloudwatch
    namespace = "MaaS/Test6"
    put(client, namespace, "Requests", {"model": "sixth"}, [1.0, 2.0])
    put(client, namespace, "EndToEndLatency", {"model": "sixth"}, [4.0])
    # moto computes no percentiles: it answers any call asking for p99 with a 500.
    collector = CloudWatchCollector(
        client, namespaces=(namespace,), stats=("Sum", "Maximum", "p99"), delay=-60, clock=Clock()
    )
    series = scrape(collector)
    assert series["maas_test6_requests_sum"] == {(("model", "sixth"),): 3.0}
    assert series["maas_test6_requests_maximum"] == {(("model", "sixth"),): 2.0}
    assert series["maas_test6_end_to_end_latency_maximum"] == {(("model", "sixth"),): 4.0}
    assert "maas_test6_requests_p99" not in series
    errors = series["maas_exporter_query_errors_total"]
    assert errors == {
        (("metric", "EndToEndLatency"), ("namespace", namespace), ("stat", "p99")): 1.0,
        (("metric", "Requests"), ("namespace", namespace), ("stat", "p99")): 1.0,
    }


def test_when_cloudwatch_refuses_every_call_the_scrape_still_answers_and_counts_every_query(
    cloudwatch: tuple[Any, Counter[str]],
) -> None:
    client, _ = cloudwatch
    namespace = "MaaS/Test9"
    put(client, namespace, "Requests", {"model": "ninth"}, [1.0])

    def denied(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "GetMetricData")

    collector = CloudWatchCollector(
        type(
            "Denied", (), {"get_paginator": client.get_paginator, "get_metric_data": staticmethod(denied)}
        )(),
        namespaces=(namespace,),
        stats=("Sum", "Maximum"),
        delay=-60,
        clock=Clock(),
    )
    series = scrape(collector)
    assert not any(name.startswith("maas_test9_") for name in series)
    assert series["maas_exporter_query_errors_total"] == {
        (("metric", "Requests"), ("namespace", namespace), ("stat", "Maximum")): 1.0,
        (("metric", "Requests"), ("namespace", namespace), ("stat", "Sum")): 1.0,
    }


def test_a_query_cloudwatch_refuses_inside_an_answer_is_counted(cloudwatch: tuple[Any, Counter[str]]) -> None:
    client, _ = cloudwatch
    namespace = "MaaS/Test7"
    put(client, namespace, "Requests", {"model": "seventh"}, [1.0])

    def refusing_averages(**arguments: Any) -> dict[str, Any]:
        # A real GetMetricData answers each query with a StatusCode; Forbidden and
        # InternalError come with no values.
        answer: dict[str, Any] = client.get_metric_data(**arguments)
        stats = {q["Id"]: q["MetricStat"]["Stat"] for q in arguments["MetricDataQueries"]}
        for result in answer["MetricDataResults"]:
            if stats[result["Id"]] == "Average":
                result.update(StatusCode="Forbidden", Values=[], Timestamps=[])
        return answer

    collector = CloudWatchCollector(
        type(
            "Refusing",
            (),
            {"get_paginator": client.get_paginator, "get_metric_data": staticmethod(refusing_averages)},
        )(),
        namespaces=(namespace,),
        stats=("Sum", "Average"),
        delay=-60,
        clock=Clock(),
    )
    series = scrape(collector)
    assert series["maas_test7_requests_sum"] == {(("model", "seventh"),): 1.0}
    assert series["maas_exporter_query_errors_total"] == {
        (("metric", "Requests"), ("namespace", namespace), ("stat", "Average")): 1.0
    }


@pytest.mark.parametrize(
    ("namespace", "metric", "stat", "expected"),
    [
        # prometheus/cloudwatch_exporter's rules; for AWS namespaces YACE names them the same.
        ("AWS/ApiGateway", "4XXError", "Sum", "aws_apigateway_4_xxerror_sum"),
        ("AWS/EC2", "CPUUtilization", "Average", "aws_ec2_cpuutilization_average"),
        ("AWS/Lambda", "ConcurrentExecutions", "Maximum", "aws_lambda_concurrent_executions_maximum"),
        ("AWS/Lambda", "Duration", "p99.9", "aws_lambda_duration_p99_9"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "SampleCount",
         "aws_sqs_approximate_number_of_messages_visible_sample_count"),
        ("/aws/sagemaker/Endpoints", "GPUUtilization", "Average", "aws_sagemaker_endpoints_gpuutilization_average"),
        ("MaaS", "InferenceLatency", "p99", "maas_inference_latency_p99"),
        ("MaaS", "Errors4xx", "Minimum", "maas_errors4xx_minimum"),
    ],
)  # fmt: skip
def test_series_are_named_as_cloudwatch_exporter_names_them(
    namespace: str, metric: str, stat: str, expected: str
) -> None:
    assert Series(namespace, metric, (), stat).prometheus_name == expected


def test_dimension_names_become_snake_case_labels(cloudwatch: tuple[Any, Counter[str]]) -> None:
    client, _ = cloudwatch
    put(
        client,
        "AWS/Lambda",
        "Throttles",
        {"FunctionName": "maas-eighth", "Resource": "maas-eighth:live"},
        [2.0],
    )
    collector = CloudWatchCollector(
        client,
        namespaces=("AWS/Lambda",),
        stats=("Sum",),
        dimension_filters={"AWS/Lambda": {"FunctionName": ["maas-eighth"]}},
        delay=-60,
        clock=Clock(),
    )
    assert scrape(collector)["aws_lambda_throttles_sum"] == {
        (("function_name", "maas-eighth"), ("resource", "maas-eighth:live")): 2.0
    }


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
