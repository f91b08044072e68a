"""A Prometheus collector over CloudWatch: GetMetricData only, cached between scrapes.

Series are named as YACE and cloudwatch_exporter name them: the namespace (`AWS/Lambda`
-> `aws_lambda`, `MaaS` -> `maas`), the metric in snake case, the statistic
(`maas_inference_latency_average`, `aws_lambda_duration_p99`), with one label per
CloudWatch dimension. CloudWatch is read at most once per `interval` however often
Prometheus scrapes; a throttled read keeps the last values and backs off instead of
failing the scrape. The exporter counts its own calls and the metrics it requested, so
the CloudWatch bill can be predicted.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

MAX_QUERIES_PER_CALL = 500  # GetMetricData's limit
THROTTLING = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}


@dataclass(frozen=True)
class Series:
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str

    @property
    def prometheus_name(self) -> str:
        namespace = re.sub(r"[^a-zA-Z0-9]+", "_", self.namespace).lower()
        return f"{namespace}_{snake(self.metric)}_{self.stat.lower()}"


def snake(name: str) -> str:
    """`InferenceLatency` -> `inference_latency`, `4XXError` -> `4xx_error`, `ConcurrentExecutions`
    -> `concurrent_executions`. Namespaces are only lower-cased (`AWS/Lambda` -> `aws_lambda`)."""
    name = re.sub(r"([a-z])([A-Z])", r"\1_\2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"[^a-zA-Z0-9_]", "_", name).lower()


class CloudWatchCollector(Collector):
    """Exposes the latest value of every metric of `namespaces` (found with ListMetrics),
    for each statistic in `stats` (Sum, Average, Maximum, Minimum, SampleCount, pNN)."""

    def __init__(
        self,
        client: Any,
        *,
        namespaces: tuple[str, ...] = ("MaaS",),
        stats: tuple[str, ...] = ("Sum", "Average", "Maximum"),
        period: int = 60,
        delay: int = 60,
        interval: float = 60.0,
        max_backoff: float = 600.0,
        dimension_filters: dict[str, dict[str, list[str]]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.namespaces = namespaces
        # e.g. {"AWS/Lambda": {"FunctionName": ["maas-digits", ...]}}: only the deployment's resources.
        self.dimension_filters = dimension_filters or {}
        self.stats = stats
        self.period = period
        self.delay = delay
        self.interval = interval
        self.max_backoff = max_backoff
        self.clock = clock
        self._values: dict[Series, float] = {}
        self._read_at: float | None = None
        self._backoff = 0.0
        self._lock = threading.Lock()
        self.calls: dict[str, int] = {"GetMetricData": 0, "ListMetrics": 0}
        self.metrics_requested = 0
        self.throttled = 0

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with self._lock:
            self._refresh_if_due()
            values = dict(self._values)
        families: dict[str, GaugeMetricFamily] = {}
        for series, value in sorted(values.items(), key=lambda item: item[0].prometheus_name):
            labels = [snake(name) for name, _ in series.dimensions]
            family = families.get(series.prometheus_name)
            if family is None:
                family = GaugeMetricFamily(
                    series.prometheus_name,
                    f"CloudWatch {series.namespace} {series.metric} ({series.stat})",
                    labels=labels,
                )
                families[series.prometheus_name] = family
            family.add_metric([value for _, value in series.dimensions], value)
        yield from families.values()
        calls = CounterMetricFamily(
            "maas_exporter_cloudwatch_requests", "CloudWatch API calls made by the exporter", labels=["api"]
        )
        for api, count in self.calls.items():
            calls.add_metric([api], count)
        yield calls
        yield CounterMetricFamily(
            "maas_exporter_metrics_requested",
            "Metrics requested from GetMetricData (billed per metric)",
            value=self.metrics_requested,
        )
        yield CounterMetricFamily(
            "maas_exporter_throttled", "CloudWatch reads refused by throttling", value=self.throttled
        )

    def _refresh_if_due(self) -> None:
        now = self.clock()
        if self._read_at is not None and now - self._read_at < self.interval + self._backoff:
            return
        try:
            self._values = self._read()
            self._backoff = 0.0
        except ClientError as error:
            if error.response["Error"]["Code"] not in THROTTLING:
                raise
            self.throttled += 1
            self._backoff = min(self.max_backoff, max(self.interval, self._backoff * 2))
            logger.warning(
                "CloudWatch throttled the exporter; serving cached values, next read in %.0f s", self._backoff
            )
        self._read_at = now

    def discover(self) -> list[Series]:
        """Every (metric, dimensions) of the namespaces, once per statistic."""
        series: dict[Series, None] = {}  # ordered and without repeats: ListMetrics may list one twice
        for namespace, listing in self._listings():
            paginator = self.client.get_paginator("list_metrics")
            for page in paginator.paginate(**listing):
                self.calls["ListMetrics"] += 1
                for metric in page.get("Metrics", []):
                    dimensions = tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])))
                    for stat in self.stats:
                        series[Series(namespace, metric["MetricName"], dimensions, stat)] = None
        return list(series)

    def _listings(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for namespace in self.namespaces:
            filters = self.dimension_filters.get(namespace)
            if not filters:
                yield namespace, {"Namespace": namespace}
                continue
            for name, values in filters.items():
                for value in values:
                    yield namespace, {"Namespace": namespace, "Dimensions": [{"Name": name, "Value": value}]}

    def _read(self) -> dict[Series, float]:
        wanted = self.discover()
        end = datetime.now(UTC) - timedelta(seconds=self.delay)
        start = end - timedelta(seconds=self.period * 5)
        values: dict[Series, float] = {}
        for offset in range(0, len(wanted), MAX_QUERIES_PER_CALL):
            chunk = wanted[offset : offset + MAX_QUERIES_PER_CALL]
            queries = [
                {
                    "Id": f"q{index}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": series.namespace,
                            "MetricName": series.metric,
                            "Dimensions": [
                                {"Name": name, "Value": value} for name, value in series.dimensions
                            ],
                        },
                        "Period": self.period,
                        "Stat": series.stat,
                    },
                    "ReturnData": True,
                }
                for index, series in enumerate(chunk)
            ]
            self.metrics_requested += len(queries)
            token = None
            while True:
                arguments: dict[str, Any] = {
                    "MetricDataQueries": queries,
                    "StartTime": start,
                    "EndTime": end,
                    "ScanBy": "TimestampDescending",
                }
                if token:
                    arguments["NextToken"] = token
                answer = self.client.get_metric_data(**arguments)
                self.calls["GetMetricData"] += 1
                for result in answer.get("MetricDataResults", []):
                    if result.get("Values"):
                        values.setdefault(chunk[int(result["Id"][1:])], float(result["Values"][0]))
                token = answer.get("NextToken")
                if not token:
                    break
        return values
