"""Exporter promises that mutation testing found no test holding (`make mutate`, notes in
RELIABILITY.md), against a scripted CloudWatch (moto pages nothing and throttles nothing):
GetMetricData answers over several pages, ListMetrics over several pages and namespaces, the
counters that predict the bill, the time window, and backing off from a first read throttled."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from maas.metrics.exporter import CloudWatchCollector, Series

METRICS = {
    "MaaS": [
        [{"MetricName": "Requests", "Dimensions": [{"Name": "model", "Value": "digits"}]}],
        # A second page, and a metric listed without dimensions at all.
        [{"MetricName": "Errors"}],
        {},  # a last page without "Metrics"
    ],
    "AWS/Lambda": [
        [{"MetricName": "Invocations", "Dimensions": [{"Name": "FunctionName", "Value": "maas"}]}]
    ],
}


class Paginator:
    def __init__(self, client: ScriptedCloudWatch) -> None:
        self.client = client

    def paginate(self, **listing: Any) -> list[dict[str, Any]]:
        self.client.listings.append(listing)
        pages = METRICS[listing["Namespace"]]
        return [page if isinstance(page, dict) else {"Metrics": page} for page in pages]


class ScriptedCloudWatch:
    """Answers each GetMetricData query with value 1.0, 2.0, ... one result per page, each page
    but the last with a NextToken; refuses the statistics in `refused` (a call naming one fails)."""

    def __init__(self, *, refused: tuple[str, ...] = (), throttled: bool = False) -> None:
        self.refused = refused
        self.throttled = throttled
        self.calls: list[dict[str, Any]] = []
        self.listings: list[dict[str, Any]] = []

    def get_paginator(self, name: str) -> Paginator:
        assert name == "list_metrics"
        return Paginator(self)

    def get_metric_data(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append(arguments)
        if self.throttled:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "GetMetricData")
        queries = arguments["MetricDataQueries"]
        if any(query["MetricStat"]["Stat"] in self.refused for query in queries):
            raise ClientError({"Error": {"Code": "InvalidParameterValue"}}, "GetMetricData")
        page = int(arguments.get("NextToken", "0"))
        answer: dict[str, Any] = {
            "MetricDataResults": [{"Id": queries[page]["Id"], "Values": [float(page + 1), 0.0]}]
        }
        if page + 1 < len(queries):
            answer["NextToken"] = str(page + 1)
        return answer


def collector(client: ScriptedCloudWatch, **options: Any) -> CloudWatchCollector:
    options.setdefault("namespaces", ("MaaS",))
    options.setdefault("stats", ("Sum",))
    return CloudWatchCollector(client, delay=60, period=60, interval=60, clock=lambda: 0.0, **options)


def values(collector: CloudWatchCollector) -> dict[str, float]:
    return {
        series.prometheus_name + str(series.labels): value
        for series, value in collector._read().items()  # one read, as a scrape makes it
    }


def test_an_answer_over_several_pages_is_read_to_the_end() -> None:
    client = ScriptedCloudWatch()
    read = values(collector(client))
    assert read == {
        "maas_requests_sum{'model': 'digits'}": 1.0,
        "maas_errors_sum{}": 2.0,
    }
    assert [call.get("NextToken") for call in client.calls] == [None, "1"]


def test_the_latest_value_is_asked_for_over_the_last_five_periods_ending_delay_ago() -> None:
    client = ScriptedCloudWatch()
    before = datetime.now(UTC)
    collector(client)._read()
    call = client.calls[0]
    assert call["ScanBy"] == "TimestampDescending"  # Values[0] is then the latest
    assert before - timedelta(seconds=61) <= call["EndTime"] <= datetime.now(UTC) - timedelta(seconds=60)
    assert call["EndTime"] - call["StartTime"] == timedelta(seconds=300)


def test_every_namespace_is_listed_and_a_filtered_one_only_for_its_resources() -> None:
    client = ScriptedCloudWatch()
    exporter = collector(
        client,
        namespaces=("AWS/Lambda", "MaaS"),
        dimension_filters={"AWS/Lambda": {"FunctionName": ["maas", "maas-batch"]}},
    )
    series = exporter.discover()
    assert client.listings == [
        {"Namespace": "AWS/Lambda", "Dimensions": [{"Name": "FunctionName", "Value": "maas"}]},
        {"Namespace": "AWS/Lambda", "Dimensions": [{"Name": "FunctionName", "Value": "maas-batch"}]},
        {"Namespace": "MaaS"},
    ]
    assert {s.metric for s in series} == {"Invocations", "Requests", "Errors"}


def test_the_calls_and_metrics_that_make_the_bill_are_counted_over_every_read() -> None:
    client = ScriptedCloudWatch()
    exporter = collector(client, stats=("Sum", "Maximum"))
    exporter._read()
    exporter._read()
    # Each read: 3 ListMetrics pages, 4 queries (2 metrics x 2 statistics) over 4 answer pages.
    assert exporter.calls == {"GetMetricData": 8, "ListMetrics": 6}
    assert exporter.metrics_requested == 8


def test_with_two_statistics_one_refused_the_other_is_still_served() -> None:
    client = ScriptedCloudWatch(refused=("p99",))
    exporter = collector(client, stats=("Sum", "p99"))
    read = exporter._read()
    assert {series.stat for series in read} == {"Sum"}
    assert exporter.query_errors == {("MaaS", "Requests", "p99"): 1, ("MaaS", "Errors", "p99"): 1}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_first_read_throttled_serves_nothing_and_waits_one_interval() -> None:
    client = ScriptedCloudWatch(throttled=True)
    clock = Clock()
    exporter = CloudWatchCollector(client, namespaces=("MaaS",), stats=("Sum",), interval=60, clock=clock)
    list(exporter.collect())
    assert (exporter.throttled, len(client.calls)) == (1, 1)
    clock.now = 59
    list(exporter.collect())
    assert len(client.calls) == 1
    clock.now = 60
    list(exporter.collect())
    assert len(client.calls) == 2


def test_by_default_throttling_backs_off_to_ten_minutes_at_most() -> None:
    client = ScriptedCloudWatch(throttled=True)
    clock = Clock()
    exporter = CloudWatchCollector(client, namespaces=("MaaS",), stats=("Sum",), interval=60, clock=clock)
    reads = []
    for _ in range(8):
        list(exporter.collect())
        reads.append(clock.now)
        clock.now += exporter._wait()
    assert [b - a for a, b in itertools.pairwise(reads)] == [60, 120, 240, 480, 600, 600, 600]


@pytest.mark.parametrize(
    ("namespace", "metric", "name"),
    [("Custom/App", "Queue - Depth", "custom_app_queue_depth_sum"), ("My__App", "Hits", "my_app_hits_sum")],
)
def test_runs_of_characters_prometheus_refuses_become_one_underscore(
    namespace: str, metric: str, name: str
) -> None:
    assert Series(namespace, metric, (), "Sum").prometheus_name == name


def test_an_unfiltered_namespace_does_not_end_the_listing_of_those_after_it() -> None:
    client = ScriptedCloudWatch()
    exporter = collector(
        client,
        namespaces=("MaaS", "AWS/Lambda"),
        dimension_filters={"AWS/Lambda": {"FunctionName": ["maas"]}},
    )
    exporter.discover()
    assert client.listings == [
        {"Namespace": "MaaS"},
        {"Namespace": "AWS/Lambda", "Dimensions": [{"Name": "FunctionName", "Value": "maas"}]},
    ]


def test_by_default_a_read_asks_for_one_minute_periods_a_minute_late_once_a_minute() -> None:
    """The defaults the README and `maas exporter serve --help` state: --period 60, --delay 60,
    an interval of 60 s between reads of CloudWatch."""
    exporter = CloudWatchCollector(ScriptedCloudWatch())
    assert (exporter.period, exporter.delay, exporter.interval) == (60, 60, 60.0)
